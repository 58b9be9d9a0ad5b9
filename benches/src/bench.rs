//! The autocache benchmark (issues 6 and 16): `cargo run --release -p autocache-bench -- [--quick]`.
//!
//! Starts its own memcached and redis-server (autocache-testkit, free local ports), loads the
//! sample schema's tables into a SQLite file (the repositories' database) and the same people
//! into a PostgreSQL schema of its own (`AUTOCACHE_BENCH_PG`, else `AUTOCACHE_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`; schema `autocache_bench_<pid>`, dropped at the
//! end), warms up, then measures every pair of operations interleaved (rounds of A, then B;
//! medians compared). Every figure is a ratio to a floor measured in the same run: a
//! raw-socket client of the server ([`floor`]), the bare client, or a bare sqlx transaction.
//! For each backend it prints p50/p90/p99 per operation and the figure lines:
//!
//! ```text
//! P1 hit_over_floor=… hit_over_wire=…     PersonRepo::get hit ÷ raw-socket `mg k v c` (≤ 1.15); ÷ bare memcache exp-client get (≤ 1.2)
//! P2 pg_over_hit=…              sqlx PK select on PostgreSQL ÷ PersonRepo::get hit (≥ 4)
//! P2s sqlite_over_hit=…         the same on SQLite (report)
//! P3 many100_over_floor=… miss_queries=… many100_over_one=…
//!                               get_many of 100 hits ÷ 100 raw pipelined `mg k v q` + `mn` (≤ 1.3);
//!                               SQL when all miss (1); ÷ one get (≤ 10)
//! P4 collection50_over_floor=… collection50_over_one=…
//!                               PersonRepo::books of 50 books ÷ raw `mg` of their key (report); ÷ one get (≤ 2.5)
//! P5 herd100_db_queries=…       100 concurrent gets of a just-evicted key: queries (1)
//! P6 db_query_reduction=… stale=…        zipf page workload, queries uncached ÷ cached (≥ 20); stale reads (0)
//! P9 update_over_tx=… insert_over_tx=… delete_over_tx=…
//!                               PersonRepo writes on PostgreSQL ÷ BEGIN + the statement + COMMIT (≤ 1.35, 1.35, 1.5)
//! P10 hits64_over_bare=…        ops/s of 64 tasks of hits ÷ 64 tasks of bare-client gets (≥ 0.9)
//! P7 codegen_200_models_ms=… codegen_sample_ms=…   Config::generate (≤ 1000, ≤ 50)
//! P8 near_hit_us=… near_over_remote=… pg_over_near=…
//!                               PersonRepo::get served near: median µs; ÷ a memcached hit (≤ 0.05);
//!                               sqlx PK select on PostgreSQL ÷ it (≥ 50)
//! P8w write_with_near_over_without=… processes=3
//!                               PersonRepo::update on PostgreSQL with 3 near holders ÷ without near (≤ 1.5)
//! P6n db_query_reduction=… stale=…       P6 over 3 near-holding contexts (≥ 20; 0)
//! ```
//!
//! P8, P8w and P6n ([`near`]) run in the memcached pass, with a redis-server of their own as
//! the near caches' invalidation channel.
//!
//! The redis pass prints the same figures (but P7) with an `r` after the number (`P1r`, …),
//! its floors a raw-socket RESP `GET` / `MGET` and its bare client a `redis` crate
//! `ConnectionManager`. `KEY=value` appears on the figure lines only. `--quick` uses fewer
//! rows and samples (well under two minutes).
//!
//! Also: `--breakdown` times a memcached hit layer by layer (bare client, backend, guard,
//! repository, 100-key reads, a collection); `--profile=<op>` repeats 200 000
//! reads of one kind (for `perf stat` or callgrind); `--codegen` times P7
//! and its phases. `AUTOCACHE_BENCH_RUNTIME=current` runs on a current-thread runtime
//! instead of the multi-thread one; `AUTOCACHE_BENCH_VERBOSE=1` prints P6's counters.
//! `docs/performance.md` has the results and what was optimised.

