//! open_clip checkpoints (`open_clip.CLIP` state dicts: `token_embedding`, `positional_embedding`,
//! `transformer.resblocks.N.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}`,
//! `ln_final`, `text_projection`, `visual.{conv1, class_embedding, positional_embedding, ln_pre,
//! transformer.*, ln_post, proj}`) mapped onto transformers `CLIPModel` keys, so one builder serves
//! both. The two layouts compute the same function: packed `in_proj` rows are q, k, v in that
//! order (torch `nn.MultiheadAttention`), and open_clip's projections are `x @ P` ([width, dim]),
//! i.e. the transpose of a `Linear` weight.

use super::sd_config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
use crate::weights::{Tensor, WeightMap};
use crate::{Error, Result};

/// Whether `w` looks like an open_clip state dict (rather than transformers `CLIPModel`).
pub fn is_open_clip(w: &WeightMap) -> bool {
    w.contains("token_embedding.weight") || w.contains("visual.conv1.weight")
}

fn get<'a>(w: &'a WeightMap, k: &str) -> Result<&'a Tensor> {
    w.get(k).ok_or_else(|| Error::ModelFormat(format!("open_clip weight {k} is missing")))
}

fn map_blocks(w: &WeightMap, src: &str, dst: &str, out: &mut WeightMap) -> Result<usize> {
    let mut n = 0;
    while w.contains(&format!("{src}.{n}.ln_1.weight")) {
        let s = |k: &str| format!("{src}.{n}.{k}");
        let d = |k: &str| format!("{dst}.{n}.{k}");
        for (a, b) in [("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")] {
            for p in ["weight", "bias"] {
                out.insert(d(&format!("{b}.{p}")), get(w, &s(&format!("{a}.{p}")))?.clone());
            }
        }
        let iw = get(w, &s("attn.in_proj_weight"))?;
        let ib = get(w, &s("attn.in_proj_bias"))?;
        let [rows, width] = iw.shape[..] else {
            return Err(Error::ModelFormat(format!("{}: expected a 2-D tensor", s("attn.in_proj_weight"))));
        };
        if rows % 3 != 0 || ib.data.len() != rows {
            return Err(Error::ModelFormat(format!("{}: shape {:?} is not [3*width, width]", s("attn.in_proj_weight"), iw.shape)));
        }
        let e = rows / 3;
        for (j, name) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
            out.insert(d(&format!("self_attn.{name}.weight")), Tensor::new(vec![e, width], iw.data[j * e * width..(j + 1) * e * width].to_vec())?);
            out.insert(d(&format!("self_attn.{name}.bias")), Tensor::new(vec![e], ib.data[j * e..(j + 1) * e].to_vec())?);
        }
        n += 1;
    }
    Ok(n)
}

fn copy(w: &WeightMap, out: &mut WeightMap, src: &str, dst: &str) -> Result<()> {
    out.insert(dst, get(w, src)?.clone());
    Ok(())
}

fn copy_ln(w: &WeightMap, out: &mut WeightMap, src: &str, dst: &str) -> Result<()> {
    copy(w, out, &format!("{src}.weight"), &format!("{dst}.weight"))?;
    copy(w, out, &format!("{src}.bias"), &format!("{dst}.bias"))
}

/// Map an open_clip state dict onto transformers `CLIPModel` keys (towers present in `w` only;
/// `logit_scale` and buffers are dropped).
pub fn open_clip_to_hf(w: &WeightMap) -> Result<WeightMap> {
    let mut out = WeightMap::new();
    if w.contains("token_embedding.weight") {
        copy(w, &mut out, "token_embedding.weight", "text_model.embeddings.token_embedding.weight")?;
        copy(w, &mut out, "positional_embedding", "text_model.embeddings.position_embedding.weight")?;
        let n = map_blocks(w, "transformer.resblocks", "text_model.encoder.layers", &mut out)?;
        if n == 0 {
            return Err(Error::ModelFormat("open_clip checkpoint has no transformer.resblocks".into()));
        }
        copy_ln(w, &mut out, "ln_final", "text_model.final_layer_norm")?;
        if let Some(p) = w.get("text_projection") {
            out.insert("text_projection.weight", p.transposed()?);
        }
    }
    if w.contains("visual.conv1.weight") {
        copy(w, &mut out, "visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight")?;
        copy(w, &mut out, "visual.class_embedding", "vision_model.embeddings.class_embedding")?;
        copy(w, &mut out, "visual.positional_embedding", "vision_model.embeddings.position_embedding.weight")?;
        copy_ln(w, &mut out, "visual.ln_pre", "vision_model.pre_layrnorm")?;
        let n = map_blocks(w, "visual.transformer.resblocks", "vision_model.encoder.layers", &mut out)?;
        if n == 0 {
            return Err(Error::ModelFormat("open_clip checkpoint has no visual.transformer.resblocks".into()));
        }
        copy_ln(w, &mut out, "visual.ln_post", "vision_model.post_layernorm")?;
        if let Some(p) = w.get("visual.proj") {
            out.insert("visual_projection.weight", p.transposed()?);
        }
    }
    Ok(out)
}

/// Infer a [`ClipConfig`] from an open_clip state dict (shapes give widths, depths, vocabulary,
/// context, patch and image size). Heads are `width / head_width` (64 in every OpenAI / LAION
/// ViT config); the activation is not stored in weights: `quick_gelu` for OpenAI-trained models.
pub fn infer_open_clip_config(w: &WeightMap, quick_gelu: bool, head_width: usize) -> Result<ClipConfig> {
    let act = if quick_gelu { "quick_gelu" } else { "gelu" }.to_string();
    let count = |prefix: &str| (0..).take_while(|n| w.contains(&format!("{prefix}.{n}.ln_1.weight"))).count();
    let tok = get(w, "token_embedding.weight")?;
    let pos = get(w, "positional_embedding")?;
    let (v, e) = (tok.shape[0], tok.shape[1]);
    let tproj = get(w, "text_projection")?;
    let proj = *tproj.shape.last().unwrap_or(&0);
    let fc = get(w, "transformer.resblocks.0.mlp.c_fc.weight")?;
    let text = ClipTextConfig {
        vocab_size: v,
        hidden_size: e,
        intermediate_size: fc.shape[0],
        num_hidden_layers: count("transformer.resblocks"),
        num_attention_heads: e / head_width.max(1),
        max_position_embeddings: pos.shape[0],
        hidden_act: act.clone(),
        layer_norm_eps: 1e-5,
        eos_token_id: 2,
        projection_dim: Some(proj),
    };
    let conv = get(w, "visual.conv1.weight")?;
    let vpos = get(w, "visual.positional_embedding")?;
    let vfc = get(w, "visual.transformer.resblocks.0.mlp.c_fc.weight")?;
    let (ve, patch) = (conv.shape[0], conv.shape[2]);
    let side = ((vpos.shape[0].saturating_sub(1)) as f64).sqrt().round() as usize;
    let vision = ClipVisionConfig {
        hidden_size: ve,
        intermediate_size: vfc.shape[0],
        num_hidden_layers: count("visual.transformer.resblocks"),
        num_attention_heads: ve / head_width.max(1),
        image_size: side * patch,
        patch_size: patch,
        num_channels: conv.shape[1],
        hidden_act: act,
        layer_norm_eps: 1e-5,
        projection_dim: Some(proj),
    };
    let cfg = ClipConfig { text_config: text, vision_config: vision, projection_dim: proj };
    cfg.validate()?;
    Ok(cfg)
}
