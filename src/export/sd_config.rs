//! Configs of the Stable Diffusion and CLIP graphs, read from the reference `config.json` files
//! (diffusers `UNet2DConditionModel` / `AutoencoderKL`, transformers `CLIPTextConfig` /
//! `CLIPVisionConfig` / `CLIPConfig`; unknown keys are ignored) with presets for SD 1.x, OpenAI
//! CLIP ViT-L/14 and tiny test models. Field names and defaults are the reference libraries'.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn d_eps5() -> f64 {
    1e-5
}
fn d_quick_gelu() -> String {
    "quick_gelu".into()
}
/// transformers 5.23's `CLIPTextConfig` default when config.json has no `eos_token_id`.
fn d_eos() -> i64 {
    49407
}
fn d_true() -> bool {
    true
}
fn d_groups() -> usize {
    32
}
fn d_one() -> usize {
    1
}
fn d_scaling() -> f64 {
    0.18215
}

/// transformers `CLIPTextConfig` (the SD text encoder and the scorer's text tower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "d_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps5")]
    pub layer_norm_eps: f64,
    /// 2 (the legacy value in SD 1.x / OpenAI configs) pools at `argmax(input_ids)`; any other
    /// value pools at the first position equal to it (transformers' rule).
    #[serde(default = "d_eos")]
    pub eos_token_id: i64,
    /// Width of `text_projection` (CLIPModel / CLIPTextModelWithProjection).
    #[serde(default)]
    pub projection_dim: Option<usize>,
}

impl ClipTextConfig {
    /// The SD 1.x text encoder (OpenAI CLIP ViT-L/14 text tower): 12 x 768, 12 heads, 77 positions.
    pub fn sd15() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
            projection_dim: None,
        }
    }
    /// A tiny config for tests and the demo bundle: the real CLIP vocabulary (49408, so it pairs
    /// with the real tokenizer) and 77 positions, width 32, 2 layers, 4 heads.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            ..Self::sd15()
        }
    }
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
    pub fn validate(&self) -> Result<()> {
        check_heads("text", self.hidden_size, self.num_attention_heads)?;
        check_act(&self.hidden_act)
    }
}

/// transformers `CLIPVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "d_three")]
    pub num_channels: usize,
    #[serde(default = "d_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps5")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub projection_dim: Option<usize>,
}

fn d_three() -> usize {
    3
}

impl ClipVisionConfig {
    /// OpenAI CLIP ViT-L/14 vision tower: 24 x 1024, 16 heads, 224 px, patch 14.
    pub fn vit_l14() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            image_size: 224,
            patch_size: 14,
            num_channels: 3,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: Some(768),
        }
    }
    /// Tiny: width 32, 2 layers, 4 heads, 32 px images, patch 8.
    pub fn tiny() -> Self {
        Self { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, image_size: 32, patch_size: 8, ..Self::vit_l14() }
    }
    pub fn num_patches(&self) -> usize {
        let side = self.image_size / self.patch_size.max(1);
        side * side
    }
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
    pub fn validate(&self) -> Result<()> {
        check_heads("vision", self.hidden_size, self.num_attention_heads)?;
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(Error::ModelFormat(format!("image_size {} is not a multiple of patch_size {}", self.image_size, self.patch_size)));
        }
        check_act(&self.hidden_act)
    }
}

/// transformers `CLIPConfig` (both towers and the shared projection width).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    pub projection_dim: usize,
}

impl ClipConfig {
    /// OpenAI CLIP ViT-L/14 (the scorer): text 12 x 768, vision 24 x 1024, projection 768.
    pub fn vit_l14() -> Self {
        Self { text_config: ClipTextConfig::sd15(), vision_config: ClipVisionConfig::vit_l14(), projection_dim: 768 }
    }
    /// Tiny: both towers tiny, projection 16.
    pub fn tiny() -> Self {
        Self { text_config: ClipTextConfig::tiny(), vision_config: ClipVisionConfig::tiny(), projection_dim: 16 }
    }
    pub fn validate(&self) -> Result<()> {
        self.text_config.validate()?;
        self.vision_config.validate()
    }
}

/// An int or a per-block list (diffusers' `attention_head_dim` / `num_attention_heads`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> Option<usize> {
        match self {
            PerBlock::One(v) => Some(*v),
            PerBlock::Each(v) => v.get(i).copied(),
        }
    }
}