mod breakdown;
mod codegen;
mod concurrent;
mod floor;
mod measure;
mod near;
mod setup;
mod workload;
mod writes;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autocache::{Context, Holds, Model, SharedBackend};
use autocache_generated::{BOOK_BY_AUTHOR, Book, Person, PersonRepo};
use autocache_testkit::memcached::Memcached;
use autocache_testkit::redis::Redis;
use floor::{Protocol, RawClient};
use measure::{Plan, Samples, Table, pair, ratio};
use setup::{Database, NeverHit, PgSchema};
use sqlx::Sqlite;

/// The sizes of a run.
#[derive(Clone, Copy)]
pub(crate) struct Config {
    quick: bool,
    persons: i64,
    plan: Plan,
    /// The write pairs of P9 (each write costs a PostgreSQL commit).
    writes: Plan,
    /// P10's concurrent readers.
    load: concurrent::Load,
    /// Distinct people the single-key pairs cycle through (all cached).
    hot: i64,
    herd_trials: usize,
    miss_trials: usize,
    p6: workload::Shape,
    codegen_runs: usize,
}

impl Config {
    fn new(quick: bool) -> Config {
        if quick {
            Config {
                quick,
                persons: 2_000,
                plan: Plan {
                    warmup: 100,
                    rounds: 40,
                    per_round: 25,
                },
                writes: Plan {
                    warmup: 20,
                    rounds: 80,
                    per_round: 5,
                },
                load: concurrent::Load {
                    tasks: 64,
                    ops_per_task: 25,
                    rounds: 10,
                },
                hot: 64,
                herd_trials: 5,
                miss_trials: 3,
                p6: workload::Shape {
                    universe: 500,
                    workers: 8,
                    ops_per_worker: 300,
                },
                codegen_runs: 3,
            }
        } else {
            Config {
                quick,
                persons: 20_000,
                plan: Plan {
                    warmup: 500,
                    rounds: 200,
                    per_round: 50,
                },
                writes: Plan {
                    warmup: 50,
                    rounds: 300,
                    per_round: 5,
                },
                load: concurrent::Load {
                    tasks: 64,
                    ops_per_task: 50,
                    rounds: 40,
                },
                hot: 256,
                herd_trials: 20,
                miss_trials: 10,
                p6: workload::Shape {
                    universe: 2_000,
                    workers: 8,
                    ops_per_worker: 2_500,
                },
                codegen_runs: 11,
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memcached,
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Memcached => "memcached",
            Kind::Redis => "redis",
        }
    }

    /// The figure-name suffix: none for memcached, `r` for redis.
    fn suffix(self) -> &'static str {
        match self {
            Kind::Memcached => "",
            Kind::Redis => "r",
        }
    }
}

/// A cache server of the pass, and a bare client of it for the P1 baseline.
enum Server {
    Memcached(Memcached),
    Redis(Redis),
}

impl Server {
    fn start(kind: Kind) -> Server {
        match kind {
            Kind::Memcached => Server::Memcached(Memcached::start()),
            Kind::Redis => Server::Redis(Redis::start()),
        }
    }

    fn url(&self) -> String {
        match self {
            Server::Memcached(server) => format!("memcache://{}", server.addr()),
            Server::Redis(server) => server.url(),
        }
    }

    /// A raw-socket client of the server (the floors).
    async fn raw(&self) -> RawClient {
        let (protocol, addr) = match self {
            Server::Memcached(server) => (Protocol::Memcached, server.addr()),
            Server::Redis(server) => (Protocol::Redis, format!("127.0.0.1:{}", server.port())),
        };
        RawClient::connect(protocol, &addr).await.expect("raw client")
    }
}

/// A bare client of the pass's server: the memcache crate's exp client (connections pooled,
/// shared by clones) or a redis `ConnectionManager` (multiplexed, cloned per caller).
#[derive(Clone)]
enum Bare {
    Memcached(Arc<memcache::exp::AsyncMetaClient>),
    Redis(redis::aio::ConnectionManager),
}

impl Bare {
    async fn connect(server: &Server) -> Bare {
        match server {
            Server::Memcached(server) => Bare::Memcached(Arc::new(
                memcache::exp::AsyncMetaClient::connect(server.addr())
                    .await
                    .expect("bare memcache client"),
            )),
            Server::Redis(server) => {
                let client = redis::Client::open(server.url()).expect("bare redis client");
                Bare::Redis(client.get_connection_manager().await.expect("bare redis connection"))
            }
        }
    }

