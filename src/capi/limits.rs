//! The caps on every number a caller passes, published in the header (docs/c-abi.md, "Limits").
//! The core checks each one before anything is sized from it (engine options, decoding and score
//! options, prompt length, candidate counts), so the Rust API and every binding get the same
//! INVALID_OPTIONS answer naming the field, its value and its range, never an allocation that
//! aborts the host process. Caps are generous for real use; raise one only with a test that the
//! largest value still fits.

/// Most ONNX Runtime intra-op threads (`promptist_engine_options.intra_op_threads`).
pub const PROMPTIST_MAX_THREADS: u32 = 256;
/// Most beams (`num_beams`) and beam groups (`num_beam_groups`).
pub const PROMPTIST_MAX_BEAMS: u32 = 64;
/// Most returned sequences (`num_return_sequences`), for every strategy.
pub const PROMPTIST_MAX_RETURN_SEQUENCES: u32 = 64;
/// Most new tokens (`max_new_tokens`); the model's context limits it further.
pub const PROMPTIST_MAX_NEW_TOKENS: u32 = 1024;
/// Most bytes of one prompt (user prompt or candidate), before tokenization.
pub const PROMPTIST_MAX_PROMPT_BYTES: u32 = 65536;
/// Largest image width or height in pixels (`promptist_score_options.width` / `height`).
pub const PROMPTIST_MAX_IMAGE_SIDE: u32 = 2048;
/// Most denoising steps (`promptist_score_options.steps`).
pub const PROMPTIST_MAX_STEPS: u32 = 1000;
/// Most images per prompt (`promptist_score_options.images_per_prompt`).
pub const PROMPTIST_MAX_IMAGES_PER_PROMPT: u32 = 16;
/// Most images per UNet call (`promptist_score_options.max_batch`).
pub const PROMPTIST_MAX_UNET_BATCH: u32 = 64;
/// Most candidates in one score call (`promptist_score_many`'s `count`, best-of-n's n-best).
pub const PROMPTIST_MAX_CANDIDATES: u32 = 256;
/// Most pixels the images of one list of prompts may hold together (images x width x height):
/// 1024 images of 512x512. A score call makes the user prompt's images and the candidates' images
/// as two such lists; the images live in memory until they are scored (about 16 bytes a pixel).
pub const PROMPTIST_MAX_PIXELS_PER_CALL: u64 = 1 << 28;
/// Largest CLIP token budget of a rewrite (`promptist_optimize_options.max_clip_tokens`).
pub const PROMPTIST_MAX_CLIP_TOKENS: u32 = 1024;
/// Largest absolute classifier-free guidance scale.
pub const PROMPTIST_MAX_GUIDANCE: f32 = 100.0;

/// `value` within `[min, max]`, else INVALID_OPTIONS naming `field`, its value and the range.
pub(crate) fn check_range(field: &str, value: usize, min: usize, max: u32) -> crate::Result<()> {
    if value < min || value > max as usize {
        return Err(crate::Error::InvalidOptions(format!("{field} = {value} is out of range [{min}, {max}]")));
    }
    Ok(())
}
