//! Building blocks of diffusers' UNet and VAE (`ResnetBlock2D`, `Transformer2DModel` with
//! `BasicTransformerBlock` and GEGLU feed-forward, `Downsample2D`, `Upsample2D`) on [`Nn`], with
//! diffusers' weight keys and semantics (diffusers 0.42: `models/resnet.py`,
//! `models/transformers/transformer_2d.py`, `models/attention.py`, `models/upsampling.py`).

use super::nn::Nn;
use super::onnx::attr;
use crate::Result;

/// `ResnetBlock2D` at `p`: GroupNorm-SiLU-Conv3x3 (+ time embedding projection) -
/// GroupNorm-SiLU-Conv3x3, plus the input (through `conv_shortcut` 1x1 when channels change).
/// `temb_silu` is `silu(temb)` [B, temb_ch] (shared by all blocks) or `None` (VAE).
#[allow(clippy::too_many_arguments)]
pub fn resnet(nn: &mut Nn<'_>, x: &str, p: &str, cin: usize, cout: usize, groups: usize, eps: f64, temb_silu: Option<(&str, usize)>) -> Result<String> {
    let h = nn.group_norm(x, &format!("{p}.norm1"), groups, cin, eps)?;
    let h = nn.silu(&h);
    let mut h = nn.conv2d(&h, &format!("{p}.conv1"), cin, cout, 3, 1, 1, true)?;
    if let Some((ts, tch)) = temb_silu {
        let t = nn.linear(ts, &format!("{p}.time_emb_proj"), tch, cout, true)?;
        let axes = nn.g.const_i64s(&[2, 3]);
        let t = nn.g.op("Unsqueeze", &[&t, &axes], vec![]);
        h = nn.g.op("Add", &[&h, &t], vec![]);
    }
    let h = nn.group_norm(&h, &format!("{p}.norm2"), groups, cout, eps)?;
    let h = nn.silu(&h);
    let h = nn.conv2d(&h, &format!("{p}.conv2"), cout, cout, 3, 1, 1, true)?;
    let skip = if cin != cout { nn.conv2d(x, &format!("{p}.conv_shortcut"), cin, cout, 1, 1, 0, true)? } else { x.to_string() };
    Ok(nn.g.op("Add", &[&skip, &h], vec![]))
}

/// `Downsample2D` with a conv: 3x3, stride 2, padding 1 (`{p}.conv`).
pub fn downsample(nn: &mut Nn<'_>, x: &str, p: &str, ch: usize) -> Result<String> {
    nn.conv2d(x, &format!("{p}.conv"), ch, ch, 3, 2, 1, true)
}

/// `Upsample2D` with a conv: nearest 2x (to the size of `like` when given) then 3x3 conv.
pub fn upsample(nn: &mut Nn<'_>, x: &str, p: &str, ch: usize, like: Option<&str>) -> Result<String> {
    let u = nn.upsample_nearest_like(x, like);
    nn.conv2d(&u, &format!("{p}.conv"), ch, ch, 3, 1, 1, true)
}

/// Static description of one `Transformer2DModel` (SD 1.x/2.x form).
pub struct Transformer2D {
    pub channels: usize,
    pub heads: usize,
    pub groups: usize,
    pub context_dim: usize,
    pub layers: usize,
    pub linear_projection: bool,
}

/// `Transformer2DModel` at `p` on NCHW `x` with cross-attention to `context` [B, L, context_dim].
pub fn transformer2d(nn: &mut Nn<'_>, x: &str, p: &str, s: &Transformer2D, context: &str) -> Result<String> {
    let c = s.channels;
    let hd = c / s.heads;
    let inner = s.heads * hd;
    let h = nn.group_norm(x, &format!("{p}.norm"), s.groups, c, 1e-6)?;
    let mut tok = if s.linear_projection {
        let tk = nn.nchw_to_tokens(&h, c);
        nn.linear(&tk, &format!("{p}.proj_in"), c, inner, true)?
    } else {
        let h = nn.conv2d(&h, &format!("{p}.proj_in"), c, inner, 1, 1, 0, true)?;
        nn.nchw_to_tokens(&h, inner)
    };
    for k in 0..s.layers {
        tok = basic_block(nn, &tok, &format!("{p}.transformer_blocks.{k}"), inner, s.heads, s.context_dim, context)?;
    }
    let out = if s.linear_projection {
        let o = nn.linear(&tok, &format!("{p}.proj_out"), inner, c, true)?;
        nn.tokens_to_nchw(&o, x, c)
    } else {
        let sp = nn.tokens_to_nchw(&tok, x, inner);
        nn.conv2d(&sp, &format!("{p}.proj_out"), inner, c, 1, 1, 0, true)?
    };
    Ok(nn.g.op("Add", &[&out, x], vec![]))
}

/// `BasicTransformerBlock`: self-attention, cross-attention, GEGLU feed-forward, each pre-LayerNorm
/// with a residual. Q/K/V have no bias (`attention_bias = False`); `to_out.0` has one.
fn basic_block(nn: &mut Nn<'_>, x: &str, p: &str, dim: usize, heads: usize, ctx_dim: usize, context: &str) -> Result<String> {
    let hd = dim / heads;
    let scale = (hd as f64).powf(-0.5) as f32;
    // self-attention
    let h = nn.layer_norm(x, &format!("{p}.norm1"), dim, 1e-5)?;
    let a = format!("{p}.attn1");
    let qkv = nn.linear_fused(&h, dim, &[(&format!("{a}.to_q"), dim, scale), (&format!("{a}.to_k"), dim, 1.0), (&format!("{a}.to_v"), dim, 1.0)], false)?;
    let o = nn.attention(&qkv[0], &qkv[1], &qkv[2], heads, hd, None);
    let o = nn.linear(&o, &format!("{a}.to_out.0"), dim, dim, true)?;
    let x = nn.g.op("Add", &[&o, x], vec![]);
    // cross-attention
    let h = nn.layer_norm(&x, &format!("{p}.norm2"), dim, 1e-5)?;
    let a = format!("{p}.attn2");
    let q = nn.linear_fused(&h, dim, &[(&format!("{a}.to_q"), dim, scale)], false)?.remove(0);
    let kv = nn.linear_fused(context, ctx_dim, &[(&format!("{a}.to_k"), dim, 1.0), (&format!("{a}.to_v"), dim, 1.0)], false)?;
    let o = nn.attention(&q, &kv[0], &kv[1], heads, hd, None);
    let o = nn.linear(&o, &format!("{a}.to_out.0"), dim, dim, true)?;
    let x = nn.g.op("Add", &[&o, &x], vec![]);
    // GEGLU feed-forward
    let h = nn.layer_norm(&x, &format!("{p}.norm3"), dim, 1e-5)?;
    let inner = dim * 4;
    let hg = nn.linear(&h, &format!("{p}.ff.net.0.proj"), dim, 2 * inner, true)?;
    let sizes = nn.g.const_i64s(&[inner as i64, inner as i64]);
    let parts = nn.g.op_multi("Split", &[&hg, &sizes], 2, vec![attr("axis", -1i64)]);
    let gate = nn.gelu(&parts[1]);
    let f = nn.g.op("Mul", &[&parts[0], &gate], vec![]);
    let f = nn.linear(&f, &format!("{p}.ff.net.2"), inner, dim, true)?;
    Ok(nn.g.op("Add", &[&f, &x], vec![]))
}
