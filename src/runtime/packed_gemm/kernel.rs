//! `y = x · W (+ bias)` for a few rows `x` against a [`PackedMatrix`], in AVX-512F: an 8-row by
//! 32-column register tile (16 accumulators) walks one packed block from top to bottom, so every
//! weight is read from memory once per call and the rows of `x` stay in L1. This is the decoding
//! step's shape (beam rows times GPT-2's constant weights), where the time is the weight stream.

use std::sync::atomic::{AtomicBool, Ordering};

use super::pack::{PackedMatrix, BLOCK};
use crate::{Error, Result};

/// Rows per register tile.
const ROWS: usize = 8;

/// True when this CPU can run the kernel (x86-64 with AVX-512F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f(i)` for every `i < total`, possibly in parallel (ONNX Runtime's intra-op pool in a
/// session; a plain loop or scoped threads in tests).
pub type ParallelFor<'a> = &'a dyn Fn(usize, &(dyn Fn(usize) + Sync + Send)) -> Result<()>;

/// A sequential [`ParallelFor`] (the tests' runner).
#[cfg(test)]
pub fn sequential(total: usize, f: &(dyn Fn(usize) + Sync + Send)) -> Result<()> {
    (0..total).for_each(f);
    Ok(())
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: tasks write disjoint column ranges of `y` (see `matmul`).
unsafe impl Send for SendPtr {}
// SAFETY: shared between tasks only to write disjoint column ranges of `y` (see `matmul`).
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the raw field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `y[m, n] = x[m, k] · W (+ bias)`, row-major, split into column tasks run by `par`.
/// Fails when the CPU lacks AVX-512F or the sizes do not match.
pub fn matmul(w: &PackedMatrix, x: &[f32], m: usize, y: &mut [f32], par: ParallelFor<'_>) -> Result<()> {
    if !available() {
        return Err(Error::Inference("the packed MatMul kernel needs a CPU with AVX-512F".into()));
    }
    if x.len() != m * w.k() || y.len() != m * w.n() {
        return Err(Error::Inference(format!(
            "packed MatMul: x has {} values and y {} for {m} rows of a {}x{} matrix",
            x.len(),
            y.len(),
            w.k(),
            w.n()
        )));
    }
    if m == 0 {
        return Ok(());
    }
    let blocks = w.blocks();
    // About 32 tasks: enough to balance two to sixteen threads, few enough that scheduling is free.
    let per_task = blocks.div_ceil(32).max(1);
    let tasks = blocks.div_ceil(per_task);
    let yp = SendPtr(y.as_mut_ptr());
    // Tasks run inside ONNX Runtime's thread pool, behind `extern "C"` frames a panic must not
    // cross: a panicking task is caught and reported as an error.
    let panicked = AtomicBool::new(false);
    let task = |t: usize| {
        let run = || {
            for blk in t * per_task..((t + 1) * per_task).min(blocks) {
                // SAFETY: `available()` was checked; block `blk` writes only columns
                // [blk*32, blk*32+32) ∩ [0, n) of rows [0, m), disjoint from every other task.
                unsafe { avx512::block(w, x, m, blk, yp.get()) };
            }
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
            panicked.store(true, Ordering::Relaxed);
        }
    };
    par(tasks, &task)?;
    if panicked.load(Ordering::Relaxed) {
        return Err(Error::Internal("the packed MatMul kernel panicked".into()));
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PackedMatrix, BLOCK, ROWS};

    /// Software prefetch distance in k steps of 128 bytes: 8 KiB ahead of the loads (the hardware
    /// prefetchers alone leave the weight stream short of the memory's rate). Measured on the 2-core EPYC (GPT-2 117M, beam 8, 75
    /// tokens): no prefetch 0.92-0.99 s, 2 KiB 0.92-0.97, 4 KiB 0.83-0.88, 8 KiB 0.80-0.82, 12-16 KiB
    /// 0.81-0.85.
    const PF: usize = 64;

    /// All rows of column block `blk`.
    ///
    /// # Safety
    /// AVX-512F must be available; `x` holds `m * k` values and `y` points at `m * n` values.
    pub(super) unsafe fn block(w: &PackedMatrix, x: &[f32], m: usize, blk: usize, y: *mut f32) {
        let (k, n) = (w.k(), w.n());
        let wb = w.block(blk).as_ptr() as *const f32;
        let bias = w.bias_block(blk).map(|b| b.as_ptr() as *const f32);
        let c0 = blk * BLOCK;
        let width = BLOCK.min(n - c0);
        let mask0: u16 = if width >= 16 { 0xffff } else { ((1u32 << width) - 1) as u16 };
        let mask1: u16 = if width <= 16 { 0 } else if width >= 32 { 0xffff } else { ((1u32 << (width - 16)) - 1) as u16 };
        let mut r = 0;
        while r < m {
            let rows = ROWS.min(m - r);
            let xr = x.as_ptr().add(r * k);
            let yr = y.add(r * n + c0);
            match rows {
                8 => tile::<8>(xr, k, wb, bias, yr, n, mask0, mask1),
                7 => tile::<7>(xr, k, wb, bias, yr, n, mask0, mask1),
                6 => tile::<6>(xr, k, wb, bias, yr, n, mask0, mask1),
                5 => tile::<5>(xr, k, wb, bias, yr, n, mask0, mask1),
                4 => tile::<4>(xr, k, wb, bias, yr, n, mask0, mask1),
                3 => tile::<3>(xr, k, wb, bias, yr, n, mask0, mask1),
                2 => tile::<2>(xr, k, wb, bias, yr, n, mask0, mask1),
                _ => tile::<1>(xr, k, wb, bias, yr, n, mask0, mask1),
            }
            r += rows;
        }
    }

    /// `MR` rows by 32 columns: accumulate over all of `k` in registers, then add the bias (as
    /// `Gemm` does: the product first, then `C`) and store the columns below `n` (the masks).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const MR: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        bias: Option<*const f32>,
        y: *mut f32,
        ldy: usize,
        mask0: u16,
        mask1: u16,
    ) {
        let mut a0 = [_mm512_setzero_ps(); MR];
        let mut a1 = [_mm512_setzero_ps(); MR];
        for kk in 0..k {
            let wp = w.add(kk * 32);
            // Prefetch never faults, so running past the block (into the next one, or past the
            // matrix) is harmless.
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(PF * 32) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(PF * 32 + 16) as *const i8);
            let w0 = _mm512_load_ps(wp);
            let w1 = _mm512_load_ps(wp.add(16));
            for i in 0..MR {
                let xv = _mm512_set1_ps(*x.add(i * k + kk));
                a0[i] = _mm512_fmadd_ps(xv, w0, a0[i]);
                a1[i] = _mm512_fmadd_ps(xv, w1, a1[i]);
            }
        }
        if let Some(b) = bias {
            let b0 = _mm512_load_ps(b);
            let b1 = _mm512_load_ps(b.add(16));
            for i in 0..MR {
                a0[i] = _mm512_add_ps(a0[i], b0);
                a1[i] = _mm512_add_ps(a1[i], b1);
            }
        }
        for i in 0..MR {
            _mm512_mask_storeu_ps(y.add(i * ldy), mask0, a0[i]);
            _mm512_mask_storeu_ps(y.add(i * ldy + 16), mask1, a1[i]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use super::PackedMatrix;
    pub(super) unsafe fn block(_: &PackedMatrix, _: &[f32], _: usize, _: usize, _: *mut f32) {
        unreachable!("`available()` is false off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::super::pack::{PackedMatrix, SourceLayout};
    use super::*;

    /// Seeded uniform values (the exporter's random-weight generator), scaled to about [-1.7, 1.7].
    fn values(n: usize, seed: u64) -> Vec<f32> {
        use crate::export::nn::{RandomWeights, WeightSource};
        RandomWeights::new(seed).fetch("values", &[n]).unwrap().iter().map(|v| v * 50.0).collect()
    }

    /// Every element of the kernel's `x · W + b` against an f64 reference, for row counts around the
    /// 8-row tile, column counts around the 16/32-column blocks, both source layouts, with and
    /// without bias. Tolerance: 1e-6 * (1 + sum |x_k w_k|) per element (f32 rounding of a k-term sum).
    #[test]
    fn matches_f64_reference_every_element() {
        if !available() {
            crate::test_skip("packed_gemm::kernel::matches_f64_reference_every_element", "this CPU lacks AVX-512F; the packed kernel is never used here");
            return;
        }
        let mut checked = 0usize;
        for &m in &[1usize, 3, 8, 9, 17] {
            for &n in &[1usize, 15, 16, 17, 31, 32, 33, 100] {
                for &k in &[1usize, 5, 64] {
                    for layout in [SourceLayout::KByN, SourceLayout::NByK] {
                        for with_bias in [false, true] {
                            let seed = (m * 1000 + n * 10 + k) as u64;
                            let x = values(m * k, seed);
                            let w = values(k * n, seed + 1);
                            let b = values(n, seed + 2);
                            let p = PackedMatrix::pack(&w, k, n, layout, with_bias.then_some(&b[..])).unwrap();
                            let mut y = vec![f32::NAN; m * n];
                            matmul(&p, &x, m, &mut y, &sequential).unwrap();
                            for i in 0..m {
                                for j in 0..n {
                                    let (mut r, mut mag) = (0f64, 0f64);
                                    for kk in 0..k {
                                        let wv = match layout {
                                            SourceLayout::KByN => w[kk * n + j],
                                            SourceLayout::NByK => w[j * k + kk],
                                        } as f64;
                                        r += x[i * k + kk] as f64 * wv;
                                        mag += (x[i * k + kk] as f64 * wv).abs();
                                    }
                                    if with_bias {
                                        r += b[j] as f64;
                                        mag += (b[j] as f64).abs();
                                    }
                                    let got = y[i * n + j] as f64;
                                    assert!(
                                        (got - r).abs() <= 1e-6 * (1.0 + mag),
                                        "m {m} n {n} k {k} {layout:?} bias {with_bias}: y[{i},{j}] = {got}, reference {r}"
                                    );
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 2 * 3 * (1 + 3 + 8 + 9 + 17) * (1 + 15 + 16 + 17 + 31 + 32 + 33 + 100));
    }

    /// Parallel tasks write disjoint columns: a many-task split equals the sequential result bit for bit.
    #[test]
    fn task_split_is_exact() {
        if !available() {
            crate::test_skip("packed_gemm::kernel::task_split_is_exact", "this CPU lacks AVX-512F");
            return;
        }
        let (m, k, n) = (5, 48, 32 * 70 + 7);
        let p = PackedMatrix::pack(&values(k * n, 1), k, n, SourceLayout::KByN, Some(&values(n, 2))).unwrap();
        let x = values(m * k, 3);
        let mut a = vec![0.0; m * n];
        matmul(&p, &x, m, &mut a, &sequential).unwrap();
        let mut b = vec![0.0; m * n];
        let reversed = |total: usize, f: &(dyn Fn(usize) + Sync + Send)| -> Result<()> {
            std::thread::scope(|s| {
                for t in (0..total).rev() {
                    s.spawn(move || f(t));
                }
            });
            Ok(())
        };
        matmul(&p, &x, m, &mut b, &reversed).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let p = PackedMatrix::pack(&values(12, 1), 3, 4, SourceLayout::KByN, None).unwrap();
        let mut y = vec![0.0; 8];
        let e = matmul(&p, &values(5, 2), 2, &mut y, &sequential).unwrap_err();
        assert!(e.to_string().contains("x has 5 values") || !available(), "{e}");
        assert!(PackedMatrix::pack(&values(11, 1), 3, 4, SourceLayout::KByN, None).is_err());
        assert!(PackedMatrix::pack(&values(12, 1), 3, 4, SourceLayout::KByN, Some(&[0.0; 3])).is_err());
    }
}
