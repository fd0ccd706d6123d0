//! Readers for JSONL (one object per line), CSV (header row) and Parquet (e.g. DiffusionDB's
//! `metadata.parquet`, whose `prompt` column holds the prompts; read through the `parquet` crate's
//! row API with a projection onto the needed columns). Each row becomes a [`Record`] or a reported
//! bad row (empty row, missing column, empty target, non-UTF-8 bytes, malformed row).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::bad::{BadReason, BadRows};
use super::{Origin, Record};
use crate::error::{Result, TrainError};

/// Which columns hold what. `None` target means: "target", else "prompt" (DiffusionDB).
/// Optional columns default to "source", "rephrase_main" and "rephrase_target" when present.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub target: Option<String>,
    pub source: Option<String>,
    pub rephrase_main: Option<String>,
    pub rephrase_target: Option<String>,
}

/// A cell: text bytes, or absent / null.
enum Cell {
    Bytes(Vec<u8>),
    Null,
}

/// The file format, from the extension (`.jsonl`/`.json`, `.csv`, `.parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            _ => Err(TrainError::Data(format!("{}: unknown data format (expected .jsonl, .csv or .parquet)", path.display()))),
        }
    }
}

/// Resolved column names for one file.
struct Resolved {
    target: String,
    source: Option<String>,
    rephrase_main: Option<String>,
    rephrase_target: Option<String>,
}

fn resolve(cols: &Columns, have: &dyn Fn(&str) -> bool, file: &str) -> Result<Resolved> {
    let target = match &cols.target {
        Some(t) => t.clone(),
        None if have("target") => "target".into(),
        None if have("prompt") => "prompt".into(),
        // JSONL has no header: keep "target" and let each row report the missing column.
        None => "target".into(),
    };
    let opt = |given: &Option<String>, default: &str| -> Option<String> {
        match given {
            Some(g) => Some(g.clone()),
            None if have(default) => Some(default.to_string()),
            None => None,
        }
    };
    let _ = file;
    Ok(Resolved {
        target,
        source: opt(&cols.source, "source"),
        rephrase_main: opt(&cols.rephrase_main, "rephrase_main"),
        rephrase_target: opt(&cols.rephrase_target, "rephrase_target"),
    })
}

/// Turn one row's cells into a record, or report it.
fn to_record(origin: Origin, res: &Resolved, get: &mut dyn FnMut(&str) -> Option<Cell>, explicit: &Columns, bad: &mut BadRows) -> Result<Option<Record>> {
    // Required: target. Source is required only when the user named the column.
    let text = |cell: Option<Cell>, name: &str, required: bool, bad: &mut BadRows| -> Result<std::result::Result<Option<String>, ()>> {
        match cell {
            None if required => {
                bad.report(&origin, BadReason::MissingColumn, format!("no column {name:?}"))?;
                Ok(Err(()))
            }
            None | Some(Cell::Null) => Ok(Ok(None)),
            Some(Cell::Bytes(b)) => match String::from_utf8(b) {
                Ok(s) => Ok(Ok(Some(s))),
                Err(e) => {
                    bad.report(&origin, BadReason::NonUtf8, format!("column {name:?} is not UTF-8 ({})", e.utf8_error()))?;
                    Ok(Err(()))
                }
            },
        }
    };
    let Ok(target) = text(get(&res.target), &res.target, true, bad)? else { return Ok(None) };
    let target = target.map(|t| t.trim().to_string()).unwrap_or_default();
    let mut optional = |col: &Option<String>, required: bool, bad: &mut BadRows| -> Result<std::result::Result<Option<String>, ()>> {
        match col {
            None => Ok(Ok(None)),
            Some(c) => Ok(text(get(c), c, required, bad)?.map(|o| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))),
        }
    };
    let Ok(source) = optional(&res.source, explicit.source.is_some(), bad)? else { return Ok(None) };
    let Ok(rephrase_main) = optional(&res.rephrase_main, explicit.rephrase_main.is_some(), bad)? else { return Ok(None) };
    let Ok(rephrase_target) = optional(&res.rephrase_target, explicit.rephrase_target.is_some(), bad)? else { return Ok(None) };
    if target.is_empty() {
        bad.report(&origin, BadReason::EmptyTarget, format!("column {:?} is empty", res.target))?;
        return Ok(None);
    }
    if explicit.source.is_some() && source.is_none() {
        bad.report(&origin, BadReason::MissingColumn, format!("column {:?} is empty", res.source.clone().unwrap_or_default()))?;
        return Ok(None);
    }
    Ok(Some(Record { origin, target, source, rephrase_main, rephrase_target }))
}

