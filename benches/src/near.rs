//! P8, P8w and P6n: near caches (issue 17) in front of memcached, kept right by a redis
//! pub/sub invalidation channel the benchmark starts for them.
//!
//! - P8: `PersonRepo::get` served near, against the same hit served by memcached and against
//!   a PostgreSQL primary-key select, interleaved.
//! - P8w: `PersonRepo::update` on PostgreSQL with three near-holding contexts (the writer's
//!   and two more, each with its own subscription to the channel, so each acknowledges every
//!   invalidation over redis), against the same update in a context without near caches.
//! - P6n: the P6 workload spread over three near-holding contexts sharing the checker.
//!
//! The three contexts stand for three processes: each has its own near cache, channel
//! connections and registration; only the OS process is shared (the multi-process harness,
//! `tests/processes` R13, runs them as separate processes).

use std::hint::black_box;
use std::time::{Duration, Instant};

use autocache::{Context, Dialect, Options, SharedBackend};
use autocache_generated::PersonRepo;
use autocache_testkit::redis::Redis;
use sqlx::Pool;

use crate::measure::{Samples, Table, pair, ratio};
use crate::setup::{Database, NeverHit, PgSchema};
use crate::{Config, get_hit, pg_select, workload};

/// Near-holding contexts of P8w and P6n.
const HOLDERS: usize = 3;

/// A context like [`crate::setup::context`] with near caches for every model, kept right by
/// the channel at `channel`.
fn near_context<DB: Dialect>(pool: &Pool<DB>, backend: &SharedBackend, namespace: &str, channel: &str) -> Context<DB> {
    let options = Options {
        key_namespace: format!("{namespace}:"),
        near_entries: 100_000,
        ..Options::default()
    };
    Context::builder(pool.clone())
        .options(options)
        .backend("default", backend.clone())
        .backend("other", backend.clone())
        .near_channel(channel)
        .expect("the near channel URL")
        .build()
}

