//! Per-row logit arithmetic shared by the decoders: log-softmax statistics, exact top-k with
//! index-order tie-breaking, and the score adjustments of transformers' logits processors
//! (min-new-tokens EOS suppression, Hamming diversity penalty).

/// `max` and `ln(sum(exp(x - max)))` of one row; `log_softmax(x) = (x - max) - log_sum`,
/// computed in f32 like torch's CPU kernel (the sum is accumulated in f64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    pub max: f32,
    pub log_sum: f32,
}

impl RowStats {
    pub fn of(row: &[f32]) -> RowStats {
        const L: usize = 16;
        let mut lanes = [f32::NEG_INFINITY; L];
        let chunks = row.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..L {
                lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
            }
        }
        let mut max = rest.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in lanes {
            max = max.max(v);
        }
        // Sum of exp(x - max) in f32 lanes (as torch's vectorised kernel), combined in f64.
        let mut acc = [0f32; L];
        let chunks = row.chunks_exact(L);
        for c in chunks {
            for j in 0..L {
                acc[j] += exp_nonpos(c[j] - max);
            }
        }
        let mut sum: f64 = acc.iter().map(|&v| v as f64).sum();
        for &x in rest {
            sum += exp_nonpos(x - max) as f64;
        }
        RowStats { max, log_sum: sum.ln() as f32 }
    }

    #[inline]
    pub fn log_prob(&self, x: f32) -> f32 {
        (x - self.max) - self.log_sum
    }
}

/// `exp(x)` for `x <= 0` (Cephes `expf`: Cody-Waite reduction + degree-6 polynomial, about 1 ulp),
/// written without branches or library calls so the row loops vectorise. NaN and -inf give 0.
#[inline(always)]
pub fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Below -87.3 the result is under f32's normal range: flush to 0 like a sum would ignore it.
    let keep = x >= -87.0;
    let x = if keep { x } else { -87.0 };
    // Round to nearest with the 1.5 * 2^23 trick (no libm `roundf`).
    let k = (x * LOG2E + 12_582_912.0) - 12_582_912.0;
    let r = x - k * 0.693_359_4 - k * (-2.121_944_4e-4);
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits((((k as i32) + 127) as u32) << 23);
    if keep { y * scale } else { 0.0 }
}

/// The `k` largest entries of `row` as `(value, index)`, largest first; equal values keep the
/// lower index first. NaN entries are never selected.
pub fn top_k(row: &[f32], k: usize, out: &mut Vec<(f32, u32)>) {
    out.clear();
    if k == 0 {
        return;
    }
    for (i, &x) in row.iter().enumerate() {
        if out.len() == k {
            // Strictly greater than the current k-th: equal values keep the earlier index.
            if x.partial_cmp(&out[k - 1].0) != Some(std::cmp::Ordering::Greater) {
                continue;
            }
            out.pop();
        } else if x.is_nan() {
            continue;
        }
        // Insert after every entry >= x (earlier indices win ties).
        let at = out.partition_point(|&(v, _)| v >= x);
        out.insert(at, (x, i as u32));
    }
}

/// A change that a logits processor makes to one token's log-probability before selection.
/// Only penalties (non-positive deltas) are allowed, which keeps "top-k of the raw row plus the
/// adjusted tokens" exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjust {
    pub token: u32,
    /// Subtracted from the log-probability (`f32::INFINITY` suppresses the token).
    pub penalty: f32,
}

/// Candidates of one row after processors: `(processed log-prob, token)`, best first, at most `k`
/// of them, every one finite. `raw` is a reusable buffer.
pub fn row_candidates(
    row: &[f32],
    k: usize,
    adjust: &[Adjust],
    raw: &mut Vec<(f32, u32)>,
    out: &mut Vec<(f32, u32)>,
) -> RowStats {
    let stats = RowStats::of(row);
    top_k(row, k + adjust.len(), raw);
    out.clear();
    for &(x, t) in raw.iter() {
        let mut lp = stats.log_prob(x);
        for a in adjust.iter().filter(|a| a.token == t) {
            lp = if a.penalty.is_infinite() { f32::NEG_INFINITY } else { lp - a.penalty };
        }
        if lp.is_finite() {
            out.push((lp, t));
        }
    }
    // Stable sort keeps index order among equal scores.
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.truncate(k);
    stats
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let row = [1.0, 5.0, 3.0, 5.0, -1.0, 4.0];
        let mut out = Vec::new();
        top_k(&row, 3, &mut out);
        assert_eq!(out, vec![(5.0, 1), (5.0, 3), (4.0, 5)]);
        top_k(&row, 10, &mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(out[5], (-1.0, 4));
    }

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = exp_nonpos(x) as f64;
            if want > 1e-37 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpos(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpos(0.0), 1.0);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let row = [0.5f32, -2.0, 3.0, 1.25];
        let s = RowStats::of(&row);
        let total: f64 = row.iter().map(|&x| (s.log_prob(x) as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }

    #[test]
    fn adjustments_penalise_and_suppress() {
        let row = [0.0f32, 3.0, 2.0, 1.0];
        let mut raw = Vec::new();
        let mut out = Vec::new();
        let adj = [Adjust { token: 1, penalty: f32::INFINITY }, Adjust { token: 2, penalty: 10.0 }];
        let s = row_candidates(&row, 2, &adj, &mut raw, &mut out);
        assert_eq!(out.iter().map(|c| c.1).collect::<Vec<_>>(), vec![3, 0]);
        assert_eq!(out[0].0, s.log_prob(1.0));
    }
}
