//! The packed MatMul path of CPU sessions (`SessionOptions::packed_matmul`, the policy's default):
//! the rewritten graph gives the same outputs as ONNX Runtime's own kernels on the same file, every
//! element compared. Covers the exported GPT-2 (external data, tied head: `Gemm(transB=1)` over a
//! `wte` that `Gather` still reads; KV cache; left padding; 2 threads) and single nodes (`MatMul`
//! with a 3-D input, `Gemm` with and without bias or `transB`, a `Gemm` with alpha != 1 that must
//! stay ONNX Runtime's). Needs ORT_DYLIB_PATH and an AVX-512F CPU (else the tests say they skipped).

mod common;

use std::path::Path;

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor};
use promptist::export::gpt2::Gpt2ExportOptions;
use promptist::export::onnx::{attr, save_model, DType, GraphBuilder, SaveOptions, TensorData};
use promptist::export::nn::{RandomWeights, WeightSource};
use promptist::export::{build_gpt2, random_gpt2_weights, Gpt2Config, LmHead};
use promptist::runtime::packed_gemm;
use promptist::runtime::{Runtime, SessionOptions};

fn runtime() -> Runtime {
    assert!(std::env::var_os("ORT_DYLIB_PATH").is_some(), "set ORT_DYLIB_PATH (tests/fetch-ort.sh prints it)");
    Runtime::get(None).unwrap()
}

fn sessions(rt: &Runtime, path: &Path) -> (Session, Session) {
    let opts = |packed| SessionOptions { intra_op_threads: 2, packed_matmul: packed, ..Default::default() };
    (rt.session(path, &opts(true), None).unwrap().0, rt.session(path, &opts(false), None).unwrap().0)
}

/// Seeded uniform values (the exporter's random-weight generator), scaled to about [-1.7, 1.7].
fn values(n: usize, seed: u64) -> Vec<f32> {
    RandomWeights::new(seed).fetch("values", &[n]).unwrap().iter().map(|v| v * 50.0).collect()
}

/// Max over elements of |a - b| / (1 + max |b|).
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = 1.0 + b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

/// True (and reported as a skip) when the CPU lacks AVX-512F.
fn skip(test: &str) -> bool {
    if !packed_gemm::available() {
        common::skip(test, "this CPU lacks AVX-512F, so sessions never use the packed kernel");
        return true;
    }
    false
}

fn floats(v: &DynValue) -> Vec<f32> {
    v.try_extract_tensor::<f32>().unwrap().1.to_vec()
}