/// Repeats `$read` (a future) in context `$ctx` until one is served near (the first
/// renewal's echo takes a few milliseconds); panics after five seconds. A macro for the
/// reason [`pair!`] is one.
macro_rules! until_near {
    ($ctx:expr, $read:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let before = $ctx.snapshot().near_hits;
            $read.await.expect("near reads");
            if $ctx.snapshot().near_hits > before {
                break;
            }
            assert!(Instant::now() < deadline, "no read was served near within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }};
}

/// One `PersonRepo::update` on PostgreSQL of the `i`-th of `ids` (cyclically), its name
/// marked with `side`.
async fn update(people: &crate::setup::pg::PersonRepo<'_>, ids: &[i64], i: usize, side: &str) {
    let id = ids[i % ids.len()];
    let row = crate::setup::pg::Person {
        id,
        name: format!("{id}:{side}{i}"),
    };
    black_box(people.update(&row).await.expect("update").expect("a row"));
}

/// Runs P8, P8w (with PostgreSQL) and P6n; prints their figure lines into `figures` and
/// target lines into `summary`.
pub async fn measure(
    config: Config,
    db: &Database,
    backend: &SharedBackend,
    pg: Option<&PgSchema>,
    table: &mut Table,
    figures: &mut Vec<String>,
    summary: &mut Vec<String>,
) {
    let channel = Redis::start();
    let url = channel.url();
    let remote = crate::setup::context(&db.pool, backend.clone(), "bench-near");
    let near = near_context(&db.pool, backend, "bench-near", &url);
    let hot: Vec<i64> = (2..config.hot + 2).collect();
    let (remote_people, near_people) = (PersonRepo::new(&remote), PersonRepo::new(&near));
    remote_people.get_many(&hot).await.expect("warm the hot people");
    until_near!(near, near_people.get_many(&hot));

    // P8: a near hit against a memcached hit and a PostgreSQL select of the same row.
    let mut remote_hit = Samples::new("PersonRepo::get (memcached hit)");
    let mut near_hit = Samples::new("PersonRepo::get (near hit)");
    pair!(
        config.plan,
        &mut remote_hit,
        |i| get_hit(&remote_people, &hot, i),
        &mut near_hit,
        |i| get_hit(&near_people, &hot, i),
    );
    table.add(&remote_hit);
    table.add(&near_hit);
    let over_remote = ratio(&near_hit, &remote_hit);
    let near_us = near_hit.median_us();
    let pg_over_near = match pg {
        Some(pg) => {
            let mut select = Samples::new("sqlx PK select (PostgreSQL), vs near");
            let mut near_again = Samples::new("PersonRepo::get (near hit), vs PostgreSQL");
            pair!(
                config.plan,
                &mut select,
                |i| pg_select(&pg.pool, pg.select, hot[i % hot.len()]),
                &mut near_again,
                |i| get_hit(&near_people, &hot, i),
            );
            table.add(&select);
            table.add(&near_again);
            Some(ratio(&select, &near_again))
        }
        None => None,
    };
    let pg_figure = pg_over_near.map_or_else(|| "unavailable".to_owned(), |x| format!("{x:.1}"));
    figures.push(format!(
        "P8 near_hit_us={near_us:.2} near_over_remote={over_remote:.3} pg_over_near={pg_figure}"
    ));
    summary.push(format!(
        "P8 near hit {near_us:.2} us; over a memcached hit {over_remote:.3} (≤ 0.05: {}); PostgreSQL select over it {pg_figure} (≥ 50: {})",
        crate::verdict(over_remote <= 0.05),
        pg_over_near.map_or("not measured", |x| crate::verdict(x >= 50.0)),
    ));

    // P8w: writes with three near holders against writes without near caches.
    if let Some(pg) = pg {
        let plain = crate::setup::context(&pg.pool, backend.clone(), "bench-near-pg");
        let holders: Vec<Context<sqlx::Postgres>> = (0..HOLDERS)
            .map(|_| near_context(&pg.pool, backend, "bench-near-pg", &url))
            .collect();
        let ids: Vec<i64> = (2..config.hot + 2).collect();
        for holder in &holders {
            let people = crate::setup::pg::PersonRepo::new(holder);
            until_near!(holder, people.get_many(&ids));
        }
        let (without, with) = (
            crate::setup::pg::PersonRepo::new(&plain),
            crate::setup::pg::PersonRepo::new(&holders[0]),
        );
        let mut plain_writes = Samples::new("PersonRepo::update (PostgreSQL, no near)");
        let mut near_writes = Samples::new(format!("PersonRepo::update (PostgreSQL, {HOLDERS} near holders)"));
        pair!(
            config.writes,
            &mut plain_writes,
            |i| update(&without, &ids, i, "p"),
            &mut near_writes,
            |i| update(&with, &ids, i, "n"),
        );
        table.add(&plain_writes);
        table.add(&near_writes);
        let p8w = ratio(&near_writes, &plain_writes);
        figures.push(format!("P8w write_with_near_over_without={p8w:.2} processes={HOLDERS}"));
        summary.push(format!(
            "P8w update with {HOLDERS} near holders over without {p8w:.2} (≤ 1.5: {})",
            crate::verdict(p8w <= 1.5)
        ));
    } else {
        figures.push(format!(
            "P8w write_with_near_over_without=unavailable processes={HOLDERS}"
        ));
        summary.push("P8w not measured (no PostgreSQL)".to_owned());
    }

    // P6n: the zipf workload over three near-holding contexts, against the uncached run.
    let shape = config.p6;
    let checker = workload::Checker::new(shape.universe);
    let contexts: Vec<Context<sqlx::Sqlite>> = (0..HOLDERS)
        .map(|_| near_context(&db.pool, backend, "bench-near-p6", &url))
        .collect();
    workload::warm(&contexts[0], shape.universe).await;
    let cached = workload::run(&contexts, shape, &checker).await;
    let uncached_ctx = crate::setup::context(&db.pool, NeverHit::shared(), "bench-near-uncached");
    let uncached = workload::run(std::slice::from_ref(&uncached_ctx), shape, &checker).await;
    let reduction = uncached.db_queries as f64 / cached.db_queries.max(1) as f64;
    let stale = cached.stale + uncached.stale;
    println!(
        "  P6n workload over {HOLDERS} near-holding contexts: {} ops, {} near hits, {} remote hits, {} queries (uncached {}), {} errors",
        cached.ops,
        cached.stats.near_hits,
        cached.stats.hits,
        cached.db_queries,
        uncached.db_queries,
        cached.errors + uncached.errors
    );
    figures.push(format!("P6n db_query_reduction={reduction:.1} stale={stale}"));
    summary.push(format!(
        "P6n query reduction {reduction:.1} with near caches in {HOLDERS} contexts (≥ 20: {}), stale reads {stale} (0: {})",
        crate::verdict(reduction >= 20.0),
        crate::verdict(stale == 0)
    ));
}
