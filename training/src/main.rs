//! promptist-train: the Promptist trainer (SFT and PPO); see the issues for its stages.
fn main() {}
