//! Batches: the seeded epoch order of the training examples, and right-padded micro-batch tensors
//! with next-token labels (-100 outside the target, so the loss covers target tokens only).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use crate::data::prepare::Example;
use crate::error::Result;

/// The example order: epoch e is a permutation drawn from ChaCha8(seed, stream e).
pub struct Order {
    n: usize,
    seed: u64,
    epoch: Option<u64>,
    perm: Vec<usize>,
}

impl Order {
    pub fn new(n: usize, seed: u64) -> Self {
        Self { n, seed, epoch: None, perm: Vec::new() }
    }

    fn at(&mut self, k: u64) -> usize {
        let n = self.n as u64;
        let e = k / n;
        if self.epoch != Some(e) {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(e);
            self.perm = (0..self.n).collect();
            self.perm.shuffle(&mut rng);
            self.epoch = Some(e);
        }
        self.perm[(k % n) as usize]
    }

    /// Example indices of optimizer step `step` (0-based) with `batch` examples per step.
    pub fn batch(&mut self, step: u64, batch: usize) -> Vec<usize> {
        let s = step * batch as u64;
        (0..batch as u64).map(|i| self.at(s + i)).collect()
    }
}

/// `ids` [b, L] (padded with `pad`) and `labels` [b, L]: labels[j] = ids[j+1] when position j+1 is
/// a target token, else -100.
pub fn micro_batch_tensors(batch: &[&Example], pad: i64, device: Device) -> Result<(Tensor, Tensor)> {
    let l = batch.iter().map(|e| e.ids.len()).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(batch.len() * l);
    let mut labels = Vec::with_capacity(batch.len() * l);
    for e in batch {
        for j in 0..l {
            ids.push(e.ids.get(j).copied().unwrap_or(pad));
            let next = j + 1;
            labels.push(if next >= e.target_start && next < e.ids.len() { e.ids[next] } else { -100 });
        }
    }
    let b = batch.len() as i64;
    let ids = Tensor::f_from_slice(&ids)?.f_view([b, l as i64])?.f_to_device(device)?;
    let labels = Tensor::f_from_slice(&labels)?.f_view([b, l as i64])?.f_to_device(device)?;
    Ok((ids, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Origin, SourceKind};

    #[test]
    fn order_is_a_function_of_seed_and_step() {
        let mut a = Order::new(10, 5);
        let all: Vec<usize> = (0..5).flat_map(|s| a.batch(s, 4)).collect();
        // every epoch is a permutation
        let mut e0: Vec<usize> = all[..10].to_vec();
        e0.sort_unstable();
        assert_eq!(e0, (0..10).collect::<Vec<_>>());
        // a fresh order started at step 3 gives the same batch
        assert_eq!(Order::new(10, 5).batch(3, 4), all[12..16].to_vec());
    }

    #[test]
    fn labels_cover_target_tokens_only() {
        let e = Example { ids: vec![1, 2, 3, 4, 5], target_start: 3, kind: SourceKind::Given, origin: Origin { file: "f".into(), row: 1 } };
        let (ids, labels) = micro_batch_tensors(&[&e], 0, Device::Cpu).unwrap();
        assert_eq!(Vec::<i64>::try_from(&ids.view([-1])).unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(Vec::<i64>::try_from(&labels.view([-1])).unwrap(), vec![-100, -100, 4, 5, -100]);
    }
}
