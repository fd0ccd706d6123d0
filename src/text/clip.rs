//! CLIP BPE tokenizer (placeholder; owner: score helper).
