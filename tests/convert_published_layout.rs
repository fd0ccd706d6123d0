//! The published Promptist checkpoint's layout converts as it is: a folder with only `config.json`
//! and `pytorch_model.bin` (its demo loads GPT-2's tokenizer separately). `convert` then uses the
//! embedded GPT-2 tokenizer, says so, and the bundle decodes exactly the ids of a bundle converted
//! from the same weights with tokenizer files. The `.bin` is written by torch (`torch.save` of the
//! transformers model's state dict), read back by the library's restricted unpickler.
//! Needs ORT_DYLIB_PATH and the reference Python (PROMPTIST_PYTHON); fails clearly without them.

mod common;

use std::process::Command;

use promptist::export::{convert_checkpoint, write_random_checkpoint, ConvertOptions, Gpt2Config, LmHead};
use promptist::engine::{Engine, EngineOptions, OptimizeOptions, OptimizeResult};
use promptist::policy::config::{DecodingConfig, Strategy};

const PROMPTS: [&str; 4] = ["a red fox in the snow", "Portrait of an old sailor", "über-détaillé castle, 8k", "  spaces   inside  "];

#[test]
fn config_and_pytorch_model_bin_alone_convert_with_the_embedded_tokenizer() {
    common::ort_ready();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let cfg = Gpt2Config::preset("tiny").unwrap();
    write_random_checkpoint(&ck, &cfg, 21, LmHead::Untied { scale: promptist::export::tiny::DEFAULT_SCALE }).unwrap();
    assert!(ck.join("tokenizer.json").is_file(), "the random checkpoint carries tokenizer files");

    // The published layout: config.json + pytorch_model.bin, nothing else.
    let published = dir.path().join("Promptist");
    let out = Command::new(common::python())
        .arg(common::script("train_to_bin.py"))
        .arg(&ck)
        .arg(&published)
        .output()
        .expect("run the reference Python");
    assert!(out.status.success(), "train_to_bin.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        let _ = std::fs::remove_file(published.join(f));
    }
    let mut names: Vec<String> = std::fs::read_dir(&published).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["config.json", "pytorch_model.bin"]);

    let with_files = dir.path().join("with_files");
    convert_checkpoint(&ck, &with_files, &ConvertOptions::default(), &mut |_| {}).unwrap();
    let bare = dir.path().join("bare");
    let mut lines = Vec::new();
    convert_checkpoint(&published, &bare, &ConvertOptions::default(), &mut |s| lines.push(s.to_string())).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("embedded GPT-2 tokenizer")),
        "convert must say it used the embedded tokenizer; it said: {lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("pytorch_model.bin")), "the weights came from the .bin: {lines:#?}");

    let (a, b) = (Engine::open(&with_files, &EngineOptions::default()).unwrap(), Engine::open(&bare, &EngineOptions::default()).unwrap());
    let beam = OptimizeOptions::with_decoding(DecodingConfig { max_new_tokens: 12, num_return_sequences: 4, ..DecodingConfig::default() });
    let greedy = OptimizeOptions::with_decoding(DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 12, num_return_sequences: 1 });
    for opts in [&beam, &greedy] {
        for p in PROMPTS {
            let (x, y) = (a.optimize(p, opts).unwrap(), b.optimize(p, opts).unwrap());
            assert!(!x.candidates.is_empty());
            let ids = |r: &OptimizeResult| r.candidates.iter().map(|c| (c.token_ids.clone(), c.text.clone())).collect::<Vec<_>>();
            assert_eq!(ids(&x), ids(&y), "prompt {p:?}: the bundle without tokenizer files decodes differently");
            for (c, d) in x.candidates.iter().zip(&y.candidates) {
                assert!((c.score - d.score).abs() <= 1e-4 * c.score.abs().max(1.0), "prompt {p:?}: scores {} vs {}", c.score, d.score);
            }
        }
    }
}