/// Read every row of `path`; bad rows go to `bad`. Returns the records and the number of rows read.
pub fn read_file(path: &Path, cols: &Columns, bad: &mut BadRows) -> Result<(Vec<Record>, usize)> {
    match Format::of(path)? {
        Format::Jsonl => read_jsonl(path, cols, bad),
        Format::Csv => read_csv(path, cols, bad),
        Format::Parquet => read_parquet(path, cols, bad),
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| TrainError::io(format!("opening {}", path.display()), e))
}

fn read_jsonl(path: &Path, cols: &Columns, bad: &mut BadRows) -> Result<(Vec<Record>, usize)> {
    let file = path.display().to_string();
    let mut reader = BufReader::new(open(path)?);
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut row = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| TrainError::io(format!("reading {file}"), e))?;
        if n == 0 {
            break;
        }
        row += 1;
        let origin = Origin { file: file.clone(), row };
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(e) => {
                bad.report(&origin, BadReason::NonUtf8, format!("line is not UTF-8 ({e})"))?;
                continue;
            }
        };
        if text.is_empty() {
            bad.report(&origin, BadReason::EmptyRow, "blank line")?;
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(o)) => o,
            Ok(_) => {
                bad.report(&origin, BadReason::Malformed, "not a JSON object")?;
                continue;
            }
            Err(e) => {
                bad.report(&origin, BadReason::Malformed, format!("invalid JSON: {e}"))?;
                continue;
            }
        };
        if obj.is_empty() {
            bad.report(&origin, BadReason::EmptyRow, "empty object")?;
            continue;
        }
        let res = resolve(cols, &|c| obj.contains_key(c), &file)?;
        let mut get = |c: &str| -> Option<Cell> {
            obj.get(c).map(|v| match v {
                serde_json::Value::Null => Cell::Null,
                serde_json::Value::String(s) => Cell::Bytes(s.clone().into_bytes()),
                other => Cell::Bytes(other.to_string().into_bytes()),
            })
        };
        if let Some(r) = to_record(origin, &res, &mut get, cols, bad)? {
            out.push(r);
        }
    }
    Ok((out, row))
}

fn read_csv(path: &Path, cols: &Columns, bad: &mut BadRows) -> Result<(Vec<Record>, usize)> {
    let file = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(open(path)?);
    let headers = rdr.byte_headers().map_err(|e| TrainError::Data(format!("{file}: reading the CSV header: {e}")))?.clone();
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let res = resolve(cols, &|c| index.contains_key(c), &file)?;
    if !index.contains_key(res.target.as_str()) {
        return Err(TrainError::Data(format!("{file}: no column {:?} (columns: {})", res.target, names.join(", "))));
    }
    for c in [&cols.source, &cols.rephrase_main, &cols.rephrase_target].into_iter().flatten() {
        if !index.contains_key(c.as_str()) {
            return Err(TrainError::Data(format!("{file}: no column {c:?} (columns: {})", names.join(", "))));
        }
    }
    let mut out = Vec::new();
    let mut rows = 0usize;
    let mut rec = csv::ByteRecord::new();
    loop {
        let more = match rdr.read_byte_record(&mut rec) {
            Ok(m) => m,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(rows + 2);
                bad.report(&Origin { file: file.clone(), row: line }, BadReason::Malformed, format!("CSV error: {e}"))?;
                rows += 1;
                continue;
            }
        };
        if !more {
            break;
        }
        rows += 1;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(rows + 1);
        let origin = Origin { file: file.clone(), row: line };
        if rec.iter().all(|f| f.iter().all(|b| b.is_ascii_whitespace())) {
            bad.report(&origin, BadReason::EmptyRow, "all fields empty")?;
            continue;
        }
        let mut get = |c: &str| -> Option<Cell> { index.get(c).and_then(|&i| rec.get(i)).map(|b| Cell::Bytes(b.to_vec())) };
        if let Some(r) = to_record(origin, &res, &mut get, cols, bad)? {
            out.push(r);
        }
    }
    Ok((out, rows))
}

