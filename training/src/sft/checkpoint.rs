//! Checkpoint folders in the Hugging Face layout, so the library's converter and transformers
//! read them as they are: `config.json`, `model.safetensors` (f32, tied head omitted),
//! `tokenizer.json` + `tokenizer_config.json`, plus the trainer's `trainer_state.json` and, for the
//! resumable `last/` checkpoint, `optimizer.safetensors` (AdamW moments). A folder is written under
//! a temporary name, every file and the folder are flushed to the disk (fsync), and it is renamed
//! into place and the parent folder flushed, so a kill or a power cut leaves the old checkpoint or
//! the new one, never a half one (the write-fsync-rename-fsync sequence of POSIX's rename(2)
//! guarantee). A failed write (a full disk) removes the half-written copy and keeps the old one.

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
    let st = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint(format!("state to JSON: {e}")))?;
    write_dir_atomically(dir, |tmp| {
        write_model_files(tmp, params, tok, synthetic)?;
        write(&tmp.join("trainer_state.json"), &(st + "\n"))?;
        match optimizer {
            Some(opt) => opt.save(&tmp.join("optimizer.safetensors")),
            None => Ok(()),
        }
    })
}

/// Run `fill` on a fresh temporary folder beside `dir`, then move it into place with
/// [`replace_dir`]. When `fill` or the replacement fails, the temporary folder is removed (so a
/// full disk gets its space back) and `dir` is left as it was.
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = fresh_tmp_dir(dir)?;
    let r = fill(&tmp).and_then(|()| replace_dir(&tmp, dir));
    if r.is_err() && tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    r
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync the folder.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| TrainError::Options(format!("bad file path {}", path.display())))?;
    let parent = parent_of(path);
    let tmp = parent.join(format!(".{name}.tmp"));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| TrainError::io(format!("creating {}", tmp.display()), e))?;
        f.write_all(bytes).map_err(|e| TrainError::io(format!("writing {}", tmp.display()), e))?;
        f.sync_all().map_err(|e| TrainError::io(format!("flushing {} to disk", tmp.display()), e))?;
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(format!("renaming {} to {}", tmp.display(), path.display()), e))?;
        sync_dir(parent)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(q) if !q.as_os_str().is_empty() => q,
        _ => Path::new("."),
    }
}

/// fsync a folder, so the names in it (a rename, a new file) survive a power cut.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io(format!("flushing folder {} to disk", dir.display()), e))
}

/// fsync every file and folder under `dir` (and `dir` itself).
fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(format!("listing {}", dir.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| TrainError::io(format!("listing {}", dir.display()), e))?;
        let p = e.path();
        let ft = e.file_type().map_err(|e| TrainError::io(format!("reading {}", p.display()), e))?;
        if ft.is_dir() {
            sync_tree(&p)?;
        } else {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| TrainError::io(format!("flushing {} to disk", p.display()), e))?;
        }
    }
    sync_dir(dir)
}

/// The checkpoint folder to resume from: `dir` when it holds `marker` (its state file), or the
/// `.NAME.old` copy when a kill landed between the two renames of [`replace_dir`].
pub fn resumable(dir: &Path, marker: &str) -> Option<std::path::PathBuf> {
    if dir.join(marker).is_file() {
        return Some(dir.to_path_buf());
    }
    let name = dir.file_name()?.to_str()?;
    let old = dir.parent()?.join(format!(".{name}.old"));
    old.join(marker).is_file().then_some(old)
}

/// An empty `.NAME.tmp` folder beside `dir`, to fill and then move into place with [`replace_dir`].
fn fresh_tmp_dir(dir: &Path) -> Result<std::path::PathBuf> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| TrainError::Options(format!("bad checkpoint path {}", dir.display())))?;
    let tmp = parent_of(dir).join(format!(".{name}.tmp"));
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
/// either the old folder or the new one: `tmp`'s files are flushed to disk first, and the parent
/// folder after each rename.
fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| TrainError::Options(format!("bad checkpoint path {}", dir.display())))?;
    let parent = parent_of(dir);
    sync_tree(tmp)?;
    if dir.exists() {
        let old = parent.join(format!(".{name}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(format!("removing {}", old.display()), e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| TrainError::io(format!("moving {} aside", dir.display()), e))?;
        sync_dir(parent)?;
        std::fs::rename(tmp, dir).map_err(|e| TrainError::io(format!("renaming {} to {}", tmp.display(), dir.display()), e))?;
        sync_dir(parent)?;
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(format!("removing {}", old.display()), e))?;
    } else {
        std::fs::rename(tmp, dir).map_err(|e| TrainError::io(format!("renaming {} to {}", tmp.display(), dir.display()), e))?;
        sync_dir(parent)?;
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
