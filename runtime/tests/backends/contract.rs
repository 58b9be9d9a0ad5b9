//! The contract every cache backend meets: the lease / compare-and-swap semantics of the
//! in-process reference backend, which the consistency protocol relies on.
//!
//! Every check uses its own random key prefix, so checks (and test binaries) sharing a
//! server never see each other's keys.

use std::time::Duration;

use autocache::backend::memory::{DEFAULT_CAPACITY, MemoryBackend};
use autocache::codec::LOCK_MARKER;
use autocache::{CacheBackend, Lookup, Token, key};

/// Lease TTL used by the checks: long enough never to expire during a test.
pub const LEASE: Duration = Duration::from_secs(30);

/// Item TTL used by the checks.
pub const TTL: Duration = Duration::from_secs(300);

/// A key prefix no other call returns: `ct:<tag>:<random>:`.
pub fn prefix(tag: &str) -> String {
    format!("ct:{tag}:{:016x}:", rand::random::<u64>())
}

/// Looks up one key; panics on a backend error.
pub async fn lookup1(backend: &dyn CacheBackend, key: &str) -> Lookup {
    let mut found = backend
        .lookup(&[key], LEASE)
        .await
        .unwrap_or_else(|error| panic!("lookup {key}: {error}"));
    assert_eq!(found.len(), 1, "one answer for one key");
    found.remove(0)
}

/// The lease token of `lookup`; panics if it is not a lease.
pub fn lease(lookup: Lookup, what: &str) -> Token {
    match lookup {
        Lookup::Lease(token) => token,
        other => panic!("{what}: expected a lease, got {other:?}"),
    }
}

/// The bytes and token of `lookup`; panics if it is not a value.
pub fn value(lookup: Lookup, what: &str) -> (Vec<u8>, Token) {
    match lookup {
        Lookup::Value { bytes, token } => (bytes.to_vec(), token),
        other => panic!("{what}: expected a value, got {other:?}"),
    }
}

/// Stores `bytes` under a key this caller does not yet hold: takes the lease, fills it.
pub async fn put(backend: &dyn CacheBackend, key: &str, bytes: &[u8]) {
    let token = lease(lookup1(backend, key).await, &format!("lease on {key}"));
    assert!(
        fill(backend, key, bytes, token).await,
        "fill of {key} with its lease token"
    );
}

/// Fills; panics on a backend error.
pub async fn fill(backend: &dyn CacheBackend, key: &str, bytes: &[u8], token: Token) -> bool {
    backend
        .fill(key, bytes, token, TTL)
        .await
        .unwrap_or_else(|error| panic!("fill {key}: {error}"))
}

