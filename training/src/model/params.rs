//! GPT-2 parameters as named tch tensors, with Hugging Face `GPT2LMHeadModel` names
//! (`transformer.wte.weight`, `transformer.h.N.attn.c_attn.weight` in Conv1D [in, out] layout, ...;
//! the LM head is tied to `wte`, so `lm_head.weight` is not a separate parameter, as
//! `save_pretrained` writes it, unless `tie_word_embeddings` is false). Filled from the library's checkpoint readers (safetensors,
//! `pytorch_model.bin`), converted back to a WeightMap for saving and for the ONNX builder.

use std::collections::BTreeMap;
use std::path::Path;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::weights::{Tensor as WTensor, WeightMap};
use tch::{Device, Kind, Tensor};

use crate::error::{Result, TrainError};

/// Parameter names and shapes of `cfg`, in a fixed order.
pub fn param_shapes(cfg: &Gpt2Config) -> Vec<(String, Vec<usize>)> {
    let (e, v, ctx, inner) = (cfg.n_embd, cfg.vocab_size, cfg.context(), cfg.inner());
    let mut out = vec![("transformer.wte.weight".to_string(), vec![v, e]), ("transformer.wpe.weight".to_string(), vec![ctx, e])];
    for i in 0..cfg.n_layer {
        let k = |s: &str| format!("transformer.h.{i}.{s}");
        out.push((k("ln_1.weight"), vec![e]));
        out.push((k("ln_1.bias"), vec![e]));
        out.push((k("attn.c_attn.weight"), vec![e, 3 * e]));
        out.push((k("attn.c_attn.bias"), vec![3 * e]));
        out.push((k("attn.c_proj.weight"), vec![e, e]));
        out.push((k("attn.c_proj.bias"), vec![e]));
        out.push((k("ln_2.weight"), vec![e]));
        out.push((k("ln_2.bias"), vec![e]));
        out.push((k("mlp.c_fc.weight"), vec![e, inner]));
        out.push((k("mlp.c_fc.bias"), vec![inner]));
        out.push((k("mlp.c_proj.weight"), vec![inner, e]));
        out.push((k("mlp.c_proj.bias"), vec![e]));
    }
    out.push(("transformer.ln_f.weight".to_string(), vec![e]));
    out.push(("transformer.ln_f.bias".to_string(), vec![e]));
    if !cfg.tie_word_embeddings {
        out.push((LM_HEAD.to_string(), vec![v, e]));
    }
    out
}

/// The separate LM head of configs with `tie_word_embeddings: false`.
pub const LM_HEAD: &str = "lm_head.weight";

/// True for parameters that get weight decay: matrices and embeddings, not biases or LayerNorm
/// gains (Hugging Face Trainer's grouping).
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains(".ln_"))
}

/// Keys of a checkpoint that carry no parameter (attention-mask buffers of older transformers).
fn is_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

/// The named float32 parameters of a GPT-2 model on one device.
pub struct Params {
    pub cfg: Gpt2Config,
    pub device: Device,
    tensors: BTreeMap<String, Tensor>,
    order: Vec<String>,
}

/// A float32 tch tensor from a library tensor.
pub fn to_tch(t: &WTensor, device: Device) -> Result<Tensor> {
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_slice(&t.data)?.f_reshape(&shape)?.f_to_device(device)?)
}

/// A library tensor (f32 values, row-major) from any tch tensor.
pub fn from_tch(t: &Tensor) -> Result<WTensor> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.f_detach()?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_reshape([-1])?;
    let data = Vec::<f32>::try_from(&flat)?;
    Ok(WTensor::new(shape, data)?)
}

impl Params {
    /// Random init as transformers' `GPT2PreTrainedModel._init_weights` does: normal(0, 0.02)
    /// weights and embeddings, residual projections normal(0, 0.02/sqrt(2 n_layer)), zero biases,
    /// unit LayerNorm gains; drawn from libtorch's CPU generator seeded with `seed`, so the same
    /// seed gives the same weights on every device.
    pub fn random(cfg: &Gpt2Config, seed: u64, device: Device) -> Result<Self> {
        cfg.validate()?;
        tch::manual_seed(seed as i64);
        let std = 0.02f64;
        let resid = std / (2.0 * cfg.n_layer as f64).sqrt();
        let mut tensors = BTreeMap::new();
        let mut order = Vec::new();
        for (name, shape) in param_shapes(cfg) {
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let t = if name.ends_with(".bias") {
                Tensor::f_zeros(&dims, (Kind::Float, Device::Cpu))?
            } else if name.contains(".ln_") {
                Tensor::f_ones(&dims, (Kind::Float, Device::Cpu))?
            } else {
                let s = if name.ends_with("c_proj.weight") { resid } else { std };
                Tensor::f_randn(&dims, (Kind::Float, Device::Cpu))?.f_mul_scalar(s)?
            };
            tensors.insert(name.clone(), t.f_to_device(device)?.f_set_requires_grad(true)?);
            order.push(name);
        }
        Ok(Self { cfg: cfg.clone(), device, tensors, order })
    }

