//! Bad bytes under a key are a miss that gets replaced, never a panic; values over the
//! item limit are not cached but still read right — on real memcached and redis servers.

use std::time::Duration;

use autocache::{Context, Options, SharedBackend};
use autocache_generated::{NewPerson, Person, PersonRepo};
use autocache_testkit::memcached::{self, Memcached};
use autocache_testkit::redis::Redis;

use crate::env::{database, unique_name};

async fn context(url: &str) -> Context<sqlx::Sqlite> {
    let (pool, _path) = database().await;
    let options = Options {
        key_namespace: format!("{}:", unique_name("bad")),
        ..Options::default()
    };
    Context::builder(pool)
        .options(options)
        .backend_url("default", url)
        .await
        .unwrap()
        .build()
}

/// Garbage, truncated and other-version bytes each cost one query, then are replaced.
async fn corrupt_values_are_misses(url: &str) {
    let ctx = context(url).await;
    let raw: SharedBackend = autocache::backend::connect(url).await.unwrap();
    let people = PersonRepo::new(&ctx);
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await.unwrap();
    let key = autocache::repo::primary_key::<Person>(&ctx, &ann.id);
    let good = autocache::codec::encode(Some(&ann)).unwrap();
    let other_version = [&[0x7f_u8][..], &good[1..]].concat();
    let truncated = good[..good.len() - 2].to_vec();
    let overlong = [&good[..], &[1, 2, 3][..]].concat();
    for bad in [
        b"\x00garbage\r\nEND".to_vec(),
        other_version,
        truncated,
        overlong,
        vec![0xA1],
    ] {
        raw.lock(&[&key], &bad, Duration::from_secs(60)).await.unwrap();
        let before = ctx.snapshot();
        assert_eq!(people.get(ann.id).await.unwrap(), Some(ann.clone()), "{bad:?}");
        let first = ctx.snapshot() - before;
        assert_eq!(
            (first.db_queries, first.corrupt_values, first.fills),
            (1, 1, 1),
            "{bad:?}"
        );
        let before = ctx.snapshot();
        assert_eq!(people.get(ann.id).await.unwrap(), Some(ann.clone()));
        assert_eq!((ctx.snapshot() - before).db_queries, 0, "replaced after {bad:?}");
    }
}

#[tokio::test]
async fn corrupt_values_on_memcached() {
    let server = Memcached::start();
    corrupt_values_are_misses(&memcached::url(&[&server])).await;
}

#[tokio::test]
async fn corrupt_values_on_redis() {
    let server = Redis::start();
    corrupt_values_are_misses(&server.url()).await;
}

/// A person whose name is 2 MiB (SQLite does not enforce VARCHAR lengths) is not cached,
/// is counted, and is read right every time.
#[tokio::test]
async fn oversize_values_are_not_cached() {
    let server = Memcached::start();
    let ctx = context(&memcached::url(&[&server])).await;
    let people = PersonRepo::new(&ctx);
    let before = ctx.snapshot();
    let big = people
        .insert(&NewPerson {
            name: "x".repeat(2 << 20),
        })
        .await
        .unwrap();
    assert_eq!((ctx.snapshot() - before).oversize_values, 1);
    for _ in 0..2 {
        let before = ctx.snapshot();
        assert_eq!(people.get(big.id).await.unwrap().map(|p| p.name.len()), Some(2 << 20));
        let read = ctx.snapshot() - before;
        assert_eq!((read.db_queries, read.oversize_values), (1, 1));
    }
}

/// A memcached address where nothing listens: by default the context is built (a warning,
/// reads from the database); with `require_reachable` the builder says which backend and
/// address did not answer.
#[tokio::test]
async fn an_unreachable_backend_is_reported_at_build_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("memcache://127.0.0.1:{port}");
    let (pool, _path) = database().await;
    let refused = Context::builder(pool.clone())
        .require_reachable(true)
        .backend_url("default", &url)
        .await;
    let message = refused.err().expect("an unreachable server is an error").to_string();
    assert!(
        message.contains("`default`") && message.contains(&url) && message.contains("not reachable"),
        "{message}"
    );
    let ctx = Context::builder(pool)
        .backend_url("default", &url)
        .await
        .expect("by default an unreachable server is a warning")
        .build();
    let people = PersonRepo::new(&ctx);
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await.unwrap();
    assert_eq!(people.get(ann.id).await.unwrap(), Some(ann));
}
