//! Redis backend, for a single server (`redis://host:port`) or a Redis Cluster
//! (`redis+cluster://host:port,host:port…`).
//!
//! # Encoding
//!
//! Redis has no CAS, so every item carries its own token: the stored string is an 8-byte
//! big-endian token followed by the payload. An item that is *only* a token (empty payload)
//! is a lease placeholder, exactly like the zero-byte items of memcached and the in-process
//! backend. Tokens are random `u64`s drawn by the client and passed to the server as
//! arguments, so a retried script is idempotent (re-running a lock writes the same token,
//! re-running a lookup sees its own placeholder and answers busy, re-running a fill no longer
//! matches and answers "not stored").
//!
//! # Scripts
//!
//! Each step that must be atomic is a Lua script, run with `EVALSHA`; a server that does not
//! know it yet (a restart) answers `NOSCRIPT`, and the call is sent once more as `EVAL`,
//! which runs the script and loads it (the `redis` crate, on a cluster, sends `SCRIPT LOAD`
//! and `EVALSHA` instead):
//!
//! - **lookup** (`KEYS` = the keys, `ARGV` = lease ms, then one fresh token per key): for each
//!   key, `GET`; nothing stored → store the new token alone for the lease TTL and answer `1`
//!   (this caller won the lease); an 8-byte item → `0` (another caller holds the lease);
//!   otherwise the item itself, which the client splits into token and payload.
//! - **fill** (`KEYS[1]`, `ARGV` = expected token, new token ‖ payload, ttl ms): if the
//!   first 8 bytes stored (`GETRANGE 0 7`) equal the expected token, `SET … PX ttl` and
//!   answer `1`, else `0`. It works on a placeholder and on a stored value alike.
//! - **lock** (`KEYS` = the keys, `ARGV` = ttl ms, then new token ‖ marker per key): plain
//!   `SET … PX ttl` of every key; the client already knows the new tokens.
//! - **release** (`KEYS[1]`, `ARGV` = token): `DEL` only if the stored prefix equals the token.
//!
//! A lookup first reads its keys with a plain `GET` (one key) or `MGET`: a stored value is a
//! hit, an 8-byte item someone else's lease. Only the keys that hold nothing go through the
//! lookup script, which checks again atomically before it stores a placeholder. A hit costs
//! one plain read (no script to run), a miss (which reads the database anyway) one more
//! round trip. Eviction is a plain `UNLINK`.
//!
//! # Round trips
//!
//! A multi-key script may only touch keys of one hash slot on a cluster. On a single server
//! every batch (lock, evict, a lookup of hits) is one script call or one command: one round
//! trip (a lookup with misses: two). On a cluster the keys are grouped by hash slot, and the
//! groups are sent concurrently (one request per slot, multiplexed on one connection per
//! node), so a batch costs one round trip of latency but one request per distinct slot. An
//! empty batch sends nothing.
//!
//! # Connections
//!
//! A single server (`redis://`) is spoken to over this crate's own RESP connections
//! (the `resp` module, pooled as memcached's are): every call runs under one deadline
//! (80 ms to dial, 150 ms in all), a new connection
//! first sends `AUTH` and `SELECT` as the URL asks, a connection whose call failed is
//! dropped, and a pooled one the server closed while idle (a restart) is replaced once
//! within the call. One call at a time runs on a connection of its own (the fastest way for
//! one caller); the calls beyond share one multiplexed connection (the `mux` module), so that
//! many concurrent callers cost the server one read and one write per batch. Why not the
//! `redis` crate here: `docs/performance.md`, "The redis client". A cluster goes through
//! the crate's cluster client, which follows the slot map and redirections.
//!
//! Every failure is returned as [`CacheError::Unavailable`] (the server could not be reached
//! or answered too late, or the cluster is re-sharding) or [`CacheError::Protocol`] (an answer
//! this protocol does not allow); nothing here panics.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use futures::future::try_join_all;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{
    ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, Script, ScriptInvocation, ServerErrorKind, Value,
};

use super::pool::{Failure, Request};
use super::resp::{self, Reply};
use super::{CacheBackend, CacheError, Lookup, Token};

