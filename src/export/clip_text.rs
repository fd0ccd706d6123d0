//! CLIP text transformer (Radford et al. 2021; transformers `CLIPTextModel` /
//! `CLIPTextModelWithProjection` weights and semantics) as ONNX graphs:
//! - the Stable Diffusion text encoder with optimum's `text_encoder` I/O: `input_ids` int64
//!   [batch_size, sequence_length] -> `last_hidden_state` T [batch_size, sequence_length, hidden]
//!   and `pooler_output` T [batch_size, hidden];
//! - the scorer's text tower with projection: `input_ids` -> `text_embeds` T [batch_size, projection]
//!   (projected, not normalised).
//!
//! `input_ids` is int64 as optimum-onnx exports it (its `DummyTextInputGenerator` uses int64; older
//! optimum releases and diffusers' legacy ONNX exports used int32 — the runtime reads the declared
//! type and feeds that). Weight keys: `text_model.embeddings.{token,position}_embedding.weight`,
//! `text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2, mlp.fc1,
//! mlp.fc2}`, `text_model.final_layer_norm`, `text_projection.weight`. A causal mask is applied;
//! pooling takes the final-layer-normed state at `argmax(input_ids)` when `eos_token_id == 2` (the
//! legacy configs of SD 1.x and OpenAI CLIP; the EOS token has the highest id), else at the first
//! position equal to `eos_token_id` (transformers' rule).

use super::nn::{Nn, OptionalPrefix, WeightSource};
use super::onnx::{attr, DType, Dim, Model};
use super::sd_config::ClipTextConfig;
use crate::{Error, Result};

/// Graph input of every text graph.
pub const INPUT_IDS: &str = "input_ids";
/// SD text encoder outputs (optimum `text_encoder`).
pub const LAST_HIDDEN_STATE: &str = "last_hidden_state";
pub const POOLER_OUTPUT: &str = "pooler_output";
/// Scorer text tower output.
pub const TEXT_EMBEDS: &str = "text_embeds";
/// Expected I/O names of the SD text encoder, for load-time checks.
pub const TEXT_ENCODER_INPUTS: &[&str] = &[INPUT_IDS];
pub const TEXT_ENCODER_OUTPUTS: &[&str] = &[LAST_HIDDEN_STATE, POOLER_OUTPUT];
/// Expected I/O names of the scorer's text tower.
pub const CLIP_TEXT_INPUTS: &[&str] = &[INPUT_IDS];
pub const CLIP_TEXT_OUTPUTS: &[&str] = &[TEXT_EMBEDS];

/// Export options shared by the SD/CLIP builders.
#[derive(Debug, Clone)]
pub struct SdExportOptions {
    /// Weights and activations: F32 or F16.
    pub dtype: DType,
    /// Unmasked attention (UNet, VAE, CLIP vision) as ONNX Runtime's fused
    /// `com.microsoft.MultiHeadAttention` instead of MatMul/Softmax/MatMul (the masked causal
    /// attention of the text towers always uses standard operators).
    pub fused_attention: bool,
}

impl Default for SdExportOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, fused_attention: false }
    }
}

impl SdExportOptions {
    /// A graph builder context for these options.
    pub(crate) fn nn<'a>(&self, name: &str, w: &'a dyn WeightSource) -> Result<Nn<'a>> {
        let mut nn = Nn::new(name, w, self.dtype)?;
        nn.fused_attention = self.fused_attention;
        if self.fused_attention {
            nn.g.metadata("promptist.attention", "com.microsoft.MultiHeadAttention");
        }
        Ok(nn)
    }
}

/// One CLIP transformer stack (pre-LayerNorm residual blocks), shared by the text and vision
/// towers. `prefix` is e.g. `text_model.encoder`; `x` is [B, S, width]; `mask` an additive bias.
pub(crate) struct EncoderSpec<'s> {
    pub prefix: &'s str,
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub inter: usize,
    pub act: &'s str,
    pub eps: f64,
}

