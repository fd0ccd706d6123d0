//! Greedy decoding with the tch model (no KV cache: the whole sequence is re-run each step), for
//! checking a trained checkpoint from the trainer itself. The input format is docs/method.md §1's:
//! `source.strip() + " Rephrase:"`, no BOS; the output is the generated tokens only, decoded and
//! stripped. The library's engine does the paper's beam search on the exported ONNX.

use promptist::text::gpt2::Gpt2Tokenizer;
use tch::{Kind, Tensor};

use super::{Gpt2, Params};
use crate::data::prepare::REPHRASE;
use crate::error::Result;

/// Greedy rewrite of `source` with at most `max_new` new tokens (stops at EOS or the context).
pub fn greedy_rewrite(params: &Params, tok: &Gpt2Tokenizer, source: &str, max_new: usize) -> Result<String> {
    let _g = tch::no_grad_guard();
    let model = Gpt2::new(params, Kind::Float);
    let prompt = format!("{}{REPHRASE}", source.trim());
    let mut ids: Vec<i64> = tok.encode(&prompt)?.into_iter().map(i64::from).collect();
    let start = ids.len();
    let eos = i64::from(tok.eos_id());
    for _ in 0..max_new {
        if ids.len() >= params.cfg.context() {
            break;
        }
        let t = Tensor::f_from_slice(&ids)?.f_view([1, ids.len() as i64])?.f_to_device(params.device)?;
        let logits = model.logits(&t)?;
        let next = logits.f_select(1, ids.len() as i64 - 1)?.f_argmax(-1, false)?.f_int64_value(&[0])?;
        if next == eos {
            break;
        }
        ids.push(next);
    }
    let out: Vec<u32> = ids[start..].iter().map(|&i| i as u32).collect();
    Ok(tok.decode_skip_special(&out)?.trim().to_string())
}