/// Bytes of the token prefix of every stored item.
const TOKEN_LEN: usize = 8;
/// Longest TTL sent to the server (100 years); larger ones would overflow its clock.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// Time to establish one TCP connection to a cluster node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a cluster node has to answer one request (a batch is one request per slot).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time to dial (and greet) a single server.
const SINGLE_CONNECT_TIMEOUT: Duration = Duration::from_millis(80);
/// Time one call to a single server may take in all, a dial included (the response timeout
/// the `redis` crate's connection had). It stays below the context's default cache deadline
/// (250 ms), so the guard arms no second timer per call (see [`CacheBackend::deadline`]).
const SINGLE_CALL_TIMEOUT: Duration = Duration::from_millis(150);
/// Concurrent calls to a single server that run on a connection of their own; those beyond
/// share one multiplexed connection (see `docs/performance.md`, "The redis client").
const DIRECT_CALLS: usize = 1;

const LOOKUP_LUA: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
    local item = redis.call('GET', key)
    if not item then
        redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
        out[i] = 1
    elseif #item == 8 then
        out[i] = 0
    else
        out[i] = item
    end
end
return out
";

static LOOKUP: LazyLock<Script> = LazyLock::new(|| Script::new(LOOKUP_LUA));

const FILL_LUA: &str = r"
if redis.call('GETRANGE', KEYS[1], 0, 7) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
";

static FILL: LazyLock<Script> = LazyLock::new(|| Script::new(FILL_LUA));

const LOCK_LUA: &str = r"
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
";

static LOCK: LazyLock<Script> = LazyLock::new(|| Script::new(LOCK_LUA));

const RELEASE_LUA: &str = r"
if redis.call('GETRANGE', KEYS[1], 0, 7) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));

/// The connection: both kinds reconnect by themselves.
enum Connection {
    /// One server, through this crate's RESP pool; `url` (without a password) for errors.
    Single { pool: resp::Pool, url: String },
    /// A cluster, through the `redis` crate (a clone per call).
    Cluster(ClusterConnection),
}

/// A cache on one Redis server or on a Redis Cluster (see the module docs for the encoding).
pub struct RedisBackend {
    connection: Connection,
}

