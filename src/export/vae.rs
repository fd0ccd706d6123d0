//! The decoder half of diffusers `AutoencoderKL` (Rombach et al. 2022; diffusers 0.42
//! `autoencoder_kl.py` / `vae.py` `Decoder`) as an ONNX graph with optimum's `vae_decoder` I/O:
//! `latent_sample` T [batch_size, latent_channels, latent_height, latent_width] ->
//! `sample` T [batch_size, out_channels, latent_height * 8, latent_width * 8] (for 4 blocks),
//! i.e. `vae.decode(z).sample`: unclamped, in [-1, 1] nominally. The latent scaling factor
//! (`config.scaling_factor`, 0.18215 for SD 1.x) is applied by the pipeline, as with optimum.
//!
//! Layers: `post_quant_conv` (1x1), `decoder.conv_in`, `decoder.mid_block` (resnet, single-head
//! self-attention with GroupNorm and residual, resnet), `decoder.up_blocks.N` (resnets, nearest-2x
//! and conv upsamplers but the last), `decoder.conv_norm_out` - SiLU - `decoder.conv_out`; all
//! GroupNorms use eps 1e-6. Legacy attention key names (`query`, `key`, `value`, `proj_attn`) are
//! accepted.

use std::borrow::Cow;

use super::clip_text::SdExportOptions;
use super::nn::{Nn, WeightSource};
use super::onnx::{Dim, Model};
use super::sd_config::VaeConfig;
use super::unet_blocks::{resnet, upsample};
use crate::Result;

pub const LATENT_SAMPLE: &str = "latent_sample";
pub const SAMPLE: &str = "sample";
/// Expected I/O names, for load-time checks.
pub const VAE_DECODER_INPUTS: &[&str] = &[LATENT_SAMPLE];
pub const VAE_DECODER_OUTPUTS: &[&str] = &[SAMPLE];

const EPS: f64 = 1e-6;

/// Older diffusers VAE checkpoints (e.g. the SD 1.4/1.5 hub repositories) name the mid-block
/// attention `query` / `key` / `value` / `proj_attn` (diffusers renames them when loading), and
/// some store them as 1x1 conv kernels [C, C, 1, 1]; this view serves them under the current names.
struct LegacyAttentionKeys<'a> {
    inner: &'a dyn WeightSource,
}

impl LegacyAttentionKeys<'_> {
    fn legacy(key: &str) -> Option<String> {
        const MAP: [(&str, &str); 4] = [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")];
        if !key.contains(".attentions.") {
            return None;
        }
        MAP.iter().find(|(new, _)| key.contains(new)).map(|(new, old)| key.replacen(new, old, 1))
    }
}

impl WeightSource for LegacyAttentionKeys<'_> {
    fn fetch(&self, key: &str, shape: &[usize]) -> Result<Cow<'_, [f32]>> {
        if self.inner.has(key) {
            return self.inner.fetch(key, shape);
        }
        match Self::legacy(key) {
            Some(old) if self.inner.has(&old) => match self.inner.fetch(&old, shape) {
                Ok(v) => Ok(v),
                Err(e) if shape.len() == 2 => {
                    let conv = [shape[0], shape[1], 1, 1];
                    self.inner.fetch(&old, &conv).map_err(|_| e)
                }
                Err(e) => Err(e),
            },
            _ => self.inner.fetch(key, shape),
        }
    }
    fn has(&self, key: &str) -> bool {
        self.inner.has(key) || Self::legacy(key).is_some_and(|old| self.inner.has(&old))
    }
}

/// diffusers `Attention` as used in the VAE mid block: GroupNorm, one head over channels,
/// biased q/k/v/out projections, residual.
fn mid_attention(nn: &mut Nn<'_>, x: &str, p: &str, ch: usize, groups: usize) -> Result<String> {
    let h = nn.group_norm(x, &format!("{p}.group_norm"), groups, ch, EPS)?;
    let tok = nn.nchw_to_tokens(&h, ch);
    let scale = (ch as f64).powf(-0.5) as f32;
    let qkv = nn.linear_fused(&tok, ch, &[(&format!("{p}.to_q"), ch, scale), (&format!("{p}.to_k"), ch, 1.0), (&format!("{p}.to_v"), ch, 1.0)], true)?;
    let o = nn.attention(&qkv[0], &qkv[1], &qkv[2], 1, ch, None);
    let o = nn.linear(&o, &format!("{p}.to_out.0"), ch, ch, true)?;
    let o = nn.tokens_to_nchw(&o, x, ch);
    Ok(nn.g.op("Add", &[&o, x], vec![]))
}

/// Build the VAE decoder graph from diffusers `AutoencoderKL` weights (`post_quant_conv.*`,
/// `decoder.*`; encoder keys are ignored).
pub fn build_vae_decoder(cfg: &VaeConfig, w: &dyn WeightSource, opts: &SdExportOptions) -> Result<Model> {
    cfg.validate()?;
    let w = LegacyAttentionKeys { inner: w };
    let mut nn = opts.nn("vae_decoder", &w)?;
    nn.g.metadata("promptist.graph", "vae-decoder");
    let t = nn.t;
    let lc = cfg.latent_channels;
    let groups = cfg.norm_num_groups;
    let b = Dim::from("batch_size");
    let z = nn.g.input(LATENT_SAMPLE, t, &[b.clone(), Dim::Fixed(lc as i64), Dim::from("latent_height"), Dim::from("latent_width")]);
    let z = if cfg.use_post_quant_conv { nn.conv2d(&z, "post_quant_conv", lc, lc, 1, 1, 0, true)? } else { z };
    let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
    let mut ch = rev[0];
    let mut h = nn.conv2d(&z, "decoder.conv_in", lc, ch, 3, 1, 1, true)?;
    h = resnet(&mut nn, &h, "decoder.mid_block.resnets.0", ch, ch, groups, EPS, None)?;
    if cfg.mid_block_add_attention {
        h = mid_attention(&mut nn, &h, "decoder.mid_block.attentions.0", ch, groups)?;
    }
    h = resnet(&mut nn, &h, "decoder.mid_block.resnets.1", ch, ch, groups, EPS, None)?;
    for (i, &out) in rev.iter().enumerate() {
        for j in 0..=cfg.layers_per_block {
            h = resnet(&mut nn, &h, &format!("decoder.up_blocks.{i}.resnets.{j}"), ch, out, groups, EPS, None)?;
            ch = out;
        }
        if i + 1 < rev.len() {
            h = upsample(&mut nn, &h, &format!("decoder.up_blocks.{i}.upsamplers.0"), ch, None)?;
        }
    }
    let h = nn.group_norm(&h, "decoder.conv_norm_out", groups, ch, EPS)?;
    let h = nn.silu(&h);
    let y = nn.conv2d(&h, "decoder.conv_out", ch, cfg.out_channels, 3, 1, 1, true)?;
    let up = cfg.upscale();
    nn.g.output(
        &y,
        SAMPLE,
        t,
        &[b, Dim::Fixed(cfg.out_channels as i64), Dim::from(format!("latent_height * {up}").as_str()), Dim::from(format!("latent_width * {up}").as_str())],
    );
    Ok(nn.g.finish())
}
