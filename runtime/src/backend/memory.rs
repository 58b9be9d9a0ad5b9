//! The in-process backend (the embedded default): a bounded [`moka`] cache whose per-key
//! atomic `and_compute_with` gives the same lease / compare-and-swap semantics as memcached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::ops::compute::Op;
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

/// A cache inside this process; shared by every context that holds the same `Arc`.
pub struct MemoryBackend {
    items: Cache<String, Item>,
    next_token: AtomicU64,
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
        }
    }

    fn item(&self, bytes: Bytes, ttl: Duration) -> Item {
        Item {
            bytes,
            token: self.next_token.fetch_add(1, Ordering::Relaxed),
            ttl,
        }
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        Ok(keys
            .iter()
            .map(|key| {
                let mut found = Lookup::Busy;
                self.items
                    .entry(key.to_string())
                    .and_compute_with(|current| match current {
                        Some(entry) if entry.value().bytes.is_empty() => Op::Nop,
                        Some(entry) => {
                            let item = entry.value();
                            found = Lookup::Value {
                                bytes: item.bytes.clone(),
                                token: Token(item.token),
                            };
                            Op::Nop
                        }
                        None => {
                            let placeholder = self.item(Bytes::new(), lease_ttl);
                            found = Lookup::Lease(Token(placeholder.token));
                            Op::Put(placeholder)
                        }
                    });
                found
            })
            .collect())
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        let mut stored = false;
        self.items
            .entry(key.to_string())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().token == token.0 => {
                    stored = true;
                    Op::Put(self.item(Bytes::copy_from_slice(bytes), ttl))
                }
                _ => Op::Nop,
            });
        Ok(stored)
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        Ok(keys
            .iter()
            .map(|key| {
                let item = self.item(Bytes::copy_from_slice(marker), ttl);
                let token = Token(item.token);
                self.items.insert(key.to_string(), item);
                token
            })
            .collect())
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        self.items
            .entry(key.to_string())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().token == token.0 => Op::Remove,
                _ => Op::Nop,
            });
        Ok(())
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        for key in keys {
            self.items.invalidate(*key);
        }
        Ok(())
    }
}
