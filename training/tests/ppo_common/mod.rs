//! Shared by the PPO tests: a small SFT policy trained here on the synthetic demo corpus (2 layers,
//! width 64, a 512-token BPE, 200 seeded steps, about 20 s) and a score bundle with tiny RANDOM
//! SD / CLIP graphs and the real aesthetic head (the reward is the library's real scorer on them),
//! made once per test binary. Needs ORT_DYLIB_PATH (fails clearly without).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::sd_convert::{add_score_components, ScoreSources};
use promptist_train::data::bad::BadRows;
use promptist_train::data::prepare::{prepare, DataOptions};
use promptist_train::data::read::Columns;
use promptist_train::data::sources::{build_pairs, SourceOptions};
use promptist_train::data::OnBadRow;
use promptist_train::model::Params;
use promptist_train::sft::optim::{AdamW, AdamWConfig};
use promptist_train::sft::{train, SftConfig};

pub struct Setup {
    _dir: tempfile::TempDir,
    /// SFT checkpoint folder (Hugging Face layout).
    pub sft: PathBuf,
    /// Bundle with the score components.
    pub score_bundle: PathBuf,
    /// RL prompts (two domain files) and held-out prompts.
    pub prompts_a: PathBuf,
    pub prompts_b: PathBuf,
    pub held_out: PathBuf,
}

pub fn ort_ready() {
    let p = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    assert!(
        p.as_ref().is_some_and(|p| p.is_file()),
        "ORT_DYLIB_PATH must name the ONNX Runtime library (source tests/env.sh): the PPO reward runs the library's scorer"
    );
}

/// Prompts: subjects x settings; every fourth combination is held out (never a training prompt).
const SUBJECTS_A: &[&str] = &["a red fox", "a castle", "an old wizard", "a robot", "a cat", "a lighthouse", "a dragon", "a forest path", "a wolf", "a windmill"];
const SUBJECTS_B: &[&str] = &["a queen", "a city", "a ship", "a mountain lake", "a knight", "a bowl of fruit", "a car", "a young witch"];
const SETTINGS: &[&str] = &["", " in the snow", " at night", " by the sea", " in a garden", " on a hill", " in the rain", " at dawn"];

/// (training prompts, held-out prompts) of a subject list.
fn combos(subjects: &[&str]) -> (Vec<String>, Vec<String>) {
    let all: Vec<String> = subjects.iter().flat_map(|s| SETTINGS.iter().map(move |t| format!("{s}{t}"))).collect();
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, p) in all.into_iter().enumerate() {
        if i % 4 == 3 { held.push(p) } else { train.push(p) }
    }
    (train, held)
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
}

pub fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        ort_ready();
        tch::set_num_threads(1);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // SFT on the synthetic corpus.
        let corpus = d.join("corpus.jsonl");
        promptist_train::demo::corpus::write_corpus(&corpus, 400, 1).unwrap();
        let opts = DataOptions {
            files: vec![corpus],
            columns: Columns::default(),
            sources: SourceOptions::with_kinds(1, "mc,mcm", None).unwrap(),
            on_bad_row: OnBadRow::Error,
            val_fraction: 0.1,
            max_length: 128,
            seed: 1,
        };
        let mut bad = BadRows::new(OnBadRow::Error);
        let recs = promptist_train::data::read::read_file(&opts.files[0], &opts.columns, &mut bad).unwrap().0;
        let pairs = build_pairs(&recs, &opts.sources, &mut bad).unwrap();
        let texts: Vec<String> = pairs.iter().flatten().map(|p| format!("{} Rephrase: {}", p.source, p.target)).collect();
        let tok = promptist_train::demo::bpe::train_tokenizer(&texts, 512, &d.join("tok")).unwrap();
        let mut cfg = Gpt2Config::tiny();
        cfg.vocab_size = tok.vocab_size();
        cfg.n_positions = Some(128);
        let data = prepare(&opts, &tok).unwrap();
        let params = Params::random(&cfg, 1, tch::Device::Cpu).unwrap();
        let mut opt = AdamW::new(AdamWConfig { lr: 3e-3, ..Default::default() }, &params).unwrap();
        let c = SftConfig {
            adamw: AdamWConfig { lr: 3e-3, ..Default::default() },
            batch_size: 16,
            micro_batch: 16,
            max_steps: 200,
            eval_every: 200,
            save_every: 200,
            seed: 1,
            progress: false,
            synthetic: true,
            ..Default::default()
        };
        let run = d.join("sft");
        let s = train(&params, &mut opt, &tok, &data, &run, &c, None).unwrap();
        assert!(*s.losses.last().unwrap() < 2.0, "the SFT policy did not learn: {:?}", s.losses.last());
        // Score bundle: the demo bundle plus tiny random SD / CLIP and the real aesthetic head.
        let bundle = d.join("score");
        copy_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/bundle"), &bundle);
        let src = ScoreSources::tiny_random(5, promptist::export::nn::RandomInit::TorchDefault);
        add_score_components(&bundle, &src).unwrap();
        let (prompts_a, prompts_b, held_out) = (d.join("domain_a.txt"), d.join("domain_b.txt"), d.join("held_out.txt"));
        let ((ta, ha), (tb, hb)) = (combos(SUBJECTS_A), combos(SUBJECTS_B));
        write_lines(&prompts_a, &ta);
        write_lines(&prompts_b, &tb);
        write_lines(&held_out, &[ha, hb].concat());
        Setup { sft: s.last_dir, score_bundle: bundle, prompts_a, prompts_b, held_out, _dir: dir }
    })
}

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
