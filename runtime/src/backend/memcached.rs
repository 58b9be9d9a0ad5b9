//! The memcached backend: the meta protocol (`mg`, `ms`, `md`) over a pool of connections
//! per server (the `meta` module), with the routing done here.
//!
//! - **Routing.** Rendezvous (highest random weight) hashing over the key bytes and each
//!   server's identity, with FNV-1a 64 and a SplitMix64 finalizer. A server is configured as
//!   `host:port` or `name=host:port`; its identity is the name, or else the `host:port`
//!   string exactly as configured, and the address is only what is dialed (as twemproxy
//!   names servers for its consistent hashing). The hash is fixed by this file, not by the
//!   Rust release (std's `DefaultHasher` may change) nor by the client crate, so every
//!   process configured with the same identities, in any order, routes every key alike, and
//!   removing a server only moves the keys it held. Configure the same identities
//!   everywhere: `localhost:11211` and `127.0.0.1:11211` are different identities, while
//!   `a=10.0.0.1:11211` and `a=127.0.0.1:7000` (the same server through a proxy) are one.
//! - **Round trips.** A multi-key call sends one pipelined batch per server, the servers in
//!   parallel, and answers in the caller's key order.
//! - **Mapping.** A lookup is `mg <key> v c N<lease ttl>`. A non-empty value is a hit whose
//!   CAS is the token. On a miss memcached creates a zero-byte placeholder and hands the win
//!   flag (`W`) to exactly one reader: that is our lease, its token the placeholder's CAS. A
//!   placeholder someone else won (`Z`) is [`Lookup::Busy`], and so is any other zero-byte
//!   item. A stale item (`X`) is a lease if we won it, busy otherwise. A fill is
//!   `ms … C<token>`, a lock an unconditional `ms` returning the new CAS, a release
//!   `md … C<token>`, an eviction `md`. Zero-byte values are reserved for lease
//!   placeholders: the runtime never stores one and [`MemcachedBackend`] refuses to. A value
//!   the server refuses (larger than its item limit, 1 MiB by default) is a fill that did
//!   not happen (`Ok(false)`); memcached then also drops whatever the key held.
//! - **Faults.** A server that fails (connection refused, I/O error, timeout, an answer that
//!   is not the protocol) is marked down for [`DOWN_FOR`]: calls routed to it fail at once
//!   with [`CacheError::Unavailable`] instead of waiting for connect timeouts. After that
//!   window one call tries it again, but before anything is read from it (or written to it)
//!   the server must accept a `flush_all`: while we could not reach it, it may have missed
//!   invalidations. That covers a network partition, after which the server still holds
//!   items that may be stale; a restarted memcached is empty anyway. If the flush fails the
//!   server is marked down again; a server on which `flush_all` is disabled (`-F`) is never
//!   used again by this process once it has failed, which is the safe outcome.
//!   Each call runs on the caller's task under one deadline of this backend's connect
//!   (80 ms) plus I/O (150 ms) time, dial, address resolution and a recovery flush
//!   included, which stays under the context's default cache deadline (see
//!   the guard, 250 ms; the guard then arms no timer of its own), so a failure is
//!   noticed and recorded before the caller gives up. Errors never panic and never hang.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::meta::{self, Failure, Pool, Reply};
use super::{CacheBackend, CacheError, Lookup, Token};

/// How long a server that failed is skipped before it is tried (and flushed) again.
pub const DOWN_FOR: Duration = Duration::from_secs(1);

/// Bound on dialing (and resolving) one server.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(80);

/// Bound on one exchange (writing the request and reading every answer).
const IO_TIMEOUT: Duration = Duration::from_millis(150);

/// Bytes first set aside for the values of a batch's answers (more as they need).
const SHARED_VALUES: usize = 4096;

/// memcached reads relative TTLs above this many seconds as absolute unix timestamps.
const MAX_RELATIVE_SECS: u32 = 30 * 24 * 60 * 60;

/// Longest item TTL sent; above [`MAX_RELATIVE_SECS`] it is sent as an absolute timestamp.
const MAX_TTL_SECS: u32 = 365 * 24 * 60 * 60;

