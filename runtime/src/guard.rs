//! Wraps every backend of a context: a deadline on each call (the backend's own, if it has
//! one that ends in time), error counting, and the
//! fence lease that a shared backend is served under (see [`crate::fence`]).
//!
//! A read is served from a shared backend only while this process holds the fence lease
//! and has delivered every invalidation recorded for the servers it asks; otherwise the
//! call fails at once and the caller reads the database. Writes report, per key, whether
//! their lock or eviction reached the server, so the protocol can fence what did not.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;

use crate::backend::{CacheBackend, CacheError, Lookup, SharedBackend, Token};
use crate::fence::{Fence, Undelivered, scopes};
use crate::stats::Stats;

/// A backend with deadlines and a fence lease.
pub(crate) struct Guarded {
    inner: SharedBackend,
    timeout: Duration,
    /// Whether calls need a timer of their own: not when the backend's own deadlines end
    /// within `timeout` (a timer per call costs a hit about 1 500 instructions).
    timed: bool,
    stats: Arc<Stats>,
    /// The fence scope of each server of `inner`.
    scopes: Vec<String>,
    /// `None` for a backend no other process shares.
    fence: Option<Arc<Fence>>,
}

impl Guarded {
    /// Guards `inner`, configured as backend `name`: each call gets `timeout`, failures are
    /// counted in `stats`, reads of a shared backend need `fence`'s lease.
    pub(crate) fn new(
        name: &str,
        inner: SharedBackend,
        timeout: Duration,
        stats: Arc<Stats>,
        fence: Option<Arc<Fence>>,
    ) -> Self {
        let scopes = scopes(name, inner.as_ref());
        let fence = fence.filter(|_| inner.shared());
        let timed = inner.deadline().is_none_or(|deadline| deadline > timeout);
        Self {
            inner,
            timeout,
            timed,
            stats,
            scopes,
            fence,
        }
    }

    async fn call<T, F>(&self, op: F) -> Result<T, CacheError>
    where
        F: Future<Output = Result<T, CacheError>>,
    {
        let result = if !self.timed {
            op.await
        } else {
            match tokio::time::timeout(self.timeout, op).await {
                Ok(result) => result,
                Err(_) => Err(CacheError::Unavailable(format!(
                    "{} call timed out after {:?}",
                    self.inner.kind(),
                    self.timeout
                ))),
            }
        };
        if let Err(error) = &result {
            Stats::add(&self.stats.cache_errors, 1);
            tracing::warn!(backend = self.inner.kind(), %error, "cache call failed; using the database");
        }
        result
    }

    /// Succeeds if `keys` may be read from this backend now (the fence lease is held and
    /// their servers have no undelivered invalidations).
    async fn admit(&self, keys: &[&str]) -> Result<(), CacheError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        if fence.fresh() {
            return Ok(());
        }
        let admitted = fence.admit(keys.iter().map(|key| self.scope_of(key))).await;
        if admitted.is_err() {
            Stats::add(&self.stats.cache_errors, 1);
        }
        admitted
    }

    /// The index of the server of `key` (into `scopes`).
    fn server_of(&self, key: &str) -> usize {
        match self.scopes.len() {
            0 | 1 => 0,
            servers => self.inner.server_for(key).min(servers - 1),
        }
    }

    fn scope_of(&self, key: &str) -> &str {
        self.scopes.get(self.server_of(key)).map_or("", String::as_str)
    }

    /// Runs `op` on each server's share of `keys`, the servers in parallel; then the keys
    /// of every share `op` did not answer (`None`) become invalidations that did not reach
    /// their server (nothing for a backend no other process shares). Returns each share's
    /// indices into `keys` with its answer, and those missed keys.
    async fn per_server<'k, T, F, Fut>(
        &self,
        keys: &[&'k str],
        op: F,
    ) -> (Vec<(Vec<usize>, Option<T>)>, Vec<Undelivered>)
    where
        F: Fn(Vec<&'k str>) -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let mut groups = vec![Vec::new(); self.scopes.len().max(1)];
        for (index, key) in keys.iter().enumerate() {
            groups[self.server_of(key)].push(index);
        }
        groups.retain(|group| !group.is_empty());
        let answers = join_all(
            groups
                .iter()
                .map(|indices| op(indices.iter().map(|&index| keys[index]).collect())),
        )
        .await;
        let mut missed = Vec::new();
        for (indices, answer) in groups.iter().zip(&answers) {
            if answer.is_none() && self.fence.is_some() {
                missed.extend(indices.iter().map(|&index| Undelivered {
                    scope: self.scope_of(keys[index]).to_owned(),
                    key: keys[index].to_owned(),
                }));
            }
        }
        (groups.into_iter().zip(answers).collect(), missed)
    }

    /// Locks each key as [`CacheBackend::lock`], server by server: the token of each key
    /// whose server took the lock, and the keys whose server did not.
    pub(crate) async fn lock_each(
        &self,
        keys: &[&str],
        marker: &[u8],
        ttl: Duration,
    ) -> (Vec<Option<Token>>, Vec<Undelivered>) {
        let (answers, missed) = self
            .per_server(keys, |asked| async move {
                match self.call(self.inner.lock(&asked, marker, ttl)).await {
                    Ok(tokens) if tokens.len() == asked.len() => Some(tokens),
                    Ok(_) | Err(_) => None,
                }
            })
            .await;
        let mut tokens = vec![None; keys.len()];
        for (indices, locked) in answers {
            for (index, token) in indices.into_iter().zip(locked.into_iter().flatten()) {
                tokens[index] = Some(token);
            }
        }
        (tokens, missed)
    }

    /// [`CacheBackend::lookup`] through the guard: admitted by the fence, under the
    /// deadline. The protocol calls this directly, so this layer's future is not boxed.
    pub(crate) async fn read(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        self.admit(keys).await?;

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

    /// Evicts each key, server by server; returns the keys whose server did not confirm.
    pub(crate) async fn evict_each(&self, keys: &[&str]) -> Vec<Undelivered> {
        let (_, missed) = self
            .per_server(
                keys,
                |asked| async move { self.call(self.inner.evict(&asked)).await.ok() },
            )
            .await;
        missed
    }
}

#[async_trait]
impl CacheBackend for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        self.read(keys, lease_ttl).await
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        self.call(self.inner.fill(key, bytes, token, ttl)).await
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        let (tokens, _) = self.lock_each(keys, marker, ttl).await;
        tokens
            .into_iter()
            .collect::<Option<Vec<Token>>>()
            .ok_or_else(|| CacheError::Unavailable("a lock did not reach its server".into()))
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        self.call(self.inner.release(key, token)).await
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        self.call(self.inner.evict(keys)).await
    }

    async fn flush(&self) -> Result<(), CacheError> {
        self.call(self.inner.flush()).await
    }

    fn servers(&self) -> Vec<String> {
        self.inner.servers()
    }

    fn server_for(&self, key: &str) -> usize {
        self.inner.server_for(key)
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }
}
