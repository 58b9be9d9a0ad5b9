//! Wraps every backend of a context: a deadline on each call, error counting, and the
//! invalidations that could not be delivered.
//!
//! When a writer cannot lock a key (the server is down or unreachable) the key is kept as
//! *pending*. Until every pending key has been deleted on the server, this backend answers
//! every call with an error, so reads go to the database: a server that comes back after a
//! partition is never read before it has received the invalidations it missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{CacheBackend, CacheError, Lookup, SharedBackend, Token};
use crate::stats::Stats;

/// A backend with deadlines and delivery of missed invalidations.
pub struct Guarded {
    inner: SharedBackend,
    timeout: Duration,
    stats: Arc<Stats>,
    /// Pending keys, each with the generation it was last remembered at: a key remembered
    /// again while its eviction is in flight stays pending.
    pending: Mutex<HashMap<String, u64>>,
    /// The next generation.
    generation: AtomicU64,
    /// Whether `pending` may be non-empty: lets every call skip its lock while nothing is
    /// pending (set before a key is added, cleared only under the lock when it empties).
    any_pending: AtomicBool,
}

impl Guarded {
    /// Guards `inner`: each call gets `timeout`, failures are counted in `stats`.
    pub fn new(inner: SharedBackend, timeout: Duration, stats: Arc<Stats>) -> Self {
        Self {
            inner,
            timeout,
            stats,
            pending: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            any_pending: AtomicBool::new(false),
        }
    }

    async fn call<T, F>(&self, op: F) -> Result<T, CacheError>
    where
        F: Future<Output = Result<T, CacheError>>,
    {
        let result = match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(CacheError::Unavailable(format!(
                "{} call timed out after {:?}",
                self.inner.kind(),
                self.timeout
            ))),
        };
        if let Err(error) = &result {
            Stats::add(&self.stats.cache_errors, 1);
            tracing::warn!(backend = self.inner.kind(), %error, "cache call failed; using the database");
        }
        result
    }

    /// Delivers pending invalidations; fails while they cannot be delivered.
    async fn ready(&self) -> Result<(), CacheError> {
        if !self.any_pending.load(Ordering::Acquire) {
            return Ok(());
        }
        let pending: Vec<(String, u64)> = {
            let pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if pending.is_empty() {
                return Ok(());
            }
            pending
                .iter()
                .map(|(key, generation)| (key.clone(), *generation))
                .collect()
        };
        let keys: Vec<&str> = pending.iter().map(|(key, _)| key.as_str()).collect();
        self.call(self.inner.evict(&keys)).await?;
        let mut still = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, delivered) in &pending {
            if still.get(key) == Some(delivered) {
                still.remove(key);
            }
        }
        if still.is_empty() {
            self.any_pending.store(false, Ordering::Release);
        }
        Ok(())
    }

    fn remember(&self, keys: &[&str]) {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.any_pending.store(true, Ordering::Release);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        pending.extend(keys.iter().map(|key| (key.to_string(), generation)));
    }
}

#[async_trait]
impl CacheBackend for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        self.ready().await?;
        let found = self.call(self.inner.lookup(keys, lease_ttl)).await?;
        if found.len() != keys.len() {
            return Err(CacheError::Protocol(format!(
                "{} answers for {} keys",
                found.len(),
                keys.len()
            )));
        }
        Ok(found)
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        self.ready().await?;
        self.call(self.inner.fill(key, bytes, token, ttl)).await
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        let locked = match self.ready().await {
            Ok(()) => self.call(self.inner.lock(keys, marker, ttl)).await,
            Err(error) => Err(error),
        };
        match locked {
            Ok(tokens) if tokens.len() == keys.len() => Ok(tokens),
            Ok(_) | Err(_) => {
                self.remember(keys);
                Err(CacheError::Unavailable(
                    "lock not delivered; kept as a pending invalidation".into(),
                ))
            }
        }
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        self.call(self.inner.release(key, token)).await
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        if let Err(error) = self.call(self.inner.evict(keys)).await {
            self.remember(keys);
            return Err(error);
        }
        Ok(())
    }
}
