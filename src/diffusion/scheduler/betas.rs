//! The training noise schedule (betas, alphas_cumprod) computed in f32 exactly as diffusers 0.42
//! does with torch on CPU: `torch.linspace` in f32 (two-sided, halfway split, each element one
//! fused multiply-add as torch's vectorised kernel computes it), `** 2` as x*x,
//! `torch.cumprod` with a f64 accumulator rounded to f32 at every element.

use super::config::unsupported;
use crate::Result;

/// `torch.linspace(start, end, n, dtype=float32)` on CPU: the step is computed in f32 and the
/// first half counts up from `start`, the second half down from `end`.
pub fn torch_linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (s, e) = (start as f32, end as f32);
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![s];
    }
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, s)
            } else {
                (-step).mul_add((n - i - 1) as f32, e)
            }
        })
        .collect()
}

/// Betas of `beta_schedule` ("linear" or "scaled_linear").
pub fn betas(
    schedule: &str,
    beta_start: f64,
    beta_end: f64,
    n: usize,
    who: &str,
) -> Result<Vec<f32>> {
    match schedule {
        "linear" => Ok(torch_linspace_f32(beta_start, beta_end, n)),
        "scaled_linear" => Ok(torch_linspace_f32(beta_start.sqrt(), beta_end.sqrt(), n)
            .into_iter()
            .map(|b| b * b)
            .collect()),
        other => Err(unsupported(who, "beta_schedule", other)),
    }
}

/// `torch.cumprod(1 - betas)` (f32 tensor, f64 accumulator on CPU).
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= (1.0f32 - b) as f64;
            acc as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_linear_endpoints() {
        let b = betas("scaled_linear", 0.00085, 0.012, 1000, "t").unwrap();
        assert_eq!(b.len(), 1000);
        assert!((b[0] as f64 - 0.00085).abs() < 1e-9);
        assert!((b[999] as f64 - 0.012).abs() < 1e-9);
        let ac = alphas_cumprod(&b);
        assert!(ac.windows(2).all(|w| w[1] < w[0]));
        assert!(betas("cosine", 0.1, 0.2, 10, "t").is_err());
    }
}
