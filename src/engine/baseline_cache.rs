//! A small bounded LRU cache of x-baselines (the user prompt's images, their aesthetic scores and
//! the prompt's CLIP text embedding for given seeds and settings): every candidate scored against
//! the same x shares them, so they are computed once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::diffusion::pipeline::Image;

/// What identifies a baseline: the prompt and every setting that changes its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineKey {
    pub prompt: String,
    pub seed: u64,
    pub images: usize,
    pub width: usize,
    pub height: usize,
    pub steps: usize,
    pub guidance_bits: u32,
    pub scheduler: u8,
}

/// The cached part of a score shared by all candidates of one x.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub text_embedding: Vec<f32>,
    pub aesthetic: Vec<f64>,
    pub images: Vec<Image>,
}

/// Least-recently-used cache holding at most `capacity` baselines (0 disables caching).
#[derive(Debug)]
pub struct BaselineCache {
    capacity: usize,
    entries: Mutex<VecDeque<(BaselineKey, Arc<Baseline>)>>,
}

impl BaselineCache {
    pub fn new(capacity: usize) -> Self {
        BaselineCache { capacity, entries: Mutex::new(VecDeque::new()) }
    }

    /// The baseline for `key`, marked most recently used.
    pub fn get(&self, key: &BaselineKey) -> Option<Arc<Baseline>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let i = e.iter().position(|(k, _)| k == key)?;
        let item = e.remove(i)?;
        let v = item.1.clone();
        e.push_front(item);
        Some(v)
    }

    /// Insert (or refresh) `key`, evicting the least recently used entry beyond the capacity.
    pub fn insert(&self, key: BaselineKey, value: Arc<Baseline>) {
        if self.capacity == 0 {
            return;
        }
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = e.iter().position(|(k, _)| *k == key) {
            e.remove(i);
        }
        e.push_front((key, value));
        e.truncate(self.capacity);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> BaselineKey {
        BaselineKey { prompt: p.into(), seed: 0, images: 2, width: 64, height: 64, steps: 2, guidance_bits: 7.5f32.to_bits(), scheduler: 0 }
    }

    fn base(v: f64) -> Arc<Baseline> {
        Arc::new(Baseline { text_embedding: vec![], aesthetic: vec![v], images: vec![] })
    }

    #[test]
    fn lru_eviction() {
        let c = BaselineCache::new(2);
        c.insert(key("a"), base(1.0));
        c.insert(key("b"), base(2.0));
        assert_eq!(c.get(&key("a")).unwrap().aesthetic, vec![1.0]); // a is now most recent
        c.insert(key("c"), base(3.0)); // evicts b
        assert!(c.get(&key("b")).is_none());
        assert!(c.get(&key("a")).is_some() && c.get(&key("c")).is_some());
        assert_eq!(c.len(), 2);
        let mut k = key("a");
        k.seed = 1;
        assert!(c.get(&k).is_none(), "a different seed is a different baseline");
        let off = BaselineCache::new(0);
        off.insert(key("a"), base(1.0));
        assert_eq!(off.len(), 0);
    }
}
