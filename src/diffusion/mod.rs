//! Stable Diffusion sampling pieces: noise schedulers (diffusers' algorithms, one file each) and
//! seeded initial latents.

pub mod latents;
pub mod scheduler;
