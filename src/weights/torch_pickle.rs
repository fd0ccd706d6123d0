//! Reader for PyTorch zip-pickle checkpoints (placeholder; owner: bundle helper).