/// A cache on one or more memcached servers, keys spread by rendezvous hashing.
pub struct MemcachedBackend {
    servers: Vec<Server>,
    /// Per server: the hash of its identity, mixed into every key's score.
    seeds: Vec<u64>,
}

impl MemcachedBackend {
    /// Opens a backend on `servers`, each `host:port` or `name=host:port` (the name, by
    /// default the `host:port` itself, is the server's routing identity; the address is
    /// what is dialed). Addresses are resolved here but connections are made on first use,
    /// so a server that is down does not fail this call.
    pub async fn connect(servers: &[String]) -> Result<Self, CacheError> {
        let url = format!("memcache://{}", servers.join(","));
        let invalid = |reason: String| CacheError::InvalidUrl {
            url: url.clone(),
            reason,
        };
        if servers.is_empty() {
            return Err(invalid("memcache:// needs at least one host:port".into()));
        }
        let mut named: Vec<(String, String)> = Vec::with_capacity(servers.len());
        for server in servers {
            let server = server.trim();
            let (identity, addr) = match server.split_once('=') {
                Some((name, addr)) => (name.trim(), addr.trim()),
                None => (server, server),
            };
            let host_port = addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0));
            if !host_port || identity.is_empty() {
                return Err(invalid(format!(
                    "`{server}` is not host:port or name=host:port (for example 127.0.0.1:11211 or a=127.0.0.1:11211)"
                )));
            }
            if named.iter().any(|(known, _)| known == identity) {
                return Err(invalid(format!("server `{identity}` is listed twice")));
            }
            named.push((identity.to_owned(), addr.to_owned()));
        }
        let seeds = named.iter().map(|(name, _)| mix(fnv1a64(name.as_bytes()))).collect();
        let servers: Vec<Server> = named.into_iter().map(|(name, addr)| Server::new(name, addr)).collect();
        // Resolve every address now; one that does not resolve is marked down, not fatal.
        join_all(servers.iter().map(|server| server.pool())).await;
        Ok(Self { servers, seeds })
    }

    /// The indices of `keys` grouped by server, servers with no key left out.
    fn group(&self, keys: &[&str]) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.servers.len()];
        for (index, key) in keys.iter().enumerate() {
            groups[self.server_for(key)].push(index);
        }
        groups
            .into_iter()
            .enumerate()
            .filter(|(_, indices)| !indices.is_empty())
            .collect()
    }

    /// Runs `work` against server `index`, once the server is known up and
    /// flushed; a failure of the server marks it down. The exchange runs on the caller's
    /// task (a spawned task per exchange cost about 15 µs per hit), bounded by this
    /// backend's connect and I/O deadlines, which together are shorter than the context's
    /// cache deadline: a silent server is recorded as down here before the caller gives up.
    /// The first call (resolving the address) and a call that flushes a server after a
    /// failure share that one bound with their exchange.
    async fn on_server<'c, T, F, Fut>(&'c self, index: usize, work: F) -> Result<T, CacheError>
    where
        F: FnOnce(&'c Pool) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let server = self
            .servers
            .get(index)
            .ok_or_else(|| CacheError::Protocol(format!("no memcached server #{index}")))?;
        if let (false, Some(pool)) = (server.ever_failed.load(Ordering::Acquire), server.pool.get()) {
            // The common case: the pool's own deadline bounds the call.
            return work(pool).await.map_err(|failure| server.failed(&failure));
        }
        let call = async {
            server.ready().await?;
            let pool = server.pool().await?;
            work(pool).await.map_err(|failure| server.failed(&failure))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT + IO_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(server.mark_down(format!(
                "no answer within {:?} (resolving or flushing included)",
                CONNECT_TIMEOUT + IO_TIMEOUT
            ))),
        }
    }
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn kind(&self) -> &'static str {
        "memcached"
    }

    /// Deletes the probe key on every server (not only the one it routes to).
    async fn probe(&self) -> Result<(), CacheError> {
        let probes = (0..self.servers.len()).map(|index| {
            self.on_server(index, |pool| async move {
                pool.call(|request| request.delete(super::PROBE_KEY, None), deleted)
                    .await
                    .map(drop)
            })
        });
        join_all(probes).await.into_iter().collect()
    }

    /// The servers' routing identities (names), not the addresses dialed: a process that
    /// reaches a server through a proxy records and finds its fences under the same name.
    fn servers(&self) -> Vec<String> {
        self.servers.iter().map(|server| server.name.clone()).collect()
    }

    /// The index, into the configured server list, of the server that holds `key`.
    fn server_for(&self, key: &str) -> usize {
        rendezvous(key.as_bytes(), &self.seeds)
    }

    /// Every call ends within the connect plus I/O time (see `MemcachedBackend::on_server`).
    fn deadline(&self) -> Option<Duration> {
        Some(CONNECT_TIMEOUT + IO_TIMEOUT)
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        checked(keys)?;
        let lease = secs(lease_ttl, MAX_RELATIVE_SECS);
        match keys {
            [] => return Ok(Vec::new()),
            // One key (every `get`): its value copied on its own.
            [key] => {
                return self
                    .on_server(self.server_for(key), |pool| {
                        pool.call(
                            |request| request.get_leased([*key], lease),
                            |reply| to_lookup(reply, Bytes::copy_from_slice),
                        )
                    })
                    .await;
            }
            // One server: one exchange, its answers already in the caller's order.
            _ if self.servers.len() == 1 => {
                return self.on_server(0, |pool| ask(pool, keys.iter().copied(), lease)).await;
            }
            _ => {}
        }
        let started = tokio::time::Instant::now();
        let groups = self.group(keys);
        let exchanges = groups.iter().map(|(server, indices)| {
            self.on_server(*server, move |pool| {
                ask(pool, indices.iter().map(|&index| keys[index]), lease)
            })
        });
        let answers = join_all(exchanges).await;
        if let [(_, _)] = groups.as_slice() {
            // Every key on one server: its answers are already in the caller's order.
            return answers.into_iter().next().unwrap_or_else(|| Ok(Vec::new()));
        }
        let mut found = vec![Lookup::Busy; keys.len()];
        let mut won = Vec::new();
        let mut failure = None;
        for ((_, indices), answer) in groups.iter().zip(answers) {
            match answer {
                Ok(lookups) => {
                    for (&index, lookup) in indices.iter().zip(lookups) {
                        if let Lookup::Lease(token) = lookup {
                            won.push((keys[index], token));
                        }
                        found[index] = lookup;
                    }
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            // The caller reads the database for every key: free the leases it cannot use,
            // within the call's bound (a lease not given back expires after `lease_ttl`).
            let releases = join_all(won.into_iter().map(|(key, token)| self.release(key, token)));
            let _ = tokio::time::timeout_at(started + CONNECT_TIMEOUT + IO_TIMEOUT, releases).await;
            return Err(error);
        }
        Ok(found)
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        checked(&[key])?;
        if bytes.is_empty() {
            return Err(CacheError::Protocol(
                "zero-byte values are reserved for lease placeholders".into(),
            ));
        }
        let ttl = ttl_field(ttl);
        let answers = self
            .on_server(self.server_for(key), |pool| {
                pool.call(
                    |request| request.set(key, bytes, ttl, Some(token.0), false),
                    |reply| match &reply.code {
                        b"HD" => Ok(true),
                        // The token no longer holds (CAS mismatch, key gone), or the server
                        // cannot store this value (too large, out of memory).
                        b"EX" | b"NF" | b"NS" | b"SE" => Ok(false),
                        _ => Err(unexpected(&reply)),
                    },
                )
            })
            .await?;
        Ok(answers.first() == Some(&true))
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        checked(keys)?;
        let ttl = ttl_field(ttl);
        let groups = self.group(keys);
        let exchanges = groups.iter().map(|(server, indices)| {
            self.on_server(*server, move |pool| {
                pool.call(
                    move |request| {
                        for &index in indices {
                            request.set(keys[index], marker, ttl, None, true);
                        }
                    },
                    |reply| match (&reply.code, reply.cas()) {
                        (b"HD", Some(cas)) => Ok(Token(cas)),
                        _ => Err(unexpected(&reply)),
                    },
                )
            })
        });
        let answers = join_all(exchanges).await;
        let mut tokens = vec![Token(0); keys.len()];
        for ((_, indices), answer) in groups.iter().zip(answers) {
            for (&index, token) in indices.iter().zip(answer?) {
                tokens[index] = token;
            }
        }
        Ok(tokens)
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        checked(&[key])?;
        // A mismatch or a missing key means the lock or lease is no longer ours: nothing to do.
        self.on_server(self.server_for(key), |pool| {
            pool.call(|request| request.delete(key, Some(token.0)), deleted)
        })
        .await
        .map(drop)
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        checked(keys)?;
        let exchanges = self.group(keys).into_iter().map(|(server, indices)| {
            self.on_server(server, move |pool| {
                pool.call(
                    move |request| indices.iter().for_each(|&index| request.delete(keys[index], None)),
                    deleted,
                )
            })
        });
        join_all(exchanges)
            .await
            .into_iter()
            .try_for_each(|answer| answer.map(drop))
    }

    async fn flush(&self) -> Result<(), CacheError> {
        let flushed = self.servers.iter().map(|server| async move {
            flush_all(&server.addr)
                .await
                .map_err(|reason| CacheError::Unavailable(format!("memcached {}: flush_all: {reason}", server.addr)))
        });
        join_all(flushed).await.into_iter().collect()
    }
}

/// One configured server: its connections (resolved on first use), its health and its flush.
struct Server {
    /// Its routing identity: the configured name, or else the address as configured.
    name: String,
    /// The address dialed.
    addr: String,
    pool: tokio::sync::OnceCell<Pool>,
    health: Mutex<Health>,
    /// Whether it ever failed: until then every call skips the health checks' lock.
    ever_failed: AtomicBool,
    /// Held by the one call flushing the server; the others fail fast meanwhile.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Health {
    /// Calls fail at once until then.
    down_until: Option<Instant>,
    /// Failures seen so far.
    failures: u64,
    /// Failures covered by a successful `flush_all` (started after them).
    flushed: u64,
    /// What the last failure was, for error messages.
    last_error: String,
}

impl Server {
    fn new(name: String, addr: String) -> Self {
        Self {
            name,
            addr,
            pool: tokio::sync::OnceCell::new(),
            health: Mutex::new(Health::default()),
            ever_failed: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails at once while the server is marked down.
    fn check_up(&self) -> Result<(), CacheError> {
        let health = self.health();
        let now = Instant::now();
        match health.down_until {
            Some(until) if until > now => Err(CacheError::Unavailable(format!(
                "memcached {} is marked down for another {:?} after: {}",
                self.addr,
                until - now,
                health.last_error
            ))),
            _ => Ok(()),
        }
    }

    /// The failure count a flush must cover, if a failure has not been covered yet.
    fn unflushed(&self) -> Option<u64> {
        let health = self.health();
        (health.flushed < health.failures).then_some(health.failures)
    }

    /// Records a failure: the server is skipped for [`DOWN_FOR`], then flushed before use.
    fn mark_down(&self, reason: String) -> CacheError {
        {
            let mut health = self.health();
            self.ever_failed.store(true, Ordering::Release);
            health.failures += 1;
            health.down_until = Some(Instant::now() + DOWN_FOR);
            health.last_error.clone_from(&reason);
        }
        tracing::warn!(server = %self.addr, error = %reason, "memcached server marked down; it is flushed before it is used again");
        CacheError::Unavailable(format!("memcached {}: {reason}", self.addr))
    }

    /// Maps a failed call; one that says the server cannot be talked to marks it down.
    fn failed(&self, failure: &Failure) -> CacheError {
        match failure {
            Failure::Io(_) | Failure::Protocol(_) => self.mark_down(failure.to_string()),
            Failure::Server(_) => CacheError::Protocol(format!("memcached {}: {failure}", self.addr)),
        }
    }

    /// Succeeds once the server is up and every failure seen has been followed by a flush.
    async fn ready(&self) -> Result<(), CacheError> {
        if !self.ever_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check_up()?;
        if self.unflushed().is_none() {
            return Ok(());
        }
        let Ok(_flushing) = self.flushing.try_lock() else {
            return Err(CacheError::Unavailable(format!(
                "memcached {} is being flushed after a failure",
                self.addr
            )));
        };
        // Another call may have flushed it (or seen it fail again) in the meantime.
        self.check_up()?;
        let Some(covers) = self.unflushed() else {
            return Ok(());
        };
        flush_all(&self.addr)
            .await
            .map_err(|reason| self.mark_down(format!("flush_all after a failure: {reason}")))?;
        {
            let mut health = self.health();
            health.flushed = health.flushed.max(covers);
        }
        tracing::info!(server = %self.addr, "memcached server flushed after a failure; using it again");
        self.check_up()?;
        match self.unflushed() {
            None => Ok(()),
            Some(_) => Err(CacheError::Unavailable(format!(
                "memcached {} failed again while being flushed",
                self.addr
            ))),
        }
    }

    /// The connections to this server, its address resolved on first use.
    async fn pool(&self) -> Result<&Pool, CacheError> {
        if let Some(pool) = self.pool.get() {
            return Ok(pool);
        }
        let made = self
            .pool
            .get_or_try_init(|| async {
                let resolving = tokio::net::lookup_host(self.addr.as_str());
                match tokio::time::timeout(CONNECT_TIMEOUT, resolving).await {
                    Ok(Ok(addrs)) => {
                        let addrs: Vec<SocketAddr> = addrs.collect();
                        if addrs.is_empty() {
                            return Err("the address resolves to nothing".to_owned());
                        }
                        Ok(Pool::new(addrs, None, CONNECT_TIMEOUT, CONNECT_TIMEOUT + IO_TIMEOUT))
                    }
                    Ok(Err(error)) => Err(format!("cannot resolve the address: {error}")),
                    Err(_) => Err(format!("resolving the address took over {CONNECT_TIMEOUT:?}")),
                }
            })
            .await;
        made.map_err(|reason| self.mark_down(reason))
    }
}

/// Sends `flush_all` (a text-protocol command the meta client does not offer) on a fresh
/// connection and expects `OK`.
async fn flush_all(addr: &str) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .write_all(b"flush_all\r\n")
            .await
            .map_err(|error| format!("write: {error}"))?;
        let mut reader = BufReader::new(stream).take(256);
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|error| format!("read: {error}"))?;
        if line == b"OK\r\n" {
            Ok(())
        } else {
            Err(format!("answered {:?}", String::from_utf8_lossy(&line).trim_end()))
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + IO_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {:?}", CONNECT_TIMEOUT + IO_TIMEOUT)),
    }
}

/// Fails for a key that is not a valid meta-protocol key (the runtime's keys always are).
fn checked(keys: &[&str]) -> Result<(), CacheError> {
    match keys.iter().find(|key| !meta::valid_key(key)) {
        Some(key) => Err(CacheError::Protocol(format!("`{key}` is not a valid memcached key"))),
        None => Ok(()),
    }
}

/// An answer the command does not allow.
fn unexpected(reply: &Reply<'_>) -> Failure {
    match &reply.code {
        b"SE" => Failure::Server("SERVER_ERROR".into()),
        code => Failure::Protocol(format!("unexpected answer {}", String::from_utf8_lossy(code))),
    }
}

/// The answer to an `md`: deleted, or nothing (no longer) to delete.
fn deleted(reply: Reply<'_>) -> Result<(), Failure> {
    match &reply.code {
        b"HD" | b"NF" | b"EX" => Ok(()),
        _ => Err(unexpected(&reply)),
    }
}

/// Looks up `keys` on one server (`mg <key> v c N<lease>` each), in one exchange. Their
/// values are copied into one buffer they share: one allocation per call, not per value.
async fn ask<'k>(pool: &Pool, keys: impl Iterator<Item = &'k str>, lease: u32) -> Result<Vec<Lookup>, Failure> {
    let mut values = BytesMut::with_capacity(SHARED_VALUES);
    pool.call(
        |request| request.get_leased(keys, lease),
        |reply| {
            to_lookup(reply, |bytes| {
                values.extend_from_slice(bytes);
                values.split().freeze()
            })
        },
    )
    .await
}