pub(crate) fn clip_encoder(nn: &mut Nn<'_>, mut x: String, s: &EncoderSpec<'_>, mask: Option<&str>) -> Result<String> {
    let hd = s.width / s.heads;
    let scale = (hd as f64).powf(-0.5) as f32;
    for i in 0..s.layers {
        let p = format!("{}.layers.{i}", s.prefix);
        let h = nn.layer_norm(&x, &format!("{p}.layer_norm1"), s.width, s.eps)?;
        let a = format!("{p}.self_attn");
        let qkv = nn.linear_fused(
            &h,
            s.width,
            &[(&format!("{a}.q_proj"), s.width, scale), (&format!("{a}.k_proj"), s.width, 1.0), (&format!("{a}.v_proj"), s.width, 1.0)],
            true,
        )?;
        let o = nn.attention(&qkv[0], &qkv[1], &qkv[2], s.heads, hd, mask);
        let o = nn.linear(&o, &format!("{a}.out_proj"), s.width, s.width, true)?;
        x = nn.g.op("Add", &[&x, &o], vec![]);
        let h = nn.layer_norm(&x, &format!("{p}.layer_norm2"), s.width, s.eps)?;
        let m = nn.linear(&h, &format!("{p}.mlp.fc1"), s.width, s.inter, true)?;
        let m = match s.act {
            "quick_gelu" => nn.quick_gelu(&m),
            "gelu" => nn.gelu(&m),
            other => return Err(Error::ModelFormat(format!("unsupported CLIP activation {other:?}"))),
        };
        let m = nn.linear(&m, &format!("{p}.mlp.fc2"), s.inter, s.width, true)?;
        x = nn.g.op("Add", &[&x, &m], vec![]);
    }
    Ok(x)
}

/// Embeddings + causal encoder + final LayerNorm + pooling; returns (last_hidden_state [B,S,E],
/// pooled [B,E]).
fn text_trunk(nn: &mut Nn<'_>, cfg: &ClipTextConfig) -> Result<(String, String)> {
    cfg.validate()?;
    let (v, e, p) = (cfg.vocab_size, cfg.hidden_size, cfg.max_position_embeddings);
    let t = nn.t;
    let ids = nn.g.input(INPUT_IDS, DType::I64, &[Dim::from("batch_size"), Dim::from("sequence_length")]);
    let tok_w = nn.param("text_model.embeddings.token_embedding.weight", &[v, e])?;
    let pos_w = nn.param("text_model.embeddings.position_embedding.weight", &[p, e])?;
    let tok = nn.g.op("Gather", &[&tok_w, &ids], vec![attr("axis", 0i64)]);
    // positions 0..S
    let shape = nn.g.op("Shape", &[&ids], vec![]);
    let one = nn.g.const_i64(1);
    let zero = nn.g.const_i64(0);
    let s_len = nn.g.op("Gather", &[&shape, &one], vec![attr("axis", 0i64)]);
    let pos = nn.g.op("Range", &[&zero, &s_len, &one], vec![]);
    let pemb = nn.g.op("Gather", &[&pos_w, &pos], vec![attr("axis", 0i64)]);
    let x = nn.g.op("Add", &[&tok, &pemb], vec![]);
    // causal additive mask [S, S]: 0 where key <= query, lowest float elsewhere
    let ax0 = nn.g.const_i64s(&[0]);
    let ax1 = nn.g.const_i64s(&[1]);
    let qcol = nn.g.op("Unsqueeze", &[&pos, &ax1], vec![]);
    let krow = nn.g.op("Unsqueeze", &[&pos, &ax0], vec![]);
    let allowed = nn.g.op("LessOrEqual", &[&krow, &qcol], vec![]);
    let zero_t = nn.g.const_scalar(0.0, t);
    let lowest = if t == DType::F16 { half::f16::MIN.to_f32() } else { f32::MIN };
    let min_t = nn.g.const_scalar(lowest, t);
    let mask = nn.g.op("Where", &[&allowed, &zero_t, &min_t], vec![]);
    let spec = EncoderSpec {
        prefix: "text_model.encoder",
        layers: cfg.num_hidden_layers,
        width: e,
        heads: cfg.num_attention_heads,
        inter: cfg.intermediate_size,
        act: &cfg.hidden_act,
        eps: cfg.layer_norm_eps,
    };
    let x = clip_encoder(nn, x, &spec, Some(&mask))?;
    let last = nn.layer_norm(&x, "text_model.final_layer_norm", e, cfg.layer_norm_eps)?;
    // pooling index per row
    let key = if cfg.eos_token_id == 2 {
        nn.g.op("Cast", &[&ids], vec![attr("to", DType::F32.onnx() as i64)])
    } else {
        let eos = nn.g.const_i64(cfg.eos_token_id);
        let eq = nn.g.op("Equal", &[&ids, &eos], vec![]);
        nn.g.op("Cast", &[&eq], vec![attr("to", DType::F32.onnx() as i64)])
    };
    let idx = nn.g.op("ArgMax", &[&key], vec![attr("axis", 1i64), attr("keepdims", 0i64)]); // [B]
    let b_len = nn.g.op("Gather", &[&shape, &zero], vec![attr("axis", 0i64)]);
    let rows = nn.g.op("Range", &[&zero, &b_len, &one], vec![]);
    let base = nn.g.op("Mul", &[&rows, &s_len], vec![]);
    let flat_idx = nn.g.op("Add", &[&base, &idx], vec![]);
    let flat_shape = nn.g.const_i64s(&[-1, e as i64]);
    let flat = nn.g.op("Reshape", &[&last, &flat_shape], vec![]);
    let pooled = nn.g.op("Gather", &[&flat, &flat_idx], vec![attr("axis", 0i64)]);
    Ok((last, pooled))
}

