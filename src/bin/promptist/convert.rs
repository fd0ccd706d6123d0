//! `promptist convert`: a Hugging Face GPT-2-architecture checkpoint folder -> a promptist bundle
//! (the work is `promptist::export::convert_checkpoint`; progress goes to stderr).

use std::path::PathBuf;

use promptist::export::onnx::DType;
use promptist::export::{convert_checkpoint, ConvertOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder: config.json, model.safetensors (or sharded, or pytorch_model.bin), tokenizer files.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Bundle folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Weight and KV-cache type of the ONNX graph.
    #[arg(long, value_parser = ["fp32", "fp16"], default_value = "fp32")]
    dtype: String,
    /// Bundle name in the manifest (default: the checkpoint folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Tensors of at least this many bytes go to model.onnx_data.
    #[arg(long, default_value_t = 1024)]
    external_threshold: usize,
}

pub fn run(a: Args) -> promptist::Result<()> {
    let opts = ConvertOptions {
        dtype: if a.dtype == "fp16" { DType::F16 } else { DType::F32 },
        name: a.name,
        external_threshold_bytes: Some(a.external_threshold),
    };
    let m = convert_checkpoint(&a.checkpoint, &a.out, &opts, &mut |s| eprintln!("convert: {s}"))?;
    if m.provenance.random_weights {
        eprintln!("convert: NOTE the weights are random: the policy's outputs are meaningless");
    }
    eprintln!("convert: wrote bundle {} ({})", a.out.display(), m.name);
    Ok(())
}
