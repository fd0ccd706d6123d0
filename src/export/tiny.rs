//! Seeded random GPT-2 weights for tests (a `ChaCha8` stream, so a seed gives the same weights on
//! every platform). The init follows transformers' `GPT2PreTrainedModel._init_weights` (normal
//! std 0.02, residual projections 0.02/sqrt(2*n_layer)), plus small random LayerNorm gains and
//! biases so tests exercise every term, and an UNTIED LM head (`lm_head.weight`,
//! `tie_word_embeddings: false`) whose std is `0.02 * scale`, which makes next-token distributions
//! peaked, so decoding comparisons are not decided by float noise. (Scaling a tied `wte` instead
//! makes the residual stream echo the input token, and the model only repeats its last token.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::collections::HashMap;
use std::path::Path;

use super::gpt2_config::{Gpt2Config, RANDOM_INIT_KEY};
use crate::weights::safetensors_io::{write_safetensors, StoreDtype};
use crate::weights::{Tensor, WeightMap};
use crate::{Error, Result};

/// Default multiplier of the LM-head std (0.02 * 30 = 0.6; logits std about 5 for width 64).
pub const DEFAULT_SCALE: f32 = 30.0;

struct Normal {
    rng: ChaCha8Rng,
}

impl Normal {
    /// One N(0, 1) draw by the Box-Muller transform.
    fn next(&mut self) -> f32 {
        let u1: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]
        let u2: f64 = self.rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    fn tensor(&mut self, shape: &[usize], mean: f32, std: f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        Tensor::new(shape.to_vec(), (0..n).map(|_| mean + std * self.next()).collect())
    }
}

/// The LM head of a random checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LmHead {
    /// Tied to `wte` (the real GPT-2 layout and size; distributions are nearly flat).
    Tied,
    /// A separate `lm_head.weight` of std `0.02 * scale` (peaked distributions).
    Untied { scale: f32 },
}

/// Random weights for `cfg` with Hugging Face key names (`transformer.` prefix), plus
/// `lm_head.weight` when the head is untied (the caller sets `tie_word_embeddings: false` then).
pub fn random_gpt2_weights(cfg: &Gpt2Config, seed: u64, head: LmHead) -> Result<WeightMap> {
    cfg.validate()?;
    let mut r = Normal { rng: ChaCha8Rng::seed_from_u64(seed) };
    let (e, v, ctx, inner) = (cfg.n_embd, cfg.vocab_size, cfg.context(), cfg.inner());
    let std = 0.02f32;
    let resid_std = std / (2.0 * cfg.n_layer as f32).sqrt();
    let mut m = WeightMap::new();
    m.insert("transformer.wte.weight", r.tensor(&[v, e], 0.0, std)?);
    m.insert("transformer.wpe.weight", r.tensor(&[ctx, e], 0.0, std)?);
    for i in 0..cfg.n_layer {
        let k = |s: &str| format!("transformer.h.{i}.{s}");
        m.insert(k("ln_1.weight"), r.tensor(&[e], 1.0, 0.1)?);
        m.insert(k("ln_1.bias"), r.tensor(&[e], 0.0, 0.02)?);
        m.insert(k("attn.c_attn.weight"), r.tensor(&[e, 3 * e], 0.0, std)?);
        m.insert(k("attn.c_attn.bias"), r.tensor(&[3 * e], 0.0, 0.02)?);
        m.insert(k("attn.c_proj.weight"), r.tensor(&[e, e], 0.0, resid_std)?);
        m.insert(k("attn.c_proj.bias"), r.tensor(&[e], 0.0, 0.02)?);
        m.insert(k("ln_2.weight"), r.tensor(&[e], 1.0, 0.1)?);
        m.insert(k("ln_2.bias"), r.tensor(&[e], 0.0, 0.02)?);
        m.insert(k("mlp.c_fc.weight"), r.tensor(&[e, inner], 0.0, std)?);
        m.insert(k("mlp.c_fc.bias"), r.tensor(&[inner], 0.0, 0.02)?);
        m.insert(k("mlp.c_proj.weight"), r.tensor(&[inner, e], 0.0, resid_std)?);
        m.insert(k("mlp.c_proj.bias"), r.tensor(&[e], 0.0, 0.02)?);
    }
    m.insert("transformer.ln_f.weight", r.tensor(&[e], 1.0, 0.1)?);
    m.insert("transformer.ln_f.bias", r.tensor(&[e], 0.0, 0.02)?);
    if let LmHead::Untied { scale } = head {
        m.insert("lm_head.weight", r.tensor(&[v, e], 0.0, std * scale)?);
    }
    Ok(m)
}

/// Write a Hugging Face style checkpoint folder with random weights: `config.json` (marked
/// `"promptist_random_init": true` with the seed and head scale; `tie_word_embeddings` false unless
/// the head is tied), `model.safetensors` (f32, with `lm_head.weight` when untied) and the GPT-2 tokenizer (`tokenizer.json`, `tokenizer_config.json`).
pub fn write_random_checkpoint(out: &Path, cfg: &Gpt2Config, seed: u64, head: LmHead) -> Result<()> {
    if let LmHead::Untied { scale } = head {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidOptions(format!("scale must be a positive number, got {scale}")));
        }
    }
    let mut cfg = cfg.clone();
    cfg.tie_word_embeddings = head == LmHead::Tied;
    cfg.extra.insert(RANDOM_INIT_KEY.into(), true.into());
    cfg.extra.insert("promptist_init_seed".into(), seed.into());
    if let LmHead::Untied { scale } = head {
        cfg.extra.insert("promptist_init_scale".into(), serde_json::json!(scale));
    }
    let weights = random_gpt2_weights(&cfg, seed, head)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let write = |file: &str, bytes: &[u8]| {
        std::fs::write(out.join(file), bytes).map_err(|e| Error::io(format!("writing {}", out.join(file).display()), e))
    };
    write("config.json", (cfg.to_json_pretty()? + "\n").as_bytes())?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&weights, &out.join("model.safetensors"), StoreDtype::F32, Some(meta))?;
    write("tokenizer.json", crate::text::gpt2::EMBEDDED_TOKENIZER_JSON)?;
    let tok_cfg = serde_json::json!({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": crate::text::gpt2::EOS_TOKEN,
        "eos_token": crate::text::gpt2::EOS_TOKEN,
        "unk_token": crate::text::gpt2::EOS_TOKEN,
        "add_prefix_space": false,
        "model_max_length": cfg.context(),
    });
    write("tokenizer_config.json", (tok_cfg.to_string() + "\n").as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_other_seed_differs() {
        let mut cfg = Gpt2Config::tiny();
        cfg.vocab_size = 100;
        let a = random_gpt2_weights(&cfg, 7, LmHead::Untied { scale: 1.0 }).unwrap();
        let b = random_gpt2_weights(&cfg, 7, LmHead::Untied { scale: 1.0 }).unwrap();
        let c = random_gpt2_weights(&cfg, 8, LmHead::Tied).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.get("transformer.wte.weight"), c.get("transformer.wte.weight"));
        assert_eq!(a.len(), 5 + 12 * cfg.n_layer);
        let wte = &a.get("transformer.wte.weight").unwrap().data;
        let mean = wte.iter().sum::<f32>() / wte.len() as f32;
        let sd = (wte.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / wte.len() as f32).sqrt();
        assert!((sd - 0.02).abs() < 0.002, "std {sd}");
    }
}