/// The SD text encoder (`CLIPTextModel`): `input_ids` -> `last_hidden_state`, `pooler_output`.
pub fn build_clip_text_encoder(cfg: &ClipTextConfig, w: &dyn WeightSource, opts: &SdExportOptions) -> Result<Model> {
    let w = OptionalPrefix { inner: w, prefix: "text_model." };
    let mut nn = opts.nn("text_encoder", &w)?;
    nn.g.metadata("promptist.graph", "clip-text-encoder");
    let (last, pooled) = text_trunk(&mut nn, cfg)?;
    let (b, s, e) = (Dim::from("batch_size"), Dim::from("sequence_length"), Dim::Fixed(cfg.hidden_size as i64));
    let t = nn.t;
    nn.g.output(&last, LAST_HIDDEN_STATE, t, &[b.clone(), s, e.clone()]);
    nn.g.output(&pooled, POOLER_OUTPUT, t, &[b, e]);
    Ok(nn.g.finish())
}

/// The scorer's text tower with projection (`CLIPModel.get_text_features`): `input_ids` ->
/// `text_embeds` = `text_projection(pooled)`.
pub fn build_clip_text_projection(cfg: &ClipTextConfig, projection_dim: usize, w: &dyn WeightSource, opts: &SdExportOptions) -> Result<Model> {
    let w = OptionalPrefix { inner: w, prefix: "text_model." };
    let mut nn = opts.nn("clip_text", &w)?;
    nn.g.metadata("promptist.graph", "clip-text-projection");
    let (_last, pooled) = text_trunk(&mut nn, cfg)?;
    let y = nn.linear(&pooled, "text_projection", cfg.hidden_size, projection_dim, false)?;
    let t = nn.t;
    nn.g.output(&y, TEXT_EMBEDS, t, &[Dim::from("batch_size"), Dim::Fixed(projection_dim as i64)]);
    Ok(nn.g.finish())
}
