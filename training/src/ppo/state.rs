//! PPO checkpoints: one `last/` folder replaced atomically after a step, holding the policy as a
//! Hugging Face folder (`policy/`, so `export` and transformers read it), the value network with
//! its head (`value.safetensors`), both AdamW states, and `ppo_state.json` (step, seed, the
//! fingerprints of the prompts and of the SFT model, the config). The random choices of a step are
//! a pure function of (seed, step), so this is all a resumed run needs to continue exactly.

use std::path::{Path, PathBuf};

use promptist::text::gpt2::Gpt2Tokenizer;
use promptist::weights::{read_safetensors, write_safetensors};
use serde::{Deserialize, Serialize};

use super::config::PpoConfig;
use super::value::{HEAD_IN_B, HEAD_IN_W, HEAD_OUT_B, HEAD_OUT_W};
use crate::error::{Result, TrainError};
use crate::model::params::to_tch;
use crate::model::Params;
use crate::sft::checkpoint::{write_dir_atomically, write_model_files};
use crate::sft::optim::AdamW;

/// The resumable state besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoState {
    /// PPO steps done.
    pub step: u64,
    pub prompts_fingerprint: String,
    pub sft_fingerprint: String,
    pub config: PpoConfig,
}

/// sha256 over the SFT folder's config and weight files (a resume against another SFT model is refused).
pub fn sft_fingerprint(dir: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut any = false;
    for f in ["config.json", "model.safetensors", "pytorch_model.bin"] {
        let p = dir.join(f);
        if p.is_file() {
            let bytes = std::fs::read(&p).map_err(|e| TrainError::io(format!("reading {}", p.display()), e))?;
            h.update(f.as_bytes());
            h.update(&bytes);
            any = true;
        }
    }
    if !any {
        return Err(TrainError::Checkpoint(format!("{}: no config.json / model weights", dir.display())));
    }
    Ok(hex::encode(h.finalize()))
}

/// Write `dir` (normally `OUT/last`) atomically.
#[allow(clippy::too_many_arguments)]
pub fn save(dir: &Path, policy: &Params, value: &Params, policy_opt: &AdamW, value_opt: &AdamW, tok: &Gpt2Tokenizer, state: &PpoState, synthetic: bool) -> Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint(format!("state to JSON: {e}")))?;
    write_dir_atomically(dir, |tmp| {
        let pdir = tmp.join("policy");
        std::fs::create_dir_all(&pdir).map_err(|e| TrainError::io(format!("creating {}", pdir.display()), e))?;
        write_model_files(&pdir, policy, tok, synthetic)?;
        write_safetensors(&value.to_weights()?, &tmp.join("value.safetensors"), promptist::weights::safetensors_io::StoreDtype::F32, None)?;
        policy_opt.save(&tmp.join("policy_optimizer.safetensors"))?;
        value_opt.save(&tmp.join("value_optimizer.safetensors"))?;
        let p = tmp.join("ppo_state.json");
        std::fs::write(&p, text + "\n").map_err(|e| TrainError::io(format!("writing {}", p.display()), e))
    })
}

/// The checkpoint folder to resume from: `dir`, or the `.NAME.old` copy when a kill landed between
/// the two renames of a checkpoint replacement.
pub fn resumable(dir: &Path) -> Option<PathBuf> {
    crate::sft::checkpoint::resumable(dir, "ppo_state.json")
}

/// Read `ppo_state.json`.
pub fn load_state(dir: &Path) -> Result<PpoState> {
    let p = dir.join("ppo_state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(format!("reading {}", p.display()), e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", p.display())))
}

/// The value network of a checkpoint (GPT-2 body of the policy's config + head).
pub fn load_value(dir: &Path, cfg: &promptist::export::gpt2_config::Gpt2Config, device: tch::Device) -> Result<Params> {
    let w = read_safetensors(&dir.join("value.safetensors"))?;
    let (mut p, _unused) = Params::from_weights(cfg, &w, device)?;
    for name in [HEAD_IN_W, HEAD_IN_B, HEAD_OUT_W, HEAD_OUT_B] {
        let t = w.get(name).ok_or_else(|| TrainError::Checkpoint(format!("{}: no {name}", dir.display())))?;
        p.insert(name, to_tch(t, device)?)?;
    }
    Ok(p)
}
