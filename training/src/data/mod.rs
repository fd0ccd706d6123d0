//! Training data for supervised fine-tuning (docs/method.md §4): reading JSONL / CSV / Parquet rows
//! (read.rs), building the paper's four kinds of sources from engineered targets (sources.rs),
//! and tokenising, checking and splitting them into train / validation examples (prepare.rs).
//! Every row that cannot be used is reported with its file and row number (bad.rs).

pub mod bad;
pub mod prepare;
pub mod read;
pub mod sources;

use std::fmt;

/// Where a row came from: file and 1-based row number (JSONL: line; CSV: record line; Parquet:
/// row index + 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub row: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.row)
    }
}

/// One usable input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub origin: Origin,
    /// The engineered prompt (main content + modifiers).
    pub target: String,
    /// A given source (pairs data); `None` for targets-only data.
    pub source: Option<String>,
    /// A rephrasing of the main content (column or external command).
    pub rephrase_main: Option<String>,
    /// A rephrasing of the whole target (column or external command).
    pub rephrase_target: Option<String>,
}

/// How a training source was made (docs/method.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// Given in the data.
    Given,
    /// (1) main content, modifiers trimmed.
    MainContent,
    /// (2) main content with modifiers randomly dropped and shuffled.
    MainContentModifiers,
    /// (3) a rephrasing of the main content.
    RephrasedMain,
    /// (4) a rephrasing of the whole target.
    RephrasedTarget,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Given => "given",
            SourceKind::MainContent => "main_content",
            SourceKind::MainContentModifiers => "main_content_modifiers",
            SourceKind::RephrasedMain => "rephrased_main",
            SourceKind::RephrasedTarget => "rephrased_target",
        }
    }
}

/// A (source, target) pair before tokenisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub origin: Origin,
    pub kind: SourceKind,
    pub source: String,
    pub target: String,
}

/// What to do with a bad row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadRow {
    /// Report it (stderr and `bad_rows.jsonl`) and go on.
    Skip,
    /// Stop with an error naming the file and row.
    Error,
}

impl OnBadRow {
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "skip" => Ok(OnBadRow::Skip),
            "error" => Ok(OnBadRow::Error),
            o => Err(crate::TrainError::Options(format!("--on-bad-row {o:?}: expected skip or error"))),
        }
    }
}
