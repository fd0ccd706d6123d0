//! diffusers `UNet2DConditionModel` (SD 1.x/2.x family; Rombach et al. 2022) as one ONNX graph
//! with optimum's `unet` I/O:
//! - `sample` T [batch_size, in_channels, height, width],
//! - `timestep` float32, rank 0 (a scalar, as optimum-onnx 0.1.0 declares it; one timestep for the
//!   whole batch, broadcast inside the graph as diffusers does with `timesteps.expand(batch)`),
//! - `encoder_hidden_states` T [batch_size, sequence_length, cross_attention_dim],
//!
//! and one output, `out_sample` T [batch_size, out_channels, height, width].
//!
//! Forward pass (diffusers 0.42 `unet_2d_condition.py`): sinusoidal timestep embedding
//! (`get_timestep_embedding` with `flip_sin_to_cos`, `freq_shift`, max period 10000) ->
//! `time_embedding.linear_1` - SiLU - `linear_2`; `conv_in`; down blocks (resnets, cross-attention
//! transformers, stride-2 conv downsamplers) collecting skip tensors; mid block (resnet,
//! transformer, resnet); up blocks (skip concat, resnets, transformers, nearest-2x + conv upsamplers,
//! upsampling to the next skip's size as diffusers' `upsample_size`); `conv_norm_out` - SiLU -
//! `conv_out`. Any height/width the down path can halve works (the skip sizes drive upsampling).

use super::clip_text::SdExportOptions;
use super::nn::WeightSource;
use super::onnx::{attr, DType, Dim, Model, TensorData};
use super::sd_config::UNetConfig;
use super::unet_blocks::{downsample, resnet, transformer2d, upsample, Transformer2D};
use crate::{Error, Result};

pub const SAMPLE: &str = "sample";
pub const TIMESTEP: &str = "timestep";
pub const ENCODER_HIDDEN_STATES: &str = "encoder_hidden_states";
pub const OUT_SAMPLE: &str = "out_sample";
/// Expected I/O names, for load-time checks.
pub const UNET_INPUTS: &[&str] = &[SAMPLE, TIMESTEP, ENCODER_HIDDEN_STATES];
pub const UNET_OUTPUTS: &[&str] = &[OUT_SAMPLE];

/// The frequencies of diffusers' `get_timestep_embedding`, computed in float32 step by step as
/// torch does: `exp(-ln(max_period) * i / (half - freq_shift))`.
pub fn timestep_frequencies(dim: usize, freq_shift: usize) -> Vec<f32> {
    let half = dim / 2;
    let c = -(10000f64.ln()) as f32;
    let denom = (half as f32) - (freq_shift as f32);
    (0..half).map(|i| ((c * i as f32) / denom).exp()).collect()
}

