//! PPO options, read from a JSON config file whose every field is optional: the defaults are
//! docs/method.md §5's reference values (Promptist's `ppo_config_a100_coco_bsz256_kl0.2.yml` and the
//! early trlx it vendors); the rollout and reward settings are docs/method.md §3 and §5.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Everything a PPO run needs besides its inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoConfig {
    /// PPO steps (one rollout batch + its update each).
    pub steps: u64,
    /// Prompts per rollout batch (the reference's 256).
    pub batch_size: usize,
    /// Diverse beam search: beams = groups = returned sequences (16 in the code, 8 in the paper).
    pub num_beams: usize,
    pub diversity_penalty: f32,
    /// `max_new_tokens` is drawn uniformly from [min_new_tokens, max_new_tokens] per batch.
    pub min_new_tokens: usize,
    pub max_new_tokens: usize,
    /// Fixed KL coefficient (the reference's adaptive controller stays near 0.2).
    pub beta: f64,
    pub gamma: f64,
    pub lam: f64,
    pub cliprange: f64,
    pub cliprange_value: f64,
    pub vf_coef: f64,
    /// Optimisation epochs per rollout batch, one minibatch each (the whole batch).
    pub ppo_epochs: usize,
    /// Sequences per forward/backward inside an epoch (gradients accumulate over the batch).
    pub micro_batch: usize,
    pub lr: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    pub weight_decay: f64,
    /// Train only the top k transformer blocks of the policy (the reference trains 2); None: all.
    pub train_top_blocks: Option<usize>,
    /// Reward: images per prompt (2 in the code, 3 in the paper).
    pub images_per_prompt: usize,
    /// SD settings of the reward images (docs/method.md §3: 512x512, 20 DPM-Solver++ steps, guidance 7.5).
    pub image_size: usize,
    pub sd_steps: usize,
    pub guidance_scale: f32,
    /// UNet batch limit of the reward pipeline (images per call).
    pub sd_max_batch: usize,
    /// Base seed of the reward images' latents (fixed: x's images never change).
    pub image_seed: u64,
    /// Reward given to an empty rewrite (it cannot be rendered): the relevance term's floor.
    pub empty_response_reward: f64,
    /// Seed of the prompt draws, the length draws and the sequence picks.
    pub seed: u64,
    /// Write the resumable checkpoint every this many steps (and at the end).
    pub save_every: u64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            steps: 12_000 / 256,
            batch_size: 256,
            num_beams: 16,
            diversity_penalty: 1.0,
            min_new_tokens: 15,
            max_new_tokens: 75,
            beta: 0.2,
            gamma: 1.0,
            lam: 0.95,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 2.3,
            ppo_epochs: 4,
            micro_batch: 32,
            lr: 5e-5,
            adam_beta1: 0.9,
            adam_beta2: 0.95,
            adam_eps: 1e-8,
            weight_decay: 1e-6,
            train_top_blocks: None,
            images_per_prompt: 2,
            image_size: 512,
            sd_steps: 20,
            guidance_scale: 7.5,
            sd_max_batch: 8,
            image_seed: 0,
            empty_response_reward: -5.6,
            seed: 0,
            save_every: 1,
        }
    }
}

impl PpoConfig {
    /// Read a JSON config file (missing fields take the defaults; unknown fields are an error).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(format!("reading {}", path.display()), e))?;
        let cfg: PpoConfig = serde_json::from_str(&text).map_err(|e| TrainError::Options(format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The optimizer settings of policy and value.
    pub fn adamw(&self) -> crate::sft::optim::AdamWConfig {
        crate::sft::optim::AdamWConfig { lr: self.lr, beta1: self.adam_beta1, beta2: self.adam_beta2, eps: self.adam_eps, weight_decay: self.weight_decay }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Options(m.to_string()));
        if self.batch_size == 0 || self.micro_batch == 0 || self.ppo_epochs == 0 {
            return bad("batch_size, micro_batch and ppo_epochs must be positive");
        }
        if self.num_beams == 0 {
            return bad("num_beams must be at least 1");
        }
        if self.min_new_tokens == 0 || self.min_new_tokens > self.max_new_tokens {
            return bad("need 1 <= min_new_tokens <= max_new_tokens");
        }
        if !(0.0..=1.0).contains(&self.lam) || !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma and lam must be in [0, 1]");
        }
        if self.cliprange <= 0.0 || self.cliprange_value <= 0.0 {
            return bad("cliprange and cliprange_value must be positive");
        }
        if self.images_per_prompt == 0 || self.sd_steps == 0 || self.image_size == 0 || !self.image_size.is_multiple_of(8) {
            return bad("images_per_prompt and sd_steps must be positive, image_size a positive multiple of 8");
        }
        if self.train_top_blocks == Some(0) {
            return bad("train_top_blocks must be at least 1 (or absent for all blocks)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_values_and_files_override_them() {
        let d = PpoConfig::default();
        assert_eq!((d.num_beams, d.min_new_tokens, d.max_new_tokens, d.ppo_epochs, d.batch_size), (16, 15, 75, 4, 256));
        assert_eq!((d.beta, d.gamma, d.lam, d.cliprange, d.cliprange_value, d.vf_coef), (0.2, 1.0, 0.95, 0.2, 0.2, 2.3));
        assert_eq!((d.lr, d.adam_beta1, d.adam_beta2, d.images_per_prompt), (5e-5, 0.9, 0.95, 2));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ppo.json");
        std::fs::write(&p, r#"{"num_beams": 8, "train_top_blocks": 2}"#).unwrap();
        let c = PpoConfig::from_file(&p).unwrap();
        assert_eq!((c.num_beams, c.train_top_blocks, c.beta), (8, Some(2), 0.2));
        std::fs::write(&p, r#"{"num_beam": 8}"#).unwrap();
        let e = PpoConfig::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("num_beam"), "{e}");
        std::fs::write(&p, r#"{"min_new_tokens": 80}"#).unwrap();
        assert!(PpoConfig::from_file(&p).is_err());
    }
}
