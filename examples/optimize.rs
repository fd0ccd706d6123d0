//! Rust example of the engine API: open a bundle, rewrite a prompt with the reference demo's
//! decoding (beam 8, length_penalty -1.0, 75 new tokens), print the n-best list.
//!
//! cargo run --example optimize -- BUNDLE_DIR "a cat sitting on a mat"
//! (ONNX Runtime through ORT_DYLIB_PATH, or a libonnxruntime.so next to the executable)

use promptist::engine::{DecodingParams, Engine, EngineOptions, OptimizeOptions};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} BUNDLE_DIR PROMPT", args[0]);
        return std::process::ExitCode::from(2);
    }
    match run(&args[1], &args[2]) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code().name());
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(bundle: &str, prompt: &str) -> promptist::Result<()> {
    let engine = Engine::open(bundle, &EngineOptions::default())?;
    let params = DecodingParams { num_return_sequences: 3, ..DecodingParams::default() };
    let result = engine.optimize(prompt, &OptimizeOptions::from(&params))?;
    if result.random_weights {
        println!("note: this bundle's policy has random weights; the rewrites are meaningless");
    }
    println!("provider: {}", result.provider.name());
    for (i, c) in result.candidates.iter().enumerate() {
        println!("{i}\t{:.4}\t{}", c.score, c.text);
    }
    Ok(())
}
