//! The Promptist reward (docs/method.md §3): CLIP relevance against the original prompt plus the LAION
//! aesthetic predictor's improvement over the original prompt's images; CLIP image preprocessing.

pub mod aesthetic;
pub mod math;
pub mod preprocess;

pub use aesthetic::{AestheticHead, FoldedHead};
pub use math::{
    cosine_similarity, promptist_reward, relevance_term, reward_from_embeddings, Reward,
};

// The reward's models.
pub(crate) mod scorer;
