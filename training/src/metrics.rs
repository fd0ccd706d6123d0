//! Metrics files of the trainers (JSON lines, one record per step), shared by SFT and PPO: a
//! resumed run keeps the lines of the steps its checkpoint covers and drops the rest, including a
//! line that a kill cut short.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, TrainError};

/// One line of a metrics file.
pub trait StepRecord: Serialize + DeserializeOwned {
    fn step(&self) -> u64;
}

/// Rewrite `path` with only its records of steps `<= step` (unparsable lines dropped) and return them.
pub fn truncate_metrics<T: StepRecord>(path: &Path, step: u64) -> Result<Vec<T>> {
    let mut kept = Vec::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            if let Ok(m) = serde_json::from_str::<T>(line) {
                if m.step() <= step {
                    kept.push(m);
                }
            }
        }
    }
    let mut s = String::new();
    for m in &kept {
        s.push_str(&serde_json::to_string(m).map_err(|e| TrainError::Data(format!("metrics: {e}")))?);
        s.push('\n');
    }
    // Atomic, so a kill during the rewrite cannot lose the lines before the checkpoint.
    crate::sft::checkpoint::write_file_atomically(path, s.as_bytes())?;
    Ok(kept)
}
