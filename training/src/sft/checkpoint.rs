//! Checkpoint folders in the Hugging Face layout, so the library's converter and transformers
//! read them as they are: `config.json`, `model.safetensors` (f32, tied head omitted),
//! `tokenizer.json` + `tokenizer_config.json`, plus the trainer's `trainer_state.json` and, for the
//! resumable `last/` checkpoint, `optimizer.safetensors` (AdamW moments). A folder is written under
//! a temporary name and renamed into place, so an interruption never leaves a half checkpoint.

use std::path::Path;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::text::gpt2::Gpt2Tokenizer;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::Params;
use crate::sft::optim::AdamW;

/// `config.json` key marking weights trained on synthetic data (carried into the manifest).
pub const SYNTHETIC_KEY: &str = "promptist_synthetic_training_data";

/// Everything needed to continue a run exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: u64,
    pub seed: u64,
    pub tokens_seen: u64,
    pub best_val_loss: Option<f64>,
    pub best_step: Option<u64>,
    pub underfit_val_loss: Option<f64>,
    pub underfit_step: Option<u64>,
    pub last_val_loss: Option<f64>,
    /// fp16 dynamic loss scale and its count of good steps.
    pub loss_scale: f64,
    pub good_steps: u64,
    /// The prepared data's fingerprint (a resume with different data is refused).
    pub data_fingerprint: String,
    /// The training options, for the record.
    pub options: serde_json::Value,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| TrainError::io(format!("writing {}", path.display()), e))
}

/// Write a checkpoint folder at `dir` (replacing it atomically). `optimizer` only for resumable ones.
pub fn save_checkpoint(dir: &Path, params: &Params, tok: &Gpt2Tokenizer, state: &TrainerState, optimizer: Option<&AdamW>, synthetic: bool) -> Result<()> {
    let tmp = fresh_tmp_dir(dir)?;
    write_model_files(&tmp, params, tok, synthetic)?;
    let st = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint(format!("state to JSON: {e}")))?;
    write(&tmp.join("trainer_state.json"), &(st + "\n"))?;
    if let Some(opt) = optimizer {
        opt.save(&tmp.join("optimizer.safetensors"))?;
    }
    replace_dir(&tmp, dir)
}

/// An empty `.NAME.tmp` folder beside `dir`, to fill and then move into place with [`replace_dir`].
pub fn fresh_tmp_dir(dir: &Path) -> Result<std::path::PathBuf> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| TrainError::Options(format!("bad checkpoint path {}", dir.display())))?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(format!("removing {}", tmp.display()), e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(format!("creating {}", tmp.display()), e))?;
    Ok(tmp)
}

/// The Hugging Face files of a model folder: `config.json`, `model.safetensors`, `tokenizer.json`,
/// `tokenizer_config.json`.
pub fn write_model_files(dir: &Path, params: &Params, tok: &Gpt2Tokenizer, synthetic: bool) -> Result<()> {
    let mut cfg = params.cfg.clone();
    cfg.eos_token_id = Some(tok.eos_id());
    cfg.bos_token_id = Some(tok.eos_id());
    cfg.extra.remove(promptist::export::gpt2_config::RANDOM_INIT_KEY);
    if synthetic {
        cfg.extra.insert(SYNTHETIC_KEY.into(), true.into());
    }
    write(&dir.join("config.json"), &(cfg.to_json_pretty()? + "\n"))?;
    params.save_safetensors(&dir.join("model.safetensors"))?;
    write(&dir.join("tokenizer.json"), &tok.to_json()?)?;
    let tok_cfg = serde_json::json!({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": promptist::text::gpt2::EOS_TOKEN,
        "eos_token": promptist::text::gpt2::EOS_TOKEN,
        "unk_token": promptist::text::gpt2::EOS_TOKEN,
        "add_prefix_space": false,
        "model_max_length": cfg.context(),
    });
    write(&dir.join("tokenizer_config.json"), &(tok_cfg.to_string() + "\n"))
}

/// Move the filled `tmp` folder to `dir`, replacing what was there, so that an interruption leaves
/// either the old folder or the new one.
pub fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| TrainError::Options(format!("bad checkpoint path {}", dir.display())))?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    if dir.exists() {
        let old = parent.join(format!(".{name}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(format!("removing {}", old.display()), e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| TrainError::io(format!("moving {} aside", dir.display()), e))?;
        std::fs::rename(tmp, dir).map_err(|e| TrainError::io(format!("renaming {} to {}", tmp.display(), dir.display()), e))?;
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(format!("removing {}", old.display()), e))?;
    } else {
        std::fs::rename(tmp, dir).map_err(|e| TrainError::io(format!("renaming {} to {}", tmp.display(), dir.display()), e))?;
    }
    Ok(())
}

/// Read `trainer_state.json` of a checkpoint folder.
pub fn load_state(dir: &Path) -> Result<TrainerState> {
    let p = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(format!("reading {}", p.display()), e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", p.display())))
}

/// The config of a checkpoint folder.
pub fn load_config(dir: &Path) -> Result<Gpt2Config> {
    Ok(Gpt2Config::from_file(&dir.join("config.json"))?)
}