impl RedisBackend {
    /// Connects to one server, given as a `redis://[user:password@]host:port[/db]` URL, and
    /// loads the scripts (so a server that cannot be reached fails this call).
    ///
    /// After the server goes away, each call dials it again (within its deadline) and fails
    /// with [`CacheError::Unavailable`] while it cannot.
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        let invalid = |reason: String| CacheError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let info = url.into_connection_info().map_err(|error| invalid(error.to_string()))?;
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(invalid(
                "only redis://host:port[/db] is supported for one server".into(),
            ));
        };
        let settings = info.redis_settings();
        let shown = format!("redis://{host}:{port}/{}", settings.db());
        let unavailable = |error: std::io::Error| CacheError::Unavailable(format!("redis at {shown}: {error}"));
        let addrs: Vec<_> = tokio::time::timeout(SINGLE_CALL_TIMEOUT, tokio::net::lookup_host((host.as_str(), *port)))
            .await
            .map_err(|_| unavailable(std::io::ErrorKind::TimedOut.into()))?
            .map_err(unavailable)?
            .collect();
        let greeting = resp::greeting(settings.username(), settings.password(), settings.db());
        let pool =
            resp::Pool::new(addrs, greeting, SINGLE_CONNECT_TIMEOUT, SINGLE_CALL_TIMEOUT).sharing_beyond(DIRECT_CALLS);
        let backend = Self {
            connection: Connection::Single { pool, url: shown },
        };
        backend.load_scripts().await?;
        Ok(backend)
    }

    /// Connects to a Redis Cluster through any of its masters, given as `host:port`
    /// (a `redis://` prefix is accepted too); the rest of the topology is discovered.
    pub async fn connect_cluster(servers: &[String]) -> Result<Self, CacheError> {
        if servers.is_empty() {
            return Err(CacheError::InvalidUrl {
                url: String::new(),
                reason: "redis+cluster:// needs at least one host:port".into(),
            });
        }
        let nodes: Vec<String> = servers
            .iter()
            .map(|server| {
                if server.contains("://") {
                    server.clone()
                } else {
                    format!("redis://{server}")
                }
            })
            .collect();
        let invalid = |error: RedisError| CacheError::InvalidUrl {
            url: format!("redis+cluster://{}", servers.join(",")),
            reason: error.to_string(),
        };
        let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(RESPONSE_TIMEOUT * 2))
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(invalid)?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(|error| CacheError::Unavailable(format!("redis cluster at {}: {error}", servers.join(","))))?;
        let backend = Self {
            connection: Connection::Cluster(connection),
        };
        backend.load_scripts().await?;
        Ok(backend)
    }

    /// Loads every script up front (on every node of a cluster), so the first batch does not
    /// pay a `NOSCRIPT` round trip per call. A server that forgets them (a restart) gets them
    /// again on first use.
    async fn load_scripts(&self) -> Result<(), CacheError> {
        match &self.connection {
            Connection::Single { pool, url } => {
                let sources = [LOOKUP_LUA, FILL_LUA, LOCK_LUA, RELEASE_LUA];
                let loads = |request: &mut Request<'_>| {
                    for source in sources {
                        request.command(&[b"SCRIPT", b"LOAD", source.as_bytes()]);
                    }
                };
                let loaded = pool.call(loads, |reply| match reply {
                    Reply::Bulk(Some(_)) => Ok(()),
                    other => Err(refused("SCRIPT LOAD", &other)),
                });
                loaded.await.map(drop).map_err(|failure| single_error(url, failure))
            }
            Connection::Cluster(connection) => {
                for script in [&*LOOKUP, &*FILL, &*LOCK, &*RELEASE] {
                    script.load_async(&mut connection.clone()).await.map_err(cache_error)?;
                }
                Ok(())
            }
        }
    }

    /// Splits `keys` into the groups one script call may cover, as indices into `keys`:
    /// everything on a single server, one group per hash slot on a cluster.
    fn groups(&self, keys: &[&str]) -> Vec<Vec<usize>> {
        match self.connection {
            Connection::Single { .. } => vec![(0..keys.len()).collect()],
            Connection::Cluster(_) => {
                let mut slots: HashMap<Slot, usize> = HashMap::new();
                let mut groups: Vec<Vec<usize>> = Vec::new();
                for (index, key) in keys.iter().enumerate() {
                    let group = *slots.entry(Slot::for_key(key)).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[group].push(index);
                }
                groups
            }
        }
    }

    /// Runs `script` on the cluster.
    async fn invoke(connection: &ClusterConnection, invocation: &ScriptInvocation<'_>) -> Result<Value, CacheError> {
        invocation
            .invoke_async(&mut connection.clone())
            .await
            .map_err(cache_error)
    }

    /// Reads `keys` (all of one group) with `GET` / `MGET`: per key, what it holds, or
    /// `None` if nothing is stored.
    async fn read_items(&self, keys: &[&str]) -> Result<Vec<Option<Lookup>>, CacheError> {
        let connection = match &self.connection {
            Connection::Single { pool, url } => return read_single(pool, url, keys).await,
            Connection::Cluster(connection) => connection,
        };
        let mut command = redis::cmd(if keys.len() == 1 { "GET" } else { "MGET" });
        command.arg(keys);
        let answer: Result<Value, RedisError> = command.query_async(&mut connection.clone()).await;
        let items = match answer.map_err(cache_error)? {
            Value::Array(items) if keys.len() > 1 => items,
            single if keys.len() == 1 => vec![single],
            other => return Err(CacheError::Protocol(format!("MGET answered {other:?}"))),
        };
        if items.len() != keys.len() {
            return Err(CacheError::Protocol(format!(
                "MGET answered {} items for {} keys",
                items.len(),
                keys.len()
            )));
        }
        items
            .into_iter()
            .map(|item| match item {
                Value::Nil => Ok(None),
                // Only a token: a lease placeholder, someone else's.
                Value::BulkString(stored) if stored.len() == TOKEN_LEN => Ok(Some(Lookup::Busy)),
                Value::BulkString(stored) => parse_item(Value::BulkString(stored), 0).map(Some),
                other => Err(CacheError::Protocol(format!("GET answered {other:?} for a key"))),
            })
            .collect()
    }

    /// Looks up `asked` (all of one group): hits first, with a plain read; the lease script
    /// only for what was not found.
    async fn lookup_group(&self, asked: &[&str], lease_ms: u64) -> Result<Vec<Lookup>, CacheError> {
        let mut found = self.read_items(asked).await?;
        let missed: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        if !missed.is_empty() {
            let tokens: Vec<u64> = missed.iter().map(|_| rand::random()).collect();
            let leased = match &self.connection {
                Connection::Single { pool, url } => {
                    let keys = missed.len();
                    let encode = |request: &mut Request<'_>| {
                        for &i in &missed {
                            request.bulk(asked[i].as_bytes());
                        }
                        request.bulk_u64(lease_ms);
                        for token in &tokens {
                            request.bulk(&token.to_be_bytes());
                        }
                    };
                    let parse = |reply: Reply<'_>| match reply {
                        Reply::Array(Some(items)) if items.len() == tokens.len() => items
                            .zip(&tokens)
                            .map(|(item, &token)| match item? {
                                Reply::Int(1) => Ok(Lookup::Lease(Token(token))),
                                Reply::Int(0) => Ok(Lookup::Busy),
                                Reply::Bulk(Some(stored)) => single_item(stored, Bytes::copy_from_slice),
                                other => Err(refused("the lookup script", &other)),
                            })
                            .collect(),
                        other => Err(refused("the lookup script", &other)),
                    };
                    eval(pool, url, &LOOKUP, LOOKUP_LUA, keys, keys + 1 + keys, encode, parse).await?
                }
                Connection::Cluster(connection) => {
                    let mut invocation = LOOKUP.prepare_invoke();
                    invocation.arg(lease_ms);
                    for (&i, token) in missed.iter().zip(&tokens) {
                        invocation.key(asked[i]).arg(&token.to_be_bytes()[..]);
                    }
                    parse_lookup(Self::invoke(connection, &invocation).await?, &tokens)?
                }
            };
            for (&i, lookup) in missed.iter().zip(leased) {
                found[i] = Some(lookup);
            }
        }
        found
            .into_iter()
            .map(|found| found.ok_or_else(|| CacheError::Protocol("a key got no lookup answer".into())))
            .collect()
    }

    async fn unlink(&self, keys: &[&str]) -> Result<(), CacheError> {
        match &self.connection {
            Connection::Single { pool, url } => {
                let encode = |request: &mut Request<'_>| {
                    request.array(keys.len() + 1);
                    request.bulk(b"UNLINK");
                    for key in keys {
                        request.bulk(key.as_bytes());
                    }
                };
                let unlinked = pool.call(encode, |reply| match reply {
                    Reply::Int(_) => Ok(()),
                    other => Err(refused("UNLINK", &other)),
                });
                unlinked.await.map(drop).map_err(|failure| single_error(url, failure))
            }
            Connection::Cluster(connection) => {
                let mut command = redis::cmd("UNLINK");
                command.arg(keys);
                let answer: Result<Value, RedisError> = command.query_async(&mut connection.clone()).await;
                answer.map(drop).map_err(cache_error)
            }
        }
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn kind(&self) -> &'static str {
        match self.connection {
            Connection::Single { .. } => "redis",
            Connection::Cluster(_) => "redis-cluster",
        }
    }

    fn deadline(&self) -> Option<Duration> {
        match self.connection {
            Connection::Single { .. } => Some(SINGLE_CALL_TIMEOUT),
            // Retries and redirections: no bound of its own below the guard's.
            Connection::Cluster(_) => None,
        }
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = ttl_ms(lease_ttl);
        if let Connection::Single { .. } = self.connection {
            // One server: one group, already in the caller's order (no grouping, no join).
            return self.lookup_group(keys, lease_ms).await;
        }
        let groups = self.groups(keys);
        let answers = try_join_all(groups.iter().map(|group| async move {
            let asked: Vec<&str> = group.iter().map(|&index| keys[index]).collect();
            self.lookup_group(&asked, lease_ms).await
        }))
        .await?;
        let mut results = vec![Lookup::Busy; keys.len()];
        for (group, found) in groups.iter().zip(answers) {
            for (&index, lookup) in group.iter().zip(found) {
                results[index] = lookup;
            }
        }
        Ok(results)
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        let item = encode(rand::random(), bytes);
        let connection = match &self.connection {
            Connection::Single { pool, url } => {
                let encode = |request: &mut Request<'_>| {
                    request.bulk(key.as_bytes());
                    request.bulk(&token.0.to_be_bytes());
                    request.bulk(&item);
                    request.bulk_u64(ttl_ms(ttl));
                };
                let parse = |reply: Reply<'_>| match reply {
                    Reply::Int(1) => Ok(true),
                    Reply::Int(0) => Ok(false),
                    other => Err(refused("the fill script", &other)),
                };
                return eval(pool, url, &FILL, FILL_LUA, 1, 4, encode, parse).await;
            }
            Connection::Cluster(connection) => connection,
        };
        let mut invocation = FILL.prepare_invoke();
        invocation
            .key(key)
            .arg(&token.0.to_be_bytes()[..])
            .arg(item)
            .arg(ttl_ms(ttl));
        match Self::invoke(connection, &invocation).await? {
            Value::Int(1) => Ok(true),
            Value::Int(0) => Ok(false),
            other => Err(CacheError::Protocol(format!("fill script answered {other:?}"))),
        }
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ttl_ms = ttl_ms(ttl);
        let tokens: Vec<u64> = keys.iter().map(|_| rand::random()).collect();
        let connection = match &self.connection {
            // One key (a lock-first update, a single-row write): a plain `SET … PX`, which
            // overwrites unconditionally like the script, without the script's cost.
            Connection::Single { pool, url } if keys.len() == 1 => {
                let value = encode(tokens[0], marker);
                let set = |request: &mut Request<'_>| {
                    request.array(5);
                    request.bulk(b"SET");
                    request.bulk(keys[0].as_bytes());
                    request.bulk(&value);
                    request.bulk(b"PX");
                    request.bulk_u64(ttl_ms);
                };
                let parse = |reply: Reply<'_>| match reply {
                    Reply::Status(_) => Ok(()),
                    other => Err(refused("SET", &other)),
                };
                pool.call(set, parse)
                    .await
                    .map_err(|failure| single_error(url, failure))?;
                return Ok(tokens.into_iter().map(Token).collect());
            }
            Connection::Single { pool, url } => {
                let encode = |request: &mut Request<'_>| {
                    for key in keys {
                        request.bulk(key.as_bytes());
                    }
                    request.bulk_u64(ttl_ms);
                    for &token in &tokens {
                        request.bulk(&encode(token, marker));
                    }
                };
                let parse = |reply: Reply<'_>| match reply {
                    Reply::Int(_) => Ok(()),
                    other => Err(refused("the lock script", &other)),
                };
                eval(
                    pool,
                    url,
                    &LOCK,
                    LOCK_LUA,
                    keys.len(),
                    2 * keys.len() + 1,
                    encode,
                    parse,
                )
                .await?;
                return Ok(tokens.into_iter().map(Token).collect());
            }
            Connection::Cluster(connection) => connection,
        };
        try_join_all(self.groups(keys).into_iter().map(|group| {
            let tokens = &tokens;
            async move {
                let mut invocation = LOCK.prepare_invoke();
                invocation.arg(ttl_ms);
                for index in group {
                    invocation.key(keys[index]).arg(encode(tokens[index], marker));
                }
                Self::invoke(connection, &invocation).await
            }
        }))
        .await?;
        Ok(tokens.into_iter().map(Token).collect())
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        match &self.connection {
            Connection::Single { pool, url } => {
                let encode = |request: &mut Request<'_>| {
                    request.bulk(key.as_bytes());
                    request.bulk(&token.0.to_be_bytes());
                };
                let parse = |reply: Reply<'_>| match reply {
                    Reply::Int(_) => Ok(()),
                    other => Err(refused("the release script", &other)),
                };
                eval(pool, url, &RELEASE, RELEASE_LUA, 1, 2, encode, parse).await
            }
            Connection::Cluster(connection) => {
                let mut invocation = RELEASE.prepare_invoke();
                invocation.key(key).arg(&token.0.to_be_bytes()[..]);
                Self::invoke(connection, &invocation).await.map(drop)
            }
        }
    }

    async fn flush(&self) -> Result<(), CacheError> {
        match &self.connection {
            Connection::Single { pool, url } => {
                let encode = |request: &mut Request<'_>| {
                    request.array(1);
                    request.bulk(b"FLUSHDB");
                };
                let flushed = pool.call(encode, |reply| match reply {
                    Reply::Status(_) => Ok(()),
                    other => Err(refused("FLUSHDB", &other)),
                });
                flushed.await.map(drop).map_err(|failure| single_error(url, failure))
            }
            // The crate sends FLUSHDB to every master.
            Connection::Cluster(connection) => {
                let answer: Result<Value, RedisError> =
                    redis::cmd("FLUSHDB").query_async(&mut connection.clone()).await;
                answer.map(drop).map_err(cache_error)
            }
        }
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let groups = self.groups(keys);
        try_join_all(groups.iter().map(|group| async move {
            let keys: Vec<&str> = group.iter().map(|&index| keys[index]).collect();
            self.unlink(&keys).await
        }))
        .await?;
        Ok(())
    }
}