    /// The stored bytes of `key`; panics on a miss (the key was filled before).
    async fn get(&mut self, key: &str) -> usize {
        match self {
            Bare::Memcached(client) => {
                let result = client.get(key).send().await.expect("bare memcache get");
                result.value.as_ref().map(Vec::len).expect("bare memcache get: a hit")
            }
            Bare::Redis(connection) => {
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(connection)
                    .await
                    .expect("bare redis get");
                value.expect("bare redis get: a hit").len()
            }
        }
    }
}

/// Reads of one `--profile` run.
const PROFILED_CALLS: usize = 200_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut quick = false;
    let mut breakdown = false;
    let mut codegen_only = false;
    let mut profiled = None;
    for arg in &args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--breakdown" => breakdown = true,
            "--codegen" => codegen_only = true,
            _ => match arg.strip_prefix("--profile=").and_then(breakdown::Profiled::parse) {
                Some(op) => profiled = Some(op),
                None => {
                    eprintln!(
                        "usage: autocache-bench [--quick] [--breakdown | --codegen | --profile=<hit|bare|floor|many|bare-many|floor-many>[-r]]"
                    );
                    std::process::exit(2);
                }
            },
        }
    }
    // The default is tokio's multi-thread runtime, as applications use;
    // AUTOCACHE_BENCH_RUNTIME=current measures on a current-thread runtime instead.
    let runtime = match std::env::var("AUTOCACHE_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    // The measuring loops run as a task on a worker thread (as application code does), not
    // on the thread blocked in `block_on`.
    runtime
        .block_on(async {
            if codegen_only {
                tokio::spawn(async move {
                    let runs = Config::new(quick).codegen_runs;
                    codegen_figure(runs);
                    let schema = codegen::TempSchema::write(200);
                    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.yaml");
                    for (name, path) in [("200 models", &schema.0), ("schema.yaml", &sample)] {
                        let [load, plan, render, format] = codegen::phases(path, runs);
                        println!(
                            "  P7 {name}: load {load:.1} ms, plan {plan:.1} ms, render {render:.1} ms, format {format:.1} ms"
                        );
                    }
                })
                .await
            } else if let Some(op) = profiled {
                tokio::spawn(breakdown::profile(op, PROFILED_CALLS)).await
            } else if breakdown {
                tokio::spawn(breakdown::run(Config::new(quick).plan)).await
            } else {
                tokio::spawn(run(Config::new(quick))).await
            }
        })
        .expect("benchmark task");
}

