//! The LAION improved aesthetic predictor head (christophschuhmann/improved-aesthetic-predictor,
//! as loaded by the Promptist reward code) as ONNX graphs: `image_embeds` float32 [batch_size, D]
//! (CLIP ViT-L/14 image embeddings, D = 768) is L2-normalised inside the graph (`x / ||x||`, as the
//! reference does before the head; idempotent for already-normalised input) -> `score` float32
//! [batch_size, 1].
//!
//! The head is `nn.Sequential` of Linear layers at `layers.{0,2,4,6,7}` with Dropouts between and no
//! activations, so at inference it is affine. Two exports: unfolded (every Linear kept) and folded
//! (the product of the layers computed in f64 and rounded once to f32: one dot product plus bias).

use std::path::Path;

use super::onnx::{attr, DType, Dim, GraphBuilder, Model, TensorData};
use crate::weights::WeightMap;
use crate::{Error, Result};

pub const IMAGE_EMBEDS: &str = "image_embeds";
pub const SCORE: &str = "score";
/// Expected I/O names, for load-time checks.
pub const AESTHETIC_INPUTS: &[&str] = &[IMAGE_EMBEDS];
pub const AESTHETIC_OUTPUTS: &[&str] = &[SCORE];

/// Read the head's weights from the released `.pth` (a `torch.save` state dict, read by the
/// restricted unpickler in `weights::torch_pickle`) or from a `.safetensors` file, as f32.
pub fn load_aesthetic_weights(path: &Path) -> Result<WeightMap> {
    super::sd_pipeline::read_weights_file(path)
}

/// One Linear layer: weight [out, in] row-major, bias [out].
#[derive(Debug, Clone)]
pub struct AffineLayer {
    pub key: String,
    pub out_dim: usize,
    pub in_dim: usize,
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
}

/// The Linear layers of the head in order (`layers.N.weight` / `.bias`, sorted by N), checking
/// that consecutive widths chain and the last layer has one output.
pub fn aesthetic_layers(w: &WeightMap) -> Result<Vec<AffineLayer>> {
    let mut idx: Vec<usize> = w
        .names()
        .filter_map(|k| k.strip_prefix("layers.")?.strip_suffix(".weight")?.parse().ok())
        .collect();
    idx.sort_unstable();
    if idx.is_empty() {
        return Err(Error::ModelFormat("aesthetic head: no layers.N.weight tensors".into()));
    }
    let mut out: Vec<AffineLayer> = Vec::new();
    for i in idx {
        let key = format!("layers.{i}");
        let wt = w.get(&format!("{key}.weight")).ok_or_else(|| Error::Internal("aesthetic weight vanished".into()))?;
        let [o, n] = wt.shape[..] else {
            return Err(Error::ModelFormat(format!("aesthetic head: {key}.weight has shape {:?}, expected 2-D", wt.shape)));
        };
        let b = w.expect(&format!("{key}.bias"), &[o])?;
        if let Some(prev) = out.last() {
            if prev.out_dim != n {
                return Err(Error::ModelFormat(format!("aesthetic head: {key} takes {n} inputs but {} gives {}", prev.key, prev.out_dim)));
            }
        }
        out.push(AffineLayer {
            key,
            out_dim: o,
            in_dim: n,
            weight: wt.data.iter().map(|&v| v as f64).collect(),
            bias: b.data.iter().map(|&v| v as f64).collect(),
        });
    }
    if out.last().map(|l| l.out_dim) != Some(1) {
        return Err(Error::ModelFormat("aesthetic head: the last layer must have one output".into()));
    }
    Ok(out)
}

/// Fold the layers into one affine map `score = w . x + b` (f64).
pub fn fold(layers: &[AffineLayer]) -> Result<(Vec<f64>, f64)> {
    let first = layers.first().ok_or_else(|| Error::ModelFormat("aesthetic head has no layers".into()))?;
    // Running map: M [rows, in0] and c [rows], starting from the first layer.
    let (mut m, mut c, mut rows) = (first.weight.clone(), first.bias.clone(), first.out_dim);
    let in0 = first.in_dim;
    for l in &layers[1..] {
        let mut m2 = vec![0f64; l.out_dim * in0];
        let mut c2 = l.bias.clone();
        for o in 0..l.out_dim {
            for k in 0..rows {
                let a = l.weight[o * l.in_dim + k];
                c2[o] += a * c[k];
                let row = &m[k * in0..(k + 1) * in0];
                for (dst, src) in m2[o * in0..(o + 1) * in0].iter_mut().zip(row) {
                    *dst += a * src;
                }
            }
        }
        m = m2;
        c = c2;
        rows = l.out_dim;
    }
    Ok((m, c[0]))
}

