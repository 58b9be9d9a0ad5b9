//! `--breakdown`: where the time of a memcached hit goes, layer by layer, each layer
//! measured interleaved with the bare client's plain get of the same key.

use std::hint::black_box;
use std::time::Duration;

use autocache::{Model, SharedBackend};
use autocache_generated::{Person, PersonRepo};
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
    table.print("breakdown, memcached");
}
