//! The LAION improved aesthetic predictor head (christophschuhmann/improved-aesthetic-predictor,
//! as loaded by the Promptist reference): Linear(768,1024) -> Linear(1024,128) -> Linear(128,64)
//! -> Linear(64,16) -> Linear(16,1) with no activations (dropout is inactive at inference), applied
//! to the L2-normalised CLIP ViT-L/14 image embedding. Being affine, it folds into one dot product
//! plus a bias; both evaluations are provided (f64) and agree.
//!
//! The real head is embedded ([`EMBEDDED_HEAD_PTH`], from `src/data/aesthetic/`, Apache-2.0), so a
//! bundle can be given the reward's aesthetic term without any file (`docs/method.md` §3).

use std::path::Path;

use crate::weights::{read_weights_file, WeightMap};
use crate::{Error, Result};

/// The real head, `sac+logos+ava1-l14-linearMSE.pth` (provenance in `src/data/README.md`).
pub static EMBEDDED_HEAD_PTH: &[u8] = include_bytes!("../data/aesthetic/sac+logos+ava1-l14-linearMSE.pth");
/// The file name the embedded head is written under.
pub const EMBEDDED_HEAD_NAME: &str = "sac+logos+ava1-l14-linearMSE.pth";

/// State-dict layer indices of the five Linear layers (`layers.{i}.weight` / `.bias`).
pub const LAYER_KEYS: [usize; 5] = [0, 2, 4, 6, 7];
/// Layer widths: 768 -> 1024 -> 128 -> 64 -> 16 -> 1.
pub const WIDTHS: [usize; 6] = [768, 1024, 128, 64, 16, 1];

/// One Linear layer: `weight` row-major [out, in] as PyTorch stores it.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub in_features: usize,
    pub out_features: usize,
}

/// The unfolded head.
#[derive(Debug, Clone)]
pub struct AestheticHead {
    pub layers: Vec<Linear>,
}

/// The head folded to one affine map: `score = w . e + b` (f64).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedHead {
    pub w: Vec<f64>,
    pub b: f64,
}

/// L2-normalise an embedding in f64 (as the reference: `x / x.norm(dim=-1, keepdim=True)`).
pub fn l2_normalize(e: &[f32]) -> Result<Vec<f64>> {
    let n = e
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    if n == 0.0 || !n.is_finite() {
        return Err(Error::InvalidOptions(
            "cannot L2-normalise a zero or non-finite embedding".into(),
        ));
    }
    Ok(e.iter().map(|&v| v as f64 / n).collect())
}

impl AestheticHead {
    /// Build from a state dict with keys `layers.{0,2,4,6,7}.{weight,bias}`.
    pub fn from_state_dict(tensors: &WeightMap) -> Result<Self> {
        let mut layers = Vec::with_capacity(5);
        for (li, &k) in LAYER_KEYS.iter().enumerate() {
            let (inf, outf) = (WIDTHS[li], WIDTHS[li + 1]);
            let get = |name: String, shape: &[usize]| -> Result<Vec<f32>> {
                let t = tensors.get(&name).ok_or_else(|| {
                    Error::ModelFormat(format!("aesthetic head: missing tensor `{name}`"))
                })?;
                if t.shape.as_slice() != shape {
                    return Err(Error::ModelFormat(format!(
                        "aesthetic head: `{name}` has shape {:?}, expected {shape:?}",
                        t.shape
                    )));
                }
                Ok(t.data.clone())
            };
            layers.push(Linear {
                weight: get(format!("layers.{k}.weight"), &[outf, inf])?,
                bias: get(format!("layers.{k}.bias"), &[outf])?,
                in_features: inf,
                out_features: outf,
            });
        }
        Ok(Self { layers })
    }