/// diffusers `UNet2DConditionModel` config (the SD 1.x / 2.x family: CrossAttnDownBlock2D /
/// DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D / CrossAttnUpBlock2D).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    /// Number of heads per block in SD 1.x/2.x (diffusers' historical naming), used when
    /// `num_attention_heads` is absent.
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    pub cross_attention_dim: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    #[serde(default = "d_groups")]
    pub norm_num_groups: usize,
    #[serde(default = "d_eps5")]
    pub norm_eps: f64,
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: usize,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default = "d_one")]
    pub transformer_layers_per_block: usize,
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Every other key of config.json (checked by [`UNetConfig::validate`] against the features
    /// the builder implements).
    #[serde(flatten, default, skip_serializing)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// UNet config keys whose non-default values the builder does not implement: (key, accepted values).
const UNET_FIXED: &[(&str, &[&str])] = &[
    ("act_fn", &["\"silu\""]),
    ("center_input_sample", &["false"]),
    ("class_embed_type", &["null"]),
    ("num_class_embeds", &["null"]),
    ("addition_embed_type", &["null"]),
    ("encoder_hid_dim", &["null"]),
    ("encoder_hid_dim_type", &["null"]),
    ("time_cond_proj_dim", &["null"]),
    ("time_embedding_type", &["\"positional\""]),
    ("resnet_time_scale_shift", &["\"default\""]),
    ("mid_block_type", &["\"UNetMidBlock2DCrossAttn\""]),
    ("conv_in_kernel", &["3"]),
    ("conv_out_kernel", &["3"]),
    ("only_cross_attention", &["false", "[false,false,false,false]"]),
    ("dual_cross_attention", &["false"]),
    ("downsample_padding", &["1"]),
    ("mid_block_scale_factor", &["1", "1.0"]),
    ("attention_type", &["\"default\""]),
    ("reverse_transformer_layers_per_block", &["null"]),
    ("mid_block_only_cross_attention", &["null", "false"]),
    ("cross_attention_norm", &["null"]),
    ("dropout", &["0", "0.0"]),
];

impl UNetConfig {
    /// SD 1.4 / 1.5: 320/640/1280/1280, 2 layers per block, 8 heads, cross-attention 768.
    pub fn sd15() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            attention_head_dim: PerBlock::One(8),
            num_attention_heads: None,
            cross_attention_dim: 768,
            down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"].map(String::from).to_vec(),
            up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"].map(String::from).to_vec(),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            flip_sin_to_cos: true,
            freq_shift: 0,
            use_linear_projection: false,
            transformer_layers_per_block: 1,
            sample_size: Some(64),
            extra: Default::default(),
        }
    }
    /// Tiny (diffusers' test-style): 32/64, 2 layers per block, 2 heads, 4 groups, cross-attention 32.
    pub fn tiny() -> Self {
        Self {
            block_out_channels: vec![32, 64],
            attention_head_dim: PerBlock::One(2),
            cross_attention_dim: 32,
            down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"].map(String::from).to_vec(),
            up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"].map(String::from).to_vec(),
            norm_num_groups: 4,
            sample_size: Some(8),
            ..Self::sd15()
        }
    }
    /// Heads of block `i` (down-block order).
    pub fn heads(&self, i: usize) -> Result<usize> {
        let pb = self.num_attention_heads.as_ref().unwrap_or(&self.attention_head_dim);
        pb.get(i).ok_or_else(|| Error::ModelFormat(format!("unet: no attention head count for block {i}")))
    }
    pub fn time_embed_dim(&self) -> usize {
        self.block_out_channels.first().copied().unwrap_or(0) * 4
    }
    pub fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(Error::ModelFormat("unet: block_out_channels, down_block_types and up_block_types must have the same non-zero length".into()));
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                return Err(Error::ModelFormat(format!("unet: unsupported down block type {t}")));
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return Err(Error::ModelFormat(format!("unet: unsupported up block type {t}")));
            }
        }
        for (key, ok) in UNET_FIXED {
            if let Some(v) = self.extra.get(*key) {
                let text = v.to_string();
                if !ok.contains(&text.as_str()) {
                    return Err(Error::ModelFormat(format!("unet: config {key} = {text} is not supported (supported: {})", ok.join(" or "))));
                }
            }
        }
        if self.transformer_layers_per_block == 0 {
            return Err(Error::ModelFormat("unet: transformer_layers_per_block must be at least 1".into()));
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c % self.norm_num_groups != 0 {
                return Err(Error::ModelFormat(format!("unet: {c} channels do not split into {} groups", self.norm_num_groups)));
            }
            check_heads("unet", c, self.heads(i)?)?;
        }
        Ok(())
    }
}

