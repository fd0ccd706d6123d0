//! Stable Diffusion pipeline and schedulers (placeholder; owner: score helper).
