//! The repository stands alone: no tracked file points at a folder outside the clone (a sibling
//! `shared` folder, its data sub-folder, or a variable naming it) or cites a tracker issue number
//! (docs/ is where the reasons live), and the shipped data files are the ones their provenance note
//! (`src/data/README.md`) names, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every tracked file (`git ls-files`); the test needs a git checkout, as CI's fresh clone is.
fn tracked() -> Vec<PathBuf> {
    let out = Command::new("git").arg("ls-files").arg("-z").current_dir(root()).output().expect("run git ls-files");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()).map(|p| root().join(String::from_utf8_lossy(p).as_ref())).collect()
}

/// The forbidden references, built from pieces so this file does not match itself.
fn patterns() -> Vec<(String, &'static str)> {
    let shared = ["sha", "red"].concat();
    vec![
        (format!("../{shared}"), "a folder beside the clone"),
        (format!("{shared}/data"), "the outside data folder"),
        (format!("PROMPTIST_{}_DIR", shared.to_uppercase()), "a variable naming the outside folder"),
        (["SP", "EC.md"].concat(), "the outside method notes (cite docs/method.md)"),
        (["DES", "IGN.md"].concat(), "the outside design notes (cite docs/)"),
    ]
}

/// The word for a tracker entry followed by a number (`#` and a plural allowed): a reference to it.
fn cites_issue_number(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let word = ["iss", "ue"].concat();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find(&word) {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = rest[i + word.len()..].trim_start_matches('s').trim_start_matches(' ').trim_start_matches('#');
        if before_ok && after.starts_with(|c: char| c.is_ascii_digit()) {
            return true;
        }
        rest = &rest[i + word.len()..];
    }
    false
}

#[test]
fn detector_catches_what_it_must() {
    let w = ["Iss", "ue"].concat();
    assert!(cites_issue_number(&format!("see {w} 5 for why")));
    assert!(cites_issue_number(&format!("({} #12)", w.to_lowercase())));
    assert!(cites_issue_number(&format!("{}s 3 and 4", w.to_lowercase())));
    assert!(!cites_issue_number("a known issue with beams"));
    assert!(!cites_issue_number("tissue 4"));
    let text = format!("look in {}/SPEC", ["..", "/shared"].concat());
    assert!(patterns().iter().any(|(p, _)| text.contains(p.as_str())));
}

#[test]
fn no_tracked_file_points_outside_the_repository_or_at_issue_numbers() {
    let files = tracked();
    assert!(files.len() > 100, "only {} tracked files: not the project's checkout?", files.len());
    let pats = patterns();
    let mut found = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue }; // binary files (models, data)
        let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        for (n, line) in text.lines().enumerate() {
            for (p, what) in &pats {
                if line.contains(p.as_str()) {
                    found.push(format!("{rel}:{}: {what} ({p})", n + 1));
                }
            }
            if cites_issue_number(line) {
                found.push(format!("{rel}:{}: cites an issue number: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "tracked files refer outside the repository or to issue numbers:\n{}", found.join("\n"));
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

#[test]
fn data_files_match_their_provenance() {
    let data = root().join("src/data");
    let note = std::fs::read_to_string(data.join("README.md")).expect("src/data/README.md");
    for (file, license) in [
        ("gpt2/encoder.json", "gpt2/LICENSE"),
        ("gpt2/vocab.bpe", "gpt2/LICENSE"),
        ("clip/bpe_simple_vocab_16e6.txt.gz", "clip/LICENSE"),
        ("aesthetic/sac+logos+ava1-l14-linearMSE.pth", "aesthetic/LICENSE"),
    ] {
        let digest = sha256(&data.join(file));
        assert!(note.contains(&digest), "{file} has sha256 {digest}, which src/data/README.md does not list");
        assert!(data.join(license).is_file(), "{file}: its license {license} is missing");
    }
    // The embedded copies are these files.
    assert_eq!(promptist::text::clip::EMBEDDED_BPE_GZ, std::fs::read(data.join("clip/bpe_simple_vocab_16e6.txt.gz")).unwrap());
    assert_eq!(
        promptist::reward::aesthetic::EMBEDDED_HEAD_PTH,
        std::fs::read(data.join("aesthetic/sac+logos+ava1-l14-linearMSE.pth")).unwrap()
    );
}
