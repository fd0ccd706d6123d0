//! A float16 GPT-2 bundle (fp16 weights, activations and KV cache; `convert --dtype fp16`) runs in
//! the engine and decodes like its float32 twin converted from the same checkpoint. Weights: the
//! seeded tiny GPT-2 with an untied LM head of std 0.02 * DEFAULT_SCALE (peaked next-token
//! distributions, as the other decode tests use), so fp16 rounding moves scores but rarely a
//! decision. Greedy, beam 8 (length_penalty -1.0, 4 returned) and diverse beam (8 beams in 4
//! groups, penalty 1.0, 4 returned) run through `Engine::optimize` one prompt at a time (prefill,
//! prompt-to-beam gather, in-place reorders) and through `generate` with all prompts in one
//! left-padded batch. Every returned sequence is compared; a prompt whose fp16 ids differ is
//! printed with the fp32 and fp16 decision margins (the smallest relative score gap a decision was
//! taken on). fp16 may flip a genuine near-tie, so each configuration must give the same best
//! sequence on at least MIN_TOP1 of its prompts and the same n-best list on MIN_ALL, every
//! differing prompt must have an fp32 margin below TIE_GAP, and the scores of matching sequences
//! must agree within SCORE_TOL (relative; fp16 keeps ~3 significant digits). A second test drives
//! both models in lockstep (decisions on fp32's logits) and bounds fp16's logit error at every
//! step, through prefill, prompt-to-beam gathers and in-place beam reorders.
//! Needs ORT_DYLIB_PATH (fails with a clear message without it).

mod common;

use std::path::{Path, PathBuf};

use promptist::engine::{Candidate, Engine, EngineOptions, OptimizeOptions};
use promptist::export::onnx::DType;
use promptist::export::tiny::{LmHead, DEFAULT_SCALE};
use promptist::export::{convert_checkpoint, write_random_checkpoint, ConvertOptions, Gpt2Config};
use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::policy::prompt::format_input;
use promptist::policy::{generate, CausalLm, Controls, FloatType, Gpt2Dims, OnnxGpt2, PaddedBatch, PromptOutput};
use promptist::Result;
use promptist::runtime::{Runtime, SessionOptions};
use promptist::text::gpt2::Gpt2Tokenizer;

/// Share of prompts per configuration whose fp16 best sequence must equal fp32's.
const MIN_TOP1: f64 = 0.8;
/// Share of prompts per configuration whose every returned fp16 sequence must equal fp32's.
const MIN_ALL: f64 = 0.6;
/// A prompt may differ only when its fp32 decision margin (relative score gap) is below this:
/// fp16 rounding moves logits by up to ~2.5e-2 on |logits| up to ~40 and scores by ~1.2e-3
/// (relative) here, so a decision closer than 1e-3 is a near-tie at fp16 precision.
const TIE_GAP: f32 = 1e-3;
/// Relative tolerance of a matching sequence's score, fp16 vs fp32.
const SCORE_TOL: f32 = 2e-2;
const MAX_NEW: usize = 40;


const PROMPTS: [&str; 20] = [
    "a red fox",
    "a castle on a hill at sunset",
    "portrait of an old sailor",
    "a cat wearing a hat",
    "futuristic city skyline at night, neon lights",
    "a bowl of fruit on a wooden table",
    "mountain lake in the morning mist",
    "an astronaut riding a horse",
    "watercolor painting of a lighthouse",
    "a dragon made of glass",
    "steampunk airship over london",
    "a quiet street in tokyo after rain",
    "oil painting of a sunflower field",
    "a robot reading a book in a library",
    "close-up of a hummingbird",
    "ancient ruins in the jungle",
    "a cozy cabin in the snowy woods",
    "an owl on a branch, moonlight",
    "a knight fighting a giant snake",
    "underwater coral reef with fish",
];

fn configs() -> Vec<(&'static str, DecodingConfig)> {
    let h = EarlyStopping::Heuristic;
    vec![
        ("greedy", DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: MAX_NEW, num_return_sequences: 1 }),
        (
            "beam 8",
            DecodingConfig { strategy: Strategy::Beam { num_beams: 8, length_penalty: -1.0, early_stopping: h }, max_new_tokens: MAX_NEW, num_return_sequences: 4 },
        ),
        (
            "diverse 8/4",
            DecodingConfig {
                strategy: Strategy::DiverseBeam { num_beams: 8, num_beam_groups: 4, diversity_penalty: 1.0, length_penalty: -1.0, early_stopping: h },
                max_new_tokens: MAX_NEW,
                num_return_sequences: 4,
            },
        ),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    fp32: PathBuf,
    fp16: PathBuf,
}

