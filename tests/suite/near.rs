//! Near caches across contexts: two contexts with their own pools stand for two processes
//! sharing one memcached server, one database and one invalidation channel (a redis server
//! of the test's own, so it can be paused). The multi-process harness (`tests/processes`,
//! R13) runs the same with OS processes and faults.

use std::time::{Duration, Instant};

use autocache::{Context, Options};
use autocache_generated::{Book, NewBook, NewPerson, Person, PersonRepo};
use autocache_testkit::memcached::Memcached;
use autocache_testkit::redis::Redis;

use crate::env::unique_name;
use crate::fences::two_contexts;

fn options() -> Options {
    Options {
        key_namespace: format!("{}:", unique_name("near")),
        fence_lease: Duration::from_millis(400),
        near_lease: Duration::from_millis(400),
        near_entries: 1000,
        ..Options::default()
    }
}

/// Reads `id` in `ctx` until a read is served near (the channel echoes the first renewal
/// a few milliseconds after the context starts); panics after two seconds.
async fn until_near(ctx: &Context<sqlx::Sqlite>, id: i64) -> Person {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let before = ctx.snapshot().near_hits;
        let person = PersonRepo::new(ctx).get(id).await.unwrap().unwrap();
        if ctx.snapshot().near_hits > before {
            return person;
        }
        assert!(Instant::now() < deadline, "no read was served near within 2 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_near_copy_never_outlives_a_write_in_another_context() {
    let (server, channel) = (Memcached::start(), Redis::start());
    let options = options();
    let (writer, reader, _path) = two_contexts(&server, Some(&channel), &options).await;
    let ann = PersonRepo::new(&writer)
        .insert(&NewPerson { name: "v0".into() })
        .await
        .unwrap();
    let book = autocache_generated::BookRepo::new(&writer)
        .insert(&NewBook {
            title: "b".into(),
            author_id: ann.id,
            rank: 0,
        })
        .await
        .unwrap();
    assert_eq!(until_near(&reader, ann.id).await.name, "v0");
    for version in 1..=20 {
        let name = format!("v{version}");
        let started = Instant::now();
        PersonRepo::new(&writer)
            .update(&Person {
                id: ann.id,
                name: name.clone(),
            })
            .await
            .unwrap();
        autocache_generated::BookRepo::new(&writer)
            .update(&Book {
                rank: version,
                ..book.clone()
            })
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < options.fence_lease,
            "two writes with every holder acknowledging took {took:?}"
        );
        // The first reads after the writes resolved, in the context holding near copies.
        let seen = PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap();
        assert_eq!(seen.name, name, "the near copy outlived the write");
        let books = PersonRepo::new(&reader).books(ann.id).await.unwrap();
        assert_eq!(books[0].rank, version, "the near collection outlived the write");
        // And again, now that the new values may be near copies themselves.
        assert_eq!(PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap().name, name);
        assert_eq!(PersonRepo::new(&reader).books(ann.id).await.unwrap()[0].rank, version);
    }
    assert!(reader.snapshot().near_hits > 0);
}

#[tokio::test]
async fn a_paused_channel_costs_writes_a_fence_lease_and_stops_near_hits() {
    let (server, mut channel) = (Memcached::start(), Redis::start());
    let options = options();
    let (writer, reader, _path) = two_contexts(&server, Some(&channel), &options).await;
    let ann = PersonRepo::new(&writer)
        .insert(&NewPerson { name: "v0".into() })
        .await
        .unwrap();
    assert_eq!(until_near(&reader, ann.id).await.name, "v0");
    channel.pause();
    let started = Instant::now();
    PersonRepo::new(&writer)
        .update(&Person {
            id: ann.id,
            name: "v1".into(),
        })
        .await
        .expect("a channel fault never fails a write");
    let took = started.elapsed();
    assert!(
        took >= options.fence_lease,
        "the write resolved after {took:?}, before a fence lease had passed"
    );
    assert_eq!(PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap().name, "v1");
    // Past the near lease, the reader that lost the channel serves nothing near.
    tokio::time::sleep(options.near_lease).await;
    let before = reader.snapshot().near_hits;
    for _ in 0..10 {
        assert_eq!(PersonRepo::new(&reader).get(ann.id).await.unwrap().unwrap().name, "v1");
    }
    assert_eq!(reader.snapshot().near_hits, before, "near hits without a near lease");
    channel.resume();
    assert_eq!(until_near(&reader, ann.id).await.name, "v1");
}
