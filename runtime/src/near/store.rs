//! The near copies one process holds: a bounded in-memory cache (moka) per near model, and
//! striped invalidation counters that keep a read which started before an invalidation from
//! storing what it read.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

/// Invalidation counters; a key's counter is the one its hash picks.
const STRIPES: usize = 4096;

/// Under what a near copy was read: it is served only while both still hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The fence renewal the copy was read after ([`crate::fence::Fence::generation`]).
    pub fence: u64,
    /// The invalidation channel's subscription it was read under.
    pub epoch: u64,
}

/// A near copy: the encoded value as the remote cache held it.
#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    stamp: Stamp,
}

/// One model's near copies.
pub(crate) struct ModelCache {
    /// `<key namespace><model key prefix>`: every key of the model starts with it.
    prefix: String,
    entries: moka::sync::Cache<String, Entry>,
}

impl ModelCache {
    /// The bytes near-cached under `key`, if read under `stamp`.
    pub(crate) fn get(&self, key: &str, stamp: Stamp) -> Option<Bytes> {
        self.entries
            .get(key)
            .filter(|entry| entry.stamp == stamp)
            .map(|entry| entry.bytes)
    }
}

/// Every near copy of a process, and its invalidation counters.
pub(crate) struct Store {
    models: RwLock<HashMap<&'static str, Arc<ModelCache>>>,
    stripes: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Store {
    /// An empty store.
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only the redis channel makes stores")
    )]
    pub(crate) fn new() -> Self {
        Self {
            models: RwLock::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The near copies of `model` (keys starting with `prefix`), a cache of `entries`
    /// entries created on first use.
    pub(crate) fn model(&self, model: &'static str, prefix: &str, entries: u64) -> Arc<ModelCache> {
        if let Some(cache) = self.models.read().unwrap_or_else(PoisonError::into_inner).get(model) {
            return Arc::clone(cache);
        }
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(models.entry(model).or_insert_with(|| {
            Arc::new(ModelCache {
                prefix: prefix.to_owned(),
                entries: moka::sync::Cache::new(entries),
            })
        }))
    }

    fn stripe(&self, key: &str) -> &AtomicU64 {
        &self.stripes[(self.hasher.hash_one(key) % STRIPES as u64) as usize]
    }

    /// The invalidation counter of each key now: what [`Store::keep`] compares with.
    pub(crate) fn ticket<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Vec<u64> {
        keys.map(|key| self.stripe(key).load(Ordering::SeqCst)).collect()
    }

    /// Keeps `bytes`, read under `stamp`, as the near copy of `key` unless `key` was
    /// invalidated since its counter read `ticket`. The counter is checked again after the
    /// insert: an invalidation that raced with it either is seen then, or ran its removal
    /// after the insert.
    pub(crate) fn keep(&self, cache: &ModelCache, key: &str, bytes: Bytes, stamp: Stamp, ticket: u64) {
        let stripe = self.stripe(key);
        if stripe.load(Ordering::SeqCst) != ticket {
            return;
        }
        // A copy of its own: the remote answer may share one buffer with a whole batch's
        // values, which a near copy would otherwise keep alive.
        let bytes = Bytes::copy_from_slice(&bytes);
        cache.entries.insert(key.to_owned(), Entry { bytes, stamp });
        if stripe.load(Ordering::SeqCst) != ticket {
            cache.entries.invalidate(key);
        }
    }

    /// Drops the near copies of `keys`, and makes every read of them in flight keep nothing.
    pub(crate) fn invalidate<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            self.stripe(key).fetch_add(1, Ordering::SeqCst);
            for cache in models.values().filter(|cache| key.starts_with(&cache.prefix)) {
                cache.entries.invalidate(key);
            }
        }
    }

    /// Drops every near copy (a new subscription: invalidations may have been missed; a
    /// flush).
    pub(crate) fn clear(&self) {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        for cache in models.values() {
            cache.entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp { fence: 1, epoch: 1 };

    fn store_with_model() -> (Store, Arc<ModelCache>) {
        let store = Store::new();
        let cache = store.model("Person", "ns:Person:abc:", 10);
        (store, cache)
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_keeps_nothing() {
        let (store, cache) = store_with_model();
        let key = "ns:Person:abc:pk:1";
        let ticket = store.ticket([key].into_iter())[0];
        store.invalidate([key].into_iter());
        store.keep(&cache, key, Bytes::from_static(b"old"), STAMP, ticket);
        assert_eq!(cache.get(key, STAMP), None);
        let ticket = store.ticket([key].into_iter())[0];
        store.keep(&cache, key, Bytes::from_static(b"new"), STAMP, ticket);
        assert_eq!(cache.get(key, STAMP).as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_copy_is_served_only_under_its_stamp_and_invalidated_by_key() {
        let (store, cache) = store_with_model();
        let (key, other) = ("ns:Person:abc:pk:1", "ns:Person:abc:pk:2");
        for key in [key, other] {
            let ticket = store.ticket([key].into_iter())[0];
            store.keep(&cache, key, Bytes::from_static(b"v"), STAMP, ticket);
        }
        assert_eq!(
            cache.get(key, Stamp { fence: 2, epoch: 1 }),
            None,
            "after a fence renewal"
        );
        assert_eq!(
            cache.get(key, Stamp { fence: 1, epoch: 2 }),
            None,
            "under a new subscription"
        );
        store.invalidate([key].into_iter());
        assert_eq!(cache.get(key, STAMP), None);
        assert!(cache.get(other, STAMP).is_some(), "another key keeps its copy");
    }
}
