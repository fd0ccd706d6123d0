//! The weight readers on hostile files: arbitrary bytes as a `.safetensors` file, as a
//! `pytorch_model.bin` zip, and as the pickle inside a well-formed torch.save zip (so the
//! restricted unpickler and the tensor materialisation see the mutations, not just the zip reader).
//! Any outcome but a panic, an abort or a crash is fine; a read that succeeds must give tensors
//! whose data length equals their shape's product.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn work() -> &'static PathBuf {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| promptist_fuzz::scratch_dir("weights"))
}

/// A torch.save zip around `pickle`, with four small storages named 0..3.
fn torch_zip(pickle: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", o).expect("zip");
    z.write_all(pickle).expect("zip");
    z.start_file("archive/byteorder", o).expect("zip");
    z.write_all(b"little").expect("zip");
    for k in 0..4u8 {
        z.start_file(format!("archive/data/{k}"), o).expect("zip");
        z.write_all(&[k; 64]).expect("zip");
    }
    z.finish().expect("zip").into_inner()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (name, bytes) = match mode % 3 {
        0 => ("w.safetensors", rest.to_vec()),
        1 => ("pytorch_model.bin", rest.to_vec()),
        _ => ("pytorch_model.bin", torch_zip(rest)),
    };
    let p = work().join(name);
    std::fs::write(&p, &bytes).expect("write");
    if let Ok(w) = promptist::weights::read_weights_file(&p) {
        for n in w.names() {
            let t = w.get(n).expect("listed tensor");
            assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "tensor {n}");
        }
    }
});
