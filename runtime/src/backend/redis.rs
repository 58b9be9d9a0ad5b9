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
//! Each step that must be atomic is a Lua script, run with `EVALSHA` (the `redis` crate falls
//! back to `SCRIPT LOAD` + `EVALSHA` when a server does not know it yet, e.g. after a restart):
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
//! Every failure is returned as [`CacheError::Unavailable`] (the server could not be reached
//! or answered too late, or the cluster is re-sharding) or [`CacheError::Protocol`] (an answer
//! this protocol does not allow); nothing here panics.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes};
use futures::future::try_join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{ErrorKind, RedisError, Script, ScriptInvocation, ServerErrorKind, Value};

use super::{CacheBackend, CacheError, Lookup, Token};

/// Bytes of the token prefix of every stored item.
const TOKEN_LEN: usize = 8;
/// Longest TTL sent to the server (100 years); larger ones would overflow its clock.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// Time to establish one TCP connection to a cluster node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a cluster node has to answer one request (a batch is one request per slot).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time to (re)connect to a single server, in one attempt: a call made while the connection
/// is re-established waits for that attempt.
const SINGLE_CONNECT_TIMEOUT: Duration = Duration::from_millis(80);
/// Time a single server has to answer one request. With [`SINGLE_CONNECT_TIMEOUT`] it bounds
/// every call below the context's default cache deadline (250 ms), so the guard arms no
/// second timer per call (see [`CacheBackend::deadline`]).
const SINGLE_RESPONSE_TIMEOUT: Duration = Duration::from_millis(150);

static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
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
",
    )
});

static FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GETRANGE', KEYS[1], 0, 7) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
",
    )
});

static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
",
    )
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GETRANGE', KEYS[1], 0, 7) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// The connection: both kinds reconnect by themselves and are cheap to clone per call.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A cache on one Redis server or on a Redis Cluster (see the module docs for the encoding).
pub struct RedisBackend {
    connection: Connection,
}