    /// Parameters from a library WeightMap with Hugging Face names (the `transformer.` prefix is
    /// optional). Returns the params and the checkpoint keys that were not used (for a warning).
    /// With a tied config, a present `lm_head.weight` must equal `wte`; untied configs need it.
    pub fn from_weights(cfg: &Gpt2Config, w: &WeightMap, device: Device) -> Result<(Self, Vec<String>)> {
        cfg.validate()?;
        let mut used = std::collections::BTreeSet::new();
        let mut tensors = BTreeMap::new();
        let mut order = Vec::new();
        for (name, shape) in param_shapes(cfg) {
            let short = name.strip_prefix("transformer.").unwrap_or(&name).to_string();
            let key = if w.contains(&name) { name.clone() } else { short };
            let t = w.expect(&key, &shape)?;
            used.insert(key);
            tensors.insert(name.clone(), to_tch(t, device)?.f_set_requires_grad(true)?);
            order.push(name);
        }
        if let (true, Some(head)) = (cfg.tie_word_embeddings, w.get(LM_HEAD)) {
            used.insert(LM_HEAD.to_string());
            let wte = w.get("transformer.wte.weight").or_else(|| w.get("wte.weight"));
            if wte.map(|t| t != head).unwrap_or(true) {
                return Err(TrainError::Checkpoint(
                    "lm_head.weight differs from transformer.wte.weight although config.json says tie_word_embeddings: true".into(),
                ));
            }
        }
        let unused = w.names().filter(|n| !used.contains(*n) && !is_buffer(n)).map(str::to_string).collect();
        Ok((Self { cfg: cfg.clone(), device, tensors, order }, unused))
    }

    /// Load a Hugging Face checkpoint folder (`config.json` + `model.safetensors` / sharded /
    /// `pytorch_model.bin`) through the library's readers.
    pub fn load_dir(dir: &Path, device: Device) -> Result<(Self, Vec<String>)> {
        let cfg = Gpt2Config::from_file(&dir.join("config.json"))?;
        let (w, _format) = promptist::weights::load_checkpoint_weights(dir)?;
        Self::from_weights(&cfg, &w, device)
    }

    /// The parameters as a library WeightMap (f32 on the CPU, tied head omitted).
    pub fn to_weights(&self) -> Result<WeightMap> {
        let mut m = WeightMap::new();
        for (name, t) in &self.tensors {
            m.insert(name.clone(), from_tch(t)?);
        }
        Ok(m)
    }

    /// Write `model.safetensors` (f32, `format: pt` metadata, as `save_pretrained` writes).
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        promptist::weights::write_safetensors(&self.to_weights()?, path, promptist::weights::safetensors_io::StoreDtype::F32, Some(meta))?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| TrainError::Checkpoint(format!("parameter {name} is missing")))
    }

    /// (name, tensor) in the fixed parameter order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.order.iter().filter_map(move |n| self.tensors.get(n).map(|t| (n.as_str(), t)))
    }

    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.tensors.values().map(|t| t.numel()).sum()
    }

    /// A deep copy on the same device (each tensor copied, its requires-grad flag kept).
    pub fn try_clone(&self) -> Result<Self> {
        let mut tensors = BTreeMap::new();
        for (name, t) in &self.tensors {
            let mut c = t.f_detach()?.f_zeros_like()?;
            c.f_copy_(&t.f_detach()?)?;
            tensors.insert(name.clone(), c.f_set_requires_grad(t.requires_grad())?);
        }
        Ok(Self { cfg: self.cfg.clone(), device: self.device, tensors, order: self.order.clone() })
    }

    /// Add a named parameter (e.g. the PPO value head); it joins the saved weights and the
    /// optimizer. An existing name is an error.
    pub fn insert(&mut self, name: &str, t: Tensor) -> Result<()> {
        if self.tensors.contains_key(name) {
            return Err(TrainError::Checkpoint(format!("parameter {name} exists already")));
        }
        self.tensors.insert(name.to_string(), t.f_set_requires_grad(true)?);
        self.order.push(name.to_string());
        Ok(())
    }

    /// Zero every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for t in self.tensors.values_mut() {
            t.zero_grad();
        }
    }
}
