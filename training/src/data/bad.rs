//! Bad-row reporting: every row or pair that is not used is recorded with its file, row and reason,
//! printed to stderr (the first few in full, then a count per reason) and written as
//! `bad_rows.jsonl`; with `--on-bad-row error` the first one stops the run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::{OnBadRow, Origin};
use crate::error::{Result, TrainError};

/// Why a row was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BadReason {
    EmptyRow,
    MissingColumn,
    EmptyTarget,
    NonUtf8,
    Malformed,
    TooLong,
    RephraseMissing,
}

impl BadReason {
    pub fn name(self) -> &'static str {
        match self {
            BadReason::EmptyRow => "empty_row",
            BadReason::MissingColumn => "missing_column",
            BadReason::EmptyTarget => "empty_target",
            BadReason::NonUtf8 => "non_utf8",
            BadReason::Malformed => "malformed",
            BadReason::TooLong => "too_long",
            BadReason::RephraseMissing => "rephrase_missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    pub origin: Origin,
    pub reason: BadReason,
    pub detail: String,
}

/// Collects bad rows under a policy.
#[derive(Debug)]
pub struct BadRows {
    pub policy: OnBadRow,
    pub rows: Vec<BadRow>,
}

/// How many bad rows are printed in full on stderr (all are in `bad_rows.jsonl`).
pub const PRINT_LIMIT: usize = 20;

impl BadRows {
    pub fn new(policy: OnBadRow) -> Self {
        Self { policy, rows: Vec::new() }
    }

    /// Record a bad row; under `OnBadRow::Error` this is the error that stops the run.
    pub fn report(&mut self, origin: &Origin, reason: BadReason, detail: impl Into<String>) -> Result<()> {
        let detail = detail.into();
        if self.policy == OnBadRow::Error {
            return Err(TrainError::Data(format!("{origin}: {}: {detail} (use --on-bad-row skip to skip such rows)", reason.name())));
        }
        self.rows.push(BadRow { origin: origin.clone(), reason, detail });
        Ok(())
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            *m.entry(r.reason.name()).or_insert(0) += 1;
        }
        m
    }

    /// Print the first rows and the counts to stderr.
    pub fn print_summary(&self, report_path: Option<&Path>) {
        if self.rows.is_empty() {
            return;
        }
        for r in self.rows.iter().take(PRINT_LIMIT) {
            eprintln!("bad row {}: {}: {}", r.origin, r.reason.name(), r.detail);
        }
        if self.rows.len() > PRINT_LIMIT {
            eprintln!("... and {} more bad rows", self.rows.len() - PRINT_LIMIT);
        }
        let counts: Vec<String> = self.counts().iter().map(|(k, v)| format!("{k} {v}")).collect();
        match report_path {
            Some(p) => eprintln!("skipped {} bad rows ({}); all listed in {}", self.rows.len(), counts.join(", "), p.display()),
            None => eprintln!("skipped {} bad rows ({})", self.rows.len(), counts.join(", ")),
        }
    }

    /// Write every bad row as one JSON line.
    pub fn write_jsonl(&self, path: &Path) -> Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| TrainError::io(format!("creating {}", path.display()), e))?);
        for r in &self.rows {
            let line = serde_json::json!({"file": r.origin.file, "row": r.origin.row, "reason": r.reason.name(), "detail": r.detail});
            writeln!(f, "{line}").map_err(|e| TrainError::io(format!("writing {}", path.display()), e))?;
        }
        f.flush().map_err(|e| TrainError::io(format!("writing {}", path.display()), e))
    }
}