/// diffusers `AutoencoderKL` config (the decoder half is exported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "d_three")]
    pub in_channels: usize,
    #[serde(default = "d_three")]
    pub out_channels: usize,
    pub latent_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    #[serde(default = "d_groups")]
    pub norm_num_groups: usize,
    /// Latents are divided by this before decoding; applied by the pipeline, not the graph
    /// (as optimum's `vae_decoder` export does).
    #[serde(default = "d_scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Newer configs may drop `post_quant_conv` (`use_post_quant_conv: false`).
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    /// Newer configs may drop the mid-block attention (`mid_block_add_attention: false`).
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
    #[serde(default = "d_silu")]
    pub act_fn: String,
}

fn d_silu() -> String {
    "silu".into()
}

impl VaeConfig {
    /// The SD 1.x VAE: 128/256/512/512, 2 layers per block, 4 latent channels, scaling 0.18215.
    pub fn sd15() -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            sample_size: Some(512),
            use_post_quant_conv: true,
            mid_block_add_attention: true,
            act_fn: "silu".into(),
        }
    }
    /// Tiny: 32/64, 1 layer per block, 4 groups.
    pub fn tiny() -> Self {
        Self { block_out_channels: vec![32, 64], layers_per_block: 1, norm_num_groups: 4, sample_size: Some(32), ..Self::sd15() }
    }
    /// Upsampling factor of the decoder (2 per block but the last).
    pub fn upscale(&self) -> usize {
        1 << self.block_out_channels.len().saturating_sub(1)
    }
    pub fn validate(&self) -> Result<()> {
        if self.block_out_channels.is_empty() {
            return Err(Error::ModelFormat("vae: block_out_channels is empty".into()));
        }
        if self.act_fn != "silu" {
            return Err(Error::ModelFormat(format!("vae: act_fn {:?} is not supported (silu)", self.act_fn)));
        }
        for &c in &self.block_out_channels {
            if c % self.norm_num_groups != 0 {
                return Err(Error::ModelFormat(format!("vae: {c} channels do not split into {} groups", self.norm_num_groups)));
            }
        }
        Ok(())
    }
}

fn check_heads(what: &str, width: usize, heads: usize) -> Result<()> {
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(Error::ModelFormat(format!("{what}: width {width} is not divisible by {heads} heads")));
    }
    Ok(())
}

fn check_act(act: &str) -> Result<()> {
    match act {
        "quick_gelu" | "gelu" => Ok(()),
        other => Err(Error::ModelFormat(format!("unsupported CLIP activation {other:?} (quick_gelu or gelu)"))),
    }
}

/// Parse a reference `config.json` into `T`, naming the file in errors.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = crate::io::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| Error::ModelFormat(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_parse_diffusers_json() {
        UNetConfig::sd15().validate().unwrap();
        UNetConfig::tiny().validate().unwrap();
        VaeConfig::sd15().validate().unwrap();
        ClipConfig::vit_l14().validate().unwrap();
        ClipConfig::tiny().validate().unwrap();
        let json = r#"{"_class_name":"UNet2DConditionModel","act_fn":"silu","attention_head_dim":8,
            "block_out_channels":[320,640,1280,1280],"center_input_sample":false,"cross_attention_dim":768,
            "down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
            "downsample_padding":1,"flip_sin_to_cos":true,"freq_shift":0,"in_channels":4,"layers_per_block":2,
            "mid_block_scale_factor":1,"norm_eps":1e-05,"norm_num_groups":32,"out_channels":4,"sample_size":64,
            "up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"]}"#;
        let c: UNetConfig = serde_json::from_str(json).unwrap();
        c.validate().unwrap();
        assert_eq!(UNetConfig { extra: Default::default(), ..c.clone() }, UNetConfig::sd15());
        assert_eq!(c.heads(3).unwrap(), 8);
        let sd2: UNetConfig = serde_json::from_str(&json.replace("\"attention_head_dim\":8", "\"attention_head_dim\":[5,10,20,20]")).unwrap();
        assert_eq!(sd2.heads(1).unwrap(), 10);
        let sdxl: UNetConfig = serde_json::from_str(&json.replace("\"act_fn\":\"silu\"", "\"addition_embed_type\":\"text_time\"")).unwrap();
        let e = sdxl.validate().unwrap_err().to_string();
        assert!(e.contains("addition_embed_type"), "{e}");
    }
}
