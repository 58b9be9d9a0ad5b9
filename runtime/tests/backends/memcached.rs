//! The memcached backend on real memcached servers started by `autocache-testkit`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use autocache::backend::memcached::{DOWN_FOR, MemcachedBackend};
use autocache::codec::LOCK_MARKER;
use autocache::{CacheBackend, CacheError, Lookup};
use autocache_testkit::memcached::{self as testkit, Memcached};

use crate::contract::{LEASE, TTL, check_all, fill, lease, lookup1, prefix, put, value, wrong};

async fn backend(servers: &[&Memcached]) -> MemcachedBackend {
    let addrs: Vec<String> = servers.iter().map(|server| server.addr()).collect();
    MemcachedBackend::connect(&addrs).await.expect("connect")
}

/// The first key `<prefix><n>` that the backend routes to server `index`.
fn key_on(backend: &MemcachedBackend, prefix: &str, index: usize) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|key| backend.server_for(key) == index)
        .expect("some key routes there")
}

/// A plain connection to one server, bypassing the backend.
fn raw(addr: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("raw connect");
    stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    BufReader::new(stream)
}

/// What the server holds under `key` (`mg <key> v`), read without the backend.
fn raw_get(addr: &str, key: &str) -> Option<Vec<u8>> {
    let mut connection = raw(addr);
    connection
        .get_mut()
        .write_all(format!("mg {key} v\r\n").as_bytes())
        .expect("write");
    let mut line = String::new();
    connection.read_line(&mut line).expect("read");
    if line.starts_with("EN") {
        return None;
    }
    assert!(line.starts_with("VA "), "unexpected answer {line:?}");
    let len: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|len| len.parse().ok())
        .expect("VA <len>");
    let mut data = vec![0; len + 2];
    connection.read_exact(&mut data).expect("read value");
    data.truncate(len);
    Some(data)
}

/// Stores `bytes` under `key` as another client would (`ms`, no CAS).
fn raw_set(addr: &str, key: &str, bytes: &[u8]) {
    let mut connection = raw(addr);
    let mut request = format!("ms {key} {} T60\r\n", bytes.len()).into_bytes();
    request.extend_from_slice(bytes);
    request.extend_from_slice(b"\r\n");
    connection.get_mut().write_all(&request).expect("write");
    let mut line = String::new();
    connection.read_line(&mut line).expect("read");
    assert_eq!(line, "HD\r\n");
}

/// A numeric `stats` field of one server.
fn raw_stat(addr: &str, name: &str) -> u64 {
    let mut connection = raw(addr);
    connection.get_mut().write_all(b"stats\r\n").expect("write");
    let wanted = format!("STAT {name} ");
    let mut found = None;
    for line in connection.lines() {
        let line = line.expect("read");
        if line == "END" {
            break;
        }
        if let Some(value) = line.strip_prefix(&wanted) {
            found = value.trim().parse().ok();
        }
    }
    found.unwrap_or_else(|| panic!("no stat {name}"))
}

#[tokio::test]
async fn one_server_meets_the_contract() {
    let server = Memcached::start();
    check_all(&backend(&[&server]).await).await;
}

#[tokio::test]
async fn two_servers_meet_the_contract() {
    let (a, b) = (Memcached::start(), Memcached::start());
    let shared = autocache::backend::connect(&testkit::url(&[&a, &b]))
        .await
        .expect("connect by URL");
    assert_eq!(shared.kind(), "memcached");
    check_all(&*shared).await;
    // Both servers really hold part of the keys.
    for server in [&a, &b] {
        assert!(
            raw_stat(&server.addr(), "curr_items") > 10,
            "{} holds few items",
            server.addr()
        );
    }
}

