//! The pipeline's pure math against diffusers: classifier-free guidance and latent scaling (every
//! f32 bit) and the decoder-output -> RGB8 conversion of `VaeImageProcessor.postprocess` (every
//! byte), on random tensors.

mod common;

use promptist::diffusion::guidance::{classifier_free_guidance, latents_for_vae};
use promptist::diffusion::postprocess::decoded_to_rgb8;
use common::{read_f32, run_json};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn guidance_scaling_and_postprocess_match_diffusers() {
    let dir = tempfile::tempdir().unwrap();
    let py = run_json("score_postprocess_ref.py", &[dir.path().to_str().unwrap()]);
    let f = |n: &str| read_f32(&dir.path().join(format!("{n}.f32")));
    let g = py["guidance"].as_f64().unwrap() as f32;
    assert_eq!(
        bits(&classifier_free_guidance(&f("unet"), g).unwrap()),
        bits(&f("cfg"))
    );
    let s = py["scaling_factor"].as_f64().unwrap() as f32;
    assert_eq!(
        bits(&latents_for_vae(&f("latents"), s).unwrap()),
        bits(&f("scaled"))
    );
    let d: Vec<usize> = py["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let imgs = decoded_to_rgb8(&f("decoded"), d[0], d[2], d[3]).unwrap();
    let want = std::fs::read(dir.path().join("rgb.u8")).unwrap();
    assert_eq!(imgs.concat(), want);
}
