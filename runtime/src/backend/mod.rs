//! Cache backends and the primitive operations the consistency protocol is built on.
//!
//! A backend is not a plain get/set store: every read that misses hands out a *lease*
//! (exactly one caller per key may fill it), every stored item carries a [`Token`]
//! (memcached's CAS, a nonce on redis, a version in process) and every fill is a
//! compare-and-swap against that token. Writers replace items with a lock marker, which
//! changes the token and so makes every in-flight fill fail. `docs/consistency.md`
//! explains why these four operations are enough to never serve stale data.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

#[cfg(feature = "memcached")]
pub mod memcached;
pub mod memory;
#[cfg(feature = "memcached")]
mod meta;
#[cfg(any(feature = "memcached", feature = "redis"))]
mod mux;
#[cfg(any(feature = "memcached", feature = "redis"))]
mod pool;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
mod resp;

/// Guards a conditional write: the fill succeeds only while the key still carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

/// What one key held when it was looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Bytes are stored under the key; `token` guards replacing them.
    Value {
        /// The stored bytes (never empty: zero-byte items are lease placeholders).
        bytes: Bytes,
        /// The token to pass to [`CacheBackend::fill`] to replace these bytes.
        token: Token,
    },
    /// Nothing is stored and this caller now holds the fill lease.
    Lease(Token),
    /// Nothing is stored and another caller holds the fill lease.
    Busy,
}

/// A cache operation that did not complete: the caller treats it as a miss.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The server could not be reached or did not answer in time.
    #[error("cache server unavailable: {0}")]
    Unavailable(String),
    /// The server answered something the protocol does not allow.
    #[error("cache protocol error: {0}")]
    Protocol(String),
    /// The backend URL could not be understood.
    #[error("invalid cache URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it and what would be valid.
        reason: String,
    },
}

/// The key [`CacheBackend::probe`] deletes.
pub const PROBE_KEY: &str = "autocache:probe";

/// A shared cache backend (in-process, memcached, redis, Redis Cluster).
///
/// Keys passed in are already safe for every protocol (see [`crate::key`]).
#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// Short name of the backend kind, for stats and tracing (`memory`, `memcached`, `redis`).
    fn kind(&self) -> &'static str;

    /// Looks up `keys`: hits in one round trip per server (redis takes a second one for the
    /// leases of missing keys). A missing key grants this caller a fill lease valid for
    /// `lease_ttl`, unless another caller already holds one.
    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError>;

    /// Stores `bytes` under `key` for `ttl` if and only if the key still carries `token`.
    /// Returns whether the value was stored.
    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError>;

    /// Unconditionally replaces each key with `marker` for `ttl`, returning the new tokens
    /// (in order). Any fill holding an older token now fails.
    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError>;

    /// Deletes `key` if it still carries `token` (a writer giving back its lock).
    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError>;

    /// Deletes keys unconditionally (eviction; used by tests and operators).
    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError>;

    /// Deletes every key (a cold cache, for tests and operators): memcached `flush_all` on
    /// every server, redis `FLUSHDB` (on every master of a cluster). Writers' locks go too,
    /// which costs their fills (refused, so evicted), never freshness.
    async fn flush(&self) -> Result<(), CacheError> {
        Err(CacheError::Unavailable(format!(
            "the {} backend cannot flush",
            self.kind()
        )))
    }

    /// Checks that every server answers (a delete of a key no one uses); for
    /// [`crate::ContextBuilder::backend_url`], so a wrong address is noticed at start.
    async fn probe(&self) -> Result<(), CacheError> {
        self.evict(&[PROBE_KEY]).await
    }

    /// The stable names of the servers keys are spread over (the same in every process
    /// configured alike): what a fence is recorded under when an invalidation cannot reach
    /// one of them. One unnamed server for a backend that fails as a unit.
    fn servers(&self) -> Vec<String> {
        vec![String::new()]
    }

    /// The index, into [`CacheBackend::servers`], of the server that holds `key`.
    fn server_for(&self, _key: &str) -> usize {
        0
    }

    /// The longest any call can take by this backend's own connect and I/O deadlines, if it
    /// has them: `Guarded` (the context's wrapper of every backend) then arms no timer of its own unless its deadline is
    /// shorter.
    fn deadline(&self) -> Option<Duration> {
        None
    }

    /// Whether other processes may share this cache (then a missed invalidation must fence
    /// them, see `docs/consistency.md`); an in-process cache is not shared.
    fn shared(&self) -> bool {
        true
    }
}

/// A backend shared by every repository of a context.
pub type SharedBackend = Arc<dyn CacheBackend>;

/// Opens a backend from a URL: `memory://`, `memcache://[name=]host:port[,[name=]host:port…]`
/// (a server's name, by default its `host:port`, is what keys are routed by),
/// `redis://host:port`, or `redis+cluster://host:port[,host:port…]`.
pub async fn connect(url: &str) -> Result<SharedBackend, CacheError> {
    let invalid = |reason: &str| CacheError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected `<scheme>://…` with scheme memory, memcache, redis or redis+cluster"))?;
    match scheme {
        "memory" if rest.is_empty() => Ok(Arc::new(memory::MemoryBackend::new(memory::DEFAULT_CAPACITY))),
        #[cfg(feature = "memcached")]
        "memcache" | "memcached" => {
            let servers = server_list(rest);
            if servers.is_empty() {
                return Err(invalid("memcache:// needs at least one host:port"));
            }
            Ok(Arc::new(memcached::MemcachedBackend::connect(&servers).await?))
        }
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(redis::RedisBackend::connect(url).await?)),
        #[cfg(feature = "redis")]
        "redis+cluster" => {
            let servers = server_list(rest);
            if servers.is_empty() {
                return Err(invalid("redis+cluster:// needs at least one host:port"));
            }
            Ok(Arc::new(redis::RedisBackend::connect_cluster(&servers).await?))
        }
        other => Err(invalid(&format!(
            "unknown or disabled scheme `{other}`; valid: memory{}{}",
            if cfg!(feature = "memcached") { ", memcache" } else { "" },
            if cfg!(feature = "redis") {
                ", redis, redis+cluster"
            } else {
                ""
            },
        ))),
    }
}

/// The comma-separated server list of a URL (`host:port`, or `name=host:port` for memcached).
#[cfg(any(feature = "memcached", feature = "redis"))]
fn server_list(rest: &str) -> Vec<String> {
    rest.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
