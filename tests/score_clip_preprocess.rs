//! CLIP image preprocessing against open_clip's eval `image_transform` on PIL images: every element
//! of 3x224x224 on random images of 10 sizes (incl. 512x512, 256x256, upscaling, extreme aspects);
//! differences measured in [0,1] pixel units (normalised difference times the channel std): mean
//! abs within 1/255 (the requirement), max abs reported and bounded by 0.15. (With Pillow 13 every
//! size is bit-exact: the pass order rule, incl. 225x1000 and 333x777 which go vertical first.)
//! Plus 60 random plain resizes (up/down, both pass orders) byte-exact against Pillow.

mod common;

use promptist::reward::preprocess::{clip_preprocess, resize_bicubic_rgb8, CLIP_STD};
use common::{read_f32, run_json};

#[test]
fn clip_preprocess_matches_open_clip() {
    let dir = tempfile::tempdir().unwrap();
    let py = run_json(
        "score_clip_preprocess_ref.py",
        &[dir.path().to_str().unwrap()],
    );
    let shapes = py["images"].as_array().unwrap();
    assert_eq!(shapes.len(), 10);
    for (k, s) in shapes.iter().enumerate() {
        let (w, h) = (
            s[0].as_u64().unwrap() as usize,
            s[1].as_u64().unwrap() as usize,
        );
        let rgb = std::fs::read(dir.path().join(format!("img_{k}.rgb"))).unwrap();
        let want = read_f32(&dir.path().join(format!("ref_{k}.f32")));
        let got = clip_preprocess(&rgb, w, h).unwrap();
        assert_eq!(got.len(), want.len());
        let (mut sum, mut max, mut exact) = (0.0f64, 0.0f32, 0usize);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let d = (a - b).abs() * CLIP_STD[i / (224 * 224)];
            sum += d as f64;
            max = max.max(d);
            exact += (a == b) as usize;
        }
        let mean = sum / got.len() as f64;
        eprintln!(
            "{w}x{h}: mean abs {mean:e}, max abs {max:e}, bit-exact {exact}/{}",
            got.len()
        );
        assert!(mean <= 1.0 / 255.0, "{w}x{h}: mean abs {mean}");
        assert!(max <= 0.15, "{w}x{h}: max abs {max}");
    }
    // Plain resizes against Pillow: every byte.
    let pairs = py["resize"].as_array().unwrap();
    let mut exact = 0;
    for (k, p) in pairs.iter().enumerate() {
        let v: Vec<usize> = p
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let rgb = std::fs::read(dir.path().join(format!("rs_{k}.rgb"))).unwrap();
        let want = std::fs::read(dir.path().join(format!("rs_{k}.out"))).unwrap();
        let got = resize_bicubic_rgb8(&rgb, v[0], v[1], v[2], v[3]).unwrap();
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert_eq!(got.len(), want.len());
        assert!(max <= 1, "resize {v:?}: max byte difference {max}");
        exact += (got == want) as usize;
    }
    eprintln!(
        "Pillow resize: {exact}/{} size pairs byte-exact",
        pairs.len()
    );
    assert_eq!(exact, pairs.len());
}