/// What one `mg … v c N<ttl>` answer means for the caller; `copy` keeps a value's bytes.
fn to_lookup(reply: Reply<'_>, copy: impl FnOnce(&[u8]) -> Bytes) -> Result<Lookup, Failure> {
    let flags = reply.lease_flags();
    let token = || {
        flags
            .cas
            .map(Token)
            .ok_or_else(|| Failure::Protocol("memcached did not return the item's CAS".into()))
    };
    match (&reply.code, reply.value) {
        // A stale item (`X`): a lease if we won it, busy otherwise.
        (b"VA", Some(_)) if flags.stale => {
            if flags.won {
                token().map(Lookup::Lease)
            } else {
                Ok(Lookup::Busy)
            }
        }
        (b"VA", Some(bytes)) if !bytes.is_empty() => Ok(Lookup::Value {
            token: token()?,
            bytes: copy(bytes),
        }),
        // A zero-byte item is a placeholder: ours (`W`) or someone else's (`Z`, or stored
        // by something else): never served.
        (b"VA" | b"HD", _) if flags.won => token().map(Lookup::Lease),
        // A miss memcached could not vivify (out of memory) is busy as well.
        (b"VA" | b"HD" | b"EN", _) => Ok(Lookup::Busy),
        _ => Err(unexpected(&reply)),
    }
}

