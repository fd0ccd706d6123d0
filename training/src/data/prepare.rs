//! From files to tokenised train / validation examples: read every file, build the sources,
//! tokenise `"{source} Rephrase:"` and `" {target}<|endoftext|>"` separately (the prompt part is
//! exactly what the policy sees at inference, docs/method.md §1), drop and report pairs longer than
//! the context, split by target (all sources of one target on the same side) with a seeded
//! shuffle, and print statistics to stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use promptist::text::gpt2::Gpt2Tokenizer;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::bad::{BadReason, BadRows};
use super::read::{read_file, Columns};
use super::sources::{build_pairs, SourceOptions};
use super::{OnBadRow, Origin, Pair, SourceKind};
use crate::error::{Result, TrainError};

/// The separator between source and target (one space on each side once joined).
pub const REPHRASE: &str = " Rephrase:";

/// One tokenised training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Prompt tokens followed by target tokens (the last one is EOS).
    pub ids: Vec<i64>,
    /// Index in `ids` of the first target token: the loss covers ids[target_start..].
    pub target_start: usize,
    pub kind: SourceKind,
    pub origin: Origin,
}

impl Example {
    pub fn target_tokens(&self) -> usize {
        self.ids.len() - self.target_start
    }
}

/// Options of [`prepare`].
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub files: Vec<PathBuf>,
    pub columns: Columns,
    pub sources: SourceOptions,
    pub on_bad_row: OnBadRow,
    /// Fraction of targets held out for validation.
    pub val_fraction: f64,
    /// Longest example in tokens (the paper's 512, capped by the model context).
    pub max_length: usize,
    pub seed: u64,
}

