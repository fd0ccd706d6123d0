//! SYNTHETIC demo corpus: engineered prompts "subject, modifier, modifier, ..." made from word
//! lists by a seeded ChaCha8 generator. Each subject category has a preferred style (landscape ->
//! matte painting, volumetric light; creature -> highly detailed digital painting; portrait ->
//! sharp focus, artgerm-like tags; ...) drawn with modifiers from the Promptist paper's heuristic
//! tag lists (docs/method.md §6), so the mapping "plain subject -> engineered prompt" is learnable.
//! The output is targets-only JSONL (`{"target": ..., "synthetic": true}`); the trainer builds the
//! sources (main content, main content with modifiers dropped/shuffled) as for real data.

use std::io::Write;
use std::path::Path;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};

const COLOURS: &[&str] = &["red", "blue", "golden", "white", "black", "green", "silver", "purple", "orange", "grey"];
const SIZES: &[&str] = &["small", "giant", "old", "young", "tiny", "ancient", "lonely", "majestic", "cute", "wild"];
const ANIMALS: &[&str] = &["fox", "wolf", "cat", "dog", "owl", "dragon", "horse", "tiger", "deer", "bear", "rabbit", "eagle", "whale", "lion"];
const PLACES: &[&str] = &["in the snow", "in a forest", "on a hill", "in the rain", "at sunset", "by a river", "in a field of flowers", "on a mountain", "in the desert", "under the stars"];
const BUILDINGS: &[&str] = &["castle", "lighthouse", "cottage", "temple", "tower", "city", "village", "cathedral", "bridge", "house"];
const SETTINGS: &[&str] = &["on a cliff", "in the clouds", "by the sea", "in the mountains", "at night", "in autumn", "in a valley", "on an island", "in the fog", "at dawn"];
const PEOPLE: &[&str] = &["woman", "man", "girl", "boy", "knight", "wizard", "queen", "king", "witch", "samurai", "astronaut", "pirate"];
const PEOPLE_ADJ: &[&str] = &["young", "old", "beautiful", "smiling", "sad", "brave", "mysterious", "elegant"];
const VEHICLES: &[&str] = &["car", "spaceship", "train", "ship", "robot", "airship", "motorcycle", "submarine"];
const FUTURE: &[&str] = &["in a cyberpunk city", "in space", "on mars", "in a neon street", "in a futuristic city", "on an alien planet"];

/// Style groups: (always-first modifiers, optional modifiers). docs/method.md §6 tags included.
const CREATURE_STYLE: (&[&str], &[&str]) = (
    &["highly detailed", "digital painting"],
    &["artstation", "concept art", "smooth", "sharp focus", "illustration", "intricate", "elegant", "art by greg rutkowski", "8 k"],
);
const LANDSCAPE_STYLE: (&[&str], &[&str]) = (
    &["matte painting", "volumetric lighting"],
    &["trending on artstation", "concept art", "8 k", "highly detailed", "cinematic", "epic composition", "unreal engine", "octane render"],
);
const PORTRAIT_STYLE: (&[&str], &[&str]) = (
    &["portrait", "intricate", "elegant"],
    &["highly detailed", "digital painting", "artstation", "concept art", "smooth", "sharp focus", "illustration", "art by artgerm", "fantasy"],
);
const SCIFI_STYLE: (&[&str], &[&str]) = (
    &["digital art", "octane render"],
    &["8k", "intricate", "cinematic lighting", "trending on artstation", "unreal engine", "concept art", "highly detailed", "neon lights"],
);

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn noun_phrase(rng: &mut ChaCha8Rng, adjs: &[&[&str]], nouns: &[&str]) -> String {
    let noun = nouns.choose(rng).copied().unwrap_or("cat");
    let mut words: Vec<&str> = Vec::new();
    for a in adjs {
        if rng.random_bool(0.6) {
            words.push(a.choose(rng).copied().unwrap_or(""));
        }
    }
    words.push(noun);
    let phrase = words.join(" ");
    format!("{} {phrase}", article(&phrase))
}

/// One synthetic (subject, engineered prompt) target.
pub fn engineered_prompt(rng: &mut ChaCha8Rng) -> String {
    let (subject, style) = match rng.random_range(0..4) {
        0 => {
            let np = noun_phrase(rng, &[SIZES, COLOURS], ANIMALS);
            (format!("{np} {}", PLACES.choose(rng).copied().unwrap_or("")), CREATURE_STYLE)
        }
        1 => {
            let np = noun_phrase(rng, &[SIZES], BUILDINGS);
            (format!("{np} {}", SETTINGS.choose(rng).copied().unwrap_or("")), LANDSCAPE_STYLE)
        }
        2 => {
            let np = noun_phrase(rng, &[PEOPLE_ADJ], PEOPLE);
            let s = if rng.random_bool(0.5) { format!("portrait of {np}") } else { np };
            (s, PORTRAIT_STYLE)
        }
        _ => {
            let np = noun_phrase(rng, &[COLOURS], VEHICLES);
            (format!("{np} {}", FUTURE.choose(rng).copied().unwrap_or("")), SCIFI_STYLE)
        }
    };
    let (first, optional) = style;
    let mut mods: Vec<&str> = first.to_vec();
    let k = rng.random_range(2..=4);
    let mut opt: Vec<&str> = optional.to_vec();
    opt.shuffle(rng);
    // keep the optional tags in their list order, so each style has one canonical ordering
    let mut chosen: Vec<&str> = opt.into_iter().take(k).collect();
    chosen.sort_by_key(|m| optional.iter().position(|o| o == m));
    mods.extend(chosen);
    format!("{subject}, {}", mods.join(", "))
}

/// Write `n` synthetic targets as JSONL.
pub fn write_corpus(path: &Path, n: usize, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f = std::fs::File::create(path).map_err(|e| TrainError::io(format!("creating {}", path.display()), e))?;
    let mut w = std::io::BufWriter::new(f);
    for _ in 0..n {
        let t = engineered_prompt(&mut rng);
        let line = serde_json::json!({"target": t, "synthetic": true});
        writeln!(w, "{line}").map_err(|e| TrainError::io(format!("writing {}", path.display()), e))?;
    }
    w.flush().map_err(|e| TrainError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_shaped() {
        let mut a = ChaCha8Rng::seed_from_u64(1);
        let mut b = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let x = engineered_prompt(&mut a);
            assert_eq!(x, engineered_prompt(&mut b));
            assert!(x.matches(", ").count() >= 4, "{x}");
        }
    }
}