#[test]
fn gpt2_graph_packed_equals_onnx_runtime() {
    if skip("packed_matmul::gpt2_graph_packed_equals_onnx_runtime") {
        return;
    }
    let rt = runtime();
    let mut c = Gpt2Config::tiny();
    c.vocab_size = 300;
    c.n_positions = Some(32);
    let w = random_gpt2_weights(&c, 5, LmHead::Tied).unwrap();
    let model = build_gpt2(&c, &w, &Gpt2ExportOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    let saved = save_model(&model, &path, &SaveOptions { external_threshold_bytes: Some(1024) }).unwrap();
    assert!(saved.data_path.is_some(), "the test needs external data");
    let rw = packed_gemm::prepare(&path).unwrap().expect("the GPT-2 graph has constant Gemms");
    assert_eq!(rw.nodes(), 4 * c.n_layer + 1, "c_attn, attn c_proj, c_fc, mlp c_proj per layer + the LM head");
    let (mut packed, mut plain) = sessions(&rt, &path);
    let n_layer = c.n_layer;
    let empty = |b: usize| -> Vec<DynValue> {
        (0..2 * n_layer)
            .map(|_| Tensor::from_array(([b, c.n_head, 0, c.n_embd / c.n_head], Vec::<f32>::new())).unwrap().into_dyn())
            .collect()
    };
    // Batch 3, 6 positions, rows left-padded by 0, 2 and 4.
    let b = 3;
    let ids: Vec<i64> = (0..18).map(|i| (i * 37 % 300) as i64).collect();
    let mask: Vec<i64> = (0..18).map(|i| if i % 6 >= [0, 2, 4][i / 6] { 1 } else { 0 }).collect();
    let pos: Vec<i64> = (0..18).map(|i| ((i % 6) as i64 - [0, 2, 4][i / 6] as i64).max(0)).collect();
    let (l1, p1) = common::gpt2_step(&mut packed, n_layer, &ids, &mask, &pos, b, empty(b));
    let (l2, p2) = common::gpt2_step(&mut plain, n_layer, &ids, &mask, &pos, b, empty(b));
    let e = rel_err(&l1, &l2);
    eprintln!("prefill logits: {} values, max abs diff / (1 + max |logit|) = {e:.2e}", l1.len());
    assert!(e <= 1e-5, "prefill logits differ: {e}");
    for (a, bb) in p1.iter().zip(&p2) {
        assert!(rel_err(&floats(a), &floats(bb)) <= 1e-5);
    }
    // One cached step from each session's own cache.
    let ids2 = vec![7i64, 8, 9];
    let mask2: Vec<i64> = (0..21).map(|i| if i % 7 >= [0, 2, 4][i / 7] { 1 } else { 0 }).collect();
    let pos2 = vec![6i64, 4, 2];
    let (l1, _) = common::gpt2_step(&mut packed, n_layer, &ids2, &mask2, &pos2, b, p1);
    let (l2, _) = common::gpt2_step(&mut plain, n_layer, &ids2, &mask2, &pos2, b, p2);
    let e = rel_err(&l1, &l2);
    eprintln!("cached step logits: {} values, max abs diff / (1 + max |logit|) = {e:.2e}", l1.len());
    assert!(e <= 1e-5, "cached-step logits differ: {e}");
}

#[test]
fn matmul_and_gemm_nodes_packed_equal_onnx_runtime() {
    if skip("packed_matmul::matmul_and_gemm_nodes_packed_equal_onnx_runtime") {
        return;
    }
    let rt = runtime();
    let (k, n1, n2, n4) = (37usize, 45usize, 16usize, 70usize);
    let mut g = GraphBuilder::new("nodes");
    let x3 = g.input("x3", DType::F32, &[2.into(), 3.into(), (k as i64).into()]);
    let x2 = g.input("x2", DType::F32, &["rows".into(), (k as i64).into()]);
    let w1 = g.initializer("w1", TensorData::f32(&[k, n1], values(k * n1, 1)));
    let w2 = g.initializer("w2", TensorData::f32(&[n2, k], values(k * n2, 2)));
    let b2 = g.initializer("b2", TensorData::f32(&[n2], values(n2, 3)));
    let w3 = g.initializer("w3", TensorData::f32(&[k, n2], values(k * n2, 4)));
    let w4 = g.initializer("w4", TensorData::f32(&[k, n4], values(k * n4, 5)));
    let b4 = g.initializer("b4", TensorData::f32(&[n4], values(n4, 6)));
    let y1 = g.op("MatMul", &[&x3, &w1], vec![]);
    let y2 = g.op("Gemm", &[&x2, &w2, &b2], vec![attr("transB", 1i64)]);
    let y3 = g.op("Gemm", &[&x2, &w3], vec![attr("alpha", 0.5f32)]);
    let y4 = g.op("Gemm", &[&x2, &w4, &b4], vec![]);
    g.output(&y1, "y1", DType::F32, &[2.into(), 3.into(), (n1 as i64).into()]);
    g.output(&y2, "y2", DType::F32, &["rows".into(), (n2 as i64).into()]);
    g.output(&y3, "y3", DType::F32, &["rows".into(), (n2 as i64).into()]);
    g.output(&y4, "y4", DType::F32, &["rows".into(), (n4 as i64).into()]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.onnx");
    save_model(&g.finish(), &path, &SaveOptions { external_threshold_bytes: Some(256) }).unwrap();
    let rw = packed_gemm::prepare(&path).unwrap().unwrap();
    assert_eq!(rw.nodes(), 3, "MatMul, Gemm(transB) + bias, Gemm + bias; not the alpha = 0.5 Gemm");
    let (mut packed, mut plain) = sessions(&rt, &path);
    for rows in [1usize, 9] {
        let feed = || -> Vec<(String, SessionInputValue<'static>)> {
            vec![
                ("x3".into(), Tensor::from_array(([2usize, 3, k], values(6 * k, 7))).unwrap().into()),
                ("x2".into(), Tensor::from_array(([rows, k], values(rows * k, 8))).unwrap().into()),
            ]
        };
        let a = packed.run(feed()).unwrap();
        let b = plain.run(feed()).unwrap();
        for name in ["y1", "y2", "y3", "y4"] {
            let (sa, va) = a[name].try_extract_tensor::<f32>().unwrap();
            let (sb, vb) = b[name].try_extract_tensor::<f32>().unwrap();
            assert_eq!(sa.to_vec(), sb.to_vec(), "{name} shape");
            let e = rel_err(va, vb);
            assert!(e <= 1e-6, "{name} with {rows} rows: max abs diff / (1 + max |y|) = {e}");
        }
    }
}

/// GPT-2 117M's four projection shapes and its tied LM head (K up to 3072, N up to 50257), 8 rows
/// (one beam step) and 1 row, packed vs ONNX Runtime: every element within 1e-5 * (1 + max |y|).
#[test]
fn gpt2_117m_shapes_packed_equal_onnx_runtime() {
    if skip("packed_matmul::gpt2_117m_shapes_packed_equal_onnx_runtime") {
        return;
    }
    let rt = runtime();
    // (K, N, transB): c_attn, attn c_proj, mlp c_fc, mlp c_proj, LM head over wte [50257, 768].
    let shapes = [(768usize, 2304usize, 0i64), (768, 768, 0), (768, 3072, 0), (3072, 768, 0), (768, 50257, 1)];
    let mut g = GraphBuilder::new("gpt2_shapes");
    let mut outs = Vec::new();
    for (i, &(k, n, trans_b)) in shapes.iter().enumerate() {
        let x = g.input(&format!("x{i}"), DType::F32, &["rows".into(), (k as i64).into()]);
        let dims = if trans_b == 1 { [n, k] } else { [k, n] };
        // GPT-2's init scale (std 0.02) keeps |y| realistic.
        let w: Vec<f32> = values(k * n, 100 + i as u64).into_iter().map(|v| v * 0.02).collect();
        let wn = g.initializer(&format!("w{i}"), TensorData::f32(&dims, w));
        let y = if trans_b == 1 {
            g.op("Gemm", &[&x, &wn], vec![attr("transB", 1i64)])
        } else {
            let b = g.initializer(&format!("b{i}"), TensorData::f32(&[n], values(n, 200 + i as u64)));
            g.op("Gemm", &[&x, &wn, &b], vec![])
        };
        g.output(&y, &format!("y{i}"), DType::F32, &["rows".into(), (n as i64).into()]);
        outs.push((format!("x{i}"), format!("y{i}"), k));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shapes.onnx");
    save_model(&g.finish(), &path, &SaveOptions { external_threshold_bytes: Some(1024) }).unwrap();
    let (mut packed, mut plain) = sessions(&rt, &path);
    for rows in [8usize, 1] {
        let feed = || -> Vec<(String, SessionInputValue<'static>)> {
            outs.iter()
                .enumerate()
                .map(|(i, (x, _, k))| {
                    // Layer-normed activations are O(1).
                    let v = values(rows * k, 300 + i as u64);
                    (x.clone(), Tensor::from_array(([rows, *k], v)).unwrap().into())
                })
                .collect()
        };
        let a = packed.run(feed()).unwrap();
        let b = plain.run(feed()).unwrap();
        for (i, (_, y, _)) in outs.iter().enumerate() {
            let va = a[y.as_str()].try_extract_tensor::<f32>().unwrap().1;
            let vb = b[y.as_str()].try_extract_tensor::<f32>().unwrap().1;
            let e = rel_err(va, vb);
            eprintln!("{rows} rows, K {} N {}: {} values, max abs diff / (1 + max |y|) = {e:.2e}", shapes[i].0, shapes[i].1, va.len());
            assert!(e <= 1e-5, "{y} ({rows} rows): {e}");
        }
    }
}