/// The `T` flag for `ttl`: relative seconds (at least 1), or, above what memcached reads as
/// relative, an absolute unix time.
fn ttl_field(ttl: Duration) -> u32 {
    let secs = secs(ttl, MAX_TTL_SECS);
    if secs <= MAX_RELATIVE_SECS {
        return secs;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    u32::try_from(now + u64::from(secs)).unwrap_or(u32::MAX)
}

/// Whole seconds, rounded up, between 1 and `max`.
fn secs(duration: Duration, max: u32) -> u32 {
    let rounded = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    u32::try_from(rounded).unwrap_or(u32::MAX).clamp(1, max)
}

/// FNV-1a, 64 bits: stable across processes, platforms and Rust releases.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The SplitMix64 finalizer: spreads every input bit over the whole output.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Rendezvous hashing: the server whose seed gives `key` the highest score.
fn rendezvous(key: &[u8], seeds: &[u64]) -> usize {
    let key_hash = mix(fnv1a64(key));
    let mut best: Option<(usize, u64)> = None;
    for (index, &seed) in seeds.iter().enumerate() {
        let score = mix(key_hash ^ seed);
        if best.is_none_or(|(_, top)| score > top) {
            best = Some((index, score));
        }
    }
    best.map_or(0, |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_the_published_fnv1a() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn routing_is_pinned() {
        // Every process, on every release, must route alike: this pins the function.
        let seeds: Vec<u64> = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]
            .iter()
            .map(|server| mix(fnv1a64(server.as_bytes())))
            .collect();
        let routed: Vec<usize> = (0..12)
            .map(|i| rendezvous(format!("key:{i}").as_bytes(), &seeds))
            .collect();
        assert_eq!(routed, PINNED_ROUTES);
    }

    /// Computed independently (a Python transcription of FNV-1a 64 + SplitMix64).
    const PINNED_ROUTES: [usize; 12] = [1, 2, 0, 2, 0, 2, 2, 2, 2, 0, 1, 1];

    #[test]
    fn routing_ignores_server_order() {
        let servers = ["a:1", "b:2", "c:3", "d:4"];
        let seeds: Vec<u64> = servers.iter().map(|s| mix(fnv1a64(s.as_bytes()))).collect();
        let reversed: Vec<u64> = seeds.iter().rev().copied().collect();
        for i in 0..1000 {
            let key = format!("k{i}");
            let forward = rendezvous(key.as_bytes(), &seeds);
            let backward = rendezvous(key.as_bytes(), &reversed);
            assert_eq!(servers[forward], servers[servers.len() - 1 - backward]);
        }
    }

    fn seeds_of(identities: &[&str]) -> Vec<u64> {
        identities
            .iter()
            .map(|identity| mix(fnv1a64(identity.as_bytes())))
            .collect()
    }

    async fn backend(servers: &[&str]) -> Result<MemcachedBackend, CacheError> {
        MemcachedBackend::connect(&servers.iter().map(|server| (*server).to_owned()).collect::<Vec<_>>()).await
    }

    #[tokio::test]
    async fn a_server_is_routed_by_its_name_or_else_its_address() {
        let named = backend(&["a=127.0.0.1:1", "b = 127.0.0.1:2"]).await.unwrap();
        let relayed = backend(&["b=127.0.0.1:4", "a=127.0.0.1:3"]).await.unwrap();
        assert_eq!(named.seeds, seeds_of(&["a", "b"]));
        assert_eq!(
            (named.servers[1].name.as_str(), named.servers[1].addr.as_str()),
            ("b", "127.0.0.1:2")
        );
        for i in 0..100 {
            let key = format!("k{i}");
            assert_eq!(named.server_for(&key), 1 - relayed.server_for(&key), "{key}");
        }
        let unnamed = backend(&["127.0.0.1:1", "127.0.0.1:2"]).await.unwrap();
        assert_eq!(unnamed.seeds, seeds_of(&["127.0.0.1:1", "127.0.0.1:2"]));
        assert_eq!(unnamed.servers[0].name, "127.0.0.1:1");
    }

    #[tokio::test]
    async fn bad_server_names_are_refused() {
        for servers in [
            &["=127.0.0.1:1"][..],
            &["a="],
            &["a=b"],
            &["a=127.0.0.1:1", "a=127.0.0.1:2"],
        ] {
            assert!(
                matches!(backend(servers).await, Err(CacheError::InvalidUrl { .. })),
                "{servers:?}"
            );
        }
    }

    /// The protocol against a real server: a lease, a fill, a lock, a release; a value over
    /// the server's item limit is a refused fill that leaves the connection in step; a
    /// restarted server is reached again through fresh connections (the pooled ones fail
    /// before anything is read, and the call is retried once).
    #[tokio::test(flavor = "multi_thread")]
    async fn speaks_the_meta_protocol_to_a_real_server() {
        let mut server = autocache_testkit::memcached::Memcached::start();
        let backend = backend(&[&server.addr()]).await.unwrap();
        let lease = Duration::from_secs(5);
        let ttl = Duration::from_secs(60);
        let [Lookup::Lease(token)] = backend.lookup(&["k"], lease).await.unwrap()[..] else {
            panic!("a miss grants the lease");
        };
        assert_eq!(backend.lookup(&["k"], lease).await.unwrap(), [Lookup::Busy]);
        assert!(backend.fill("k", b"v1", token, ttl).await.unwrap());
        assert!(!backend.fill("k", b"v2", token, ttl).await.unwrap(), "a used token");
        let [Lookup::Value { ref bytes, token }] = backend.lookup(&["k"], lease).await.unwrap()[..] else {
            panic!("a hit");
        };
        assert_eq!(&bytes[..], b"v1");
        let locked = backend.lock(&["k", "other"], b"L", ttl).await.unwrap();
        assert_eq!(locked.len(), 2);
        assert!(!backend.fill("k", b"v3", token, ttl).await.unwrap(), "locked since");
        backend.release("k", locked[0]).await.unwrap();
        let huge = vec![b'x'; 2 << 20];
        let [Lookup::Lease(token)] = backend.lookup(&["k"], lease).await.unwrap()[..] else {
            panic!("released: a miss again");
        };
        assert!(
            !backend.fill("k", &huge, token, ttl).await.unwrap(),
            "over the item limit"
        );
        // memcached dropped what `k` held (the lease placeholder): a new lease, then busy.
        let many = backend.lookup(&["other", "k", "k"], lease).await.unwrap();
        assert!(
            matches!(many[..], [Lookup::Value { .. }, Lookup::Lease(_), Lookup::Busy]),
            "{many:?}"
        );
        server.restart();
        backend.evict(&["other"]).await.unwrap();
        assert!(matches!(
            backend.lookup(&["other"], lease).await.unwrap()[..],
            [Lookup::Lease(_)]
        ));
        assert!(
            !backend.servers[0].ever_failed.load(Ordering::Acquire),
            "no failure was seen"
        );
    }

    #[test]
    fn ttls_are_whole_positive_seconds() {
        assert_eq!(secs(Duration::ZERO, 10), 1);
        assert_eq!(secs(Duration::from_millis(1500), 10), 2);
        assert_eq!(secs(Duration::from_secs(5), 10), 5);
        assert_eq!(secs(Duration::MAX, 10), 10);
    }
}
