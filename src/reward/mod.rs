//! The Promptist reward: CLIP relevance and aesthetic score (placeholder; owner: score helper).
