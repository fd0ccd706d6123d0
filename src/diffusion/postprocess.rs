//! VAE decoder output -> RGB8 as diffusers' `VaeImageProcessor.postprocess` + `numpy_to_pil` do it:
//! `(x * 0.5 + 0.5).clamp(0, 1)` in f32, NCHW -> NHWC, then `(x * 255).round()` (ties to even, as
//! numpy) cast to u8.

use crate::{Error, Result};

/// One decoded image `[3, h, w]` (`plane` = h * w values per channel) -> `[0, 1]` values in
/// `h x w x 3` (NHWC) order: `(x * 0.5 + 0.5).clamp(0, 1)` in f32.
pub fn decoded_to_unit_hwc(img: &[f32], plane: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * plane];
    for c in 0..3 {
        for p in 0..plane {
            out[p * 3 + c] = (img[c * plane + p] * 0.5f32 + 0.5f32).clamp(0.0, 1.0);
        }
    }
    out
}

/// `[0, 1]` values -> u8 as numpy does it: `(v * 255).round()` (ties to even).
pub fn unit_to_u8(values: &[f32]) -> Vec<u8> {
    values.iter().map(|&v| (v * 255.0f32).round_ties_even() as u8).collect()
}

/// `[batch, 3, h, w]` f32 decoder output -> `batch` RGB8 images (row-major `h x w x 3` each).
pub fn decoded_to_rgb8(
    decoded: &[f32],
    batch: usize,
    height: usize,
    width: usize,
) -> Result<Vec<Vec<u8>>> {
    let plane = height * width;
    if batch == 0 || plane == 0 || decoded.len() != batch * 3 * plane {
        return Err(Error::InvalidOptions(format!(
            "decoded images: {} values for batch {batch} x 3 x {height} x {width}",
            decoded.len()
        )));
    }
    Ok(decoded
        .chunks_exact(3 * plane)
        .map(|img| unit_to_u8(&decoded_to_unit_hwc(img, plane)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // one 1x2 image: R = [-1, 1], G = [0, 2], B = [-3, 0.003921569]
        let d = [-1.0, 1.0, 0.0, 2.0, -3.0, 0.003_921_569];
        let out = decoded_to_rgb8(&d, 1, 1, 2).unwrap();
        // pixel 0: (0, 127.5 -> 128 (ties to even), 0); pixel 1: (255, 255, 0.50196 * 255 = 128.0)
        assert_eq!(out, vec![vec![0, 128, 0, 255, 255, 128]]);
        assert!(decoded_to_rgb8(&d, 1, 2, 2).is_err());
    }
}
