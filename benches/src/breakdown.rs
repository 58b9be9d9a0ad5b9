//! `--breakdown`: where the time of a memcached hit goes, layer by layer, each layer
//! measured interleaved with the bare client's plain get of the same key; and
//! `--profile=<op>`: one kind of read repeated, for `perf stat` or
//! `valgrind --tool=callgrind` (see docs/performance.md), on memcached or (the `-r` kinds)
//! on redis.

use std::hint::black_box;
use std::time::{Duration, Instant};

use autocache::{Context, Model, SharedBackend};
use autocache_generated::{Person, PersonRepo};
use memcache::exp::{AsyncMetaClient, Get, Meta};

use sqlx::Sqlite;

use crate::measure::{Plan, Samples, Table, pair};
use crate::setup::{self, Database};
use crate::{Bare, Kind, Server};

const LEASE: Duration = Duration::from_secs(5);

/// A cache server, a SQLite database, and 100 people cached through a context over it.
struct Fixture {
    server: Server,
    /// Kept for the pool's file.
    _db: Database,
    backend: SharedBackend,
    ctx: Context<Sqlite>,
    /// The cached people's ids and keys.
    hot: Vec<i64>,
    keys: Vec<String>,
}

impl Fixture {
    async fn start(label: &str, kind: Kind) -> Fixture {
        let server = Server::start(kind);
        let db = Database::create(1_000, label).await;
        let backend: SharedBackend = autocache::backend::connect(&server.url()).await.expect("connect");
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

/// What `--profile` repeats, and on which server.
#[derive(Clone, Copy)]
pub struct Profiled {
    op: Op,
    kind: Kind,
}

/// The reads `--profile` repeats (the bare client is memcache's exp client on memcached,
/// a redis `ConnectionManager` on redis).
#[derive(Clone, Copy)]
enum Op {
    /// `PersonRepo::get` hits.
    Hit,
    /// The bare client's gets.
    Bare,
    /// The raw-socket `mg k v c` / `GET k` (P1's floor).
    Floor,
    /// `PersonRepo::get_many` of 100 hits.
    Many,
    /// The bare memcache exp client's `run_many` of 100 `mg k v c N5` (what the backend
    /// sent before it spoke the protocol itself); the bare redis `MGET` of 100.
    BareMany,
    /// The raw-socket 100 × `mg k v q` + `mn` / `MGET` of 100 (P3's floor).
    FloorMany,
}

impl Profiled {
    /// The operation named on the command line: `hit`, `bare`, `floor`, `many`, `bare-many`
    /// or `floor-many`, on redis with an `-r` suffix.
    pub fn parse(name: &str) -> Option<Profiled> {
        let (name, kind) = match name.strip_suffix("-r") {
            Some(name) => (name, Kind::Redis),
            None => (name, Kind::Memcached),
        };
        let op = match name {
            "hit" => Op::Hit,
            "bare" => Op::Bare,
            "floor" => Op::Floor,
            "many" => Op::Many,
            "bare-many" => Op::BareMany,
            "floor-many" => Op::FloorMany,
            _ => return None,
        };
        Some(Profiled { op, kind })
    }
}

/// One batch of `keys` by the bare client (lease gets on memcached, `MGET` on redis); the
/// answers read.
async fn bare_many(bare: &mut Bare, keys: &[String]) -> usize {
    match bare {
        Bare::Memcached(client) => {
            let lease_get = |key: &str| Get::new(key).meta(Meta::NONE.cas()).lease_ttl(5);
            client
                .run_many(keys.iter().map(|key| lease_get(key)))
                .await
                .expect("run_many")
                .len()
        }
        Bare::Redis(connection) => {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(keys)
                .query_async(connection)
                .await
                .expect("bare redis mget");
            values.len()
        }
    }
}

/// `--profile`: the same set-up for every operation, then `calls` reads of 100 cached people
/// of one kind (one key per call, or 100 per call for the `many` kinds, `calls` keys in
/// all), so that two runs' counters differ by `calls` times the difference per key read.
pub async fn profile(profiled: Profiled, calls: usize) {
    let fixture = Fixture::start("profile", profiled.kind).await;
    let (hot, keys) = (&fixture.hot, &fixture.keys);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let people = PersonRepo::new(&fixture.ctx);
    let mut client = Bare::connect(&fixture.server).await;
    let mut raw = fixture.server.raw().await;
    let batches = calls / hot.len();
    let start = Instant::now();
    match profiled.op {
        Op::Hit => {
            for i in 0..calls {
                black_box(people.get(hot[i % 100]).await.expect("get").expect("a hit"));
            }
        }
        Op::Bare => {
            for i in 0..calls {
                black_box(client.get(&keys[i % 100]).await);
            }
        }
        Op::Floor => {
            for i in 0..calls {
                black_box(raw.get(&keys[i % 100]).await.expect("raw get"));
            }
        }
        Op::Many => {
            for _ in 0..batches {
                black_box(people.get_many(hot).await.expect("get_many"));
            }
        }
        Op::BareMany => {
            for _ in 0..batches {
                black_box(bare_many(&mut client, keys).await);
            }
        }
        Op::FloorMany => {
            for _ in 0..batches {
                black_box(raw.get_many(&refs).await.expect("raw get_many"));
            }
        }
    }
    println!("{calls} reads in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
}

pub async fn run(plan: Plan) {
    let fixture = Fixture::start("breakdown", Kind::Memcached).await;
    let Server::Memcached(server) = &fixture.server else {
        unreachable!("the breakdown runs on memcached")
    };
    let (backend, ctx, hot, keys) = (&fixture.backend, &fixture.ctx, &fixture.hot, &fixture.keys);
    let people = PersonRepo::new(ctx);
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
        black_box(people.get_many(hot).await.expect("get_many"))
    });
    layer!("PersonRepo::books, 50", |_i| async {
        black_box(people.books(1).await.expect("books"))
    });
    table.print("breakdown, memcached");
}
