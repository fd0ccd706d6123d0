//! A bounded LRU cache of x-baselines (the user prompt's CLIP text embedding, the aesthetic
//! scores of its images and, only when a call asked for images, the images themselves) for given
//! seeds and settings: every candidate scored against the same x shares them, so they are computed
//! once (the Promptist reward's x-term never changes across PPO epochs). Counts hits and misses.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::diffusion::pipeline::Image;

/// What identifies a baseline: the prompt and every setting that changes its images.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// x's images; None when the call that computed the baseline did not ask for images (a
    /// training run keeps thousands of baselines and needs only the two vectors above).
    pub images: Option<Vec<Image>>,
}

#[derive(Debug, Default)]
struct Lru {
    /// key -> (value, last-use tick).
    map: HashMap<BaselineKey, (Arc<Baseline>, u64)>,
    /// last-use tick -> key (oldest first).
    order: BTreeMap<u64, BaselineKey>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, key: &BaselineKey) {
        self.tick += 1;
        let t = self.tick;
        if let Some(entry) = self.map.get_mut(key) {
            self.order.remove(&entry.1);
            entry.1 = t;
            self.order.insert(t, key.clone());
        }
    }
}

/// Least-recently-used cache holding at most `capacity` baselines (0 disables caching).
#[derive(Debug)]
pub struct BaselineCache {
    capacity: usize,
    entries: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BaselineCache {
    pub fn new(capacity: usize) -> Self {
        BaselineCache { capacity, entries: Mutex::new(Lru::default()), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The baseline for `key`, marked most recently used, counted as a hit. An entry without
    /// images does not answer a lookup that needs them (`need_images`): that is a miss, and the
    /// caller recomputes and re-inserts it.
    pub fn get(&self, key: &BaselineKey, need_images: bool) -> Option<Arc<Baseline>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = e.map.get(key).map(|(v, _)| v.clone()).filter(|v| !need_images || v.images.is_some());
        match found {
            Some(v) => {
                e.touch(key);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Insert (or replace) `key`, evicting the least recently used entries beyond the capacity.
    pub fn insert(&self, key: BaselineKey, value: Arc<Baseline>) {
        if self.capacity == 0 {
            return;
        }
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.tick += 1;
        let t = e.tick;
        if let Some((_, old)) = e.map.insert(key.clone(), (value, t)) {
            e.order.remove(&old);
        }
        e.order.insert(t, key);
        while e.map.len() > self.capacity {
            let Some((_, oldest)) = e.order.pop_first() else { break };
            e.map.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// (hits, misses) of `get` since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> BaselineKey {
        BaselineKey { prompt: p.into(), seed: 0, images: 2, width: 64, height: 64, steps: 2, guidance_bits: 7.5f32.to_bits(), scheduler: 0 }
    }

    fn base(v: f64) -> Arc<Baseline> {
        Arc::new(Baseline { text_embedding: vec![], aesthetic: vec![v], images: None })
    }

    #[test]
    fn lru_eviction() {
        let c = BaselineCache::new(2);
        c.insert(key("a"), base(1.0));
        c.insert(key("b"), base(2.0));
        assert_eq!(c.get(&key("a"), false).unwrap().aesthetic, vec![1.0]); // a is now most recent
        c.insert(key("c"), base(3.0)); // evicts b
        assert!(c.get(&key("b"), false).is_none());
        assert!(c.get(&key("a"), false).is_some() && c.get(&key("c"), false).is_some());
        assert_eq!(c.len(), 2);
        let mut k = key("a");
        k.seed = 1;
        assert!(c.get(&k, false).is_none(), "a different seed is a different baseline");
        assert_eq!(c.stats(), (3, 2));
        let off = BaselineCache::new(0);
        off.insert(key("a"), base(1.0));
        assert_eq!(off.len(), 0);
        assert!(off.get(&key("a"), false).is_none());
        assert_eq!(off.stats(), (0, 1));
    }

    #[test]
    fn reinsert_refreshes_and_large_capacity() {
        let c = BaselineCache::new(3);
        for p in ["a", "b", "c"] {
            c.insert(key(p), base(0.0));
        }
        c.insert(key("a"), base(9.0)); // replaces a, now most recent; b is the oldest
        c.insert(key("d"), base(4.0));
        assert!(c.get(&key("b"), false).is_none());
        assert_eq!(c.get(&key("a"), false).unwrap().aesthetic, vec![9.0]);
        assert_eq!(c.len(), 3);
        let big = BaselineCache::new(5000);
        for i in 0..5000 {
            big.insert(key(&i.to_string()), base(i as f64));
        }
        assert_eq!(big.len(), 5000);
        assert!((0..5000).all(|i| big.get(&key(&i.to_string()), false).is_some()));
        big.insert(key("new"), base(0.0));
        assert!(big.get(&key("0"), false).is_none(), "the least recently used entry went");
    }

    #[test]
    fn entry_without_images_misses_when_images_are_needed() {
        let c = BaselineCache::new(4);
        c.insert(key("a"), base(1.0));
        assert!(c.get(&key("a"), false).is_some());
        assert!(c.get(&key("a"), true).is_none(), "no images kept: recompute");
        let with = Arc::new(Baseline { text_embedding: vec![], aesthetic: vec![1.0], images: Some(vec![]) });
        c.insert(key("a"), with);
        assert!(c.get(&key("a"), true).is_some());
        assert_eq!(c.stats(), (2, 1));
        assert_eq!(c.len(), 1);
    }
}
