//! A fast hasher for maps keyed by job ids (and fences, which hold one).
//!
//! The standard `HashMap` hashes with SipHash-1-3: robust against chosen keys,
//! but about a hundred instructions for a 16-byte id, and a job is looked up
//! in such maps a dozen times between its claim and its recorded outcome (the
//! manager's table of held jobs, the memory backend's jobs). Ids are UUIDs,
//! mostly random bits already; this folds them with a multiply and a random
//! per-map seed, then mixes the result so both the low bits (the bucket) and
//! the high bits (the control byte) vary. Keys an attacker picks could still
//! collide more than SipHash allows — the manager's table holds at most its
//! concurrency plus its recording window, and the memory backend is for tests
//! and the quickstart, so that costs a slower lookup at worst, never a wrong one.

use std::hash::{BuildHasher, Hasher};

/// Builds [`IdHasher`]s with a seed drawn once per map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHashState {
    seed: u64,
}

impl Default for IdHashState {
    fn default() -> Self {
        IdHashState {
            seed: fastrand::u64(..),
        }
    }
}

impl BuildHasher for IdHashState {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher {
    state: u64,
}

/// An odd constant with well-spread bits (2^64 / φ).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(K).rotate_left(23);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // A final mix (as in splitmix64), so every output bit depends on every input bit.
        let mut h = self.state;
        h ^= h >> 30;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^ (h >> 31)
    }
}

/// A `HashMap` keyed by job ids or fences, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, IdHashState>;

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::JobId;
    use std::collections::HashSet;

    #[test]
    fn ids_spread_over_buckets_and_control_bytes() {
        let state = IdHashState::default();
        let hashes: Vec<u64> = (0..4096).map(|_| state.hash_one(JobId::new())).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 0xFFF).collect();
        let high: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2_000, "low bits collide: {}", low.len());
        assert_eq!(high.len(), 128, "every control byte is used");
    }

    #[test]
    fn equal_keys_hash_equally_and_maps_work() {
        let mut map: IdMap<JobId, u32> = IdMap::default();
        let ids: Vec<JobId> = (0..100).map(|_| JobId::new()).collect();
        for (i, id) in ids.iter().enumerate() {
            map.insert(*id, i as u32);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id), Some(&(i as u32)));
        }
        assert_eq!(map.len(), 100);
    }
}