fn normalized_input(g: &mut GraphBuilder, d: usize) -> String {
    let x = g.input(IMAGE_EMBEDS, DType::F32, &[Dim::from("batch_size"), Dim::Fixed(d as i64)]);
    let axes = g.const_i64s(&[-1]);
    let norm = g.op("ReduceL2", &[&x, &axes], vec![attr("keepdims", 1i64)]);
    g.op("Div", &[&x, &norm], vec![])
}

fn dense(g: &mut GraphBuilder, x: &str, key: &str, w_t: Vec<f32>, in_dim: usize, out_dim: usize, bias: Vec<f32>) -> String {
    let wn = g.initializer(&format!("{key}.weight.T"), TensorData::f32(&[in_dim, out_dim], w_t));
    let bn = g.initializer(&format!("{key}.bias"), TensorData::f32(&[out_dim], bias));
    let y = g.op("MatMul", &[x, &wn], vec![]);
    g.op("Add", &[&y, &bn], vec![])
}

/// The head with every Linear layer kept.
pub fn build_aesthetic_unfolded(w: &WeightMap) -> Result<Model> {
    let layers = aesthetic_layers(w)?;
    let mut g = GraphBuilder::new("aesthetic");
    g.metadata("promptist.graph", "aesthetic-unfolded");
    let mut x = normalized_input(&mut g, layers[0].in_dim);
    for l in &layers {
        let mut wt = vec![0f32; l.in_dim * l.out_dim];
        for o in 0..l.out_dim {
            for i in 0..l.in_dim {
                wt[i * l.out_dim + o] = l.weight[o * l.in_dim + i] as f32;
            }
        }
        let bias = l.bias.iter().map(|&v| v as f32).collect();
        x = dense(&mut g, &x, &l.key, wt, l.in_dim, l.out_dim, bias);
    }
    g.output(&x, SCORE, DType::F32, &[Dim::from("batch_size"), Dim::Fixed(1)]);
    Ok(g.finish())
}

/// The head folded to one affine map (computed in f64, stored as f32).
pub fn build_aesthetic_folded(w: &WeightMap) -> Result<Model> {
    let layers = aesthetic_layers(w)?;
    let (m, c) = fold(&layers)?;
    let d = layers[0].in_dim;
    let mut g = GraphBuilder::new("aesthetic");
    g.metadata("promptist.graph", "aesthetic-folded");
    let x = normalized_input(&mut g, d);
    let y = dense(&mut g, &x, "folded", m.iter().map(|&v| v as f32).collect(), d, 1, vec![c as f32]);
    g.output(&y, SCORE, DType::F32, &[Dim::from("batch_size"), Dim::Fixed(1)]);
    Ok(g.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Tensor;

    #[test]
    fn fold_equals_sequential_application() {
        let mut w = WeightMap::new();
        w.insert("layers.0.weight", Tensor::new(vec![3, 2], vec![1.0, 2.0, -1.0, 0.5, 0.0, 3.0]).unwrap());
        w.insert("layers.0.bias", Tensor::new(vec![3], vec![0.1, 0.2, 0.3]).unwrap());
        w.insert("layers.2.weight", Tensor::new(vec![1, 3], vec![2.0, -1.0, 0.5]).unwrap());
        w.insert("layers.2.bias", Tensor::new(vec![1], vec![-0.4]).unwrap());
        let layers = aesthetic_layers(&w).unwrap();
        let (m, c) = fold(&layers).unwrap();
        // by hand: h = [x0+2x1+0.1, -x0+0.5x1+0.2, 3x1+0.3]; y = 2h0 - h1 + 0.5h2 - 0.4
        assert_eq!(m, vec![3.0, 5.0]);
        assert!((c - (0.2 - 0.2 + 0.15 - 0.4)).abs() < 1e-12);
    }
}
