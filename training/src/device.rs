//! Device and precision choices (`--device cpu|cuda|cuda:N`, `--precision fp32|bf16|fp16`).
//! Mixed precision is done explicitly in the model (the effect of torch autocast: matmuls and
//! attention in the low type, LayerNorm, residual stream, softmax-cross-entropy and the master
//! weights in float32), because tch's `autocast` only offers float16.

use tch::{Cuda, Device, Kind};

use crate::error::{Result, TrainError};

/// Parse a device name; `cuda` when CUDA is absent is an error, never a silent CPU fallback.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let idx = if name == "cuda" {
        0
    } else if let Some(n) = name.strip_prefix("cuda:") {
        n.parse::<usize>().map_err(|_| TrainError::Options(format!("bad device {name:?} (expected cpu, cuda or cuda:N)")))?
    } else {
        return Err(TrainError::Options(format!("unknown device {name:?} (expected cpu, cuda or cuda:N)")));
    };
    if !Cuda::is_available() {
        return Err(TrainError::Options(format!(
            "--device {name}: CUDA is not available to libtorch here (no GPU, or libtorch_cuda not loaded); use --device cpu"
        )));
    }
    let count = Cuda::device_count() as usize;
    if idx >= count {
        return Err(TrainError::Options(format!("--device {name}: only {count} CUDA device(s)")));
    }
    Ok(Device::Cuda(idx))
}

/// Compute precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "f32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp16" | "float16" | "f16" | "half" => Ok(Precision::Fp16),
            o => Err(TrainError::Options(format!("unknown precision {o:?} (fp32, bf16, fp16)"))),
        }
    }
    /// The kind matmuls and attention run in.
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp16 => Kind::Half,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_precisions() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("tpu").is_err());
        if !Cuda::is_available() {
            let e = parse_device("cuda").unwrap_err().to_string();
            assert!(e.contains("CUDA is not available"), "{e}");
        }
        assert_eq!(Precision::parse("bf16").unwrap().compute_kind(), Kind::BFloat16);
        assert!(Precision::parse("fp8").is_err());
    }
}