/// The stored form of an item: its token, big-endian, then the payload.
fn encode(token: u64, payload: &[u8]) -> Vec<u8> {
    let mut item = Vec::with_capacity(TOKEN_LEN + payload.len());
    item.extend_from_slice(&token.to_be_bytes());
    item.extend_from_slice(payload);
    item
}

/// A TTL in whole milliseconds as `PX` accepts it: at least 1, at most [`MAX_TTL_MS`].
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).clamp(1, MAX_TTL_MS)
}

/// Reads the lookup script's answer for one group; `tokens` are the lease tokens it offered.
fn parse_lookup(answer: Value, tokens: &[u64]) -> Result<Vec<Lookup>, CacheError> {
    let Value::Array(items) = answer else {
        return Err(CacheError::Protocol(format!("lookup script answered {answer:?}")));
    };
    if items.len() != tokens.len() {
        return Err(CacheError::Protocol(format!(
            "lookup script answered {} items for {} keys",
            items.len(),
            tokens.len()
        )));
    }
    items
        .into_iter()
        .zip(tokens)
        .map(|(item, &token)| parse_item(item, token))
        .collect()
}

/// One key's answer from the lookup script: `1` the lease (with `token`), `0` busy, or the
/// stored item.
fn parse_item(item: Value, token: u64) -> Result<Lookup, CacheError> {
    match item {
        Value::Int(1) => Ok(Lookup::Lease(Token(token))),
        Value::Int(0) => Ok(Lookup::Busy),
        Value::BulkString(stored) => {
            let token = token_of(&stored)?;
            // `advance` moves the start past the token without a shared copy (`slice` of a
            // `Bytes` made from a `Vec` allocates one).
            let mut bytes = Bytes::from(stored);
            bytes.advance(TOKEN_LEN);
            Ok(Lookup::Value { bytes, token })
        }
        other => Err(CacheError::Protocol(format!(
            "lookup script answered {other:?} for a key"
        ))),
    }
}

