//! The redis backend on real servers: one `redis-server`, and a 3-master Redis Cluster.

use std::time::{Duration, Instant};

use autocache::backend::redis::RedisBackend;
use autocache::{CacheBackend, CacheError, Lookup, Token};
use autocache_testkit::redis::{Redis, RedisCluster, command};

const LEASE: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(60);

async fn single(redis: &Redis) -> RedisBackend {
    RedisBackend::connect(&redis.url()).await.expect("connect to redis")
}

async fn cluster(cluster: &RedisCluster) -> RedisBackend {
    RedisBackend::connect_cluster(&cluster.servers())
        .await
        .expect("connect to redis cluster")
}

fn lease(found: &Lookup) -> Token {
    match found {
        Lookup::Lease(token) => *token,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn value(found: &Lookup) -> (&[u8], Token) {
    match found {
        Lookup::Value { bytes, token } => (bytes, *token),
        other => panic!("expected a value, got {other:?}"),
    }
}

/// The semantics of `backend/memory.rs`, checked directly on this backend.
async fn semantics(backend: &dyn CacheBackend, prefix: &str) {
    let key = |name: &str| format!("{prefix}:{name}");
    let (a, b, c) = (key("a"), key("b"), key("c"));

    // Empty batches send nothing and answer nothing.
    assert!(backend.lookup(&[], LEASE).await.unwrap().is_empty());
    assert!(backend.lock(&[], b"L", TTL).await.unwrap().is_empty());
    backend.evict(&[]).await.unwrap();

    // A miss grants the lease to exactly one caller; the others see busy.
    let first = backend.lookup(&[&a, &b], LEASE).await.unwrap();
    let (lease_a, lease_b) = (lease(&first[0]), lease(&first[1]));
    assert_ne!(lease_a, lease_b);
    assert_eq!(
        backend.lookup(&[&a, &b], LEASE).await.unwrap(),
        vec![Lookup::Busy, Lookup::Busy]
    );

    // A fill needs the current token; afterwards the item has a new one.
    assert!(!backend.fill(&a, b"wrong", Token(lease_a.0 ^ 1), TTL).await.unwrap());
    assert!(backend.fill(&a, b"alpha", lease_a, TTL).await.unwrap());
    assert!(
        !backend.fill(&a, b"again", lease_a, TTL).await.unwrap(),
        "a token is good for one fill"
    );
    let found = backend.lookup(&[&a, &b, &c], LEASE).await.unwrap();
    let (bytes, token_a) = value(&found[0]);
    assert_eq!(bytes, b"alpha");
    assert_ne!(token_a, lease_a);
    assert_eq!(found[1], Lookup::Busy);
    lease(&found[2]);

    // A fill also replaces a stored value when given its token.
    assert!(backend.fill(&a, b"alpha2", token_a, TTL).await.unwrap());
    let found = backend.lookup(&[&a], LEASE).await.unwrap();
    let (bytes, token_a2) = value(&found[0]);
    assert_eq!(bytes, b"alpha2");

    // A lock replaces unconditionally: every older token stops working.
    let locks = backend.lock(&[&a, &b], b"LOCKED", TTL).await.unwrap();
    assert_eq!(locks.len(), 2);
    assert!(!backend.fill(&a, b"stale", token_a2, TTL).await.unwrap());
    assert!(!backend.fill(&b, b"stale", lease_b, TTL).await.unwrap());
    // Release with a wrong token keeps the lock; with the right one it deletes it.
    backend.release(&a, Token(locks[0].0 ^ 1)).await.unwrap();
    let found = backend.lookup(&[&a], LEASE).await.unwrap();
    assert_eq!(value(&found[0]).0, b"LOCKED");
    backend.release(&a, locks[0]).await.unwrap();
    lease(&backend.lookup(&[&a], LEASE).await.unwrap()[0]);
    // A lock token may itself be used to fill (the writer refreshing the cache).
    assert!(backend.fill(&b, b"beta", locks[1], TTL).await.unwrap());
    assert_eq!(value(&backend.lookup(&[&b], LEASE).await.unwrap()[0]).0, b"beta");

    // Eviction deletes whatever is there, placeholders included.
    backend.evict(&[&a, &b, &c]).await.unwrap();
    let found = backend.lookup(&[&a, &b, &c], LEASE).await.unwrap();
    assert!(found.iter().all(|found| matches!(found, Lookup::Lease(_))), "{found:?}");

    // A lease placeholder expires after the lease TTL.
    let short = key("short");
    lease(&backend.lookup(&[&short], Duration::from_millis(100)).await.unwrap()[0]);
    assert_eq!(backend.lookup(&[&short], LEASE).await.unwrap()[0], Lookup::Busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    lease(&backend.lookup(&[&short], LEASE).await.unwrap()[0]);

    // A stored value expires after its TTL.
    let brief = key("brief");
    let token = lease(&backend.lookup(&[&brief], LEASE).await.unwrap()[0]);
    assert!(
        backend
            .fill(&brief, b"soon gone", token, Duration::from_millis(100))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    lease(&backend.lookup(&[&brief], LEASE).await.unwrap()[0]);

    // The same key twice in one batch: the first asker wins, the second sees busy.
    let twice = key("twice");
    let found = backend.lookup(&[&twice, &twice], LEASE).await.unwrap();
    lease(&found[0]);
    assert_eq!(found[1], Lookup::Busy);

    // Binary payloads survive as they are, including token-like prefixes.
    let binary = key("binary");
    let token = lease(&backend.lookup(&[&binary], LEASE).await.unwrap()[0]);
    let payload: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    assert!(backend.fill(&binary, &payload, token, TTL).await.unwrap());
    assert_eq!(
        value(&backend.lookup(&[&binary], LEASE).await.unwrap()[0]).0,
        &payload[..]
    );
}

/// Many concurrent callers missing the same key: exactly one gets the lease.
async fn one_lease_under_contention(backend: &dyn CacheBackend, key: &str) {
    let keys = [key];
    let asks = (0..32).map(|_| backend.lookup(&keys, LEASE));
    let found = futures::future::join_all(asks).await;
    let leases = found
        .iter()
        .filter(|found| matches!(found.as_ref().unwrap()[0], Lookup::Lease(_)))
        .count();
    assert_eq!(leases, 1, "{found:?}");
}

/// A 2 MiB value is stored and read back whole (and nothing panics on the way).
async fn big_fill(backend: &dyn CacheBackend, key: &str) {
    let payload: Vec<u8> = (0..2 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let token = lease(&backend.lookup(&[key], LEASE).await.unwrap()[0]);
    assert!(backend.fill(key, &payload, token, TTL).await.unwrap());
    let found = backend.lookup(&[key], LEASE).await.unwrap();
    assert_eq!(value(&found[0]).0.len(), payload.len());
    assert!(value(&found[0]).0 == &payload[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_semantics() {
    let redis = Redis::start();
    let backend = single(&redis).await;
    assert_eq!(backend.kind(), "redis");
    super::contract::check_all(&backend).await;
    semantics(&backend, "single").await;
    one_lease_under_contention(&backend, "single:contended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_semantics() {
    let cluster_servers = RedisCluster::start();
    let backend = cluster(&cluster_servers).await;
    assert_eq!(backend.kind(), "redis-cluster");
    super::contract::check_all(&backend).await;
    semantics(&backend, "cluster").await;
    one_lease_under_contention(&backend, "cluster:contended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_through_backend_url() {
    let redis = Redis::start();
    let backend = autocache::backend::connect(&redis.url()).await.unwrap();
    assert_eq!(backend.kind(), "redis");
    lease(&backend.lookup(&["url:key"], LEASE).await.unwrap()[0]);

    let cluster_servers = RedisCluster::start();
    let backend = autocache::backend::connect(&cluster_servers.url()).await.unwrap();
    assert_eq!(backend.kind(), "redis-cluster");
    lease(&backend.lookup(&["url:key"], LEASE).await.unwrap()[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_fails_to_connect() {
    let mut redis = Redis::start();
    let url = redis.url();
    redis.kill();
    let started = Instant::now();
    let error = match RedisBackend::connect(&url).await {
        Ok(_) => panic!("connected to a dead server"),
        Err(error) => error,
    };
    assert!(matches!(error, CacheError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let error = match RedisBackend::connect("redis://127.0.0.1:notaport").await {
        Ok(_) => panic!("connected with a bad URL"),
        Err(error) => error,
    };
    assert!(matches!(error, CacheError::InvalidUrl { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_restart() {
    let mut redis = Redis::start();
    let backend = single(&redis).await;
    let token = lease(&backend.lookup(&["restart:a"], LEASE).await.unwrap()[0]);
    assert!(backend.fill("restart:a", b"before", token, TTL).await.unwrap());

    redis.kill();
    // Calls fail fast while the server is gone; none hangs.
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), backend.lookup(&["restart:a"], LEASE)).await;
        let outcome = outcome.expect("a call to a dead server hung");
        assert!(matches!(outcome, Err(CacheError::Unavailable(_))), "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        let filled = tokio::time::timeout(Duration::from_secs(5), backend.fill("restart:a", b"x", token, TTL)).await;
        assert!(filled.expect("a fill to a dead server hung").is_err());
    }

    // Stay down a while: every call meanwhile dials in vain.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The backend dials again by itself once the server is back (empty: no persistence),
    // and the scripts are loaded again on first use.
    redis.restart();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        match backend.lookup(&["restart:a"], LEASE).await {
            Ok(found) => break found,
            Err(error) if Instant::now() < deadline => {
                eprintln!("after restart: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no reconnect after restart: {error}"),
        }
    };
    eprintln!("redis answered {:?} after the restart", restarted.elapsed());
    let token = lease(&found[0]);
    assert!(backend.fill("restart:a", b"after", token, TTL).await.unwrap());
    assert_eq!(
        value(&backend.lookup(&["restart:a"], LEASE).await.unwrap()[0]).0,
        b"after"
    );
    super::contract::check_all(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_batch_spans_all_masters_in_order() {
    let cluster_servers = RedisCluster::start();
    let backend = cluster(&cluster_servers).await;
    let keys: Vec<String> = (0..200).map(|i| format!("spread:{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();

    let found = backend.lookup(&keys, LEASE).await.unwrap();
    assert_eq!(found.len(), keys.len());
    // Every master got some of the placeholders.
    for &port in cluster_servers.ports() {
        let size: u64 = command(port, &["DBSIZE"]).unwrap().parse().unwrap();
        assert!(size > 0, "master {port} holds no key");
    }
    for (key, found) in keys.iter().zip(&found) {
        let token = lease(found);
        assert!(
            backend
                .fill(key, format!("value of {key}").as_bytes(), token, TTL)
                .await
                .unwrap()
        );
    }

    // Answers come back in the order asked, whatever node holds each key.
    let mut shuffled = keys.clone();
    shuffled.reverse();
    shuffled.rotate_left(37);
    let found = backend.lookup(&shuffled, LEASE).await.unwrap();
    for (key, found) in shuffled.iter().zip(&found) {
        assert_eq!(value(found).0, format!("value of {key}").as_bytes());
    }

    // Locks and evictions span every master too.
    let tokens = backend.lock(&shuffled, b"L", TTL).await.unwrap();
    assert_eq!(tokens.len(), shuffled.len());
    for (key, token) in shuffled.iter().zip(&tokens) {
        assert!(backend.fill(key, b"relocked", *token, TTL).await.unwrap());
    }
    backend.evict(&keys).await.unwrap();
    for &port in cluster_servers.ports() {
        assert_eq!(
            command(port, &["DBSIZE"]).unwrap(),
            "0",
            "master {port} still holds keys"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_fills_do_not_panic() {
    let redis = Redis::start();
    big_fill(&single(&redis).await, "big:single").await;
    let cluster_servers = RedisCluster::start();
    big_fill(&cluster(&cluster_servers).await, "big:cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_items_are_errors_not_panics() {
    let redis = Redis::start();
    let backend = single(&redis).await;
    command(redis.port(), &["SET", "foreign:short", "abc"]).unwrap();
    command(redis.port(), &["LPUSH", "foreign:list", "x"]).unwrap();
    let short = backend.lookup(&["foreign:short"], LEASE).await;
    assert!(matches!(short, Err(CacheError::Protocol(_))), "{short:?}");
    let list = backend.lookup(&["foreign:list"], LEASE).await;
    assert!(matches!(list, Err(CacheError::Protocol(_))), "{list:?}");
    assert!(!backend.fill("foreign:short", b"x", Token(0), TTL).await.unwrap());
    assert!(backend.fill("foreign:list", b"x", Token(0), TTL).await.is_err());
    backend.evict(&["foreign:short", "foreign:list"]).await.unwrap();
    lease(&backend.lookup(&["foreign:short"], LEASE).await.unwrap()[0]);
}