fn fixture() -> Fixture {
    common::ort_ready();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let cfg = Gpt2Config::preset("tiny").unwrap();
    write_random_checkpoint(&ck, &cfg, 11, LmHead::Untied { scale: DEFAULT_SCALE }).unwrap();
    let (fp32, fp16) = (dir.path().join("fp32"), dir.path().join("fp16"));
    convert_checkpoint(&ck, &fp32, &ConvertOptions::default(), &mut |_| {}).unwrap();
    convert_checkpoint(&ck, &fp16, &ConvertOptions { dtype: DType::F16, ..Default::default() }, &mut |_| {}).unwrap();
    Fixture { _dir: dir, fp32, fp16 }
}

fn engine_options() -> EngineOptions {
    EngineOptions { intra_op_threads: 1, ..Default::default() }
}

fn lm(bundle: &Path) -> OnnxGpt2 {
    let rt = Runtime::get(None).unwrap();
    let so = SessionOptions { intra_op_threads: 1, ..Default::default() };
    let (session, _) = rt.session(&bundle.join("policy/model.onnx"), &so, None).unwrap();
    let dims = Gpt2Dims::from_config_json(&std::fs::read_to_string(bundle.join("policy/config.json")).unwrap()).unwrap();
    OnnxGpt2::new(session, dims).unwrap()
}

fn prompt_ids(tok: &Gpt2Tokenizer) -> Vec<Vec<u32>> {
    PROMPTS.iter().map(|p| tok.encode(&format_input(p).unwrap()).unwrap()).collect()
}

type Seqs = Vec<(Vec<u32>, f32)>;

fn from_candidates(c: &[Candidate]) -> Seqs {
    c.iter().map(|c| (c.token_ids.clone(), c.score)).collect()
}

fn from_output(p: &PromptOutput) -> Seqs {
    p.hypotheses.iter().map(|h| (h.tokens.clone(), h.score)).collect()
}

fn gap(p: &PromptOutput) -> (f32, String) {
    let m = &p.margin;
    (m.gap, gap_text(p))
}

fn gap_text(p: &PromptOutput) -> String {
    let m = &p.margin;
    if m.gap.is_infinite() {
        "none".into()
    } else if m.step == usize::MAX {
        format!("{:.2e} (final ranking)", m.gap)
    } else {
        format!("{:.2e} (step {})", m.gap, m.step)
    }
}

struct Comparison {
    /// Prompts whose every returned sequence matches.
    same: usize,
    /// Prompts whose best sequence matches.
    top1: usize,
    /// Worst relative score error of a matching sequence.
    worst: f32,
    /// One line per differing prompt.
    diffs: Vec<String>,
    /// Differing prompts whose fp32 margin is not a near-tie.
    not_ties: Vec<String>,
}

/// Compare fp16 with fp32 for one configuration; `margins(i)` decodes prompt i again for its
/// fp32 and fp16 margins.
fn compare(what: &str, a32: &[Seqs], a16: &[Seqs], margins: &dyn Fn(usize) -> ((f32, String), (f32, String))) -> Comparison {
    let mut c = Comparison { same: 0, top1: 0, worst: 0.0, diffs: Vec::new(), not_ties: Vec::new() };
    for (i, (s32, s16)) in a32.iter().zip(a16).enumerate() {
        c.top1 += usize::from(s32.first().map(|s| &s.0) == s16.first().map(|s| &s.0));
        let ids32: Vec<&Vec<u32>> = s32.iter().map(|s| &s.0).collect();
        let ids16: Vec<&Vec<u32>> = s16.iter().map(|s| &s.0).collect();
        if ids32 == ids16 {
            c.same += 1;
            for ((_, x), (_, y)) in s32.iter().zip(s16) {
                c.worst = c.worst.max((x - y).abs() / 1f32.max(x.abs()));
            }
        } else {
            let ((g32, m32), (_, m16)) = margins(i);
            let first = ids32.iter().zip(&ids16).position(|(a, b)| a != b).unwrap_or(ids32.len().min(ids16.len()));
            if g32 >= TIE_GAP {
                c.not_ties.push(format!("{what} {:?}: fp32 margin {m32} >= {TIE_GAP}", PROMPTS[i]));
            }
            c.diffs.push(format!(
                "{what} {:?}: sequence {first} differs (fp32 {:?} score {:?}; fp16 {:?} score {:?}); margin fp32 {m32}, fp16 {m16}",
                PROMPTS[i],
                s32.get(first).map(|s| &s.0),
                s32.get(first).map(|s| s.1),
                s16.get(first).map(|s| &s.0),
                s16.get(first).map(|s| s.1),
            ));
        }
    }
    c
}