/// Prepared data and its statistics.
pub struct Prepared {
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub stats: DataStats,
    pub bad: BadRows,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataStats {
    pub files: Vec<(String, usize)>,
    pub rows_read: usize,
    pub records: usize,
    pub bad_rows: BTreeMap<&'static str, usize>,
    pub pairs_by_kind: BTreeMap<&'static str, usize>,
    pub train_examples: usize,
    pub val_examples: usize,
    pub train_targets: usize,
    pub val_targets: usize,
    pub mean_prompt_tokens: f64,
    pub mean_target_tokens: f64,
    pub max_tokens: usize,
    pub train_target_tokens: usize,
    /// sha256 over the examples' ids and split; a resumed run checks it.
    pub fingerprint: String,
}

/// Tokenise one pair; `None` (reported) when it is longer than `max_length`.
pub fn tokenise_pair(tok: &Gpt2Tokenizer, pair: &Pair, max_length: usize, bad: &mut BadRows) -> Result<Option<Example>> {
    let prompt = format!("{}{REPHRASE}", pair.source.trim());
    let target = format!(" {}", pair.target.trim());
    let mut ids: Vec<i64> = tok.encode(&prompt)?.into_iter().map(i64::from).collect();
    let target_start = ids.len();
    ids.extend(tok.encode(&target)?.into_iter().map(i64::from));
    ids.push(i64::from(tok.eos_id()));
    if ids.len() > max_length {
        bad.report(
            &pair.origin,
            BadReason::TooLong,
            format!("{} pair has {} tokens ({} of them target) > the limit of {max_length}", pair.kind.name(), ids.len(), ids.len() - target_start),
        )?;
        return Ok(None);
    }
    Ok(Some(Example { ids, target_start, kind: pair.kind, origin: pair.origin.clone() }))
}

fn fingerprint(train: &[Example], val: &[Example]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (tag, set) in [(b"T", train), (b"V", val)] {
        for e in set {
            h.update(tag);
            h.update((e.target_start as u64).to_le_bytes());
            h.update((e.ids.len() as u64).to_le_bytes());
            for id in &e.ids {
                h.update(id.to_le_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

/// Read, build, tokenise and split.
pub fn prepare(opts: &DataOptions, tok: &Gpt2Tokenizer) -> Result<Prepared> {
    if opts.files.is_empty() {
        return Err(TrainError::Options("no data files given".into()));
    }
    if !(0.0..1.0).contains(&opts.val_fraction) {
        return Err(TrainError::Options(format!("--val-fraction {} must be in [0, 1)", opts.val_fraction)));
    }
    let mut bad = BadRows::new(opts.on_bad_row);
    let mut records = Vec::new();
    let mut files = Vec::new();
    let mut rows_read = 0;
    for f in &opts.files {
        let (recs, rows) = read_file(f, &opts.columns, &mut bad)?;
        files.push((f.display().to_string(), rows));
        rows_read += rows;
        records.extend(recs);
    }
    let pairs = build_pairs(&records, &opts.sources, &mut bad)?;
    // Tokenise per record.
    let mut per_record: Vec<Vec<Example>> = Vec::with_capacity(pairs.len());
    let mut pairs_by_kind = BTreeMap::new();
    for ps in &pairs {
        let mut ex = Vec::new();
        for p in ps {
            if let Some(e) = tokenise_pair(tok, p, opts.max_length, &mut bad)? {
                *pairs_by_kind.entry(p.kind.name()).or_insert(0) += 1;
                ex.push(e);
            }
        }
        per_record.push(ex);
    }
    // Split by record.
    let mut idx: Vec<usize> = (0..per_record.len()).filter(|&i| !per_record[i].is_empty()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed_5917);
    idx.shuffle(&mut rng);
    let mut n_val = (idx.len() as f64 * opts.val_fraction).round() as usize;
    if opts.val_fraction > 0.0 && n_val == 0 && idx.len() >= 2 {
        n_val = 1;
    }
    let mut val_idx: Vec<usize> = idx[..n_val].to_vec();
    let mut train_idx: Vec<usize> = idx[n_val..].to_vec();
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    let collect = |ids: &[usize]| -> Vec<Example> { ids.iter().flat_map(|&i| per_record[i].iter().cloned()).collect() };
    let train = collect(&train_idx);
    let val = collect(&val_idx);
    if train.is_empty() {
        return Err(TrainError::Data("no usable training examples (every row was bad or held out)".into()));
    }
    let all: Vec<&Example> = train.iter().chain(val.iter()).collect();
    let n = all.len().max(1) as f64;
    let stats = DataStats {
        files,
        rows_read,
        records: records.len(),
        bad_rows: bad.counts(),
        pairs_by_kind,
        train_examples: train.len(),
        val_examples: val.len(),
        train_targets: train_idx.len(),
        val_targets: val_idx.len(),
        mean_prompt_tokens: all.iter().map(|e| e.target_start as f64).sum::<f64>() / n,
        mean_target_tokens: all.iter().map(|e| e.target_tokens() as f64).sum::<f64>() / n,
        max_tokens: all.iter().map(|e| e.ids.len()).max().unwrap_or(0),
        train_target_tokens: train.iter().map(|e| e.target_tokens()).sum(),
        fingerprint: fingerprint(&train, &val),
    };
    Ok(Prepared { train, val, stats, bad })
}

impl DataStats {
    /// Print the statistics to stderr.
    pub fn print(&self) {
        for (f, rows) in &self.files {
            eprintln!("data: {f}: {rows} rows");
        }
        eprintln!("data: {} rows read, {} usable rows", self.rows_read, self.records);
        if !self.bad_rows.is_empty() {
            let b: Vec<String> = self.bad_rows.iter().map(|(k, v)| format!("{k} {v}")).collect();
            eprintln!("data: bad: {}", b.join(", "));
        }
        let k: Vec<String> = self.pairs_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!("data: pairs by source kind: {}", k.join(", "));
        eprintln!(
            "data: train {} examples ({} targets, {} target tokens), validation {} examples ({} targets)",
            self.train_examples, self.train_targets, self.train_target_tokens, self.val_examples, self.val_targets
        );
        eprintln!(
            "data: mean prompt {:.1} tokens, mean target {:.1} tokens, longest example {} tokens",
            self.mean_prompt_tokens, self.mean_target_tokens, self.max_tokens
        );
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::Data(format!("stats to JSON: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|e| TrainError::io(format!("writing {}", path.display()), e))
    }
}
