//! The packed weight layout of the CPU small-batch matrix product: column pairs of 16-wide panels,
//! `[N/32][K][32]` floats, so one panel pair is one sequential stream (the shape of the problem, a
//! few rows times a large constant matrix, is GEMV-like and bound by reading the weights once).

use super::lanes::Lanes;
use crate::{Error, Result};

/// Columns in one packed block (two AVX-512 registers of f32).
pub const BLOCK: usize = 32;

/// 64-byte aligned storage for 16 floats.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Lane16(pub [f32; 16]);

/// A constant `[K, N]` matrix (and optional bias `[N]`) in the packed layout. Columns past `N` in
/// the last block are zero, so a kernel can read whole blocks and mask only its stores.
pub struct PackedMatrix {
    k: usize,
    n: usize,
    data: Lanes,
    bias: Option<Vec<Lane16>>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedMatrix").field("k", &self.k).field("n", &self.n).field("bias", &self.bias.is_some()).finish()
    }
}

/// How the source matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceLayout {
    /// Row-major `[K, N]` (ONNX `MatMul` B, `Gemm` B with `transB = 0`, Hugging Face `Conv1D`).
    KByN,
    /// Row-major `[N, K]` (`Gemm` B with `transB = 1`, a tied embedding used as the LM head).
    NByK,
}

impl PackedMatrix {
    /// Pack `w` (`k * n` values in `layout`) and an optional bias of `n` values.
    pub fn pack(w: &[f32], k: usize, n: usize, layout: SourceLayout, bias: Option<&[f32]>) -> Result<PackedMatrix> {
        if k == 0 || n == 0 || w.len() != k.saturating_mul(n) {
            return Err(Error::ModelFormat(format!("packing a {k}x{n} matrix from {} values", w.len())));
        }
        if let Some(b) = bias {
            if b.len() != n {
                return Err(Error::ModelFormat(format!("packing a bias of {} values for {n} columns", b.len())));
            }
        }
        let blocks = n.div_ceil(BLOCK);
        let mut data = Lanes::zeroed(blocks * k * 2)?;
        for blk in 0..blocks {
            let c0 = blk * BLOCK;
            let width = BLOCK.min(n - c0);
            let (lo, hi) = (width.min(16), width.saturating_sub(16));
            let block = &mut data[blk * k * 2..(blk + 1) * k * 2];
            match layout {
                // Row kk's 32 columns are contiguous in the source.
                SourceLayout::KByN => {
                    for (kk, pair) in block.chunks_exact_mut(2).enumerate() {
                        let row = &w[kk * n + c0..kk * n + c0 + width];
                        pair[0].0[..lo].copy_from_slice(&row[..lo]);
                        pair[1].0[..hi].copy_from_slice(&row[lo..]);
                    }
                }
                // Column c0 + j is the contiguous source row c0 + j.
                SourceLayout::NByK => {
                    for j in 0..width {
                        let col = &w[(c0 + j) * k..(c0 + j + 1) * k];
                        for (pair, &v) in block.chunks_exact_mut(2).zip(col) {
                            pair[j / 16].0[j % 16] = v;
                        }
                    }
                }
            }
        }
        let bias = bias.map(|b| {
            let mut out = vec![Lane16([0.0; 16]); blocks * 2];
            for (j, &v) in b.iter().enumerate() {
                out[j / 16].0[j % 16] = v;
            }
            out
        });
        Ok(PackedMatrix { k, n, data, bias })
    }

    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(BLOCK)
    }
    /// The `k * 32` floats of block `blk` (k-major, 32 columns per k).
    pub(crate) fn block(&self, blk: usize) -> &[Lane16] {
        &self.data[blk * self.k * 2..(blk + 1) * self.k * 2]
    }
    /// The 32 bias values of block `blk` (zeros past `N`), if there is a bias.
    pub(crate) fn bias_block(&self, blk: usize) -> Option<&[Lane16]> {
        self.bias.as_ref().map(|b| &b[blk * 2..blk * 2 + 2])
    }
}
