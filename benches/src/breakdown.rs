//! `--breakdown`: where the time of a memcached hit goes, layer by layer, each layer
//! measured interleaved with the bare client's plain get of the same key.

use std::hint::black_box;
use std::time::Duration;

use autocache::codec::{self, Cached};
use autocache::{Model, SharedBackend};
use autocache_generated::{Book, Person, PersonRepo};
use autocache_testkit::memcached::Memcached;
use memcache::exp::{AsyncMetaClient, Get, Meta};

use crate::measure::{Plan, Samples, Table, pair};
use crate::setup::{self, Database};

const LEASE: Duration = Duration::from_secs(5);

pub async fn run(plan: Plan) {
    let server = Memcached::start();
    let db = Database::create(1_000, "breakdown").await;
    let url = format!("memcache://{}", server.addr());
    let backend: SharedBackend = autocache::backend::connect(&url).await.expect("connect");
    let ctx = setup::context(&db.pool, backend.clone(), "breakdown");
    let people = PersonRepo::new(&ctx);
    let hot: Vec<i64> = (1..=100).collect();
    people.get_many(&hot).await.expect("warm");
    let keys: Vec<String> = hot
        .iter()
        .map(|id| autocache::repo::primary_key::<Person>(&ctx, id))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let guarded = ctx.backend_for(&Person::INFO).expect("backend");
    let client = AsyncMetaClient::connect(server.addr()).await.expect("client");
    let lease_get = |key: &str| Get::new(key).meta(Meta::NONE.cas()).lease_ttl(5);
    let mut table = Table::default();

    macro_rules! layer {
        ($name:expr, |$i:ident| $run:expr) => {{
            let mut base = Samples::new("  bare get (mg k v)");
            let mut layer = Samples::new($name);
            pair!(
                plan,
                &mut base,
                |i| async { black_box(client.get(&keys[i % 100]).send().await.expect("get")) },
                &mut layer,
                |$i| $run,
            );
            table.add(&base);
            table.add(&layer);
        }};
    }

    layer!("bare run(mg k v c N5)", |i| async {
        black_box(client.run(lease_get(&keys[i % 100])).await.expect("get"))
    });
    layer!("bare run_many([mg k v c N5])", |i| async {
        black_box(client.run_many([lease_get(&keys[i % 100])]).await.expect("get"))
    });
    layer!("MemcachedBackend::lookup, 1 key", |i| async {
        black_box(
            backend
                .lookup(&refs[i % 100..i % 100 + 1], LEASE)
                .await
                .expect("lookup"),
        )
    });
    layer!("Guarded lookup, 1 key", |i| async {
        black_box(
            guarded
                .lookup(&refs[i % 100..i % 100 + 1], LEASE)
                .await
                .expect("lookup"),
        )
    });
    layer!("PersonRepo::get", |i| async {
        black_box(people.get(hot[i % 100]).await.expect("get"))
    });
    layer!("bare run_many, 100 x mg k v c N5", |_i| async {
        black_box(
            client
                .run_many(keys.iter().map(|key| lease_get(key)))
                .await
                .expect("get"),
        )
    });
    layer!("MemcachedBackend::lookup, 100 keys", |_i| async {
        black_box(backend.lookup(&refs, LEASE).await.expect("lookup"))
    });
    layer!("Guarded lookup, 100 keys", |_i| async {
        black_box(guarded.lookup(&refs, LEASE).await.expect("lookup"))
    });
    layer!("PersonRepo::get_many, 100", |_i| async {
        black_box(people.get_many(&hot).await.expect("get_many"))
    });
    layer!("PersonRepo::books, 50", |_i| async {
        black_box(people.books(1).await.expect("books"))
    });
    // Proposed (relation.rs): a collection read that asks for the collection key and the
    // members it held last time in one lookup, and only looks again if they changed.
    let book_prefix = format!("breakdown:{}", Book::INFO.key_prefix);
    let relation_key = autocache::key::relation(&book_prefix, "books", "1");
    let ids: Vec<i64> = match codec::decode::<Vec<i64>>(&raw_value(guarded, &relation_key).await) {
        Cached::Value(ids) => ids,
        _ => panic!("the collection is cached"),
    };
    let mut one_trip: Vec<String> = vec![relation_key.clone()];
    one_trip.extend(ids.iter().map(|id| autocache::key::primary(&book_prefix, id)));
    let one_trip: Vec<&str> = one_trip.iter().map(String::as_str).collect();
    layer!("prototype: books in one lookup", |_i| async {
        let found = guarded.lookup(&one_trip, LEASE).await.expect("lookup");
        let mut found = found.into_iter();
        let Some(autocache::Lookup::Value { bytes, .. }) = found.next() else {
            panic!("collection hit")
        };
        let Cached::Value(ids) = codec::decode::<Vec<i64>>(&bytes) else {
            panic!("ids")
        };
        let books: Vec<Book> = found
            .map(|lookup| match lookup {
                autocache::Lookup::Value { bytes, .. } => match codec::decode::<Book>(&bytes) {
                    Cached::Value(book) => book,
                    _ => panic!("a book"),
                },
                _ => panic!("a hit"),
            })
            .collect();
        assert_eq!(books.len(), ids.len());
        black_box(books)
    });
    table.print("breakdown, memcached");
    key_building(&book_prefix);
    timer_cost().await;
}

/// The bytes cached under `key` (which must be a hit).
async fn raw_value(backend: &dyn autocache::CacheBackend, key: &str) -> Vec<u8> {
    match backend.lookup(&[key], LEASE).await.expect("lookup").pop() {
        Some(autocache::Lookup::Value { bytes, .. }) => bytes.to_vec(),
        other => panic!("{key}: {other:?}"),
    }
}

/// CPU only: the cost of building 100 primary keys as `key::primary` does, against one
/// `String` written in place (the change proposed for `key.rs`).
fn key_building(prefix: &str) {
    use std::fmt::Write as _;
    use std::time::Instant;
    const ROUNDS: usize = 20_000;
    let ids: Vec<i64> = (1_000..1_100).collect();
    let time = |build: &dyn Fn(i64) -> String| {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            for &id in &ids {
                black_box(build(black_box(id)));
            }
        }
        start.elapsed().as_nanos() as f64 / (ROUNDS * ids.len()) as f64
    };
    let now = time(&|id| autocache::key::primary(prefix, &id));
    let in_place = time(&|id| {
        let mut key = String::with_capacity(prefix.len() + 24);
        key.push_str(prefix);
        key.push_str(":pk:");
        let _ = write!(key, "{id}");
        key
    });
    let namespace = "breakdown:";
    let prefix_now = time(&|_| format!("{namespace}{}", Book::INFO.key_prefix));
    println!();
    println!(
        "key building (ns per key): key::primary {now:.0}, one String written in place {in_place:.0}; the per-call prefix format! {prefix_now:.0}"
    );
}

/// The cost of a `tokio::time::timeout` around a future that is pending once (as every
/// cache call is): a yield with and without the timer.
async fn timer_cost() {
    use std::time::Instant;
    const ROUNDS: u32 = 200_000;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        tokio::task::yield_now().await;
    }
    let bare = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let _ = tokio::time::timeout(Duration::from_millis(250), tokio::task::yield_now()).await;
    }
    let timed = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("a pending-once future: {bare:.0} ns, inside tokio::time::timeout {timed:.0} ns");
}
