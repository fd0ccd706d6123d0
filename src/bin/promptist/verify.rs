//! `promptist verify BUNDLE`: check a bundle's manifest, files, sizes and sha256, and print what it holds.

use std::path::PathBuf;

use promptist::bundle::{check_files, read_manifest, Bundle, Checksums};

#[derive(clap::Args)]
pub struct Args {
    /// The bundle folder (with promptist.json).
    pub bundle: PathBuf,
    /// Check sizes only, not sha256.
    #[arg(long)]
    pub skip_checksums: bool,
}

pub fn run(args: Args) -> promptist::Result<()> {
    let checksums = if args.skip_checksums {
        Checksums::Skip
    } else {
        Checksums::Verify
    };
    let m = read_manifest(&args.bundle)?;
    println!(
        "bundle: {} (format {}) at {}",
        m.name,
        m.format_version,
        args.bundle.display()
    );
    if !m.description.is_empty() {
        println!("description: {}", m.description);
    }
    println!("source: {}; producer: {}", m.provenance.source, m.provenance.producer);
    if m.provenance.random_weights {
        println!("WARNING: this bundle has RANDOM weights; its outputs are meaningless");
    }
    if m.provenance.synthetic_training_data {
        println!("note: trained on synthetic data");
    }
    let mut files = 0usize;
    let mut bytes = 0u64;
    for (name, c) in &m.components {
        let size: u64 = c.files.values().map(|f| f.size).sum();
        println!("component {name} ({}): {} files, {size} bytes", c.kind, c.files.len());
        for (rel, f) in &c.files {
            println!("  {rel}  {} bytes  sha256 {}", f.size, f.sha256);
        }
        files += c.files.len();
        bytes += size;
    }
    let problems = check_files(&args.bundle, &m, checksums);
    for p in &problems {
        println!("problem [{}]: {p}", p.code().name());
    }
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    // The full open also checks what the components need (policy files and config).
    let b = Bundle::open(&args.bundle, Checksums::Skip)?;
    if let Ok(p) = b.policy() {
        let c = p.config;
        let tok = p.load_tokenizer()?;
        println!(
            "policy: n_ctx {} vocab {} n_layer {} n_head {} n_embd {} eos {}; tokenizer {} tokens",
            c.n_ctx,
            c.vocab_size,
            c.n_layer,
            c.n_head,
            c.n_embd,
            c.eos_token_id,
            tok.vocab_size()
        );
    } else {
        println!("policy: absent (optimize is not available with this bundle)");
    }
    let how = if args.skip_checksums {
        "sizes checked, sha256 skipped"
    } else {
        "sizes and sha256 match"
    };
    println!("OK: {files} files, {bytes} bytes ({how})");
    Ok(())
}