impl RedisBackend {
    /// Connects to one server, given as a `redis://[user:password@]host:port[/db]` URL.
    ///
    /// The connection is re-established in the background after the server goes away;
    /// calls made meanwhile fail fast with [`CacheError::Unavailable`].
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|error| CacheError::InvalidUrl {
            url: url.to_owned(),
            reason: error.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(SINGLE_CONNECT_TIMEOUT))
            .set_response_timeout(Some(SINGLE_RESPONSE_TIMEOUT))
            .set_number_of_retries(0)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|error| CacheError::Unavailable(format!("redis at {url}: {error}")))?;
        let backend = Self {
            connection: Connection::Single(manager),
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
        for script in [&*LOOKUP, &*FILL, &*LOCK, &*RELEASE] {
            let loaded = match self.connection.clone() {
                Connection::Single(mut connection) => script.load_async(&mut connection).await,
                Connection::Cluster(mut connection) => script.load_async(&mut connection).await,
            };
            loaded.map_err(cache_error)?;
        }
        Ok(())
    }

    /// Splits `keys` into the groups one script call may cover, as indices into `keys`:
    /// everything on a single server, one group per hash slot on a cluster.
    fn groups(&self, keys: &[&str]) -> Vec<Vec<usize>> {
        match self.connection {
            Connection::Single(_) => vec![(0..keys.len()).collect()],
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

    async fn invoke(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, CacheError> {
        let answer = match self.connection.clone() {
            Connection::Single(mut connection) => invocation.invoke_async(&mut connection).await,
            Connection::Cluster(mut connection) => invocation.invoke_async(&mut connection).await,
        };
        answer.map_err(cache_error)
    }

    /// Reads `keys` (all of one group) with `GET` / `MGET`: per key, what it holds, or
    /// `None` if nothing is stored.
    async fn read_items(&self, keys: &[&str]) -> Result<Vec<Option<Lookup>>, CacheError> {
        let mut command = redis::cmd(if keys.len() == 1 { "GET" } else { "MGET" });
        command.arg(keys);
        let answer: Result<Value, RedisError> = match self.connection.clone() {
            Connection::Single(mut connection) => command.query_async(&mut connection).await,
            Connection::Cluster(mut connection) => command.query_async(&mut connection).await,
        };
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
            let mut invocation = LOOKUP.prepare_invoke();
            invocation.arg(lease_ms);
            for (&i, token) in missed.iter().zip(&tokens) {
                invocation.key(asked[i]).arg(&token.to_be_bytes()[..]);
            }
            let answer = self.invoke(&invocation).await?;
            for (&i, lookup) in missed.iter().zip(parse_lookup(answer, &tokens)?) {
                found[i] = Some(lookup);
            }
        }
        found
            .into_iter()
            .map(|found| found.ok_or_else(|| CacheError::Protocol("a key got no lookup answer".into())))
            .collect()
    }

    async fn unlink(&self, keys: &[&str]) -> Result<(), CacheError> {
        let mut command = redis::cmd("UNLINK");
        command.arg(keys);
        let answer: Result<Value, RedisError> = match self.connection.clone() {
            Connection::Single(mut connection) => command.query_async(&mut connection).await,
            Connection::Cluster(mut connection) => command.query_async(&mut connection).await,
        };
        answer.map(drop).map_err(cache_error)
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn kind(&self) -> &'static str {
        match self.connection {
            Connection::Single(_) => "redis",
            Connection::Cluster(_) => "redis-cluster",
        }
    }

    fn deadline(&self) -> Option<Duration> {
        match self.connection {
            Connection::Single(_) => Some(SINGLE_CONNECT_TIMEOUT + SINGLE_RESPONSE_TIMEOUT),
            // Retries and redirections: no bound of its own below the guard's.
            Connection::Cluster(_) => None,
        }
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = ttl_ms(lease_ttl);
        if let Connection::Single(_) = self.connection {
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
        let mut invocation = FILL.prepare_invoke();
        invocation
            .key(key)
            .arg(&token.0.to_be_bytes()[..])
            .arg(item)
            .arg(ttl_ms(ttl));
        match self.invoke(&invocation).await? {
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
        try_join_all(self.groups(keys).into_iter().map(|group| {
            let tokens = &tokens;
            async move {
                let mut invocation = LOCK.prepare_invoke();
                invocation.arg(ttl_ms);
                for index in group {
                    invocation.key(keys[index]).arg(encode(tokens[index], marker));
                }
                self.invoke(&invocation).await
            }
        }))
        .await?;
        Ok(tokens.into_iter().map(Token).collect())
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        let mut invocation = RELEASE.prepare_invoke();
        invocation.key(key).arg(&token.0.to_be_bytes()[..]);
        self.invoke(&invocation).await.map(drop)
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

/// One key's answer: `1` the lease (with `token`), `0` busy, or the stored item.
fn parse_item(item: Value, token: u64) -> Result<Lookup, CacheError> {
    match item {
        Value::Int(1) => Ok(Lookup::Lease(Token(token))),
        Value::Int(0) => Ok(Lookup::Busy),
        Value::BulkString(stored) if stored.len() > TOKEN_LEN => {
            let mut prefix = [0u8; TOKEN_LEN];
            prefix.copy_from_slice(&stored[..TOKEN_LEN]);
            // `advance` moves the start past the token without a shared copy (`slice` of a
            // `Bytes` made from a `Vec` allocates one).
            let mut bytes = Bytes::from(stored);
            bytes.advance(TOKEN_LEN);
            Ok(Lookup::Value {
                bytes,
                token: Token(u64::from_be_bytes(prefix)),
            })
        }
        Value::BulkString(stored) => Err(CacheError::Protocol(format!(
            "stored item of {} bytes is shorter than its token",
            stored.len()
        ))),
        other => Err(CacheError::Protocol(format!(
            "lookup script answered {other:?} for a key"
        ))),
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
