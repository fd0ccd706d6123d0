//! Classifier-free guidance and the latent <-> VAE scaling, as diffusers' StableDiffusionPipeline
//! computes them (f32): `uncond + g * (cond - uncond)` and `latents / scaling_factor`.

use crate::{Error, Result};

/// `noise_pred = uncond + guidance_scale * (cond - uncond)` elementwise (f32, diffusers' order).
/// `batch_out` is the UNet output of the batch `[uncond; cond]` (uncond half first, as diffusers
/// concatenates `[negative_prompt_embeds, prompt_embeds]`).
pub fn classifier_free_guidance(batch_out: &[f32], guidance_scale: f32) -> Result<Vec<f32>> {
    if batch_out.is_empty() || !batch_out.len().is_multiple_of(2) {
        return Err(Error::InvalidOptions(format!(
            "classifier-free guidance needs an even, non-empty [uncond; cond] batch, got {} values",
            batch_out.len()
        )));
    }
    let (uncond, cond) = batch_out.split_at(batch_out.len() / 2);
    Ok(uncond
        .iter()
        .zip(cond)
        .map(|(&u, &c)| u + guidance_scale * (c - u))
        .collect())
}

/// The VAE decoder's input: `latents / scaling_factor` (SD 1.x: 0.18215), f32 division.
pub fn latents_for_vae(latents: &[f32], scaling_factor: f32) -> Result<Vec<f32>> {
    if !(scaling_factor.is_finite() && scaling_factor != 0.0) {
        return Err(Error::InvalidOptions(format!(
            "VAE scaling factor {scaling_factor}"
        )));
    }
    Ok(latents.iter().map(|&v| v / scaling_factor).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_by_hand() {
        // uncond [1, 2], cond [3, 0]; g = 7.5: 1 + 7.5*2 = 16, 2 + 7.5*(-2) = -13
        assert_eq!(
            classifier_free_guidance(&[1.0, 2.0, 3.0, 0.0], 7.5).unwrap(),
            vec![16.0, -13.0]
        );
        // g = 1 gives the conditional prediction, g = 0 the unconditional one
        assert_eq!(
            classifier_free_guidance(&[1.0, 2.0, 3.0, 0.0], 1.0).unwrap(),
            vec![3.0, 0.0]
        );
        assert_eq!(
            classifier_free_guidance(&[1.0, 2.0, 3.0, 0.0], 0.0).unwrap(),
            vec![1.0, 2.0]
        );
        assert!(classifier_free_guidance(&[1.0, 2.0, 3.0], 7.5).is_err());
        assert!(latents_for_vae(&[1.0], 0.0).is_err());
        assert_eq!(latents_for_vae(&[0.18215], 0.18215).unwrap(), vec![1.0]);
    }
}
