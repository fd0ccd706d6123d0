//! The `promptist` command-line tool.
fn main() {}
