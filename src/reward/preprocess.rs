//! CLIP image preprocessing as open_clip's eval `image_transform` does it on a PIL image:
//! torchvision `Resize(224, BICUBIC)` (shortest side to 224, the other side
//! `int(224 * long / short)`, resampled by Pillow's separable BICUBIC with antialiasing: a = -0.5
//! cubic kernel stretched by the downscale factor, 22-bit fixed-point weights, two passes each
//! rounded to 8 bits, in Pillow 13's order), `CenterCrop(224)` (offsets
//! `round((size - 224) / 2)`, ties to even), `ToTensor` (/255) and `Normalize` with CLIP's mean and
//! std, in f32. Facts from Pillow's `Resample.c` and torchvision's transforms.

use crate::{Error, Result};

pub const CLIP_IMAGE_SIZE: usize = 224;
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
// The constants as open_clip writes them (more digits than f32 holds; rounded the same way).
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Pillow's fixed-point precision for 8-bit images (32 - 8 - 2).
const PRECISION_BITS: u32 = 22;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output index: (first input index, fixed-point weights).
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let f = v * (1u32 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (f - 0.5) as i32
                    } else {
                        (f + 0.5) as i32
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(ss: i32) -> u8 {
    if ss >= (1 << PRECISION_BITS << 8) {
        255
    } else if ss <= 0 {
        0
    } else {
        (ss >> PRECISION_BITS) as u8
    }
}

/// One separable pass over an RGB8 image: resample along x (`horizontal`) or y.
fn pass(src: &[u8], w: usize, h: usize, horizontal: bool, new_len: usize) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    if horizontal {
        let cx = coefficients(w, new_len);
        let mut out = vec![0u8; new_len * h * 3];
        for y in 0..h {
            let row = &src[y * w * 3..(y + 1) * w * 3];
            for (xx, (xmin, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = half;
                    for (j, &kj) in k.iter().enumerate() {
                        ss += row[(xmin + j) * 3 + c] as i32 * kj;
                    }
                    out[(y * new_len + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    } else {
        let cy = coefficients(h, new_len);
        let mut out = vec![0u8; w * new_len * 3];
        for (yy, (ymin, k)) in cy.iter().enumerate() {
            for x in 0..w {
                for c in 0..3 {
                    let mut ss = half;
                    for (j, &kj) in k.iter().enumerate() {
                        ss += src[((ymin + j) * w + x) * 3 + c] as i32 * kj;
                    }
                    out[(yy * w + x) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    }
}

/// Pillow's `Image.resize((new_w, new_h), BICUBIC)` on an RGB8 image (row-major, 3 bytes/pixel).
///
/// Pass order as Pillow 13 (PR #9549): vertical first when the height shrinks by more than twice
/// as many pixels as the width (`new_h < h && h - new_h > 2 (w - new_w)`), else horizontal first;
/// a pass whose size does not change is skipped. (The rule was read off Pillow 13.0.0's output:
/// it held on 680 size pairs where the two orders differ, incl. the equality edge.)
pub fn resize_bicubic_rgb8(
    rgb: &[u8],
    w: usize,
    h: usize,
    new_w: usize,
    new_h: usize,
) -> Result<Vec<u8>> {
    if w == 0 || h == 0 || new_w == 0 || new_h == 0 || rgb.len() != w * h * 3 {
        return Err(Error::InvalidOptions(format!(
            "resize: {w}x{h} image with {} bytes to {new_w}x{new_h}",
            rgb.len()
        )));
    }
    let (need_h, need_v) = (new_w != w, new_h != h);
    let vertical_first =
        need_h && need_v && new_h < h && (h - new_h) as i64 > 2 * (w as i64 - new_w as i64);
    Ok(match (need_h, need_v) {
        (false, false) => rgb.to_vec(),
        (true, false) => pass(rgb, w, h, true, new_w),
        (false, true) => pass(rgb, w, h, false, new_h),
        (true, true) if vertical_first => {
            pass(&pass(rgb, w, h, false, new_h), w, new_h, true, new_w)
        }
        (true, true) => pass(&pass(rgb, w, h, true, new_w), new_w, h, false, new_h),
    })
}

/// torchvision's size for `Resize(size)` with an int: the shortest side becomes `size`.
pub fn shortest_side_size(w: usize, h: usize, size: usize) -> (usize, usize) {
    if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    }
}

/// RGB8 `h x w` image -> CLIP input `3 x 224 x 224` (CHW, f32, normalised).
pub fn clip_preprocess(rgb: &[u8], w: usize, h: usize) -> Result<Vec<f32>> {
    let s = CLIP_IMAGE_SIZE;
    let (rw, rh) = shortest_side_size(w, h, s);
    let resized = if (rw, rh) == (w, h) {
        rgb.to_vec()
    } else {
        resize_bicubic_rgb8(rgb, w, h, rw, rh)?
    };
    let top = ((rh - s) as f64 / 2.0).round_ties_even() as usize;
    let left = ((rw - s) as f64 / 2.0).round_ties_even() as usize;
    let mut out = vec![0f32; 3 * s * s];
    for c in 0..3 {
        for y in 0..s {
            for x in 0..s {
                let v = resized[((top + y) * rw + left + x) * 3 + c] as f32 / 255.0;
                out[(c * s + y) * s + x] = (v - CLIP_MEAN[c]) / CLIP_STD[c];
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_constant_image() {
        assert_eq!(shortest_side_size(512, 512, 224), (224, 224));
        assert_eq!(shortest_side_size(640, 480, 224), (298, 224));
        assert_eq!(shortest_side_size(300, 500, 224), (224, 373));
        // A constant image stays constant through the resize (weights sum to 1).
        let img = vec![200u8; 37 * 53 * 3];
        let r = resize_bicubic_rgb8(&img, 37, 53, 224, 320).unwrap();
        assert!(r.iter().all(|&v| v == 200));
        let t = clip_preprocess(&img, 37, 53).unwrap();
        assert_eq!(t.len(), 3 * 224 * 224);
        assert!((t[0] - (200.0 / 255.0 - CLIP_MEAN[0]) / CLIP_STD[0]).abs() < 1e-6);
        assert!(resize_bicubic_rgb8(&img, 36, 53, 10, 10).is_err());
    }
}
