//! Seeded initial latents for Stable Diffusion: N(0, 1) values from a documented generator, scaled
//! by the scheduler's `init_noise_sigma`.
//!
//! Generator (stable; changing it changes every score): for image `index` of seed `seed`,
//! `rand_chacha::ChaCha20Rng::seed_from_u64(seed)` with `set_stream(index)`. Normals come in pairs
//! by Box-Muller on two 64-bit outputs `a`, `b`: `u1 = ((a >> 11) + 1) * 2^-53` (in (0, 1]),
//! `u2 = (b >> 11) * 2^-53`, `r = sqrt(-2 ln u1)`, `z0 = r cos(2 pi u2)`, `z1 = r sin(2 pi u2)`,
//! computed in f64 and rounded to f32, filling the image's `4 x h/8 x w/8` values in C order.
//! The same (seed, index) gives the same bits on a given platform (ln/cos/sin come from the
//! platform's libm). This does not reproduce torch's CPU generator.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{Error, Result};

/// Latent channels of Stable Diffusion 1.x.
pub const LATENT_CHANNELS: usize = 4;
/// The VAE factor of Stable Diffusion 1.x (4 VAE blocks), used when a bundle has no VAE config.
/// A pipeline's own factor comes from its VAE config (`SdPipeline::vae_scale`).
pub const SD1_VAE_SCALE: usize = 8;

/// `n` standard normal values of stream `index` of `seed`.
pub fn gaussian(seed: u64, index: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let scale = 1.0 / (1u64 << 53) as f64;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 * scale;
        let u2 = (rng.next_u64() >> 11) as f64 * scale;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Initial latents `[batch, 4, height/f, width/f]` (flat, C order; `f` = `vae_scale`): image `i`
/// uses stream `first_index + i` of `seed`, times `init_noise_sigma`.
pub fn initial_latents(
    seed: u64,
    first_index: u64,
    batch: usize,
    (height, width): (usize, usize),
    vae_scale: usize,
    init_noise_sigma: f32,
) -> Result<Vec<f32>> {
    if batch == 0 {
        return Err(Error::InvalidOptions(
            "the number of images must be at least 1".into(),
        ));
    }
    if vae_scale == 0 || width == 0 || height == 0 || !width.is_multiple_of(vae_scale) || !height.is_multiple_of(vae_scale) {
        return Err(Error::InvalidOptions(format!(
            "width and height must be positive multiples of the VAE factor {vae_scale}, got {width}x{height}"
        )));
    }
    let per = LATENT_CHANNELS * (height / vae_scale) * (width / vae_scale);
    let mut out = Vec::with_capacity(batch * per);
    for i in 0..batch as u64 {
        out.extend(
            gaussian(seed, first_index + i, per)
                .into_iter()
                .map(|z| z * init_noise_sigma),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let a = initial_latents(42, 0, 2, (64, 64), 8, 1.0).unwrap();
        let b = initial_latents(42, 0, 2, (64, 64), 8, 1.0).unwrap();
        assert_eq!(a.len(), 2 * 4 * 8 * 8);
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // image 1 of a batch equals image 0 started at index 1
        let c = initial_latents(42, 1, 1, (64, 64), 8, 1.0).unwrap();
        assert_eq!(&a[256..], &c[..]);
        assert_ne!(&a[..256], &a[256..]);
        assert_ne!(
            initial_latents(43, 0, 1, (64, 64), 8, 1.0).unwrap(),
            a[..256].to_vec()
        );
        // scaling by init_noise_sigma
        let s = initial_latents(42, 0, 1, (64, 64), 8, 14.5).unwrap();
        assert!(s.iter().zip(&a).all(|(x, y)| *x == *y * 14.5));
    }

    #[test]
    fn standard_normal_moments() {
        let z = gaussian(7, 0, 200_000);
        let n = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurt = z.iter().map(|&v| (v as f64 - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
        assert!((kurt - 3.0).abs() < 0.05, "{kurt}");
        assert!(z.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(
            initial_latents(1, 0, 1, (60, 64), 8, 1.0).unwrap_err().code(),
            crate::Code::InvalidOptions
        );
        assert!(initial_latents(1, 0, 0, (64, 64), 8, 1.0).is_err());
        assert!(initial_latents(1, 0, 1, (0, 64), 8, 1.0).is_err());
    }
}
