//! The in-process backend (the embedded default): a bounded [`moka`] cache, with the same
//! lease / compare-and-swap semantics as memcached (each key's operations serialized by a
//! striped lock).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::sync::Cache;

use super::{CacheBackend, CacheError, Lookup, Token};

/// Default capacity of the in-process cache, in bytes of keys plus values.
pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;

#[derive(Clone)]
struct Item {
    /// Empty bytes mark a lease placeholder, as on memcached.
    bytes: Bytes,
    token: u64,
    ttl: Duration,
}

struct ItemExpiry;

impl moka::Expiry<String, Item> for ItemExpiry {
    fn expire_after_create(&self, _key: &String, item: &Item, _now: Instant) -> Option<Duration> {
        Some(item.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        item: &Item,
        _now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(item.ttl)
    }
}

/// How many locks the keys are spread over.
const STRIPES: usize = 64;

/// A cache inside this process; shared by every context that holds the same `Arc`.
///
/// Every operation on a key runs under the lock of the key's stripe, so a compare-and-swap
/// (read the token, then write) is one step for every other operation on that key. moka
/// serializes its own `and_compute_with` calls per key but not against `insert` and
/// `invalidate`, so the atomicity is kept here rather than assumed of it.
pub struct MemoryBackend {
    items: Cache<String, Item>,
    next_token: AtomicU64,
    stripes: Box<[Mutex<()>]>,
}

impl MemoryBackend {
    /// Creates an empty cache holding at most `capacity_bytes` of keys and values.
    pub fn new(capacity_bytes: u64) -> Self {
        let items = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, item: &Item| u32::try_from(key.len() + item.bytes.len()).unwrap_or(u32::MAX))
            .expire_after(ItemExpiry)
            .build();
        Self {
            items,
            next_token: AtomicU64::new(1),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn item(&self, bytes: Bytes, ttl: Duration) -> Item {
        Item {
            bytes,
            token: self.next_token.fetch_add(1, Ordering::Relaxed),
            ttl,
        }
    }

    /// Holds `key`'s stripe lock until dropped.
    fn lock_key(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        // In-process only: the hash need not be stable across releases.
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.stripes[stripe].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        Ok(keys
            .iter()
            .map(|key| {
                let _locked = self.lock_key(key);
                match self.items.get(*key) {
                    Some(item) if item.bytes.is_empty() => Lookup::Busy,
                    Some(item) => Lookup::Value {
                        bytes: item.bytes,
                        token: Token(item.token),
                    },
                    None => {
                        let placeholder = self.item(Bytes::new(), lease_ttl);
                        let token = Token(placeholder.token);
                        self.items.insert((*key).to_owned(), placeholder);
                        Lookup::Lease(token)
                    }
                }
            })
            .collect())
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        let _locked = self.lock_key(key);
        let holds_token = self.items.get(key).is_some_and(|item| item.token == token.0);
        if holds_token {
            self.items
                .insert(key.to_owned(), self.item(Bytes::copy_from_slice(bytes), ttl));
        }
        Ok(holds_token)
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        Ok(keys
            .iter()
            .map(|key| {
                let _locked = self.lock_key(key);
                let item = self.item(Bytes::copy_from_slice(marker), ttl);
                let token = Token(item.token);
                self.items.insert((*key).to_owned(), item);
                token
            })
            .collect())
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        let _locked = self.lock_key(key);
        if self.items.get(key).is_some_and(|item| item.token == token.0) {
            self.items.invalidate(key);
        }
        Ok(())
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        for key in keys {
            let _locked = self.lock_key(key);
            self.items.invalidate(*key);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), CacheError> {
        self.items.invalidate_all();
        Ok(())
    }
}
