//! `--breakdown`: where the time of a memcached hit goes, layer by layer, each layer
//! measured interleaved with the bare client's plain get of the same key; and
//! `--profile=<op>`: one kind of read repeated, for `perf stat` or
//! `valgrind --tool=callgrind` (see docs/performance.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use autocache::{Context, Model, SharedBackend};
use autocache_generated::{Person, PersonRepo};
use autocache_testkit::memcached::Memcached;
use memcache::exp::{AsyncMetaClient, Get, Meta};

use sqlx::Sqlite;

use crate::floor::{Protocol, RawClient};
use crate::measure::{Plan, Samples, Table, pair};
use crate::setup::{self, Database};

const LEASE: Duration = Duration::from_secs(5);

/// A memcached server, a SQLite database, and 100 people cached through a context over it.
struct Fixture {
    server: Memcached,
    /// Kept for the pool's file.
    _db: Database,
    backend: SharedBackend,
    ctx: Context<Sqlite>,
    /// The cached people's ids and keys.
    hot: Vec<i64>,
    keys: Vec<String>,
}

impl Fixture {
    async fn start(label: &str) -> Fixture {
        let server = Memcached::start();
        let db = Database::create(1_000, label).await;
        let url = format!("memcache://{}", server.addr());
        let backend: SharedBackend = autocache::backend::connect(&url).await.expect("connect");
        let ctx = setup::context(&db.pool, backend.clone(), label);
        let hot: Vec<i64> = (1..=100).collect();
        PersonRepo::new(&ctx).get_many(&hot).await.expect("warm");
        let keys = hot
            .iter()
            .map(|id| autocache::repo::primary_key::<Person>(&ctx, id))
            .collect();
        Fixture {
            server,
            _db: db,
            backend,
            ctx,
            hot,
            keys,
        }
    }
}

/// What `--profile` repeats.
#[derive(Clone, Copy)]
pub enum Profiled {
    /// `PersonRepo::get` hits.
    Hit,
    /// The bare memcache exp client's gets.
    Bare,
    /// The raw-socket `mg k v c` (P1's floor).
    Floor,
    /// `PersonRepo::get_many` of 100 hits.
    Many,
    /// The bare memcache exp client's `run_many` of 100 `mg k v c N5` (what the backend
    /// sent before it spoke the protocol itself).
    BareMany,
    /// The raw-socket 100 × `mg k v q` + `mn` (P3's floor).
    FloorMany,
}

impl Profiled {
    /// The operation named on the command line.
    pub fn parse(name: &str) -> Option<Profiled> {
        match name {
            "hit" => Some(Profiled::Hit),
            "bare" => Some(Profiled::Bare),
            "floor" => Some(Profiled::Floor),
            "many" => Some(Profiled::Many),
            "bare-many" => Some(Profiled::BareMany),
            "floor-many" => Some(Profiled::FloorMany),
            _ => None,
        }
    }
}

/// `--profile`: the same set-up for every operation, then `calls` reads of 100 cached people
/// of one kind (one key per call, or 100 per call for the `many` kinds, `calls` keys in
/// all), so that two runs' counters differ by `calls` times the difference per key read.
pub async fn profile(op: Profiled, calls: usize) {
    let fixture = Fixture::start("profile").await;
    let (hot, keys) = (&fixture.hot, &fixture.keys);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let people = PersonRepo::new(&fixture.ctx);
    let client = AsyncMetaClient::connect(fixture.server.addr()).await.expect("client");
    let lease_get = |key: &str| Get::new(key).meta(Meta::NONE.cas()).lease_ttl(5);
    let mut raw = RawClient::connect(Protocol::Memcached, &fixture.server.addr())
        .await
        .expect("raw client");
    let batches = calls / hot.len();
    let start = Instant::now();
    match op {
        Profiled::Hit | Profiled::Bare | Profiled::Floor => {
            for i in 0..calls {
                match op {
                    Profiled::Hit => {
                        black_box(people.get(hot[i % 100]).await.expect("get").expect("a hit"));
                    }
                    Profiled::Bare => {
                        black_box(client.get(&keys[i % 100]).send().await.expect("get"));
                    }
                    _ => {
                        black_box(raw.get(&keys[i % 100]).await.expect("raw get"));
                    }
                }
            }
        }
        Profiled::Many => {
            for _ in 0..batches {
                black_box(people.get_many(hot).await.expect("get_many"));
            }
        }
        Profiled::BareMany => {
            for _ in 0..batches {
                black_box(
                    client
                        .run_many(keys.iter().map(|key| lease_get(key)))
                        .await
                        .expect("run_many"),
                );
            }
        }
        Profiled::FloorMany => {
            for _ in 0..batches {
                black_box(raw.get_many(&refs).await.expect("raw get_many"));
            }
        }
    }
    println!("{calls} reads in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
}

pub async fn run(plan: Plan) {
    let fixture = Fixture::start("breakdown").await;
    let (backend, ctx, hot, keys) = (&fixture.backend, &fixture.ctx, &fixture.hot, &fixture.keys);
    let people = PersonRepo::new(ctx);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let guarded = ctx.backend_for(&Person::INFO).expect("backend");
    let client = AsyncMetaClient::connect(fixture.server.addr()).await.expect("client");
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
        black_box(people.get_many(hot).await.expect("get_many"))
    });
    layer!("PersonRepo::books, 50", |_i| async {
        black_box(people.books(1).await.expect("books"))
    });
    table.print("breakdown, memcached");
}
