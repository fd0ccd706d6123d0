//! Shared by the score-engine tests: a tiny random bundle (GPT-2 policy + tiny random SD / CLIP +
//! the real aesthetic head) and a policy-only copy, made once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use promptist::export::sd_convert::{add_score_components, ScoreSources};

pub struct Bundles {
    _dir: tempfile::TempDir,
    pub score: PathBuf,
    pub policy_only: PathBuf,
}

pub use crate::common::ort_ready;

pub fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| {
        ort_ready();
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let cfg = promptist::export::Gpt2Config::preset("tiny").unwrap();
        promptist::export::write_random_checkpoint(&ck, &cfg, 11, promptist::export::tiny::LmHead::Untied { scale: promptist::export::tiny::DEFAULT_SCALE }).unwrap();
        let policy_only = dir.path().join("policy_only");
        promptist::export::convert_checkpoint(&ck, &policy_only, &Default::default(), &mut |_| {}).unwrap();
        let score = dir.path().join("score");
        promptist::export::convert_checkpoint(&ck, &score, &Default::default(), &mut |_| {}).unwrap();
        let src = ScoreSources::tiny_random(5, Default::default());
        add_score_components(&score, &src).unwrap();
        Bundles { _dir: dir, score, policy_only }
    })
}

/// Copy a bundle folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}
