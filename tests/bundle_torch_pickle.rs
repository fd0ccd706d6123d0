//! promptist::weights::torch_pickle against torch itself: checkpoints written by `torch.save` in the
//! Python venv at test time (f32, f16, bf16, int64, bool, transposed and sliced views, shared
//! storages, parameters, nested dicts and lists, pickle protocols 2 and 4, a non-"archive" folder,
//! a tiny transformers GPT2LMHeadModel state dict with tied embeddings),
//! and the real LAION aesthetic head. Every element is compared bit for bit (tolerance 0) with the
//! tensors torch.load returns, which Python saves as safetensors next to each checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use promptist::weights::torch_pickle::{load, DType, TensorData};
use safetensors::{Dtype, SafeTensors};

use common::{python, data_path};

fn aesthetic_head() -> PathBuf {
    data_path("aesthetic/sac+logos+ava1-l14-linearMSE.pth")
}

/// Writes each checkpoint X.pt plus X.expected.safetensors (torch.load's tensors, flattened with
/// dots, made contiguous) and X.order.txt (the expected names in order).
const MAKE: &str = r#"
import sys, datetime, collections
from pathlib import Path
import torch
from safetensors.torch import save_file
torch.set_num_threads(1)
torch.manual_seed(0)
out = Path(sys.argv[1]); aesthetic = sys.argv[2]

def flatten(obj, prefix=""):
    items = []
    if isinstance(obj, torch.Tensor):
        items.append((prefix, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            items += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            items += flatten(v, f"{prefix}.{i}" if prefix else str(i))
    return items

def write(name, obj, **kw):
    p = out / f"{name}.pt"
    torch.save(obj, p, **kw)
    expect(name, p)

def expect(name, p):
    items = flatten(torch.load(p, map_location="cpu", weights_only=False))
    save_file({k: v.detach().contiguous().clone() for k, v in items}, str(out / f"{name}.expected.safetensors"))
    (out / f"{name}.order.txt").write_text("\n".join(k for k, _ in items))

model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU(), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
write("f32", model.state_dict())
write("f16", {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()})
write("bf16", collections.OrderedDict((k, v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in model.state_dict().items()))
base = torch.randn(4, 6)
write("views", {"t": base.t(), "slice": base[1:, ::2], "base": base, "row": base[2], "col": base[:, 3],
                "scalar": base[1, 1], "expanded": torch.randn(3, 1).expand(3, 4), "empty": torch.zeros(0, 5),
                "ints": torch.arange(-5, 7, dtype=torch.int64).view(3, 4).t(), "mask": base > 0})
write("nested", {"state_dict": model.state_dict(), "epoch": 3, "name": "ckpt", "lr": 0.5, "flag": None,
                 "list": [torch.randn(2), (torch.randn(1, 2), 7)], "param": torch.nn.Parameter(torch.randn(2, 2))})
write("proto4", {"a.b": torch.randn(3, 3).half().t(), "c": torch.randn(2, 8).to(torch.bfloat16)[:, 1::3]}, pickle_protocol=4)
import transformers
gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=100))
sd = gpt2.state_dict()
assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()  # tied: one storage
write("pytorch_model", sd)
torch.save({"when": datetime.date(2024, 1, 1), "w": torch.zeros(1)}, out / "global.pt")
expect("aesthetic", aesthetic)
"#;

fn dtype_of(d: Dtype) -> DType {
    match d {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// Compare every tensor of `ckpt` with the expected file; returns (tensors, elements) compared.
fn compare(dir: &Path, name: &str, ckpt: &Path) -> (usize, usize) {
    let got: Vec<(String, TensorData)> = load(ckpt).unwrap_or_else(|e| panic!("{name}: {e}"));
    let order = std::fs::read_to_string(dir.join(format!("{name}.order.txt"))).unwrap();
    let want_names: Vec<&str> = order.lines().collect();
    let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got_names, want_names, "{name}: names or order differ");
    let bytes = std::fs::read(dir.join(format!("{name}.expected.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut elements = 0;
    for (n, t) in &got {
        let w = st.tensor(n).unwrap();
        assert_eq!(t.dtype, dtype_of(w.dtype()), "{name}/{n}: dtype");
        assert_eq!(t.shape, w.shape(), "{name}/{n}: shape");
        assert_eq!(t.bytes.len(), w.data().len(), "{name}/{n}: byte length");
        if let Some(i) = t.bytes.iter().zip(w.data()).position(|(a, b)| a != b) {
            panic!("{name}/{n}: byte {i} differs");
        }
        assert_eq!(t.to_f32().unwrap().len(), t.numel());
        elements += t.numel();
    }
    (got.len(), elements)
}

#[test]
fn torch_save_checkpoints_match_torch_load() {
    let dir = tempfile::tempdir().unwrap();
    let aesthetic = aesthetic_head();
    let st = Command::new(python())
        .arg("-c")
        .arg(MAKE)
        .arg(dir.path())
        .arg(&aesthetic)
        .status()
        .expect("running python");
    assert!(st.success(), "writing the test checkpoints failed");
    let mut total = (0, 0);
    for name in ["f32", "f16", "bf16", "views", "nested", "proto4", "pytorch_model"] {
        let (n, e) = compare(dir.path(), name, &dir.path().join(format!("{name}.pt")));
        eprintln!("{name}: {n} tensors, {e} elements identical");
        total = (total.0 + n, total.1 + e);
    }
    let (n, e) = compare(dir.path(), "aesthetic", &aesthetic);
    eprintln!("aesthetic head: {n} tensors, {e} elements identical");
    eprintln!("total: {} tensors, {} elements", total.0 + n, total.1 + e);

    // Key facts of the aesthetic head: an MLP 768 -> 1024 -> 128 -> 64 -> 16 -> 1.
    let head = load(&aesthetic).unwrap();
    let shapes: Vec<(&str, &[usize])> = head.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice())).collect();
    assert_eq!(
        shapes,
        vec![
            ("layers.0.weight", &[1024, 768][..]),
            ("layers.0.bias", &[1024][..]),
            ("layers.2.weight", &[128, 1024][..]),
            ("layers.2.bias", &[128][..]),
            ("layers.4.weight", &[64, 128][..]),
            ("layers.4.bias", &[64][..]),
            ("layers.6.weight", &[16, 64][..]),
            ("layers.6.bias", &[16][..]),
            ("layers.7.weight", &[1, 16][..]),
            ("layers.7.bias", &[1][..]),
        ]
    );

    let e = load(&dir.path().join("global.pt")).unwrap_err();
    assert_eq!(e.code(), promptist::Code::ModelFormat);
    assert!(e.to_string().contains("datetime.date"), "{e}");
}

#[test]
fn not_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.bin");
    std::fs::write(&p, b"definitely not a zip").unwrap();
    let e = load(&p).unwrap_err();
    assert_eq!(e.code(), promptist::Code::ModelFormat);
    assert!(e.to_string().contains("x.bin"), "{e}");
    assert_eq!(
        load(&dir.path().join("missing.bin")).unwrap_err().code(),
        promptist::Code::Io
    );
}
