//! A small PNG line plot of the loss curves (train in blue, validation in red) drawn into an RGB
//! buffer and encoded with the `png` crate: light grid lines at round loss values, no text (the
//! numbers are in metrics.jsonl; the y range is written into the PNG's tEXt chunk).

use std::path::Path;

use crate::error::{Result, TrainError};

const W: usize = 800;
const H: usize = 480;
const M: usize = 30;

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            let i = 3 * (y as usize * W + x as usize);
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }
    /// Bresenham line, 2 px thick.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            self.set(x, y + 1, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Plot `series` (each: colour and (step, loss) points) into `path`.
pub fn plot_losses(path: &Path, series: &[([u8; 3], Vec<(f64, f64)>)]) -> Result<()> {
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).filter(|p| p.1.is_finite()).collect();
    let mut c = Canvas { px: vec![255u8; W * H * 3] };
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for &(x, y) in &pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if pts.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    y0 = y0.min(0.0).max(y0.floor());
    y0 = y0.min(y0.floor());
    y1 = y1.ceil().max(y0 + 1.0);
    let px = |x: f64| (M as f64 + (x - x0) / (x1 - x0) * (W - 2 * M) as f64).round() as i64;
    let py = |y: f64| (H as f64 - M as f64 - (y - y0) / (y1 - y0) * (H - 2 * M) as f64).round() as i64;
    // grid at every integer loss value, axes
    let mut g = y0;
    while g <= y1 + 1e-9 {
        let y = py(g);
        for x in M as i64..(W - M) as i64 {
            c.set(x, y, [225, 225, 225]);
        }
        g += 1.0;
    }
    c.line((M as i64, py(y0)), ((W - M) as i64, py(y0)), [0, 0, 0]);
    c.line((M as i64, py(y0)), (M as i64, py(y1)), [0, 0, 0]);
    for (col, s) in series {
        let s: Vec<&(f64, f64)> = s.iter().filter(|p| p.1.is_finite()).collect();
        for w in s.windows(2) {
            c.line((px(w[0].0), py(w[0].1)), (px(w[1].0), py(w[1].1)), *col);
        }
        if s.len() == 1 {
            c.line((px(s[0].0), py(s[0].1)), (px(s[0].0) + 2, py(s[0].1)), *col);
        }
    }
    let file = std::fs::File::create(path).map_err(|e| TrainError::io(format!("creating {}", path.display()), e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let note = format!("loss curve: x = optimizer step {x0}..{x1}, y = loss {y0}..{y1} (grid every 1.0); blue = train, red = validation");
    enc.add_text_chunk("Description".into(), note).map_err(|e| TrainError::Data(format!("PNG text: {e}")))?;
    let mut w = enc.write_header().map_err(|e| TrainError::Data(format!("writing {}: {e}", path.display())))?;
    w.write_image_data(&c.px).map_err(|e| TrainError::Data(format!("writing {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss.png");
        let train: Vec<(f64, f64)> = (1..50).map(|i| (i as f64, 6.0 / (i as f64).sqrt())).collect();
        super::plot_losses(&p, &[([0, 0, 255], train), ([255, 0, 0], vec![(10.0, 2.0), (40.0, 1.2)])]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