    /// Read the head from the reference `.pth` (a `torch.save` zip of the state dict, e.g.
    /// `sac+logos+ava1-l14-linearMSE.pth`) or a `.safetensors` copy, through
    /// [`crate::weights::read_weights_file`].
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_state_dict(&read_weights_file(path)?).map_err(|e| match e {
            Error::ModelFormat(m) => Error::ModelFormat(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The unfolded evaluation on an already L2-normalised embedding (f64).
    pub fn eval_normalized(&self, e: &[f64]) -> Result<f64> {
        if e.len() != WIDTHS[0] {
            return Err(Error::InvalidOptions(format!(
                "aesthetic head expects a {}-value embedding, got {}",
                WIDTHS[0],
                e.len()
            )));
        }
        let mut x = e.to_vec();
        for l in &self.layers {
            x = (0..l.out_features)
                .map(|o| {
                    let row = &l.weight[o * l.in_features..(o + 1) * l.in_features];
                    row.iter().zip(&x).map(|(&w, &v)| w as f64 * v).sum::<f64>() + l.bias[o] as f64
                })
                .collect();
        }
        Ok(x[0])
    }

    /// The aesthetic score of a raw CLIP image embedding (normalised here).
    pub fn score(&self, embedding: &[f32]) -> Result<f64> {
        self.eval_normalized(&l2_normalize(embedding)?)
    }

    /// Fold the five affine layers into `w . e + b` (f64): w = W1^T W2^T ... W5^T, b by
    /// propagating the biases through the later layers.
    pub fn fold(&self) -> FoldedHead {
        // Propagate backwards: start with the last layer's row vector and bias.
        let last = &self.layers[self.layers.len() - 1];
        let mut v: Vec<f64> = last.weight.iter().map(|&w| w as f64).collect(); // [in of last]
        let mut b = last.bias[0] as f64;
        for l in self.layers[..self.layers.len() - 1].iter().rev() {
            // score = v . (W x + c) + b = (W^T v) . x + (v . c + b)
            b += v
                .iter()
                .zip(&l.bias)
                .map(|(&a, &c)| a * c as f64)
                .sum::<f64>();
            let mut nv = vec![0.0f64; l.in_features];
            for (o, &vo) in v.iter().enumerate() {
                let row = &l.weight[o * l.in_features..(o + 1) * l.in_features];
                for (acc, &w) in nv.iter_mut().zip(row) {
                    *acc += vo * w as f64;
                }
            }
            v = nv;
        }
        FoldedHead { w: v, b }
    }
}

impl FoldedHead {
    /// The folded evaluation on an already L2-normalised embedding.
    pub fn eval_normalized(&self, e: &[f64]) -> Result<f64> {
        if e.len() != self.w.len() {
            return Err(Error::InvalidOptions(format!(
                "aesthetic head expects a {}-value embedding, got {}",
                self.w.len(),
                e.len()
            )));
        }
        Ok(self.w.iter().zip(e).map(|(a, b)| a * b).sum::<f64>() + self.b)
    }

    /// The aesthetic score of a raw CLIP image embedding (normalised here).
    pub fn score(&self, embedding: &[f32]) -> Result<f64> {
        self.eval_normalized(&l2_normalize(embedding)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_head(seed: u64) -> AestheticHead {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut map = WeightMap::new();
        for (li, &k) in LAYER_KEYS.iter().enumerate() {
            let (i, o) = (WIDTHS[li], WIDTHS[li + 1]);
            let s = 1.0 / (i as f32).sqrt();
            let w: Vec<f32> = (0..i * o).map(|_| rng.random_range(-s..s)).collect();
            let b: Vec<f32> = (0..o).map(|_| rng.random_range(-s..s)).collect();
            map.insert(format!("layers.{k}.weight"), crate::weights::Tensor::new(vec![o, i], w).unwrap());
            map.insert(format!("layers.{k}.bias"), crate::weights::Tensor::new(vec![o], b).unwrap());
        }
        AestheticHead::from_state_dict(&map).unwrap()
    }

    #[test]
    fn folded_equals_unfolded() {
        let head = random_head(1);
        let folded = head.fold();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for _ in 0..20 {
            let e: Vec<f32> = (0..768).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let (a, b) = (head.score(&e).unwrap(), folded.score(&e).unwrap());
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // normalisation: scaling the embedding does not change the score
        let e: Vec<f32> = (0..768).map(|i| (i as f32).sin()).collect();
        let e2: Vec<f32> = e.iter().map(|v| v * 3.0).collect();
        assert!((head.score(&e).unwrap() - head.score(&e2).unwrap()).abs() < 1e-6);
    }

    #[test]
    fn shape_errors() {
        let mut map = WeightMap::new();
        map.insert(
            "layers.0.weight",
            crate::weights::Tensor::new(vec![1024, 767], vec![0.0; 1024 * 767]).unwrap(),
        );
        let e = AestheticHead::from_state_dict(&map).unwrap_err();
        assert!(e.to_string().contains("layers.0.weight"), "{e}");
        let head = random_head(3);
        assert!(head.score(&[1.0; 10]).is_err());
        assert!(head.score(&[0.0; 768]).is_err());
    }
}
