//! GPT-2 byte-level BPE tokenizer (placeholder; owner: bundle helper).
