//! Sources built from engineered targets as the Promptist paper does (docs/method.md §4):
//! (1) the main content with the modifiers trimmed, (2) the main content with some modifiers
//! randomly removed and the rest shuffled, (3) a rephrasing of the main content and (4) a
//! rephrasing of the whole target, the last two from columns or from a user-given external command;
//! then the first letter's case is randomised and a period randomly added. The main content is
//! the text before the first comma; modifiers are the comma-separated rest.
//!
//! Randomness: one ChaCha8 stream per record (seed, stream = record index), so a record's sources
//! do not depend on which other records exist or their order.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bad::{BadReason, BadRows};
use super::{Pair, Record, SourceKind};
use crate::error::{Result, TrainError};

/// Split a target into main content and modifiers.
pub fn split_modifiers(target: &str) -> (String, Vec<String>) {
    let mut parts = target.split(',').map(|s| s.trim().to_string());
    let main = parts.next().unwrap_or_default();
    let mods = parts.filter(|s| !s.is_empty()).collect();
    (main, mods)
}

/// Randomise the first letter's case and append a period with probability 1/2 each.
pub fn randomise_surface(s: &str, rng: &mut ChaCha8Rng) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len() + 1);
    let mut chars = s.chars();
    if let Some(c) = chars.next() {
        if rng.random_bool(0.5) {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        out.push_str(chars.as_str());
    }
    let add_period = rng.random_bool(0.5);
    if add_period && !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Main content with each modifier kept with probability 1/2, the kept ones shuffled; `None` when
/// the target has no modifiers (it would equal kind (1)).
pub fn drop_and_shuffle(main: &str, mods: &[String], rng: &mut ChaCha8Rng) -> Option<String> {
    if mods.is_empty() {
        return None;
    }
    let mut kept: Vec<&String> = mods.iter().filter(|_| rng.random_bool(0.5)).collect();
    kept.shuffle(rng);
    let mut s = main.to_string();
    for m in kept {
        s.push_str(", ");
        s.push_str(m);
    }
    Some(s)
}

/// Which source kinds to build for targets-only rows.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    pub seed: u64,
    pub main_content: bool,
    pub main_content_modifiers: bool,
    pub rephrased_main: bool,
    pub rephrased_target: bool,
    /// Shell command that rephrases texts (see [`run_rephrase_command`]); used for rows that lack
    /// a rephrasing column value.
    pub rephrase_command: Option<String>,
}

impl SourceOptions {
    /// Parse a comma list of kinds: mc, mcm, rmc, rtp (or "all").
    pub fn with_kinds(seed: u64, kinds: &str, rephrase_command: Option<String>) -> Result<Self> {
        let mut o = SourceOptions { seed, main_content: false, main_content_modifiers: false, rephrased_main: false, rephrased_target: false, rephrase_command };
        for k in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match k {
                "all" => {
                    o.main_content = true;
                    o.main_content_modifiers = true;
                    o.rephrased_main = true;
                    o.rephrased_target = true;
                }
                "mc" => o.main_content = true,
                "mcm" => o.main_content_modifiers = true,
                "rmc" => o.rephrased_main = true,
                "rtp" => o.rephrased_target = true,
                other => return Err(TrainError::Options(format!("source kind {other:?}: expected mc, mcm, rmc, rtp or all"))),
            }
        }
        Ok(o)
    }
}