#[tokio::test]
async fn rendezvous_moves_only_the_removed_servers_keys() {
    let (a, b, c) = (Memcached::start(), Memcached::start(), Memcached::start());
    let three = [a.addr(), b.addr(), c.addr()];
    let two = [a.addr(), c.addr()];
    let reordered = [c.addr(), a.addr(), b.addr()];
    let with_three = MemcachedBackend::connect(&three).await.expect("connect");
    let with_two = MemcachedBackend::connect(&two).await.expect("connect");
    let other_order = MemcachedBackend::connect(&reordered).await.expect("connect");
    let mut counts = [0usize; 3];
    let mut moved = 0usize;
    const KEYS: usize = 10_000;
    for i in 0..KEYS {
        let key = format!("app:Person:3f2a9c:pk:{i}");
        let index = with_three.server_for(&key);
        counts[index] += 1;
        let before = &three[index];
        assert_eq!(
            before,
            &reordered[other_order.server_for(&key)],
            "server order must not matter"
        );
        let after = &two[with_two.server_for(&key)];
        if before != after {
            moved += 1;
            assert_eq!(before, &three[1], "only the removed server's keys move");
        }
    }
    let fraction = moved as f64 / KEYS as f64;
    println!("R3 moved={fraction:.3}");
    assert!(fraction <= 0.38, "{fraction:.3} of the keys moved");
    assert_eq!(moved, counts[1]);
    for count in counts {
        assert!((2_900..=3_800).contains(&count), "unbalanced: {counts:?}");
    }
}

#[tokio::test]
async fn the_protocol_is_on_the_wire() {
    let server = Memcached::start();
    let addr = server.addr();
    let backend = backend(&[&server]).await;
    let key = format!("{}k", prefix("wire"));
    let token = lease(lookup1(&backend, &key).await, "lease");
    assert_eq!(
        raw_get(&addr, &key),
        Some(Vec::new()),
        "the lease is a zero-byte placeholder on the server"
    );
    assert!(
        !fill(&backend, &key, b"forged", wrong(token)).await,
        "memcached refuses a stale CAS"
    );
    assert_eq!(raw_get(&addr, &key), Some(Vec::new()));
    assert!(fill(&backend, &key, b"row", token).await);
    assert_eq!(raw_get(&addr, &key).as_deref(), Some(&b"row"[..]));
    // Another client overwrites the key: the token we read before is now stale.
    let (_, read) = value(lookup1(&backend, &key).await, "hit");
    raw_set(&addr, &key, b"other");
    assert!(
        !fill(&backend, &key, b"mine", read).await,
        "fill after someone else's write"
    );
    assert_eq!(value(lookup1(&backend, &key).await, "hit").0, b"other");
    // A lock is the marker on the server; a release with its token removes it.
    let locked = backend.lock(&[&key], LOCK_MARKER, TTL).await.expect("lock");
    assert_eq!(raw_get(&addr, &key).as_deref(), Some(LOCK_MARKER));
    backend.release(&key, locked[0]).await.expect("release");
    assert_eq!(raw_get(&addr, &key), None);
    put(&backend, &key, b"again").await;
    backend.evict(&[&key]).await.expect("evict");
    assert_eq!(raw_get(&addr, &key), None);
}

#[tokio::test]
async fn a_dead_server_fails_fast_and_comes_back_empty() {
    let (mut a, b) = (Memcached::start(), Memcached::start());
    let backend = backend(&[&a, &b]).await;
    let prefix = prefix("fault");
    let on_a = key_on(&backend, &format!("{prefix}a"), 0);
    let on_b = key_on(&backend, &format!("{prefix}b"), 1);
    let fresh_on_b = key_on(&backend, &format!("{prefix}fresh"), 1);
    put(&backend, &on_a, b"before the kill").await;
    put(&backend, &on_b, b"on b").await;

    a.kill();
    let started = Instant::now();
    let error = backend
        .lookup(&[&on_a], LEASE)
        .await
        .expect_err("lookup on a dead server");
    let elapsed = started.elapsed();
    println!("dead server: first lookup failed after {elapsed:?}: {error}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(matches!(error, CacheError::Unavailable(_)), "{error:?}");

    let started = Instant::now();
    assert!(backend.lookup(&[&on_a], LEASE).await.is_err());
    assert!(
        backend
            .fill(&on_a, b"x", wrong(autocache::Token(1)), TTL)
            .await
            .is_err()
    );
    assert!(backend.lock(&[&on_a], LOCK_MARKER, TTL).await.is_err());
    assert!(backend.evict(&[&on_a]).await.is_err());
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(100),
        "a server marked down fails at once; took {elapsed:?}"
    );

    // The other server keeps working.
    assert_eq!(value(lookup1(&backend, &on_b).await, "on b").0, b"on b");
    // A lookup spanning both fails as a whole and gives back the lease it won on b.
    assert!(backend.lookup(&[&fresh_on_b, &on_a], LEASE).await.is_err());
    lease(
        lookup1(&backend, &fresh_on_b).await,
        "the lease won on b was given back",
    );

    a.restart();
    tokio::time::sleep(DOWN_FOR + Duration::from_millis(200)).await;
    let found = lookup1(&backend, &on_a).await;
    lease(found, "after the restart the key is gone: a new lease");
    put(&backend, &format!("{prefix}later"), b"works").await;
}

