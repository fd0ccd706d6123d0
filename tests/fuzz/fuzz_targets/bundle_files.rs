//! Hostile bundle files: one file of the tiny bundle (the first byte picks which: ONNX graphs and
//! their external data, tokenizer files, configs, scheduler config, aesthetic head) replaced by the
//! fuzz input, with the manifest's checksum made to match it or not (the second byte), then the
//! engine opened and, when it opens, one short optimize and, for a score component, one 64x64
//! two-step score. Any outcome but a panic, an abort or a crash is fine.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptist::diffusion::pipeline::SdSettings;
use promptist::engine::{Engine, EngineOptions, OptimizeOptions, ScoreOptions};
use promptist::policy::config::DecodingConfig;

fn work() -> &'static PathBuf {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| promptist_fuzz::scratch_dir("bundle-files"))
}

fuzz_target!(|data: &[u8]| {
    let mut b = promptist_fuzz::Bytes::new(data);
    let files = promptist_fuzz::manifest_files();
    let (component, rel) = &files[usize::from(b.u8()) % files.len()];
    let rehash = b.u8() % 4 != 0;
    let packed = b.u8() % 2 == 0;
    let bytes = b.rest();
    let bundle = promptist_fuzz::working_bundle(work(), &[rel.as_str()]);
    promptist_fuzz::replace_file(&bundle, component, rel, bytes, rehash);
    let opts = EngineOptions { intra_op_threads: 1, packed_matmul: packed, ..EngineOptions::default() };
    let Ok(engine) = Engine::open(&bundle, &opts) else { return };
    let o = OptimizeOptions::with_decoding(DecodingConfig { max_new_tokens: 4, ..DecodingConfig::default() });
    let _ = engine.optimize("a red fox", &o);
    if component != "policy" && engine.can_score() {
        let s = ScoreOptions { sd: SdSettings { width: 64, height: 64, steps: 2, ..Default::default() }, images_per_prompt: 1, ..Default::default() };
        let _ = engine.score("a red fox", "a red fox, detailed", &s, &mut |_, _, _| true);
    }
});
