//! GPT-2 (Radford et al. 2019; Hugging Face `GPT2LMHeadModel` weights and semantics) as ONE ONNX
//! graph with a KV cache that serves both prefill (past length 0) and decode, with the input and
//! output names of optimum's `gpt2` "text-generation-with-past" export.
//!
//! Graph I/O (dims named as optimum names them):
//! - `input_ids` i64 [batch_size, sequence_length], `attention_mask` i64
//!   [batch_size, past_sequence_length + sequence_length], `position_ids` i64 [batch_size, sequence_length],
//!   `past_key_values.N.key` / `.value` T [batch_size, n_head, past_sequence_length, head_dim];
//! - `logits` f32 [batch_size, sequence_length, vocab_size], `present.N.key` / `.value` T
//!   [batch_size, n_head, past_sequence_length + sequence_length, head_dim].
//!
//! Masking equals transformers 5.23 with its default SDPA attention: key j is visible to query i
//! (absolute position past+i) when j <= past+i and `attention_mask[j] == 1`; masked scores get the
//! dtype's lowest value, and a query row with NO visible key (a left-padding position) gets an
//! attention output of exactly 0 (torch SDPA's result for fully masked rows; transformers' eager
//! path would instead average all values).
//!
//! fp16 (`dtype = F16`): weights, activations and the KV cache are float16. LayerNormalization
//! computes in float32 internally (`stash_type = 1`), Softmax runs on float16 inputs (ORT kernels
//! accumulate in float32), and `logits` is cast to float32 so decoders read one type for both.
//!
//! Lean graph: the hidden state is kept 2-D [batch*seq, n_embd] so every projection is one `Gemm`
//! with its bias (Conv1D weights are already [in, out]); the attention scale is folded into the
//! query columns of `c_attn` at export time; the LM head is `Gemm(transB=1)` over the tied `wte`
//! (no transposed copy); the mask is built once and shared by all layers. ONNX Runtime's CPU
//! optimizer turns the score MatMul + Transpose into one `FusedMatMul`. Optionally
//! ([`AttentionImpl::OrtMultiHeadAttention`]) each layer's attention is ORT's contrib
//! `com.microsoft.MultiHeadAttention` (fused kernels on CUDA), with the same mask and semantics.

use crate::weights::{Tensor, WeightMap};
use crate::{Error, Result};

use super::gpt2_config::Gpt2Config;
use super::onnx::{attr, DType, Dim, GraphBuilder, Model, TensorData};

pub use super::gpt2_config::{Gpt2Config as Config, GPT2_VOCAB_SIZE, RANDOM_INIT_KEY};

/// Graph input: token ids.
pub const INPUT_IDS: &str = "input_ids";
/// Graph input: 1 for real tokens, 0 for padding, over past + current positions.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Graph input: absolute positions of the current tokens.
pub const POSITION_IDS: &str = "position_ids";
/// Graph output: next-token logits for every current position (always float32).
pub const LOGITS: &str = "logits";

/// `past_key_values.{layer}.key`
pub fn past_key_name(layer: usize) -> String {
    format!("past_key_values.{layer}.key")
}
/// `past_key_values.{layer}.value`
pub fn past_value_name(layer: usize) -> String {
    format!("past_key_values.{layer}.value")
}
/// `present.{layer}.key`
pub fn present_key_name(layer: usize) -> String {
    format!("present.{layer}.key")
}
/// `present.{layer}.value`
pub fn present_value_name(layer: usize) -> String {
    format!("present.{layer}.value")
}

/// How attention is expressed in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionImpl {
    /// Standard ONNX ops (MatMul, Softmax, ...): runs on any runtime. The default.
    #[default]
    Standard,
    /// ONNX Runtime's contrib op `com.microsoft.MultiHeadAttention` (fused kernels, e.g. flash /
    /// memory-efficient attention on CUDA); ONNX Runtime only.
    OrtMultiHeadAttention,
}

