//! Fences across contexts: two contexts with their own pools stand for two processes sharing
//! one memcached server and one database (the multi-process harness, `tests/processes`, runs
//! the same faults with real OS processes). A write whose invalidation a paused server missed
//! resolves only once no other context can serve the old copy; a dead writer's lock costs a
//! reader one database read, not `busy_wait`.

use std::time::{Duration, Instant};

use autocache::{Context, Options};
use autocache_generated::{NewPerson, Person, PersonRepo};
use autocache_testkit::memcached::{self, Memcached};
use autocache_testkit::redis::Redis;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::env::{database, unique_name};

/// Two contexts ("processes") on one SQLite file and one memcached server, same namespace;
/// with `channel`, their near caches' invalidation channel (`tests/suite/near.rs`).
pub(crate) async fn two_contexts(
    server: &Memcached,
    channel: Option<&Redis>,
    options: &Options,
) -> (Context<sqlx::Sqlite>, Context<sqlx::Sqlite>, std::path::PathBuf) {
    let (pool, path) = database().await;
    let second = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true),
        )
        .await
        .expect("second pool");
    let url = memcached::url(&[server]);
    let mut contexts = Vec::new();
    for pool in [pool, second] {
        let ctx = Context::builder(pool)
            .options(options.clone())
            .backend_url("default", &url)
            .await
            .unwrap()
            .backend_url("other", &url)
            .await
            .unwrap();
        let ctx = match channel {
            Some(channel) => ctx.near_channel(&channel.url()).unwrap(),
            None => ctx,
        };
        contexts.push(ctx.build());
    }
    let reader = contexts.pop().unwrap();
    (contexts.pop().unwrap(), reader, path)
}

fn options() -> Options {
    Options {
        key_namespace: format!("{}:", unique_name("fence")),
        fence_lease: Duration::from_millis(300),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_write_a_paused_server_missed_is_fenced_for_every_context() {
    let mut server = Memcached::start();
    let options = options();
    let (writer, reader, _path) = two_contexts(&server, None, &options).await;
    let ann = PersonRepo::new(&writer)
        .insert(&NewPerson { name: "v0".into() })
        .await
        .unwrap();
    // The reader caches v0 and holds a fence lease; it never sees the fault below.
    assert_eq!(PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap().name, "v0");
    server.pause();
    let started = Instant::now();
    let updated = PersonRepo::new(&writer)
        .update(&Person {
            name: "v1".into(),
            ..ann.clone()
        })
        .await
        .expect("a cache fault never fails a write");
    let took = started.elapsed();
    assert_eq!(updated.unwrap().name, "v1");
    assert!(
        took >= options.fence_lease,
        "the write resolved after {took:?}, before a fence lease ({:?}) had passed",
        options.fence_lease
    );
    assert!(took < Duration::from_secs(3), "the write waited {took:?}");
    server.resume();
    // The first read after the write resolved, in the context that never saw the fault.
    let seen = PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap();
    assert_eq!(seen.name, "v1", "the reader served the copy the paused server kept");
    let again = PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap();
    assert_eq!(again.name, "v1");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM autocache_outbox")
        .fetch_one(reader.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "a delivered fence leaves the outbox");
}

#[tokio::test]
async fn a_dead_writers_lock_costs_one_database_read() {
    let server = Memcached::start();
    let options = options();
    let (writer, reader, _path) = two_contexts(&server, None, &options).await;
    let ann = PersonRepo::new(&writer)
        .insert(&NewPerson { name: "Ann".into() })
        .await
        .unwrap();
    // What a writer killed between its lock and its fill leaves: a lock marker dated then.
    let key = autocache::repo::primary_key::<Person>(&writer, &ann.id);
    let raw = autocache::backend::connect(&memcached::url(&[&server])).await.unwrap();
    let killed_at = autocache::codec::now_ms() - 1_000;
    raw.lock(
        &[&key],
        &autocache::codec::lock_marker(killed_at),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let before = reader.snapshot();
        let started = Instant::now();
        let got = PersonRepo::new(&reader).get(ann.id).await.unwrap();
        let took = started.elapsed();
        let delta = reader.snapshot() - before;
        assert_eq!(got, Some(ann.clone()));
        assert_eq!((delta.db_queries, delta.fills), (1, 0), "{delta:?}");
        assert!(
            took < options.busy_wait / 2,
            "a read of a dead writer's row took {took:?} (busy_wait is {:?})",
            options.busy_wait
        );
    }
}
