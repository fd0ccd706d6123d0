//! `promptist convert`: a Hugging Face GPT-2-architecture checkpoint folder -> a promptist bundle
//! (the work is `promptist::export::convert_checkpoint`; progress goes to stderr).

use std::path::PathBuf;

use promptist::export::gpt2::AttentionImpl;
use promptist::export::onnx::DType;
use promptist::export::{convert_checkpoint, ConvertOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder: config.json, model.safetensors (or sharded, or pytorch_model.bin), tokenizer
    /// files; or a folder with an optimum GPT-2-with-past model.onnx. Also accepted as `--checkpoint`.
    #[arg(required_unless_present = "checkpoint", conflicts_with = "checkpoint")]
    folder: Option<PathBuf>,
    /// The checkpoint folder (same as the positional argument).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Bundle folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Weight and KV-cache type of the ONNX graph.
    #[arg(long, value_parser = ["fp32", "fp16"], default_value = "fp32")]
    dtype: String,
    /// Bundle name in the manifest (default: the checkpoint folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Attention ops: standard ONNX ops, or ONNX Runtime's fused com.microsoft.MultiHeadAttention.
    #[arg(long, value_parser = ["standard", "ort-mha"], default_value = "standard")]
    attention: String,
    /// A folder with the tokenizer files (tokenizer.json, or vocab.json + merges.txt). Default: the
    /// checkpoint's own; without any, a GPT-2-vocabulary checkpoint uses the embedded GPT-2 tokenizer.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Tensors of at least this many bytes go to model.onnx_data.
    #[arg(long, default_value_t = 1024)]
    external_threshold: usize,
}

pub fn run(a: Args) -> promptist::Result<()> {
    let checkpoint = a
        .folder
        .or(a.checkpoint)
        .ok_or_else(|| promptist::Error::InvalidOptions("give the checkpoint folder".into()))?;
    let opts = ConvertOptions {
        dtype: if a.dtype == "fp16" { DType::F16 } else { DType::F32 },
        name: a.name,
        external_threshold_bytes: Some(a.external_threshold),
        attention: if a.attention == "ort-mha" {
            AttentionImpl::OrtMultiHeadAttention
        } else {
            AttentionImpl::Standard
        },
        tokenizer: a.tokenizer,
    };
    let m = convert_checkpoint(&checkpoint, &a.out, &opts, &mut |s| eprintln!("convert: {s}"))?;
    if m.provenance.random_weights {
        eprintln!("convert: NOTE the weights are random: the policy's outputs are meaningless");
    }
    eprintln!("convert: wrote bundle {} ({})", a.out.display(), m.name);
    Ok(())
}