/// Options of [`build_gpt2`].
#[derive(Debug, Clone)]
pub struct Gpt2ExportOptions {
    /// Weight / activation / KV-cache type: `DType::F32` (default) or `DType::F16`.
    pub dtype: DType,
    /// Attention ops (default: standard ONNX ops).
    pub attention: AttentionImpl,
}

impl Default for Gpt2ExportOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, attention: AttentionImpl::Standard }
    }
}

/// Looks up Hugging Face GPT-2 weights with or without the `transformer.` prefix.
struct Weights<'a> {
    map: &'a WeightMap,
}

impl Weights<'_> {
    fn get(&self, key: &str, shape: &[usize]) -> Result<&Tensor> {
        let prefixed = format!("transformer.{key}");
        if self.map.contains(&prefixed) {
            self.map.expect(&prefixed, shape)
        } else {
            self.map.expect(key, shape)
        }
    }
}

/// Build the GPT-2 graph from Hugging Face `GPT2LMHeadModel` weights (`transformer.wte.weight`,
/// `transformer.h.N.attn.c_attn.weight` [in, out], ..., optional `lm_head.weight`; the
/// `transformer.` prefix is optional). `lm_head.weight` is used only when present and different
/// from `wte` (untied); otherwise the head shares `wte`.
pub fn build_gpt2(cfg: &Gpt2Config, weights: &WeightMap, opts: &Gpt2ExportOptions) -> Result<Model> {
    cfg.validate()?;
    let t = opts.dtype;
    if !matches!(t, DType::F32 | DType::F16) {
        return Err(Error::InvalidOptions(format!("GPT-2 export dtype must be F32 or F16, got {t:?}")));
    }
    let w = Weights { map: weights };
    let (e, nh, hd, v, ctx, inner) =
        (cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size, cfg.context(), cfg.inner());
    let eps = cfg.layer_norm_epsilon as f32;
    let float = |dims: &[usize], x: &[f32]| TensorData::float_as(dims, x, t);

    let mut g = GraphBuilder::new("gpt2");
    g.metadata("promptist.graph", "gpt2-with-past");
    g.metadata("promptist.dtype", if t == DType::F16 { "float16" } else { "float32" });

    // ---- inputs
    let batch = Dim::from("batch_size");
    let seq = Dim::from("sequence_length");
    let past = Dim::from("past_sequence_length");
    let total = Dim::from("past_sequence_length + sequence_length");
    let ids = g.input(INPUT_IDS, DType::I64, &[batch.clone(), seq.clone()]);
    let mask = g.input(ATTENTION_MASK, DType::I64, &[batch.clone(), total.clone()]);
    let pos = g.input(POSITION_IDS, DType::I64, &[batch.clone(), seq.clone()]);
    let kv_dims = |d: &Dim| vec![batch.clone(), Dim::Fixed(nh as i64), d.clone(), Dim::Fixed(hd as i64)];
    let mut pasts = Vec::with_capacity(cfg.n_layer);
    for i in 0..cfg.n_layer {
        let k = g.input(&past_key_name(i), t, &kv_dims(&past));
        let vv = g.input(&past_value_name(i), t, &kv_dims(&past));
        pasts.push((k, vv));
    }

    // ---- shapes and the shared attention mask
    let ids_shape = g.op("Shape", &[&ids], vec![]);
    let mask_shape = g.op("Shape", &[&mask], vec![]);
    let one_idx = g.const_i64(1);
    let s_len = g.op("Gather", &[&ids_shape, &one_idx], vec![attr("axis", 0i64)]);
    let t_len = g.op("Gather", &[&mask_shape, &one_idx], vec![attr("axis", 0i64)]);
    let p_len = g.op("Sub", &[&t_len, &s_len], vec![]);
    let zero = g.const_i64(0);
    let one = g.const_i64(1);
    let qpos = g.op("Range", &[&p_len, &t_len, &one], vec![]);
    let kpos = g.op("Range", &[&zero, &t_len, &one], vec![]);
    let ax1 = g.const_i64s(&[1]);
    let ax0 = g.const_i64s(&[0]);
    let qcol = g.op("Unsqueeze", &[&qpos, &ax1], vec![]);
    let krow = g.op("Unsqueeze", &[&kpos, &ax0], vec![]);
    let causal = g.op("LessOrEqual", &[&krow, &qcol], vec![]); // [S, T]
    let mask_b = g.op("Cast", &[&mask], vec![attr("to", DType::Bool.onnx() as i64)]);
    let ax12 = g.const_i64s(&[1, 2]);
    let mask4 = g.op("Unsqueeze", &[&mask_b, &ax12], vec![]); // [B, 1, 1, T]
    let allowed = g.op("And", &[&causal, &mask4], vec![]); // [B, 1, S, T]
    let zero_t = g.const_scalar(0.0, t);
    let lowest = if t == DType::F16 { half::f16::MIN.to_f32() } else { f32::MIN };
    let min_t = g.const_scalar(lowest, t);
    let bias = g.op("Where", &[&allowed, &zero_t, &min_t], vec![]); // [B, 1, S, T]
    let allowed_f = g.op("Cast", &[&allowed], vec![attr("to", DType::F32.onnx() as i64)]);
    let axm1 = g.const_i64s(&[-1]);
    let row_any_f = g.op("ReduceMax", &[&allowed_f, &axm1], vec![attr("keepdims", 1i64)]); // [B, 1, S, 1]
    let row_any = g.op("Cast", &[&row_any_f], vec![attr("to", DType::Bool.onnx() as i64)]);

    let hd_shape = g.const_i64s(&[nh as i64, hd as i64]);
    let bshd = g.op("Concat", &[&ids_shape, &hd_shape], vec![attr("axis", 0i64)]); // [B, S, H, D]
    let flat_e = g.const_i64s(&[-1, e as i64]);
    let split_sizes = g.const_i64s(&[e as i64, e as i64, e as i64]);

    // ---- embeddings
    let wte = w.get("wte.weight", &[v, e])?;
    let wte_name = g.initializer("transformer.wte.weight", float(&[v, e], &wte.data));
    let wpe = w.get("wpe.weight", &[ctx, e])?;
    let wpe_name = g.initializer("transformer.wpe.weight", float(&[ctx, e], &wpe.data));
    let tok = g.op("Gather", &[&wte_name, &ids], vec![attr("axis", 0i64)]);
    let pemb = g.op("Gather", &[&wpe_name, &pos], vec![attr("axis", 0i64)]);
    let x3 = g.op("Add", &[&tok, &pemb], vec![]);
    let mut x = g.op("Reshape", &[&x3, &flat_e], vec![]); // [N, E]

    let e_shape = g.const_i64s(&[e as i64]);
    let bse = g.op("Concat", &[&ids_shape, &e_shape], vec![attr("axis", 0i64)]); // [B, S, E]
    let ax1_only = g.const_i64s(&[1]);
    let row_any_bs1 = g.op("Squeeze", &[&row_any, &ax1_only], vec![]); // [B, S, 1]
    let sh = AttnShared { bshd, bse, bias, row_any, row_any_bs1, zero_t, flat_e: flat_e.clone() };
    for (i, (pk, pv)) in pasts.iter().enumerate() {
        let p = |s: &str| format!("h.{i}.{s}");
        let init = |g: &mut GraphBuilder, key: &str, shape: &[usize]| -> Result<String> {
            let tw = w.get(&p(key), shape)?;
            Ok(g.initializer(&format!("transformer.{}", p(key)), float(shape, &tw.data)))
        };
        // attention block
        let ln1_w = init(&mut g, "ln_1.weight", &[e])?;
        let ln1_b = init(&mut g, "ln_1.bias", &[e])?;
        let h = g.op("LayerNormalization", &[&x, &ln1_w, &ln1_b], vec![attr("axis", -1i64), attr("epsilon", eps)]);
        let mut scale = if cfg.scale_attn_weights { 1.0 / (hd as f64).sqrt() } else { 1.0 };
        if cfg.scale_attn_by_inverse_layer_idx {
            scale /= (i + 1) as f64;
        }
        let (qkv_w, qkv_b) = scaled_qkv(
            w.get(&p("attn.c_attn.weight"), &[e, 3 * e])?,
            w.get(&p("attn.c_attn.bias"), &[3 * e])?,
            e,
            scale as f32,
        );
        let cw = g.initializer(&format!("transformer.{}", p("attn.c_attn.weight")), float(&[e, 3 * e], &qkv_w));
        let cb = g.initializer(&format!("transformer.{}", p("attn.c_attn.bias")), float(&[3 * e], &qkv_b));
        let qkv = g.op("Gemm", &[&h, &cw, &cb], vec![]);
        let parts = g.op_multi("Split", &[&qkv, &split_sizes], 3, vec![attr("axis", 1i64)]);
        let ctx2 = match opts.attention {
            AttentionImpl::Standard => attention_standard(&mut g, &sh, &parts, pk, pv, i),
            AttentionImpl::OrtMultiHeadAttention => attention_ort_mha(&mut g, &sh, &parts, pk, pv, i, nh),
        };
        let ow = init(&mut g, "attn.c_proj.weight", &[e, e])?;
        let ob = init(&mut g, "attn.c_proj.bias", &[e])?;
        let attn_out = g.op("Gemm", &[&ctx2, &ow, &ob], vec![]);
        x = g.op("Add", &[&x, &attn_out], vec![]);
        // MLP block
        let ln2_w = init(&mut g, "ln_2.weight", &[e])?;
        let ln2_b = init(&mut g, "ln_2.bias", &[e])?;
        let h2 = g.op("LayerNormalization", &[&x, &ln2_w, &ln2_b], vec![attr("axis", -1i64), attr("epsilon", eps)]);
        let fw = init(&mut g, "mlp.c_fc.weight", &[e, inner])?;
        let fb = init(&mut g, "mlp.c_fc.bias", &[inner])?;
        let m = g.op("Gemm", &[&h2, &fw, &fb], vec![]);
        let approximate = if cfg.activation_function == "gelu" { "none" } else { "tanh" };
        let m = g.op("Gelu", &[&m], vec![attr("approximate", approximate)]);
        let pw = init(&mut g, "mlp.c_proj.weight", &[inner, e])?;
        let pb = init(&mut g, "mlp.c_proj.bias", &[e])?;
        let m = g.op("Gemm", &[&m, &pw, &pb], vec![]);
        x = g.op("Add", &[&x, &m], vec![]);
        g.output(&present_key_name(i), &present_key_name(i), t, &kv_dims(&total));
        g.output(&present_value_name(i), &present_value_name(i), t, &kv_dims(&total));
    }

    // ---- final norm and LM head
    let lnf_w = g.initializer("transformer.ln_f.weight", float(&[e], &w.get("ln_f.weight", &[e])?.data));
    let lnf_b = g.initializer("transformer.ln_f.bias", float(&[e], &w.get("ln_f.bias", &[e])?.data));
    let hf = g.op("LayerNormalization", &[&x, &lnf_w, &lnf_b], vec![attr("axis", -1i64), attr("epsilon", eps)]);
    let head = match weights.get("lm_head.weight") {
        Some(lm) if lm.shape == [v, e] && lm.data != wte.data => {
            g.initializer("lm_head.weight", float(&[v, e], &lm.data))
        }
        Some(lm) if lm.shape != [v, e] => {
            return Err(Error::ModelFormat(format!(
                "weight lm_head.weight has shape {:?}, expected {:?}",
                lm.shape,
                [v, e]
            )))
        }
        _ => wte_name.clone(),
    };
    let logits2 = g.op("Gemm", &[&hf, &head], vec![attr("transB", 1i64)]); // [N, V]
    let v_shape = g.const_i64s(&[v as i64]);
    let bsv = g.op("Concat", &[&ids_shape, &v_shape], vec![attr("axis", 0i64)]);
    let logits = g.op("Reshape", &[&logits2, &bsv], vec![]);
    let logits =
        if t == DType::F16 { g.op("Cast", &[&logits], vec![attr("to", DType::F32.onnx() as i64)]) } else { logits };
    // Declare outputs in optimum's order: logits first, then the presents.
    g.output(&logits, LOGITS, DType::F32, &[batch, seq, Dim::Fixed(v as i64)]);
    let mut model = g.finish();
    model.graph.output.rotate_right(1); // logits was declared last
    Ok(model)
}