/// What a single server's answer holds for a key that stores `stored`: only a token is a
/// lease placeholder (someone else's), anything longer a value, its payload copied once.
fn single_item(stored: &[u8], copy: impl FnOnce(&[u8]) -> Bytes) -> Result<Lookup, Failure> {
    if stored.len() == TOKEN_LEN {
        return Ok(Lookup::Busy);
    }
    let token = token_of(stored).map_err(|error| Failure::Protocol(error.to_string()))?;
    Ok(Lookup::Value {
        bytes: copy(&stored[TOKEN_LEN..]),
        token,
    })
}

/// The token an item longer than a token starts with.
fn token_of(stored: &[u8]) -> Result<Token, CacheError> {
    match stored.first_chunk::<TOKEN_LEN>() {
        Some(prefix) if stored.len() > TOKEN_LEN => Ok(Token(u64::from_be_bytes(*prefix))),
        _ => Err(CacheError::Protocol(format!(
            "stored item of {} bytes is shorter than its token",
            stored.len()
        ))),
    }
}

/// Reads `keys` from one server with `GET` / `MGET`: per key, what it holds, or `None`.
async fn read_single(pool: &resp::Pool, url: &str, keys: &[&str]) -> Result<Vec<Option<Lookup>>, CacheError> {
    let item = |reply: Reply<'_>, copy: &mut dyn FnMut(&[u8]) -> Bytes| match reply {
        Reply::Bulk(None) => Ok(None),
        Reply::Bulk(Some(stored)) => single_item(stored, copy).map(Some),
        other => Err(refused("GET", &other)),
    };
    let read = if let [key] = keys {
        let one = |reply: Reply<'_>| item(reply, &mut Bytes::copy_from_slice);
        pool.call(|request| request.command(&[b"GET", key.as_bytes()]), one)
            .await
    } else {
        let encode = |request: &mut Request<'_>| {
            request.array(keys.len() + 1);
            request.bulk(b"MGET");
            for key in keys {
                request.bulk(key.as_bytes());
            }
        };
        // The values are copied into one buffer, as large as the whole answer, and shared
        // by their `Bytes` (one allocation per batch instead of one per value).
        let items = |reply: Reply<'_>| match reply {
            Reply::Array(Some(items)) if items.len() == keys.len() => {
                let mut values = BytesMut::with_capacity(items.encoded_len());
                let mut copy = |value: &[u8]| {
                    values.extend_from_slice(value);
                    values.split().freeze()
                };
                items.map(|found| item(found?, &mut copy)).collect()
            }
            other => Err(refused("MGET", &other)),
        };
        pool.call(encode, items)
            .await
            .map(|mut answers| answers.pop().unwrap_or_default())
    };
    read.map_err(|failure| single_error(url, failure))
}

