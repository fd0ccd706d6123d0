//! `promptist make_tiny` (owned by its module's author; not built yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> promptist::Result<()> {
    Err(promptist::Error::Internal("`make_tiny` is not built yet".into()))
}
