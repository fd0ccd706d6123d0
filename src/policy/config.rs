//! Decoding configuration; defaults are the Promptist reference demo (docs/method.md §2).

/// How tokens are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    Greedy,
    /// Beam search with transformers' length-penalty semantics (generated tokens only).
    Beam { num_beams: usize, length_penalty: f32, early_stopping: EarlyStopping },
    /// Group (diverse) beam search with a Hamming diversity penalty.
    DiverseBeam { num_beams: usize, num_beam_groups: usize, diversity_penalty: f32, length_penalty: f32, early_stopping: EarlyStopping },
    /// Sampling; `seed` None means "draw one" (the used seed is returned).
    Sample { temperature: f32, top_k: usize, top_p: f32, seed: Option<u64> },
}

/// transformers' `early_stopping` (default `False` = heuristic stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    #[default]
    Heuristic,
    True,
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecodingConfig {
    pub strategy: Strategy,
    pub max_new_tokens: usize,
    /// How many sequences to return (n-best); at most `num_beams` for beam strategies.
    pub num_return_sequences: usize,
}

impl Default for DecodingConfig {
    fn default() -> Self {
        DecodingConfig {
            strategy: Strategy::Beam { num_beams: 8, length_penalty: -1.0, early_stopping: EarlyStopping::Heuristic },
            max_new_tokens: 75,
            num_return_sequences: 1,
        }
    }
}