/// Values computed once and shared by every layer's attention.
struct AttnShared {
    /// Shape tensor [B, S, H, D].
    bshd: String,
    /// Shape tensor [B, S, E].
    bse: String,
    /// Additive mask [B, 1, S, T]: 0 where visible, the dtype's lowest value elsewhere.
    bias: String,
    /// [B, 1, S, 1] and [B, S, 1]: does the query row see any key at all?
    row_any: String,
    row_any_bs1: String,
    zero_t: String,
    /// Shape tensor [-1, E].
    flat_e: String,
}

/// Attention from standard ops; `parts` are q (pre-scaled), k, v as [N, E]. Writes the presents and
/// returns the context as [N, E].
fn attention_standard(g: &mut GraphBuilder, sh: &AttnShared, parts: &[String], pk: &str, pv: &str, i: usize) -> String {
    let perm_bhsd = vec![0i64, 2, 1, 3];
    let heads = |g: &mut GraphBuilder, s: &str| {
        let r = g.op("Reshape", &[s, &sh.bshd], vec![]);
        g.op("Transpose", &[&r], vec![attr("perm", perm_bhsd.clone())])
    };
    let q = heads(g, &parts[0]);
    let k = heads(g, &parts[1]);
    let vh = heads(g, &parts[2]);
    let present_k = present_key_name(i);
    let present_v = present_value_name(i);
    g.node_named("Concat", &[pk, &k], &[&present_k], vec![attr("axis", 2i64)], "");
    g.node_named("Concat", &[pv, &vh], &[&present_v], vec![attr("axis", 2i64)], "");
    let kt = g.op("Transpose", &[&present_k], vec![attr("perm", vec![0i64, 1, 3, 2])]);
    let scores = g.op("MatMul", &[&q, &kt], vec![]);
    let scores = g.op("Add", &[&scores, &sh.bias], vec![]);
    let probs = g.op("Softmax", &[&scores], vec![attr("axis", -1i64)]);
    let ctx_h = g.op("MatMul", &[&probs, &present_v], vec![]);
    let ctx_h = g.op("Where", &[&sh.row_any, &ctx_h, &sh.zero_t], vec![]);
    let ctx_t = g.op("Transpose", &[&ctx_h], vec![attr("perm", perm_bhsd)]);
    g.op("Reshape", &[&ctx_t, &sh.flat_e], vec![])
}

