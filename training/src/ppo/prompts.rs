//! RL prompts (docs/method.md §5: DiffusionDB user inputs, COCO captions, ImageNet-21k labels): one
//! file per domain, mixed with weights. A domain is `PATH[:WEIGHT]`; `.txt` files hold one prompt
//! per line, `.jsonl` / `.csv` / `.parquet` are read through the SFT data reader with the prompt in
//! column "prompt" (or the `--prompt-col` given). Each batch draws its domains by weight and a
//! prompt uniformly within each, from a ChaCha8 stream that is a pure function of (seed, step), so a
//! resumed run draws the same prompts.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::bad::BadRows;
use crate::data::read::{read_file, Columns};
use crate::data::OnBadRow;
use crate::error::{Result, TrainError};

/// One domain of prompts.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub weight: f64,
    pub prompts: Vec<String>,
}

/// Weighted domains of prompts.
#[derive(Debug, Clone)]
pub struct PromptMix {
    pub domains: Vec<Domain>,
}

/// Parse `PATH[:WEIGHT]` (a weight is the text after the last ':' when it parses as a number).
pub fn parse_domain_arg(arg: &str) -> Result<(PathBuf, f64)> {
    if let Some((p, w)) = arg.rsplit_once(':') {
        if let Ok(w) = w.parse::<f64>() {
            if !(w.is_finite() && w > 0.0) {
                return Err(TrainError::Options(format!("{arg}: the domain weight must be positive")));
            }
            return Ok((PathBuf::from(p), w));
        }
    }
    Ok((PathBuf::from(arg), 1.0))
}

/// Read the prompts of one file (blank prompts are dropped; none at all is an error).
pub fn read_prompts(path: &Path, column: Option<&str>) -> Result<Vec<String>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let prompts: Vec<String> = if ext == "txt" {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(format!("reading {}", path.display()), e))?;
        text.lines().map(|l| l.trim().to_string()).collect()
    } else {
        let cols = Columns { target: Some(column.unwrap_or("prompt").to_string()), ..Default::default() };
        let mut bad = BadRows::new(OnBadRow::Skip);
        let (records, _) = read_file(path, &cols, &mut bad)?;
        records.into_iter().map(|r| r.target.trim().to_string()).collect()
    };
    let prompts: Vec<String> = prompts.into_iter().filter(|p| !p.is_empty()).collect();
    if prompts.is_empty() {
        return Err(TrainError::Data(format!("{}: no prompts", path.display())));
    }
    Ok(prompts)
}

impl PromptMix {
    /// Load `PATH[:WEIGHT]` domains.
    pub fn load(args: &[String], column: Option<&str>) -> Result<Self> {
        if args.is_empty() {
            return Err(TrainError::Options("no prompt files given".into()));
        }
        let mut domains = Vec::new();
        for a in args {
            let (path, weight) = parse_domain_arg(a)?;
            let prompts = read_prompts(&path, column)?;
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("prompts").to_string();
            domains.push(Domain { name, weight, prompts });
        }
        Ok(Self { domains })
    }

    /// The prompts of step `step`: `n` draws, each a domain by weight then a prompt in it.
    pub fn batch(&self, seed: u64, step: u64, n: usize) -> Vec<(usize, String)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(step.wrapping_add(1) << 8);
        let total: f64 = self.domains.iter().map(|d| d.weight).sum();
        (0..n)
            .map(|_| {
                let mut u = rng.random::<f64>() * total;
                let mut di = self.domains.len() - 1;
                for (i, d) in self.domains.iter().enumerate() {
                    if u < d.weight {
                        di = i;
                        break;
                    }
                    u -= d.weight;
                }
                let d = &self.domains[di];
                (di, d.prompts[rng.random_range(0..d.prompts.len())].clone())
            })
            .collect()
    }

    /// A fingerprint of the prompts and weights (a resume with other prompts is refused).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for d in &self.domains {
            h.update(d.weight.to_le_bytes());
            for p in &d.prompts {
                h.update(p.as_bytes());
                h.update([0u8]);
            }
            h.update([1u8]);
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_mix_by_weight_and_draws_repeat_per_step() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("coco.txt");
        let b = dir.path().join("db.jsonl");
        std::fs::write(&a, "a dog\n\n a cat \n").unwrap();
        std::fs::write(&b, "{\"prompt\": \"castle, artstation\"}\n{\"prompt\": \"\"}\n").unwrap();
        let mix = PromptMix::load(&[format!("{}:3", a.display()), b.display().to_string()], None).unwrap();
        assert_eq!(mix.domains[0].prompts, vec!["a dog", "a cat"]);
        assert_eq!(mix.domains[1].prompts, vec!["castle, artstation"]);
        assert_eq!(mix.domains[0].weight, 3.0);
        let draws = mix.batch(7, 0, 4000);
        let share = draws.iter().filter(|d| d.0 == 0).count() as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "domain 0 share {share}");
        assert_eq!(mix.batch(7, 5, 16), mix.batch(7, 5, 16));
        assert_ne!(mix.batch(7, 5, 16), mix.batch(7, 6, 16));
        assert!(parse_domain_arg("x.txt:0").is_err());
        assert_eq!(parse_domain_arg("C:/x.txt").unwrap(), (PathBuf::from("C:/x.txt"), 1.0));
        let empty = dir.path().join("e.txt");
        std::fs::write(&empty, "\n").unwrap();
        assert!(PromptMix::load(&[empty.display().to_string()], None).is_err());
    }
}