#[test]
fn fp16_bundle_decodes_like_fp32() {
    let fx = fixture();
    let (mut lm32, mut lm16) = (lm(&fx.fp32), lm(&fx.fp16));
    assert_eq!((lm32.kv_type(), lm32.logits_type()), (FloatType::F32, FloatType::F32));
    assert_eq!(lm16.kv_type(), FloatType::F16, "the fp16 bundle's graph must take a float16 KV cache");
    eprintln!("fp16 graph: KV cache {:?}, logits {:?}", lm16.kv_type(), lm16.logits_type());
    let (e32, e16) = (Engine::open(&fx.fp32, &engine_options()).unwrap(), Engine::open(&fx.fp16, &engine_options()).unwrap());
    let tok = Gpt2Tokenizer::from_tokenizer_json(&fx.fp16.join("policy/tokenizer.json")).unwrap();
    let ids = prompt_ids(&tok);
    let mut failures = Vec::new();
    for (name, cfg) in configs() {
        let opts = OptimizeOptions::with_decoding(cfg.clone());
        // One prompt at a time through the engine.
        let run = |e: &Engine| -> Vec<Seqs> { PROMPTS.iter().map(|p| from_candidates(&e.optimize(p, &opts).unwrap().candidates)).collect() };
        let (o32, o16) = (run(&e32), run(&e16));
        assert!(o16.iter().all(|s| !s.is_empty() && s.len() == cfg.num_return_sequences), "{name}: fp16 returned {o16:?}");
        let single = |lm: &mut OnnxGpt2, i: usize| -> PromptOutput {
            generate(lm, std::slice::from_ref(&ids[i]), &cfg, &mut Controls::gpt2()).unwrap().prompts.remove(0)
        };
        let margins = |i: usize| -> ((f32, String), (f32, String)) {
            let (mut a, mut b) = (lm(&fx.fp32), lm(&fx.fp16));
            (gap(&single(&mut a, i)), gap(&single(&mut b, i)))
        };
        report(&format!("engine {name}"), compare(&format!("engine {name}"), &o32, &o16, &margins), &mut failures);

        // All prompts in one batch through the decoder.
        let b32 = generate(&mut lm32, &ids, &cfg, &mut Controls::gpt2()).unwrap();
        let b16 = generate(&mut lm16, &ids, &cfg, &mut Controls::gpt2()).unwrap();
        let (s32, s16): (Vec<Seqs>, Vec<Seqs>) = (b32.prompts.iter().map(from_output).collect(), b16.prompts.iter().map(from_output).collect());
        let batch_margins = |i: usize| (gap(&b32.prompts[i]), gap(&b16.prompts[i]));
        report(&format!("batch {name}"), compare(&format!("batch {name}"), &s32, &s16, &batch_margins), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn report(what: &str, c: Comparison, failures: &mut Vec<String>) {
    let n = PROMPTS.len();
    eprintln!(
        "{what}: {}/{n} prompts with every sequence identical, {}/{n} with the same best sequence; worst relative score error {:.2e}",
        c.same, c.top1, c.worst
    );
    for d in &c.diffs {
        eprintln!("  {d}");
    }
    if (c.same as f64) < MIN_ALL * n as f64 {
        failures.push(format!("{what}: only {}/{n} prompts match in every sequence (need {MIN_ALL})", c.same));
    }
    if (c.top1 as f64) < MIN_TOP1 * n as f64 {
        failures.push(format!("{what}: only {}/{n} prompts have the same best sequence (need {MIN_TOP1})", c.top1));
    }
    if c.worst > SCORE_TOL {
        failures.push(format!("{what}: a matching sequence's score differs by {:.2e} (relative) > {SCORE_TOL}", c.worst));
    }
    failures.extend(c.not_ties);
}

/// Drives the fp32 and the fp16 model in lockstep (same prefill, row selections and tokens; the
/// search sees fp32's logits) and records how far fp16's logits are from fp32's at every call.
struct Lockstep {
    a: OnnxGpt2,
    b: OnnxGpt2,
    max_abs: f32,
    max_logit: f32,
    rows_checked: usize,
    argmax_differs: usize,
}

impl Lockstep {
    fn check(&mut self) {
        let v = self.a.vocab_size();
        let (a, b) = (self.a.logits(), self.b.logits());
        assert_eq!(a.len(), b.len());
        for (ra, rb) in a.chunks_exact(v).zip(b.chunks_exact(v)) {
            for (x, y) in ra.iter().zip(rb) {
                assert!(y.is_finite(), "fp16 logit {y}");
                self.max_abs = self.max_abs.max((x - y).abs());
                self.max_logit = self.max_logit.max(x.abs());
            }
            let arg = |r: &[f32]| r.iter().enumerate().fold(0, |m, (i, x)| if *x > r[m] { i } else { m });
            self.rows_checked += 1;
            self.argmax_differs += usize::from(arg(ra) != arg(rb));
        }
    }
}

impl CausalLm for Lockstep {
    fn vocab_size(&self) -> usize {
        self.a.vocab_size()
    }
    fn max_positions(&self) -> usize {
        self.a.max_positions()
    }
    fn prefill(&mut self, batch: &PaddedBatch) -> Result<()> {
        self.a.prefill(batch)?;
        self.b.prefill(batch)?;
        self.check();
        Ok(())
    }
    fn select_rows(&mut self, src: &[usize]) -> Result<()> {
        self.a.select_rows(src)?;
        self.b.select_rows(src)?;
        Ok(())
    }
    fn step(&mut self, tokens: &[u32]) -> Result<()> {
        self.a.step(tokens)?;
        self.b.step(tokens)?;
        self.check();
        Ok(())
    }
    fn rows(&self) -> usize {
        assert_eq!(self.a.rows(), self.b.rows());
        self.a.rows()
    }
    fn logits(&self) -> &[f32] {
        self.a.logits()
    }
}

/// Largest |fp16 - fp32| logit over every row of every call, in lockstep decoding.
const LOGIT_TOL: f32 = 0.1;

/// The fp16 cache through prefill, prompt-to-beam gathers, in-place reorders and gathers that drop
/// finished prompts gives fp32's logits within LOGIT_TOL at every step (decisions taken on fp32's
/// logits, so no near-tie can make the two runs diverge).
#[test]
fn fp16_logits_follow_fp32_through_beam_reorders() {
    let fx = fixture();
    let tok = Gpt2Tokenizer::from_tokenizer_json(&fx.fp16.join("policy/tokenizer.json")).unwrap();
    let ids = prompt_ids(&tok);
    for (name, cfg) in configs() {
        let mut ls = Lockstep { a: lm(&fx.fp32), b: lm(&fx.fp16), max_abs: 0.0, max_logit: 0.0, rows_checked: 0, argmax_differs: 0 };
        let out = generate(&mut ls, &ids, &cfg, &mut Controls::gpt2()).unwrap();
        let lens: Vec<usize> = out.prompts.iter().map(|p| p.hypotheses[0].tokens.len()).collect();
        eprintln!(
            "lockstep {name}: {} rows checked, max |fp16 - fp32| logit {:.3e} (largest |logit| {:.1}), argmax differs on {} rows; top-1 lengths {lens:?}",
            ls.rows_checked, ls.max_abs, ls.max_logit, ls.argmax_differs
        );
        assert!(ls.rows_checked > ids.len() * 10, "{name}: too few steps checked");
        assert!(ls.max_abs <= LOGIT_TOL, "{name}: fp16 logits differ from fp32 by {} > {LOGIT_TOL}", ls.max_abs);
    }
}