/// Attention through `com.microsoft.MultiHeadAttention` (q/k/v as [B, S, E], the shared additive
/// mask as `attention_bias` broadcast over heads, past/present in [B, H, T, D]); scale 1 because
/// the query is pre-scaled. Rows with no visible key are zeroed as in [`attention_standard`].
fn attention_ort_mha(
    g: &mut GraphBuilder,
    sh: &AttnShared,
    parts: &[String],
    pk: &str,
    pv: &str,
    i: usize,
    nh: usize,
) -> String {
    g.use_opset(ORT_DOMAIN, 1);
    let q = g.op("Reshape", &[&parts[0], &sh.bse], vec![]);
    let k = g.op("Reshape", &[&parts[1], &sh.bse], vec![]);
    let v = g.op("Reshape", &[&parts[2], &sh.bse], vec![]);
    let out = g.fresh("MultiHeadAttention");
    let (present_k, present_v) = (present_key_name(i), present_value_name(i));
    g.node_named(
        "MultiHeadAttention",
        &[&q, &k, &v, "", "", &sh.bias, pk, pv],
        &[&out, &present_k, &present_v],
        vec![attr("num_heads", nh as i64), attr("scale", 1.0f32), attr("unidirectional", 0i64)],
        ORT_DOMAIN,
    );
    let out = g.op("Where", &[&sh.row_any_bs1, &out, &sh.zero_t], vec![]);
    g.op("Reshape", &[&out, &sh.flat_e], vec![])
}