/// A token that is not `token` (and, in practice, no other live token either).
pub fn wrong(token: Token) -> Token {
    Token(token.0.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// Runs every check of the contract against `backend`.
pub async fn check_all(backend: &dyn CacheBackend) {
    lease_is_exclusive(backend).await;
    concurrent_readers_get_one_lease(backend).await;
    fill_needs_the_current_token(backend).await;
    lock_defeats_outstanding_leases(backend).await;
    release_needs_the_right_token(backend).await;
    evict_deletes(backend).await;
    multi_key_lookup_keeps_order(backend).await;
    lock_many_keys(backend).await;
    hostile_but_safe_keys(backend).await;
}

/// A missing key: one lease, then busy until filled, then the value for everyone.
pub async fn lease_is_exclusive(backend: &dyn CacheBackend) {
    let key = format!("{}k", prefix("lease"));
    let token = lease(lookup1(backend, &key).await, "first lookup of a missing key");
    assert_eq!(
        lookup1(backend, &key).await,
        Lookup::Busy,
        "second lookup while the lease is out"
    );
    assert_eq!(
        lookup1(backend, &key).await,
        Lookup::Busy,
        "third lookup while the lease is out"
    );
    assert!(fill(backend, &key, b"v1", token).await, "fill with the lease token");
    let (bytes, _) = value(lookup1(backend, &key).await, "lookup after the fill");
    assert_eq!(bytes, b"v1");
    let (bytes, _) = value(lookup1(backend, &key).await, "lookup after the fill, again");
    assert_eq!(bytes, b"v1");
}

/// Many concurrent lookups of one missing key: exactly one lease.
pub async fn concurrent_readers_get_one_lease(backend: &dyn CacheBackend) {
    let key = format!("{}k", prefix("race"));
    let lookups = (0..16).map(|_| lookup1(backend, &key));
    let found = futures::future::join_all(lookups).await;
    let leases = found.iter().filter(|lookup| matches!(lookup, Lookup::Lease(_))).count();
    let busy = found.iter().filter(|lookup| **lookup == Lookup::Busy).count();
    assert_eq!(
        (leases, busy),
        (1, 15),
        "16 concurrent readers of a missing key: {found:?}"
    );
}

/// A fill succeeds only with the key's current token, once.
pub async fn fill_needs_the_current_token(backend: &dyn CacheBackend) {
    let prefix = prefix("cas");
    let key = format!("{prefix}k");
    let token = lease(lookup1(backend, &key).await, "lease");
    assert!(
        !fill(backend, &key, b"forged", wrong(token)).await,
        "fill with a wrong token"
    );
    assert_eq!(
        lookup1(backend, &key).await,
        Lookup::Busy,
        "a failed fill leaves the lease out"
    );
    assert!(fill(backend, &key, b"v1", token).await, "fill with the lease token");
    assert!(
        !fill(backend, &key, b"v2", token).await,
        "second fill with the consumed lease token"
    );
    let (bytes, current) = value(lookup1(backend, &key).await, "after the fills");
    assert_eq!(bytes, b"v1", "the stale-token fill changed nothing");
    assert_ne!(current, token, "a fill gives the key a new token");
    // Replacing a value (a corrupt one, say) with its own token works once.
    assert!(fill(backend, &key, b"v3", current).await, "fill with the value's token");
    assert!(
        !fill(backend, &key, b"v4", current).await,
        "fill with the replaced value's token"
    );
    let (bytes, _) = value(lookup1(backend, &key).await, "after replacing");
    assert_eq!(bytes, b"v3");
    // A fill never creates a key.
    let absent = format!("{prefix}absent");
    assert!(
        !fill(backend, &absent, b"x", token).await,
        "fill of a key that holds nothing"
    );
    lease(lookup1(backend, &absent).await, "a failed fill did not create the key");
}

/// A lock replaces the key and its token: a lease or value token taken before it is dead.
pub async fn lock_defeats_outstanding_leases(backend: &dyn CacheBackend) {
    let prefix = prefix("lock");
    let key = format!("{prefix}k");
    let token = lease(lookup1(backend, &key).await, "reader's lease");
    let locked = backend.lock(&[&key], LOCK_MARKER, TTL).await.expect("lock");
    assert_eq!(locked.len(), 1);
    assert_ne!(locked[0], token, "the lock changes the token");
    assert!(
        !fill(backend, &key, b"stale row", token).await,
        "the reader's fill after the lock"
    );
    let (bytes, marker_token) = value(lookup1(backend, &key).await, "lookup of a locked key");
    assert_eq!(bytes, LOCK_MARKER, "readers see the lock marker");
    assert_eq!(marker_token, locked[0], "the lookup returns the lock's token");
    assert!(
        fill(backend, &key, b"committed row", locked[0]).await,
        "the writer's fill with its lock token"
    );
    let (bytes, current) = value(lookup1(backend, &key).await, "after the writer's fill");
    assert_eq!(bytes, b"committed row");
    // Locking a key that holds a value kills the value's token too.
    let relocked = backend.lock(&[&key], LOCK_MARKER, TTL).await.expect("second lock");
    assert_ne!(relocked[0], current);
    assert!(
        !fill(backend, &key, b"older row", current).await,
        "fill with the value token after a lock"
    );
    assert_ne!(relocked[0], locked[0], "every lock gives a new token");
}

/// Release deletes the key only while it carries the given token.
pub async fn release_needs_the_right_token(backend: &dyn CacheBackend) {
    let prefix = prefix("release");
    let key = format!("{prefix}k");
    let locked = backend.lock(&[&key], LOCK_MARKER, TTL).await.expect("lock");
    backend
        .release(&key, wrong(locked[0]))
        .await
        .expect("release with a wrong token");
    let (bytes, _) = value(lookup1(backend, &key).await, "after a release with a wrong token");
    assert_eq!(bytes, LOCK_MARKER, "a wrong token leaves the lock");
    backend
        .release(&key, locked[0])
        .await
        .expect("release with the lock token");
    lease(
        lookup1(backend, &key).await,
        "after the release the key is empty: a new lease",
    );
    // Giving a lease back lets the next reader take one instead of waiting.
    let leased = format!("{prefix}leased");
    let token = lease(lookup1(backend, &leased).await, "lease");
    backend.release(&leased, token).await.expect("release of a lease");
    lease(lookup1(backend, &leased).await, "a released lease is available again");
    // Releasing a key that holds nothing is fine.
    backend
        .release(&format!("{prefix}absent"), token)
        .await
        .expect("release of an absent key");
}

/// Evict deletes unconditionally: values, locks and placeholders alike.
pub async fn evict_deletes(backend: &dyn CacheBackend) {
    let prefix = prefix("evict");
    let (filled, locked, leased) = (
        format!("{prefix}filled"),
        format!("{prefix}locked"),
        format!("{prefix}leased"),
    );
    put(backend, &filled, b"v").await;
    backend.lock(&[&locked], LOCK_MARKER, TTL).await.expect("lock");
    lease(lookup1(backend, &leased).await, "lease");
    let absent = format!("{prefix}absent");
    backend
        .evict(&[&filled, &locked, &leased, &absent])
        .await
        .expect("evict");
    for key in [&filled, &locked, &leased] {
        lease(lookup1(backend, key).await, &format!("after evicting {key}"));
    }
    backend.evict(&[]).await.expect("evict of no keys");
    assert!(backend.lookup(&[], LEASE).await.expect("lookup of no keys").is_empty());
    assert!(
        backend
            .lock(&[], LOCK_MARKER, TTL)
            .await
            .expect("lock of no keys")
            .is_empty()
    );
}

/// A many-key lookup answers in the caller's order, whichever server holds each key.
pub async fn multi_key_lookup_keeps_order(backend: &dyn CacheBackend) {
    let prefix = prefix("order");
    let keys: Vec<String> = (0..40).map(|i| format!("{prefix}{i}")).collect();
    let even: Vec<&str> = keys.iter().step_by(2).map(String::as_str).collect();
    let leases = backend.lookup(&even, LEASE).await.expect("lookup of the even keys");
    assert_eq!(leases.len(), even.len());
    for ((key, found), i) in even.iter().zip(leases).zip((0..).step_by(2)) {
        let token = lease(found, &format!("lease on {key}"));
        assert!(fill(backend, key, format!("value-{i}").as_bytes(), token).await);
    }
    // Ask in a scrambled order: reversed, with the middle rotated.
    let mut order: Vec<usize> = (0..keys.len()).rev().collect();
    order.rotate_left(7);
    let asked: Vec<&str> = order.iter().map(|&i| keys[i].as_str()).collect();
    let found = backend.lookup(&asked, LEASE).await.expect("scrambled lookup");
    assert_eq!(found.len(), asked.len());
    for (&i, lookup) in order.iter().zip(found) {
        if i % 2 == 0 {
            let (bytes, _) = value(lookup, &keys[i]);
            assert_eq!(bytes, format!("value-{i}").as_bytes(), "answer for {}", keys[i]);
        } else {
            lease(lookup, &keys[i]);
        }
    }
    let again = backend.lookup(&asked, LEASE).await.expect("second scrambled lookup");
    for (&i, lookup) in order.iter().zip(again) {
        if i % 2 == 0 {
            assert_eq!(value(lookup, &keys[i]).0, format!("value-{i}").as_bytes());
        } else {
            assert_eq!(lookup, Lookup::Busy, "{}: leased by the previous lookup", keys[i]);
        }
    }
}

/// A many-key lock returns one token per key, in order.
pub async fn lock_many_keys(backend: &dyn CacheBackend) {
    let prefix = prefix("lockmany");
    let keys: Vec<String> = (0..24).map(|i| format!("{prefix}{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let tokens = backend.lock(&refs, LOCK_MARKER, TTL).await.expect("lock");
    assert_eq!(tokens.len(), keys.len());
    for (i, (key, token)) in keys.iter().zip(&tokens).enumerate() {
        assert!(
            fill(backend, key, format!("row-{i}").as_bytes(), *token).await,
            "fill {key} with its lock token"
        );
    }
    let found = backend.lookup(&refs, LEASE).await.expect("lookup");
    for (i, lookup) in found.into_iter().enumerate() {
        assert_eq!(value(lookup, &keys[i]).0, format!("row-{i}").as_bytes());
    }
}

/// Keys made safe by `autocache::key` (hashed hostile values, punctuation, 250 bytes) work
/// and never collide.
pub async fn hostile_but_safe_keys(backend: &dyn CacheBackend) {
    let prefix = prefix("hostile");
    let namespace = format!("{prefix}ns:Person:0a1b");
    let mut keys: Vec<String> = [
        "x\r\nset y 0 0 1\r\n",
        "a b",
        "ünï",
        &"k".repeat(300),
        "",
        "\0",
        "mn\r\nflush_all",
    ]
    .iter()
    .map(|value| key::unique(&namespace, "name", value))
    .collect();
    keys.extend(
        [
            r#""quoted"'single'"#,
            "{json}:[1,2]",
            "%0d%0a%00",
            r"back\slash|pipe&<tag>",
            "b64=QUJD==",
            "O1",
            "N30",
        ]
        .iter()
        .map(|tail| format!("{prefix}{tail}")),
    );
    keys.push(format!("{prefix}{}", "z".repeat(key::MAX_KEY_LEN - prefix.len())));
    for key in &keys {
        assert!(key::is_safe(key), "{key:?} should be safe");
    }
    assert_eq!(keys.last().map(String::len), Some(key::MAX_KEY_LEN));
    for (i, key) in keys.iter().enumerate() {
        put(backend, key, format!("hostile-{i}").as_bytes()).await;
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = backend.lookup(&refs, LEASE).await.expect("lookup of the hostile keys");
    for (i, lookup) in found.into_iter().enumerate() {
        assert_eq!(
            value(lookup, &keys[i]).0,
            format!("hostile-{i}").as_bytes(),
            "{:?}",
            keys[i]
        );
    }
    backend.evict(&refs).await.expect("evict of the hostile keys");
}

#[tokio::test]
async fn memory_backend_meets_the_contract() {
    check_all(&MemoryBackend::new(DEFAULT_CAPACITY)).await;
}
