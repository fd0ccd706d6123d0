//! CLIP vision transformer with projection (Radford et al. 2021; transformers `CLIPModel`
//! `vision_model.*` + `visual_projection` weights, i.e. `CLIPModel.get_image_features`) as an ONNX
//! graph: `pixel_values` T [batch_size, 3, image_size, image_size] (already CLIP-preprocessed) ->
//! `image_embeds` T [batch_size, projection] (projected, not normalised).
//!
//! Embeddings: a bias-free patch `Conv` (`embeddings.patch_embedding`), the class token
//! (`embeddings.class_embedding`) in front, learned positions (`embeddings.position_embedding`);
//! then `pre_layrnorm`, the encoder (no mask), `post_layernorm` on the class token and
//! `visual_projection`. open_clip checkpoints are mapped onto these keys by
//! [`super::clip_open::open_clip_to_hf`].

use super::clip_text::{clip_encoder, EncoderSpec, SdExportOptions};
use super::nn::{OptionalPrefix, WeightSource};
use super::onnx::{attr, Dim, Model};
use super::sd_config::ClipVisionConfig;
use crate::Result;

/// Graph input.
pub const PIXEL_VALUES: &str = "pixel_values";
/// Graph output.
pub const IMAGE_EMBEDS: &str = "image_embeds";
/// Expected I/O names, for load-time checks.
pub const CLIP_VISION_INPUTS: &[&str] = &[PIXEL_VALUES];
pub const CLIP_VISION_OUTPUTS: &[&str] = &[IMAGE_EMBEDS];

/// Build the vision tower with projection.
pub fn build_clip_vision_projection(cfg: &ClipVisionConfig, projection_dim: usize, w: &dyn WeightSource, opts: &SdExportOptions) -> Result<Model> {
    cfg.validate()?;
    let w = OptionalPrefix { inner: w, prefix: "vision_model." };
    let mut nn = opts.nn("clip_vision", &w)?;
    nn.g.metadata("promptist.graph", "clip-vision-projection");
    let t = nn.t;
    let (e, p, c, n) = (cfg.hidden_size, cfg.patch_size, cfg.num_channels, cfg.num_patches());
    let sz = Dim::Fixed(cfg.image_size as i64);
    let pix = nn.g.input(PIXEL_VALUES, t, &[Dim::from("batch_size"), Dim::Fixed(c as i64), sz.clone(), sz]);
    let pre = "vision_model.embeddings";
    let patches = nn.conv2d(&pix, &format!("{pre}.patch_embedding"), c, e, p, p, 0, false)?; // [B,E,g,g]
    let patches = nn.nchw_to_tokens(&patches, e); // [B,N,E]
    let cls = nn.w.fetch(&format!("{pre}.class_embedding"), &[e])?.into_owned();
    let cls = nn.float(&[1, 1, e], &cls);
    let cls = nn.g.initializer(&format!("{pre}.class_embedding"), cls);
    let pshape = nn.g.op("Shape", &[&pix], vec![]);
    let (s0, s1) = (nn.g.const_i64s(&[0]), nn.g.const_i64s(&[1]));
    let b = nn.g.op("Slice", &[&pshape, &s0, &s1], vec![]);
    let tail = nn.g.const_i64s(&[1, e as i64]);
    let cls_shape = nn.g.op("Concat", &[&b, &tail], vec![attr("axis", 0i64)]);
    let cls_b = nn.g.op("Expand", &[&cls, &cls_shape], vec![]);
    let x = nn.g.op("Concat", &[&cls_b, &patches], vec![attr("axis", 1i64)]);
    let pos = nn.param(&format!("{pre}.position_embedding.weight"), &[n + 1, e])?;
    let x = nn.g.op("Add", &[&x, &pos], vec![]);
    let x = nn.layer_norm(&x, "vision_model.pre_layrnorm", e, cfg.layer_norm_eps)?;
    let spec = EncoderSpec {
        prefix: "vision_model.encoder",
        layers: cfg.num_hidden_layers,
        width: e,
        heads: cfg.num_attention_heads,
        inter: cfg.intermediate_size,
        act: &cfg.hidden_act,
        eps: cfg.layer_norm_eps,
    };
    let x = clip_encoder(&mut nn, x, &spec, None)?;
    let zero = nn.g.const_i64(0);
    let first = nn.g.op("Gather", &[&x, &zero], vec![attr("axis", 1i64)]); // [B,E]
    let pooled = nn.layer_norm(&first, "vision_model.post_layernorm", e, cfg.layer_norm_eps)?;
    let y = nn.linear(&pooled, "visual_projection", e, projection_dim, false)?;
    nn.g.output(&y, IMAGE_EMBEDS, t, &[Dim::from("batch_size"), Dim::Fixed(projection_dim as i64)]);
    Ok(nn.g.finish())
}
