//! Checkpoint weights: a name -> tensor map read from the formats users have (safetensors,
//! PyTorch `pytorch_model.bin` / `.pth` zip pickles).

pub mod torch_pickle;