#[tokio::test]
async fn a_partitioned_server_is_flushed_before_it_is_read_again() {
    let mut server = Memcached::start();
    let addr = server.addr();
    let backend = backend(&[&server]).await;
    let key = format!("{}k", prefix("partition"));
    put(&backend, &key, b"before the partition").await;

    // Frozen: connections are accepted by the kernel, never answered.
    server.pause();
    // The backend's own I/O deadline fails the call before the guard's 250 ms would ...
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_millis(250), backend.lookup(&[&key], LEASE)).await;
    assert!(
        matches!(answer, Ok(Err(_))),
        "the frozen server cannot answer: {answer:?}"
    );
    // ... and marks the server down, so the next call fails at once.
    tokio::time::sleep(Duration::from_millis(300).saturating_sub(started.elapsed())).await;
    let started = Instant::now();
    let error = backend.lookup(&[&key], LEASE).await.expect_err("marked down");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}: {error}",
        started.elapsed()
    );

    server.resume();
    // The partition healed with the item still on the server: it may be stale now.
    assert_eq!(raw_get(&addr, &key).as_deref(), Some(&b"before the partition"[..]));
    tokio::time::sleep(DOWN_FOR).await;
    lease(lookup1(&backend, &key).await, "the server was flushed before this read");
    assert_eq!(
        raw_get(&addr, &key),
        Some(Vec::new()),
        "only our new placeholder is left"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_from_the_start() {
    // A port nothing listens on.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let backend = MemcachedBackend::connect(&[addr]).await.expect("connect does not dial");
    let started = Instant::now();
    assert!(backend.lookup(&["k"], LEASE).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    let started = Instant::now();
    assert!(backend.lookup(&["k"], LEASE).await.is_err());
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn an_oversize_value_is_refused_without_harm() {
    let server = Memcached::start();
    let backend = backend(&[&server]).await;
    let prefix = prefix("big");
    let key = format!("{prefix}k");
    let token = lease(lookup1(&backend, &key).await, "lease");
    let big = vec![b'x'; 2 * 1024 * 1024];
    match backend.fill(&key, &big, token, TTL).await {
        Ok(stored) => assert!(!stored, "a 2 MiB value cannot be stored"),
        Err(error) => println!("oversize fill: {error}"),
    }
    // A refused value is an answer, not a fault: the server is still in use.
    assert!(backend.lookup(&[&key], LEASE).await.is_ok());
    put(&backend, &format!("{prefix}small"), b"fits").await;
    let half = vec![b'y'; 512 * 1024];
    let other = format!("{prefix}half");
    let token = lease(lookup1(&backend, &other).await, "lease");
    assert!(fill(&backend, &other, &half, token).await, "512 KiB fits");
    assert_eq!(value(lookup1(&backend, &other).await, "half").0.len(), half.len());
}

#[tokio::test]
async fn a_250_byte_key_works() {
    let server = Memcached::start();
    let backend = backend(&[&server]).await;
    let prefix = prefix("long");
    let key = format!("{prefix}{}", "k".repeat(250 - prefix.len()));
    assert_eq!(key.len(), 250);
    put(&backend, &key, b"long").await;
    assert_eq!(value(lookup1(&backend, &key).await, "long key").0, b"long");
    assert_eq!(raw_get(&server.addr(), &key).as_deref(), Some(&b"long"[..]));
    // One byte more is refused by the client, as an error, and the server stays in use.
    let too_long = format!("{key}k");
    assert!(backend.lookup(&[&too_long], LEASE).await.is_err());
    assert!(matches!(lookup1(&backend, &key).await, Lookup::Value { .. }));
}

#[tokio::test]
async fn bad_server_lists_are_rejected() {
    for url in [
        "memcache://",
        "memcache://127.0.0.1",
        "memcache://:11211",
        "memcache://h:0",
        "memcache://h:1,h:1",
    ] {
        match autocache::backend::connect(url).await {
            Err(CacheError::InvalidUrl { .. }) => {}
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url} accepted"),
        }
    }
}
