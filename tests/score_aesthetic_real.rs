//! The aesthetic head with the real LAION weights (src/data/aesthetic, read from the .pth with
//! weights::torch_pickle and from a safetensors copy) against torch on random
//! unit vectors: unfolded and folded evaluations both within 1e-5 of torch's f32 output, and
//! within 1e-9 of each other.

mod common;

use std::path::PathBuf;

use promptist::reward::aesthetic::AestheticHead;
use common::{f32s, run_json, data_path};

fn pth() -> PathBuf {
    data_path("aesthetic/sac+logos+ava1-l14-linearMSE.pth")
}

#[test]
fn real_head_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("aesthetic.safetensors");
    let py = run_json(
        "score_aesthetic_ref.py",
        &[pth().to_str().unwrap(), st.to_str().unwrap(), "64", "7"],
    );
    // The .pth read directly (torch_pickle) and the safetensors copy give the same head.
    let head = AestheticHead::from_file(&pth()).unwrap();
    let via_st = AestheticHead::from_file(&st).unwrap();
    for (a, b) in head.layers.iter().zip(&via_st.layers) {
        assert_eq!(a.weight, b.weight);
        assert_eq!(a.bias, b.bias);
    }
    let folded = head.fold();
    let inputs = py["inputs"].as_array().unwrap();
    let want = f32s(&py["scores"]);
    assert_eq!(inputs.len(), 64);
    let (mut d_unf, mut d_fold, mut d_between) = (0.0f64, 0.0f64, 0.0f64);
    for (x, &w) in inputs.iter().zip(&want) {
        let x = f32s(x);
        let a = head.score(&x).unwrap();
        let b = folded.score(&x).unwrap();
        d_unf = d_unf.max((a - w as f64).abs());
        d_fold = d_fold.max((b - w as f64).abs());
        d_between = d_between.max((a - b).abs());
    }
    eprintln!("aesthetic head vs torch on 64 unit vectors: unfolded {d_unf:e}, folded {d_fold:e}, unfolded vs folded {d_between:e}; scores e.g. {:?}", &want[..4]);
    assert!(
        d_unf <= 1e-5 && d_fold <= 1e-5,
        "unfolded {d_unf:e}, folded {d_fold:e}"
    );
    assert!(d_between <= 1e-9, "{d_between:e}");
}