fn read_parquet(path: &Path, cols: &Columns, bad: &mut BadRows) -> Result<(Vec<Record>, usize)> {
    use parquet::column::reader::ColumnReader;
    use parquet::data_type::ByteArray;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let file = path.display().to_string();
    let perr = |e: parquet::errors::ParquetError| TrainError::Data(format!("{file}: {e}"));
    let reader = SerializedFileReader::new(open(path)?).map_err(perr)?;
    let meta = reader.metadata();
    let descr = meta.file_metadata().schema_descr();
    // top-level (non-nested) columns by name
    let index: HashMap<String, usize> = (0..descr.num_columns()).filter(|&i| descr.column(i).path().parts().len() == 1).map(|i| (descr.column(i).name().to_string(), i)).collect();
    let res = resolve(cols, &|c| index.contains_key(c), &file)?;
    let wanted: Vec<&String> = [Some(&res.target), res.source.as_ref(), res.rephrase_main.as_ref(), res.rephrase_target.as_ref()].into_iter().flatten().collect();
    for w in &wanted {
        if !index.contains_key(w.as_str()) {
            let mut names: Vec<&str> = index.keys().map(|s| s.as_str()).collect();
            names.sort_unstable();
            return Err(TrainError::Data(format!("{file}: no column {w:?} (columns: {})", names.join(", "))));
        }
    }
    // Read the wanted columns as raw BYTE_ARRAY values with definition levels (the record API
    // would turn a non-UTF-8 value into an error that stops it from advancing); UTF-8 is checked
    // per cell by to_record, so such a row is reported and the next rows are still read.
    let mut out = Vec::new();
    let mut rows = 0usize;
    for g in 0..meta.num_row_groups() {
        let rg = reader.get_row_group(g).map_err(perr)?;
        let n = rg.metadata().num_rows().max(0) as usize;
        let mut columns: HashMap<&str, Vec<Option<Vec<u8>>>> = HashMap::new();
        for w in &wanted {
            let ci = index[w.as_str()];
            let max_def = descr.column(ci).max_def_level();
            let ColumnReader::ByteArrayColumnReader(mut r) = rg.get_column_reader(ci).map_err(perr)? else {
                return Err(TrainError::Data(format!("{file}: column {w:?} is not a text (BYTE_ARRAY) column")));
            };
            let (mut values, mut defs): (Vec<ByteArray>, Vec<i16>) = (Vec::new(), Vec::new());
            let mut got = 0;
            while got < n {
                let (recs, _, _) = r.read_records(n - got, Some(&mut defs), None, &mut values).map_err(perr)?;
                if recs == 0 {
                    break;
                }
                got += recs;
            }
            let mut vals = values.into_iter();
            let cells: Vec<Option<Vec<u8>>> = if max_def == 0 {
                vals.map(|v| Some(v.data().to_vec())).collect()
            } else {
                defs.iter().map(|&d| if d == max_def { vals.next().map(|v| v.data().to_vec()) } else { None }).collect()
            };
            if cells.len() != n {
                return Err(TrainError::Data(format!("{file}: row group {g}: column {w:?} has {} values for {n} rows", cells.len())));
            }
            columns.insert(w.as_str(), cells);
        }
        for i in 0..n {
            rows += 1;
            let origin = Origin { file: file.clone(), row: rows };
            let mut get = |c: &str| -> Option<Cell> {
                columns.get_mut(c).map(|v| match v[i].take() {
                    Some(b) => Cell::Bytes(b),
                    None => Cell::Null,
                })
            };
            if let Some(r) = to_record(origin, &res, &mut get, cols, bad)? {
                out.push(r);
            }
        }
    }
    Ok((out, rows))
}
