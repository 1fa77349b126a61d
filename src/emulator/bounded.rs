//! Bounds for the maps the emulators grow per request.
//!
//! `l3map emulate` runs for hours under the go-live sequence and load
//! tests, and paths carry ticket and record ids, so anything kept per
//! request, per key or per grant needs a ceiling or memory grows with the
//! session. docs/EMULATORS.md lists every bound.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Distinct keys a [`Counts`] keeps before it counts under [`OTHER`].
pub const MAX_COUNTED_KEYS: usize = 10_000;
/// Where a [`Counts`] full of keys counts every new one, so totals stay
/// right. No real key clashes with it: they are `"METHOD /path"` or
/// token fingerprints.
pub const OTHER: &str = "other";

/// Request counters by key (`"METHOD /path"`, a token): once `cap` keys
/// exist, requests under new keys are counted under [`OTHER`] instead, so
/// a session that touches a million tickets keeps at most `cap + 1` keys.
#[derive(Debug, Clone)]
pub struct Counts {
    map: BTreeMap<String, u32>,
    cap: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Counts::with_cap(MAX_COUNTED_KEYS)
    }
}

impl Counts {
    pub fn with_cap(cap: usize) -> Counts {
        Counts {
            map: BTreeMap::new(),
            cap,
        }
    }

    pub fn bump(&mut self, key: &str) {
        let key = if self.map.contains_key(key) || self.map.len() < self.cap {
            key
        } else {
            OTHER
        };
        let n = self.map.entry(key.to_string()).or_default();
        *n = n.saturating_add(1);
    }

    /// Requests under `key`; 0 for a key that arrived after the cap.
    pub fn get(&self, key: &str) -> u32 {
        self.map.get(key).copied().unwrap_or(0)
    }

    /// Every request counted, [`OTHER`] included.
    pub fn total(&self) -> u32 {
        self.map.values().fold(0u32, |a, n| a.saturating_add(*n))
    }

    pub fn map(&self) -> &BTreeMap<String, u32> {
        &self.map
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// Inserts into a map of at most `cap` entries: when it is full, the
/// entries `expired` says are dead go first, then the oldest by `age`
/// (the smallest) until there is room. O(n) only when full.
pub fn insert_bounded<K, V, O>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    cap: usize,
    expired: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> O,
) where
    K: Eq + Hash + Clone,
    O: Ord,
{
    let cap = cap.max(1);
    if !map.contains_key(&key) && map.len() >= cap {
        map.retain(|_, v| !expired(v));
        while map.len() >= cap {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, v)| age(v))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stop_adding_keys_at_the_cap_and_keep_the_total() {
        let mut c = Counts::with_cap(3);
        for i in 0..100 {
            c.bump(&format!("GET /api/v2/tickets/{i}.json"));
        }
        c.bump("GET /api/v2/tickets/0.json");
        assert_eq!(c.map().len(), 4, "three keys and `other`");
        assert_eq!(c.total(), 101);
        assert_eq!(
            c.get("GET /api/v2/tickets/0.json"),
            2,
            "known keys still count"
        );
        assert_eq!(c.get(OTHER), 97);
        assert_eq!(c.get("GET /api/v2/tickets/50.json"), 0);
        c.clear();
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn a_full_map_drops_the_expired_then_the_oldest() {
        // (age, expired)
        let mut m: HashMap<u32, (u32, bool)> = HashMap::new();
        let ins = |m: &mut HashMap<u32, (u32, bool)>, k: u32, v: (u32, bool)| {
            insert_bounded(m, k, v, 4, |v| v.1, |v| v.0)
        };
        for k in 0..4 {
            ins(&mut m, k, (k, k == 3));
        }
        ins(&mut m, 10, (10, false));
        assert_eq!(m.len(), 4);
        assert!(!m.contains_key(&3), "the expired entry made room first");
        assert!(m.contains_key(&0));
        for k in 11..20 {
            ins(&mut m, k, (k, false));
        }
        let mut kept: Vec<u32> = m.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![16, 17, 18, 19], "the newest survive");
        // Replacing a present key evicts nothing.
        ins(&mut m, 19, (20, false));
        assert_eq!(m.len(), 4);
    }
}