async fn run(config: Config) {
    let started = Instant::now();
    println!(
        "autocache benchmark ({} run): {} cores, {}",
        if config.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    let pg_url = std::env::var("AUTOCACHE_BENCH_PG")
        .or_else(|_| std::env::var("AUTOCACHE_TEST_PG"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let pg = match PgSchema::create(&pg_url, config.persons).await {
        Ok(pg) => Some(pg),
        Err(error) => {
            eprintln!("PostgreSQL at {pg_url} unavailable ({error}): P2 and P9 are not measured");
            None
        }
    };

    let mut summary = Vec::new();
    let memcached = pass(Kind::Memcached, config, pg.as_ref()).await;
    let (big_ms, sample_ms) = codegen_figure(config.codegen_runs);
    summary.extend(memcached);
    summary.push(format!(
        "P7 codegen 200 models {big_ms:.1} ms (≤ 1000: {}), sample {sample_ms:.1} ms (≤ 50: {})",
        verdict(big_ms <= 1000.0),
        verdict(sample_ms <= 50.0)
    ));
    let redis = pass(Kind::Redis, config, pg.as_ref()).await;
    summary.extend(redis);
    if let Some(pg) = pg {
        pg.drop_schema().await;
    }
    println!();
    println!("targets (memcached; redis reported only):");
    for line in summary {
        println!("  {line}");
    }
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
}

/// P7: prints its lines; the medians for the 200-model schema and the sample schema.
fn codegen_figure(runs: usize) -> (f64, f64) {
    let schema = codegen::TempSchema::write(200);
    let (big_ms, big_bytes) = codegen::time_generate(&schema.0, runs);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.yaml");
    let (sample_ms, _) = codegen::time_generate(&sample, runs);
    println!("  P7 codegen: 200 models give {big_bytes} bytes of code (median of {runs} runs)");
    println!("P7 codegen_200_models_ms={big_ms:.1} codegen_sample_ms={sample_ms:.1}");
    (big_ms, sample_ms)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// One backend's table and figures; returns the target summary lines.
async fn pass(kind: Kind, config: Config, pg: Option<&PgSchema>) -> Vec<String> {
    let server = Server::start(kind);
    let db = Database::create(config.persons, kind.name()).await;
    println!();
    println!(
        "{}: SQLite with {} people and {} books (volumes, editors), cache at {}",
        kind.name(),
        db.data.persons,
        db.data.books,
        server.url()
    );
    let backend: SharedBackend = autocache::backend::connect(&server.url())
        .await
        .unwrap_or_else(|error| panic!("connect {}: {error}", server.url()));
    let ctx = setup::context(&db.pool, backend.clone(), &format!("bench-{}", kind.name()));
    let people = PersonRepo::new(&ctx);
    let plan = config.plan;
    let r = kind.suffix();
    let mut table = Table::default();
    let mut figures = Vec::new();
    let mut summary = Vec::new();

    let hot: Vec<i64> = (2..config.hot + 2).collect();
    people.get_many(&hot).await.expect("warm the hot people");

    // P1: a hit against the bare client reading the same key.
    let keys: Vec<String> = hot
        .iter()
        .map(|id| autocache::repo::primary_key::<Person>(&ctx, id))
        .collect();
    let mut bare = Bare::connect(&server).await;
    let mut wire = Samples::new(match kind {
        Kind::Memcached => "bare memcache exp-client get",
        Kind::Redis => "bare redis GET",
    });
    let mut hit = Samples::new("PersonRepo::get (hit)");
    pair!(
        plan,
        &mut wire,
        |i| async { black_box(bare.get(&keys[i % keys.len()]).await) },
        &mut hit,
        |i| get_hit(&people, &hot, i),
    );
    table.add(&wire);
    table.add(&hit);
    let p1_wire = ratio(&hit, &wire);
    let mut raw = server.raw().await;
    let mut floor = Samples::new(match kind {
        Kind::Memcached => "floor: raw socket mg k v c",
        Kind::Redis => "floor: raw socket GET",
    });
    let mut hit = Samples::new("PersonRepo::get (hit), vs floor");
    pair!(
        plan,
        &mut floor,
        |i| async { black_box(raw.get(&keys[i % keys.len()]).await.expect("raw get")) },
        &mut hit,
        |i| get_hit(&people, &hot, i),
    );
    table.add(&floor);
    table.add(&hit);
    let p1 = ratio(&hit, &floor);
    figures.push(format!("P1{r} hit_over_floor={p1:.2} hit_over_wire={p1_wire:.2}"));
    summary.push(format!(
        "P1{r} hit over floor {p1:.2} (≤ 1.15: {}); over the bare client {p1_wire:.2} (≤ 1.2: {})",
        verdict(p1 <= 1.15),
        verdict(p1_wire <= 1.2)
    ));

    // P10: 64 tasks reading hits at once against 64 tasks of bare-client gets.
    let (hits64, bare64) = throughput(config.load, &ctx, &bare, &hot, &keys).await;
    table.add(&bare64);
    table.add(&hits64);
    let p10 = ratio(&bare64, &hits64);
    println!(
        "  P10{r} detail: {:.0} hits/s against {:.0} bare gets/s",
        concurrent::ops_per_second(config.load, &hits64),
        concurrent::ops_per_second(config.load, &bare64)
    );
    let p10_figure = format!("P10{r} hits64_over_bare={p10:.2}");
    let p10_summary = format!(
        "P10{r} 64-task hit throughput over bare {p10:.2} (≥ 0.9: {})",
        verdict(p10 >= 0.9)
    );

    // P2: the database's primary-key select against a hit: through a pool as
    // `PgPool::connect` makes it (P2), and through one that skips sqlx's before-acquire
    // ping (reported, to show the baseline is the select itself).
    if let Some(pg) = pg {
        let mut select = Samples::new("sqlx PK select, PostgreSQL");
        let mut hit = Samples::new("PersonRepo::get (hit), vs PostgreSQL");
        pair!(
            plan,
            &mut select,
            |i| pg_select(&pg.pool, pg.select, hot[i % hot.len()]),
            &mut hit,
            |i| get_hit(&people, &hot, i),
        );
        let mut bare_select = Samples::new("sqlx PK select, PostgreSQL, no ping");
        let mut bare_hit = Samples::new("PersonRepo::get (hit), vs no ping");
        pair!(
            plan,
            &mut bare_select,
            |i| pg_select(&pg.pool_no_ping, pg.select, hot[i % hot.len()]),
            &mut bare_hit,
            |i| get_hit(&people, &hot, i),
        );
        // The bound: the same select against the bare client's get, i.e. what a cache
        // client that added nothing to the round trip would score on this machine.
        let mut wire_select = Samples::new("sqlx PK select, PostgreSQL, vs bare get");
        let mut wire_get = Samples::new(match kind {
            Kind::Memcached => "bare memcache exp-client get, vs PostgreSQL",
            Kind::Redis => "bare redis GET, vs PostgreSQL",
        });
        pair!(
            plan,
            &mut wire_select,
            |i| pg_select(&pg.pool, pg.select, hot[i % hot.len()]),
            &mut wire_get,
            |i| async { black_box(bare.get(&keys[i % keys.len()]).await) },
        );
        for samples in [&select, &hit, &bare_select, &bare_hit, &wire_select, &wire_get] {
            table.add(samples);
        }
        let p2 = ratio(&select, &hit);
        let strict = ratio(&bare_select, &bare_hit);
        let bound = ratio(&wire_select, &wire_get);
        println!(
            "  P2{r} detail: through a pool that skips sqlx's before-acquire ping, the select over the hit is {strict:.2}; over the bare client's get (the most any client of this server reaches here) {bound:.2}"
        );
        figures.push(format!("P2{r} pg_over_hit={p2:.2}"));
        summary.push(format!(
            "P2{r} pg over hit {p2:.2} (≥ 4: {}); through a pool without the ping {strict:.2}; bound set by the wire {bound:.2}",
            verdict(p2 >= 4.0)
        ));
    } else {
        figures.push(format!("P2{r} pg_over_hit=unavailable"));
        summary.push(format!("P2{r} not measured (no PostgreSQL)"));
    }
    let mut select = Samples::new("sqlx PK select, SQLite");
    let mut hit_s = Samples::new("PersonRepo::get (hit), vs SQLite");
    pair!(
        plan,
        &mut select,
        |i| async {
            let query = sqlx::query_as::<_, Person>("SELECT id, name FROM person WHERE id = ?");
            let person = query.bind(hot[i % hot.len()]).fetch_optional(&db.pool).await;
            black_box(person.expect("sqlite select").expect("a row"));
        },
        &mut hit_s,
        |i| get_hit(&people, &hot, i),
    );
    table.add(&select);
    table.add(&hit_s);
    figures.push(format!("P2s{r} sqlite_over_hit={:.2}", ratio(&select, &hit_s)));

    // P3: 100 hits in one call against one; then the queries of 100 misses.
    let many_pool: Vec<i64> = (2..(config.persons / 2).min(2_002)).collect();
    for chunk in many_pool.chunks(100) {
        people.get_many(chunk).await.expect("warm get_many");
    }
    let windows = many_pool.len() / 100;
    let mut many = Samples::new("PersonRepo::get_many, 100 hits");
    let mut one = Samples::new("PersonRepo::get (hit), vs get_many");
    pair!(
        plan,
        &mut many,
        |i| get_many_hits(&people, &many_pool, i % windows),
        &mut one,
        |i| get_hit(&people, &hot, i),
    );
    table.add(&many);
    table.add(&one);
    let p3_one = ratio(&many, &one);
    let window_keys: Vec<Vec<String>> = many_pool
        .chunks(100)
        .take(windows)
        .map(|ids| {
            ids.iter()
                .map(|id| autocache::repo::primary_key::<Person>(&ctx, id))
                .collect()
        })
        .collect();
    let window_refs: Vec<Vec<&str>> = window_keys
        .iter()
        .map(|keys| keys.iter().map(String::as_str).collect())
        .collect();
    let mut floor = Samples::new(match kind {
        Kind::Memcached => "floor: raw socket 100 x mg k v q + mn",
        Kind::Redis => "floor: raw socket MGET of 100",
    });
    let mut many = Samples::new("PersonRepo::get_many, 100 hits, vs floor");
    pair!(
        plan,
        &mut floor,
        |i| async { black_box(raw.get_many(&window_refs[i % windows]).await.expect("raw get_many")) },
        &mut many,
        |i| get_many_hits(&people, &many_pool, i % windows),
    );
    table.add(&floor);
    table.add(&many);
    let p3 = ratio(&many, &floor);
    let mut miss_queries = 0;
    for trial in 0..config.miss_trials as i64 {
        let ids: Vec<i64> = (0..100).map(|k| config.persons - trial * 100 - k).collect();
        for id in &ids {
            people.evict(*id).await.expect("evict");
        }
        let before = ctx.snapshot();
        let rows = people.get_many(&ids).await.expect("get_many of misses");
        assert!(rows.iter().all(Option::is_some));
        miss_queries = miss_queries.max((ctx.snapshot() - before).db_queries);
    }
    figures.push(format!(
        "P3{r} many100_over_floor={p3:.2} miss_queries={miss_queries} many100_over_one={p3_one:.2}"
    ));
    summary.push(format!(
        "P3{r} get_many(100) over floor {p3:.2} (≤ 1.3: {}), queries for 100 misses {miss_queries} (1: {}); over one get {p3_one:.2} (≤ 10: {})",
        verdict(p3 <= 1.3),
        verdict(miss_queries == 1),
        verdict(p3_one <= 10.0)
    ));

    // P4: a cached 50-member collection against one get.
    let author = db.data.author50;
    assert_eq!(people.books(author).await.expect("books").len(), setup::AUTHOR_BOOKS);
    let mut collection = Samples::new("PersonRepo::books, 50 cached books");
    let mut one = Samples::new("PersonRepo::get (hit), vs books");
    pair!(
        plan,
        &mut collection,
        |_i| async {
            let books = people.books(author).await.expect("books");
            assert_eq!(books.len(), setup::AUTHOR_BOOKS);
            black_box(books);
        },
        &mut one,
        |i| get_hit(&people, &hot, i),
    );
    table.add(&collection);
    table.add(&one);
    let p4_one = ratio(&collection, &one);
    let books_key = autocache::key::collection(
        &[ctx.options().key_namespace.as_str(), Book::INFO.key_prefix].concat(),
        Holds::Rows,
        BOOK_BY_AUTHOR.name,
        &author.to_string(),
    );
    let mut floor = Samples::new(match kind {
        Kind::Memcached => "floor: raw socket mg of the 50 books' key",
        Kind::Redis => "floor: raw socket GET of the 50 books' key",
    });
    let mut collection = Samples::new("PersonRepo::books, 50 books, vs floor");
    pair!(
        plan,
        &mut floor,
        |_i| async { black_box(raw.get(&books_key).await.expect("raw get of the books")) },
        &mut collection,
        |_i| async {
            let books = people.books(author).await.expect("books");
            assert_eq!(books.len(), setup::AUTHOR_BOOKS);
            black_box(books);
        },
    );
    table.add(&floor);
    table.add(&collection);
    let p4 = ratio(&collection, &floor);
    figures.push(format!(
        "P4{r} collection50_over_floor={p4:.2} collection50_over_one={p4_one:.2}"
    ));
    summary.push(format!(
        "P4{r} books(50) over floor {p4:.2} (report); over one get {p4_one:.2} (≤ 2.5: {})",
        verdict(p4_one <= 2.5)
    ));

    // P5: a herd of 100 readers of a key just evicted.
    let mut herd_queries = Vec::new();
    let mut herd = Samples::new("herd: 100 concurrent gets after evict");
    for trial in 0..config.herd_trials {
        let id = 3 + trial as i64;
        people.get(id).await.expect("get").expect("a row");
        people.evict(id).await.expect("evict");
        let before = ctx.snapshot();
        let start = Instant::now();
        herd_queries.push(herd_of(&ctx, id, 100).await);
        herd.push(start.elapsed().as_nanos() as u64);
        assert_eq!((ctx.snapshot() - before).db_queries, *herd_queries.last().unwrap());
    }
    table.add(&herd);
    let worst_herd = herd_queries.iter().copied().max().unwrap_or(0);
    figures.push(format!("P5{r} herd100_db_queries={worst_herd}"));
    summary.push(format!(
        "P5{r} herd queries {worst_herd} (worst of {}: {:?}) (1: {})",
        herd_queries.len(),
        herd_queries,
        verdict(worst_herd == 1)
    ));

    // P6: the page workload, cached then uncached, on the same seeded operations.
    let shape = config.p6;
    let checker = workload::Checker::new(shape.universe);
    let cached_ctx = setup::context(&db.pool, backend.clone(), &format!("bench-{}-p6", kind.name()));
    let warm_start = Instant::now();
    workload::warm(&cached_ctx, shape.universe).await;
    let warm_time = warm_start.elapsed();
    let start = Instant::now();
    let cached = workload::run(std::slice::from_ref(&cached_ctx), shape, &checker).await;
    let cached_time = start.elapsed();
    let uncached_ctx = setup::context(&db.pool, NeverHit::shared(), "bench-uncached");
    let start = Instant::now();
    let uncached = workload::run(std::slice::from_ref(&uncached_ctx), shape, &checker).await;
    let uncached_time = start.elapsed();
    let reduction = uncached.db_queries as f64 / cached.db_queries.max(1) as f64;
    let stale = cached.stale + uncached.stale;
    println!(
        "  P6{r} workload: {} ops by {} tasks over {} people (warm-up {:.2} s); cached: {} reads, {} writes, {} queries, {} errors in {:.2} s; uncached: {} reads, {} writes, {} queries, {} errors in {:.2} s",
        cached.ops,
        shape.workers,
        shape.universe,
        warm_time.as_secs_f64(),
        cached.reads,
        cached.writes,
        cached.db_queries,
        cached.errors,
        cached_time.as_secs_f64(),
        uncached.reads,
        uncached.writes,
        uncached.db_queries,
        uncached.errors,
        uncached_time.as_secs_f64()
    );
    if std::env::var_os("AUTOCACHE_BENCH_VERBOSE").is_some() {
        println!("  P6{r} cached stats: {:?}", cached.stats);
        println!("  P6{r} uncached stats: {:?}", uncached.stats);
    }
    figures.push(format!("P6{r} db_query_reduction={reduction:.1} stale={stale}"));
    summary.push(format!(
        "P6{r} query reduction {reduction:.1} (≥ 20: {}), stale reads {stale} (0: {})",
        verdict(reduction >= 20.0),
        verdict(stale == 0)
    ));

    // P9: the writes on PostgreSQL against bare transactions of the same statements.
    if let Some(pg) = pg {
        let namespace = format!("bench-{}-pg", kind.name());
        let pg_ctx = setup::context(&pg.pool, backend.clone(), &namespace);
        let p9 = writes::measure(&pg_ctx, &pg.pool, &hot, config.writes, " (PostgreSQL)", &mut table).await;
        // The same without the commit's WAL flush: what the library adds, free of the disk.
        let no_flush_ctx = setup::context(&pg.pool_no_flush, backend.clone(), &namespace);
        let no_flush = writes::measure(
            &no_flush_ctx,
            &pg.pool_no_flush,
            &hot,
            config.writes,
            " (PostgreSQL, no flush)",
            &mut table,
        )
        .await;
        println!(
            "  P9{r} detail: with synchronous_commit=off on both sides, update {:.2}, insert {:.2}, delete {:.2}",
            no_flush.update, no_flush.insert, no_flush.delete
        );
        figures.push(format!(
            "P9{r} update_over_tx={:.2} insert_over_tx={:.2} delete_over_tx={:.2}",
            p9.update, p9.insert, p9.delete
        ));
        summary.push(format!(
            "P9{r} over the bare transaction: update {:.2} (≤ 1.35: {}), insert {:.2} (≤ 1.35: {}), delete {:.2} (≤ 1.5: {})",
            p9.update,
            verdict(p9.update <= 1.35),
            p9.insert,
            verdict(p9.insert <= 1.35),
            p9.delete,
            verdict(p9.delete <= 1.5)
        ));
    } else {
        figures.push(format!("P9{r} update_over_tx=unavailable"));
        summary.push(format!("P9{r} not measured (no PostgreSQL)"));
    }
    figures.push(p10_figure);
    summary.push(p10_summary);
    if kind == Kind::Memcached {
        near::measure(config, &db, &backend, pg, &mut table, &mut figures, &mut summary).await;
    }

    table.print(&format!("== {} ==", kind.name()));
    for figure in figures {
        println!("{figure}");
    }
    drop(server);
    summary
}

/// One primary-key select of a person on PostgreSQL.
async fn pg_select(pool: &sqlx::PgPool, select: &str, id: i64) {
    // Decoded into the row struct, as a repository would (the generated `Person` is for
    // SQLite: its `FromRow` is the SQLite row's).
    let query = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(select));
    let (id, name) = query
        .bind(id)
        .fetch_optional(pool)
        .await
        .expect("pg select")
        .expect("a row");
    black_box(Person { id, name });
}

/// One `PersonRepo::get` of a cached person (the `i`-th of `hot`, cyclically).
async fn get_hit(people: &PersonRepo<'_>, hot: &[i64], i: usize) {
    let person = people.get(hot[i % hot.len()]).await.expect("get").expect("a hit");
    black_box(person);
}

/// One `PersonRepo::get_many` of the `w`-th window of 100 cached people of `pool`.
async fn get_many_hits(people: &PersonRepo<'_>, pool: &[i64], w: usize) {
    let rows = people.get_many(&pool[w * 100..w * 100 + 100]).await.expect("get_many");
    assert!(rows.iter().all(Option::is_some), "get_many: all hits");
    black_box(rows);
}

/// P10's pair: `load.tasks` tasks of `PersonRepo::get` hits of `hot`, and as many of the bare
/// client's gets of their `keys`; the rounds' wall times (hits, bare).
async fn throughput(
    load: concurrent::Load,
    ctx: &Context<Sqlite>,
    bare: &Bare,
    hot: &[i64],
    keys: &[String],
) -> (Samples, Samples) {
    let mut hits = Samples::new(format!("{} tasks x {} hits (per round)", load.tasks, load.ops_per_task));
    let mut wire = Samples::new(format!(
        "{} tasks x {} bare gets (per round)",
        load.tasks, load.ops_per_task
    ));
    let (hot, keys): (Arc<[i64]>, Arc<[String]>) = (hot.into(), keys.into());
    // Task `t` starts `t` entries into the hot set, so the tasks read different keys.
    let bare_get = {
        let bare = bare.clone();
        move |task: usize, k: usize| {
            let (mut bare, keys) = (bare.clone(), keys.clone());
            async move {
                black_box(bare.get(&keys[(task + k) % keys.len()]).await);
            }
        }
    };
    let hit = {
        let ctx = ctx.clone();
        move |task: usize, k: usize| {
            let (ctx, hot) = (ctx.clone(), hot.clone());
            async move { get_hit(&PersonRepo::new(&ctx), &hot, task + k).await }
        }
    };
    concurrent::pair(load, &mut wire, bare_get, &mut hits, hit).await;
    (hits, wire)
}

/// Runs `readers` concurrent `get(id)` calls released together; the queries they caused.
async fn herd_of(ctx: &Context<Sqlite>, id: i64, readers: usize) -> u64 {
    let before = ctx.snapshot();
    let gate = Arc::new(tokio::sync::Barrier::new(readers));
    let tasks: Vec<_> = (0..readers)
        .map(|_| {
            let (ctx, gate) = (ctx.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                let person = PersonRepo::new(&ctx).get(id).await;
                person.expect("herd get").expect("herd: a row")
            })
        })
        .collect();
    for task in tasks {
        let person = task.await.expect("herd task");
        assert_eq!(person.id, id);
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    (ctx.snapshot() - before).db_queries
}