/// Runs a script on one server: `EVALSHA` with `keys` keys among its `args` arguments (keys
/// first) as `encode` writes them, the answer read by `parse`; on `NOSCRIPT` (a restarted
/// server), once more as `EVAL` of `source`, which also loads it.
#[allow(clippy::too_many_arguments)]
async fn eval<T>(
    pool: &resp::Pool,
    url: &str,
    script: &Script,
    source: &str,
    keys: usize,
    args: usize,
    encode: impl Fn(&mut Request<'_>),
    mut parse: impl FnMut(Reply<'_>) -> Result<T, Failure>,
) -> Result<T, CacheError> {
    let sha = script.get_hash().as_bytes();
    for (command, script) in [(&b"EVALSHA"[..], sha), (b"EVAL", source.as_bytes())] {
        let encode = |request: &mut Request<'_>| {
            request.array(args + 3);
            request.bulk(command);
            request.bulk(script);
            request.bulk_u64(keys as u64);
            encode(request);
        };
        let answered = pool.call(encode, |reply| match reply {
            Reply::Error(message) if message.starts_with(b"NOSCRIPT") => Ok(None),
            reply => parse(reply).map(Some),
        });
        let answers = answered.await.map_err(|failure| single_error(url, failure))?;
        if let Some(Some(answer)) = answers.into_iter().next() {
            return Ok(answer);
        }
    }
    Err(CacheError::Protocol(format!("redis at {url}: NOSCRIPT after EVAL")))
}

/// The failure of an answer no command here allows: an error message, or the wrong kind.
fn refused(command: &str, reply: &Reply<'_>) -> Failure {
    match reply {
        Reply::Error(message) => Failure::Server(String::from_utf8_lossy(message).into_owned()),
        other => Failure::Protocol(format!("{command} answered {other:?}")),
    }
}

/// Sorts a failure of a single server's call into "server unreachable" (no answer in time,
/// or a server that is loading, read-only or lost its master) and "unexpected answer".
fn single_error(url: &str, failure: Failure) -> CacheError {
    let unavailable = match &failure {
        Failure::Io(_) => true,
        Failure::Server(message) => ["LOADING", "MASTERDOWN", "READONLY"]
            .iter()
            .any(|kind| message.starts_with(kind)),
        Failure::Protocol(_) => false,
    };
    if unavailable {
        CacheError::Unavailable(format!("redis at {url}: {failure}"))
    } else {
        CacheError::Protocol(format!("redis at {url}: {failure}"))
    }
}

/// Sorts a client error into "server unreachable" and "unexpected answer".
fn cache_error(error: RedisError) -> CacheError {
    let unavailable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_cluster_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        CacheError::Unavailable(format!("redis: {error}"))
    } else {
        CacheError::Protocol(format!("redis: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use autocache_testkit::redis::{Redis, command};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const LEASE: Duration = Duration::from_secs(5);
    const TTL: Duration = Duration::from_secs(60);

    /// A proxy to `port` that hands every answer on one byte per write: each answer reaches
    /// the client split across many reads.
    async fn dribbling_proxy(port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                client.set_nodelay(true).unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
                tokio::spawn(async move {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(read @ 1..) = from_server.read(&mut buffer).await {
                        for byte in &buffer[..read] {
                            if to_client.write_all(&[*byte]).await.is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                });
            }
        });
        proxy
    }

    /// 32 concurrent lookups of distinct keys (most of them share the multiplexed
    /// connection), then 32 concurrent fills of the leases they got, then the values read back.
    async fn concurrently(backend: &RedisBackend, prefix: &str) {
        let keys: Vec<String> = (0..32).map(|i| format!("{prefix}:{i}")).collect();
        let leases = futures::future::join_all(
            keys.iter()
                .map(|key| async move { backend.lookup(&[key], LEASE).await }),
        )
        .await;
        let fills = keys.iter().zip(leases).map(|(key, found)| async move {
            let [Lookup::Lease(token)] = found.unwrap()[..] else {
                panic!("a new key grants the lease");
            };
            backend.fill(key, key.as_bytes(), token, TTL).await.unwrap()
        });
        assert!(futures::future::join_all(fills).await.into_iter().all(|filled| filled));
        let found = futures::future::join_all(
            keys.iter()
                .map(|key| async move { backend.lookup(&[key], LEASE).await }),
        )
        .await;
        for (key, found) in keys.iter().zip(found) {
            assert!(
                matches!(&found.unwrap()[..], [Lookup::Value { bytes, .. }] if bytes[..] == *key.as_bytes()),
                "{key}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn speaks_resp_to_a_real_server() {
        let mut server = Redis::start();
        let backend = RedisBackend::connect(&server.url()).await.unwrap();
        let [Lookup::Lease(token)] = backend.lookup(&["k"], LEASE).await.unwrap()[..] else {
            panic!("a miss grants the lease");
        };
        assert_eq!(backend.lookup(&["k"], LEASE).await.unwrap(), [Lookup::Busy]);
        assert!(backend.fill("k", b"v1", token, TTL).await.unwrap());
        assert!(!backend.fill("k", b"v2", token, TTL).await.unwrap(), "a used token");
        let [Lookup::Value { ref bytes, token }] = backend.lookup(&["k"], LEASE).await.unwrap()[..] else {
            panic!("a hit");
        };
        assert_eq!(&bytes[..], b"v1");
        let locked = backend.lock(&["k", "other"], b"L", TTL).await.unwrap();
        assert!(!backend.fill("k", b"v3", token, TTL).await.unwrap(), "locked since");
        backend.release("k", locked[0]).await.unwrap();
        // A value larger than a socket buffer, read back through the script and a plain GET.
        let huge = vec![b'x'; 2 << 20];
        let many = backend.lookup(&["other", "k", "k"], LEASE).await.unwrap();
        let [Lookup::Value { .. }, Lookup::Lease(token), Lookup::Busy] = many[..] else {
            panic!("{many:?}");
        };
        assert!(backend.fill("k", &huge, token, TTL).await.unwrap());
        let [Lookup::Value { ref bytes, .. }] = backend.lookup(&["k"], LEASE).await.unwrap()[..] else {
            panic!("the large value");
        };
        assert_eq!(bytes.len(), huge.len());
        concurrently(&backend, "before").await;

        // A restart: the pooled connections are closed and the scripts gone; the next calls
        // dial again and load the scripts with EVAL.
        server.restart();
        backend.evict(&["other"]).await.unwrap();
        let [Lookup::Lease(token)] = backend.lookup(&["k"], LEASE).await.unwrap()[..] else {
            panic!("the restarted server is empty");
        };
        assert!(backend.fill("k", b"after", token, TTL).await.unwrap());
        concurrently(&backend, "after").await;

        // Every answer split across reads.
        let proxy = dribbling_proxy(server.port()).await;
        let split = RedisBackend::connect(&format!("redis://127.0.0.1:{proxy}"))
            .await
            .unwrap();
        let found = split.lookup(&["k", "absent", "absent"], LEASE).await.unwrap();
        let [Lookup::Value { ref bytes, .. }, Lookup::Lease(token), Lookup::Busy] = found[..] else {
            panic!("{found:?}");
        };
        assert_eq!(&bytes[..], b"after");
        assert!(split.fill("absent", b"filled", token, TTL).await.unwrap());
        let found = split.lookup(&["absent"], LEASE).await.unwrap();
        assert!(matches!(&found[..], [Lookup::Value { bytes, .. }] if &bytes[..] == b"filled"));
        concurrently(&split, "split").await;

        // AUTH and SELECT from the URL.
        command(server.port(), &["CONFIG", "SET", "requirepass", "secret"]).unwrap();
        let port = server.port();
        let wrong = RedisBackend::connect(&format!("redis://:wrong@127.0.0.1:{port}")).await;
        assert!(wrong.is_err(), "a wrong password is refused");
        let db2 = RedisBackend::connect(&format!("redis://:secret@127.0.0.1:{port}/2"))
            .await
            .unwrap();
        let db0 = RedisBackend::connect(&format!("redis://:secret@127.0.0.1:{port}/0"))
            .await
            .unwrap();
        let [Lookup::Lease(token)] = db2.lookup(&["k"], LEASE).await.unwrap()[..] else {
            panic!("database 2 does not hold db 0's k");
        };
        assert!(db2.fill("k", b"two", token, TTL).await.unwrap());
        let found = db0.lookup(&["k"], LEASE).await.unwrap();
        assert!(matches!(&found[..], [Lookup::Value { bytes, .. }] if &bytes[..] == b"after"));
    }
}