/// Build the UNet graph from diffusers weights (`conv_in.weight`, `time_embedding.linear_1.weight`,
/// `down_blocks.0.resnets.0.norm1.weight`, ...).
pub fn build_unet(cfg: &UNetConfig, w: &dyn WeightSource, opts: &SdExportOptions) -> Result<Model> {
    cfg.validate()?;
    let mut nn = opts.nn("unet", w)?;
    nn.g.metadata("promptist.graph", "unet-2d-condition");
    let t = nn.t;
    let (b, hh, ww) = (Dim::from("batch_size"), Dim::from("height"), Dim::from("width"));
    let sample = nn.g.input(SAMPLE, t, &[b.clone(), Dim::Fixed(cfg.in_channels as i64), hh.clone(), ww.clone()]);
    let ts = nn.g.input(TIMESTEP, DType::F32, &[]);
    let ctx = nn.g.input(ENCODER_HIDDEN_STATES, t, &[b.clone(), Dim::from("sequence_length"), Dim::Fixed(cfg.cross_attention_dim as i64)]);

    // ---- timestep embedding
    let c0 = cfg.block_out_channels[0];
    let ted = cfg.time_embed_dim();
    if !c0.is_multiple_of(2) {
        return Err(Error::ModelFormat(format!("unet: timestep embedding width {c0} must be even")));
    }
    let freqs = timestep_frequencies(c0, cfg.freq_shift);
    let freqs = nn.g.constant(TensorData::f32(&[1, freqs.len()], freqs));
    let flat = nn.g.const_i64s(&[-1]);
    let tv = nn.g.op("Reshape", &[&ts, &flat], vec![]);
    let sshape = nn.g.op("Shape", &[&sample], vec![]);
    let (s0, s1) = (nn.g.const_i64s(&[0]), nn.g.const_i64s(&[1]));
    let bdim = nn.g.op("Slice", &[&sshape, &s0, &s1], vec![]);
    let tv = nn.g.op("Expand", &[&tv, &bdim], vec![]); // [B]
    let tcol = nn.g.op("Unsqueeze", &[&tv, &s1], vec![]); // [B,1]
    let args = nn.g.op("Mul", &[&tcol, &freqs], vec![]); // [B, half]
    let sin = nn.g.op("Sin", &[&args], vec![]);
    let cos = nn.g.op("Cos", &[&args], vec![]);
    let (first, second) = if cfg.flip_sin_to_cos { (&cos, &sin) } else { (&sin, &cos) };
    let temb = nn.g.op("Concat", &[first, second], vec![attr("axis", -1i64)]);
    let temb = nn.cast(&temb, DType::F32, t);
    let temb = nn.linear(&temb, "time_embedding.linear_1", c0, ted, true)?;
    let temb = nn.silu(&temb);
    let temb = nn.linear(&temb, "time_embedding.linear_2", ted, ted, true)?;
    let temb_silu = nn.silu(&temb);
    let te = Some((temb_silu.as_str(), ted));

    let groups = cfg.norm_num_groups;
    let eps = cfg.norm_eps;
    let n = cfg.block_out_channels.len();
    let tf = |ch: usize, heads: usize| Transformer2D {
        channels: ch,
        heads,
        groups,
        context_dim: cfg.cross_attention_dim,
        layers: cfg.transformer_layers_per_block,
        linear_projection: cfg.use_linear_projection,
    };

    // ---- down path
    let mut h = nn.conv2d(&sample, "conv_in", cfg.in_channels, c0, 3, 1, 1, true)?;
    let mut ch = c0;
    let mut skips: Vec<(String, usize)> = vec![(h.clone(), ch)];
    for (i, kind) in cfg.down_block_types.iter().enumerate() {
        let out = cfg.block_out_channels[i];
        let cross = kind == "CrossAttnDownBlock2D";
        for j in 0..cfg.layers_per_block {
            h = resnet(&mut nn, &h, &format!("down_blocks.{i}.resnets.{j}"), ch, out, groups, eps, te)?;
            ch = out;
            if cross {
                h = transformer2d(&mut nn, &h, &format!("down_blocks.{i}.attentions.{j}"), &tf(ch, cfg.heads(i)?), &ctx)?;
            }
            skips.push((h.clone(), ch));
        }
        if i + 1 < n {
            h = downsample(&mut nn, &h, &format!("down_blocks.{i}.downsamplers.0"), ch)?;
            skips.push((h.clone(), ch));
        }
    }

    // ---- mid block
    let mid_heads = cfg.heads(n - 1)?;
    h = resnet(&mut nn, &h, "mid_block.resnets.0", ch, ch, groups, eps, te)?;
    h = transformer2d(&mut nn, &h, "mid_block.attentions.0", &tf(ch, mid_heads), &ctx)?;
    h = resnet(&mut nn, &h, "mid_block.resnets.1", ch, ch, groups, eps, te)?;

    // ---- up path
    for (i, kind) in cfg.up_block_types.iter().enumerate() {
        let out = cfg.block_out_channels[n - 1 - i];
        let heads = cfg.heads(n - 1 - i)?;
        let cross = kind == "CrossAttnUpBlock2D";
        for j in 0..=cfg.layers_per_block {
            let (skip, sc) = skips.pop().ok_or_else(|| Error::Internal("unet: skip stack underflow".into()))?;
            let cat = nn.g.op("Concat", &[&h, &skip], vec![attr("axis", 1i64)]);
            h = resnet(&mut nn, &cat, &format!("up_blocks.{i}.resnets.{j}"), ch + sc, out, groups, eps, te)?;
            ch = out;
            if cross {
                h = transformer2d(&mut nn, &h, &format!("up_blocks.{i}.attentions.{j}"), &tf(ch, heads), &ctx)?;
            }
        }
        if i + 1 < n {
            let like = skips.last().map(|s| s.0.clone());
            h = upsample(&mut nn, &h, &format!("up_blocks.{i}.upsamplers.0"), ch, like.as_deref())?;
        }
    }

    // ---- output
    let h = nn.group_norm(&h, "conv_norm_out", groups, ch, eps)?;
    let h = nn.silu(&h);
    let y = nn.conv2d(&h, "conv_out", ch, cfg.out_channels, 3, 1, 1, true)?;
    nn.g.output(&y, OUT_SAMPLE, t, &[b, Dim::Fixed(cfg.out_channels as i64), hh, ww]);
    Ok(nn.g.finish())
}
