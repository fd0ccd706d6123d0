//! Stable Diffusion sampling pieces: noise schedulers (diffusers' algorithms, one file each) and
//! seeded initial latents.

pub mod guidance;
pub(crate) mod latents;
pub mod postprocess;
pub mod scheduler;

// The text-to-image pipeline and its bundle layout.
pub mod pipeline;