/// ONNX Runtime's contrib-op domain.
pub const ORT_DOMAIN: &str = "com.microsoft";

/// `c_attn` weight [E, 3E] and bias [3E] with the query columns multiplied by `scale`.
fn scaled_qkv(wt: &Tensor, bt: &Tensor, e: usize, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let mut wq = wt.data.clone();
    for row in wq.chunks_exact_mut(3 * e) {
        row[..e].iter_mut().for_each(|x| *x *= scale);
    }
    let mut bq = bt.data.clone();
    bq[..e].iter_mut().for_each(|x| *x *= scale);
    (wq, bq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tiny::{random_gpt2_weights, LmHead};

    fn small() -> Gpt2Config {
        let mut c = Gpt2Config::tiny();
        c.vocab_size = 97;
        c.n_positions = Some(16);
        c
    }

    #[test]
    fn io_names_follow_optimum() {
        let cfg = small();
        let w = random_gpt2_weights(&cfg, 1, LmHead::Untied { scale: 1.0 }).unwrap();
        let m = build_gpt2(&cfg, &w, &Gpt2ExportOptions::default()).unwrap();
        let ins: Vec<&str> = m.graph.input.iter().map(|i| i.name.as_str()).collect();
        let outs: Vec<&str> = m.graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            ins,
            [
                "input_ids",
                "attention_mask",
                "position_ids",
                "past_key_values.0.key",
                "past_key_values.0.value",
                "past_key_values.1.key",
                "past_key_values.1.value"
            ]
        );
        assert_eq!(outs, ["logits", "present.0.key", "present.0.value", "present.1.key", "present.1.value"]);
        // the untied head of random_gpt2_weights is its own initializer
        assert!(m.initializers.iter().any(|(n, _)| n == "lm_head.weight"));
    }

    #[test]
    fn tied_head_shares_wte_and_prefix_is_optional() {
        let cfg = small();
        let w = random_gpt2_weights(&cfg, 2, LmHead::Tied).unwrap();
        let unprefixed = WeightMap {
            tensors: w
                .tensors
                .into_iter()
                .map(|(k, v)| (k.trim_start_matches("transformer.").to_string(), v))
                .collect(),
        };
        let m = build_gpt2(&cfg, &unprefixed, &Gpt2ExportOptions { dtype: DType::F16, ..Default::default() }).unwrap();
        assert!(!m.initializers.iter().any(|(n, _)| n == "lm_head.weight"));
        assert!(m
            .initializers
            .iter()
            .filter(|(n, _)| n.starts_with("transformer."))
            .all(|(_, t)| t.dtype() == DType::F16));
    }

    #[test]
    fn missing_or_misshapen_weight_is_model_format() {
        let cfg = small();
        let mut w = random_gpt2_weights(&cfg, 3, LmHead::Tied).unwrap();
        w.tensors.remove("transformer.h.1.mlp.c_fc.bias");
        let e = build_gpt2(&cfg, &w, &Gpt2ExportOptions::default()).unwrap_err();
        assert_eq!(e.code(), crate::Code::ModelFormat);
        assert!(e.to_string().contains("h.1.mlp.c_fc.bias"), "{e}");
        let mut w = random_gpt2_weights(&cfg, 3, LmHead::Tied).unwrap();
        w.insert("transformer.wpe.weight", Tensor::new(vec![8, 64], vec![0.0; 512]).unwrap());
        assert!(build_gpt2(&cfg, &w, &Gpt2ExportOptions::default()).is_err());
    }
}
