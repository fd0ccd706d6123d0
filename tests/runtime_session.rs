//! ONNX Runtime sessions through promptist::runtime on a tiny ONNX model written by the Python
//! `onnx` package at test time: CPU creation and a run, the name checks, CUDA/auto providers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ort::value::Tensor;
use promptist::runtime::{IoNames, ProviderChoice, ProviderKind, Runtime, SessionOptions};
use promptist::Code;

use common::python;

/// z = x + y (float32, shape [2, 3]).
fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("add.onnx");
    let script = r#"
import sys, onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])
g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add", [x, y], [z])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
"#;
    let st = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&path)
        .status()
        .expect("running python");
    assert!(st.success(), "writing the tiny ONNX model failed");
    path
}

fn runtime() -> Runtime {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (tests/fetch-ort.sh prints it)"
    );
    Runtime::get(None).unwrap()
}

#[test]
fn cpu_session_runs_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let rt = runtime();
    let opts = SessionOptions {
        provider: ProviderChoice::Cpu,
        intra_op_threads: 1,
        ..Default::default()
    };

    let (mut s, kind) = rt
        .session(&model, &opts, Some(&IoNames::new(["x", "y"], ["z"])))
        .unwrap();
    assert_eq!(kind, ProviderKind::Cpu);
    let x = Tensor::from_array(([2usize, 3], vec![1f32, 2., 3., 4., 5., 6.])).unwrap();
    let y = Tensor::from_array(([2usize, 3], vec![0.5f32, 0.25, -1., 10., 0., -6.])).unwrap();
    let out = s.run(ort::inputs!["x" => x, "y" => y]).unwrap();
    let (_, z) = out["z"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(z, &[1.5, 2.25, 2., 14., 5., 0.]);

    let e = rt
        .session(&model, &opts, Some(&IoNames::new(["x", "y", "w"], ["z"])))
        .unwrap_err();
    assert_eq!(e.code(), Code::ModelFormat);
    assert!(
        e.to_string().contains("add.onnx") && e.to_string().contains("`w`"),
        "{e}"
    );
    let e = rt
        .session(&model, &opts, Some(&IoNames::new(["x"], ["z"])))
        .unwrap_err();
    assert!(e.to_string().contains("unexpected input tensor `y`"), "{e}");
    let e = rt
        .session(&model, &opts, Some(&IoNames::new(["x", "y"], ["logits"])))
        .unwrap_err();
    assert!(e.to_string().contains("no output tensor `logits`"), "{e}");
    let e = rt.session(&dir.path().join("missing.onnx"), &opts, None).unwrap_err();
    assert!(e.to_string().contains("missing.onnx"), "{e}");
    std::fs::write(dir.path().join("junk.onnx"), b"not a model").unwrap();
    let e = rt.session(&dir.path().join("junk.onnx"), &opts, None).unwrap_err();
    assert_eq!(e.code(), Code::Inference);
}

#[test]
fn cuda_is_an_error_or_cuda_and_auto_reports_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let rt = runtime();
    let cuda = rt.session(
        &model,
        &SessionOptions {
            provider: ProviderChoice::Cuda,
            ..Default::default()
        },
        None,
    );
    let auto = rt
        .session(
            &model,
            &SessionOptions {
                provider: ProviderChoice::Auto,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    match cuda {
        // A CPU-only ONNX Runtime (the PyPI `onnxruntime` wheel) or no GPU: an error, never a CPU run.
        Err(e) => {
            assert_eq!(e.code(), Code::ProviderUnavailable, "{e}");
            eprintln!("cuda: {e}");
            assert_eq!(auto.1, ProviderKind::Cpu);
        }
        Ok((_, kind)) => {
            assert_eq!(kind, ProviderKind::Cuda);
            assert_eq!(auto.1, ProviderKind::Cuda);
        }
    }
}