/// Run the external rephrasing command once over all `texts`: it gets one JSON object per line on
/// stdin, `{"id": N, "kind": "main_content"|"target", "text": "..."}`, and must print one JSON
/// object per line, `{"id": N, "text": "..."}` (any order; ids it leaves out count as missing).
pub fn run_rephrase_command(cmd: &str, texts: &[(usize, &'static str, String)]) -> Result<std::collections::HashMap<usize, String>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| TrainError::io(format!("starting rephrase command {cmd:?}"), e))?;
    let mut input = String::new();
    for (id, kind, text) in texts {
        input.push_str(&serde_json::json!({"id": id, "kind": kind, "text": text}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().ok_or_else(|| TrainError::External("rephrase command has no stdin".into()))?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = String::new();
    child
        .stdout
        .take()
        .ok_or_else(|| TrainError::External("rephrase command has no stdout".into()))?
        .read_to_string(&mut out)
        .map_err(|e| TrainError::io(format!("reading the output of {cmd:?} (must be UTF-8)"), e))?;
    let status = child.wait().map_err(|e| TrainError::io(format!("waiting for {cmd:?}"), e))?;
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Ok(Err(e)) => return Err(TrainError::io(format!("writing to {cmd:?}"), e)),
        Err(_) => return Err(TrainError::External(format!("writer thread for {cmd:?} failed"))),
    }
    if !status.success() {
        return Err(TrainError::External(format!("rephrase command {cmd:?} exited with {status}")));
    }
    let mut map = std::collections::HashMap::new();
    for (i, line) in out.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| TrainError::External(format!("{cmd:?} output line {}: {e}", i + 1)))?;
        let id = v.get("id").and_then(|x| x.as_u64()).ok_or_else(|| TrainError::External(format!("{cmd:?} output line {}: no integer \"id\"", i + 1)))?;
        let text = v.get("text").and_then(|x| x.as_str()).ok_or_else(|| TrainError::External(format!("{cmd:?} output line {}: no string \"text\"", i + 1)))?;
        map.insert(id as usize, text.trim().to_string());
    }
    Ok(map)
}

/// Build the pairs of every record. Given sources are kept as they are; targets-only records get
/// the kinds in `opts`. A requested rephrasing that neither a column nor the command supplies is
/// reported as a bad row (kind dropped for that row).
pub fn build_pairs(records: &[Record], opts: &SourceOptions, bad: &mut BadRows) -> Result<Vec<Vec<Pair>>> {
    // Rephrasings the external command must supply.
    let mut requests: Vec<(usize, &'static str, String)> = Vec::new();
    if let Some(_cmd) = &opts.rephrase_command {
        for (i, r) in records.iter().enumerate().filter(|(_, r)| r.source.is_none()) {
            if opts.rephrased_main && r.rephrase_main.is_none() {
                requests.push((2 * i, "main_content", split_modifiers(&r.target).0));
            }
            if opts.rephrased_target && r.rephrase_target.is_none() {
                requests.push((2 * i + 1, "target", r.target.clone()));
            }
        }
    }
    let produced = match (&opts.rephrase_command, requests.is_empty()) {
        (Some(cmd), false) => run_rephrase_command(cmd, &requests)?,
        _ => Default::default(),
    };
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let mut pairs = Vec::new();
        let mk = |kind, source: String| Pair { origin: r.origin.clone(), kind, source, target: r.target.clone() };
        if let Some(s) = &r.source {
            pairs.push(mk(SourceKind::Given, s.clone()));
            out.push(pairs);
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        rng.set_stream(i as u64);
        let (main, mods) = split_modifiers(&r.target);
        if opts.main_content {
            pairs.push(mk(SourceKind::MainContent, randomise_surface(&main, &mut rng)));
        }
        if opts.main_content_modifiers {
            if let Some(s) = drop_and_shuffle(&main, &mods, &mut rng) {
                pairs.push(mk(SourceKind::MainContentModifiers, randomise_surface(&s, &mut rng)));
            }
        }
        let want = [
            (opts.rephrased_main, SourceKind::RephrasedMain, &r.rephrase_main, 2 * i, "main content"),
            (opts.rephrased_target, SourceKind::RephrasedTarget, &r.rephrase_target, 2 * i + 1, "target"),
        ];
        for (on, kind, column, id, what) in want {
            if !on {
                continue;
            }
            let text = column.clone().or_else(|| produced.get(&id).cloned()).filter(|t| !t.is_empty());
            match text {
                Some(t) => pairs.push(mk(kind, randomise_surface(&t, &mut rng))),
                None if opts.rephrase_command.is_some() => {
                    bad.report(&r.origin, BadReason::RephraseMissing, format!("the rephrase command gave no rephrasing of the {what}"))?;
                }
                // Without a column or a command this kind is simply not available (stated in the stats).
                None => {}
            }
        }
        out.push(pairs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_main_content_and_modifiers() {
        let (m, mods) = split_modifiers("a red fox in the snow, highly detailed,  digital painting ,");
        assert_eq!(m, "a red fox in the snow");
        assert_eq!(mods, vec!["highly detailed", "digital painting"]);
    }

    #[test]
    fn surface_randomisation_is_seeded() {
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<String> = (0..20).map(|_| randomise_surface("a cat", &mut a)).collect();
        let ys: Vec<String> = (0..20).map(|_| randomise_surface("a cat", &mut b)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|s| s.starts_with('A')) && xs.iter().any(|s| s.starts_with('a')));
        assert!(xs.iter().any(|s| s.ends_with('.')) && xs.iter().any(|s| !s.ends_with('.')));
    }
}
