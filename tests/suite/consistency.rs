//! "Never stale" as a tested property: the stale-read checker on every backend (and on a
//! deliberately naive fill, to show the checker catches staleness), the herd test, and a
//! memcached server killed and restarted in the middle of a run, on SQLite; the stale-read
//! checkers (instances and collections) on PostgreSQL and MariaDB with two memcached servers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use autocache::backend::memory::MemoryBackend;
use autocache::{CacheBackend, CacheError, Context, Lookup, Options, SharedBackend, Token};
use autocache_generated::{NewPerson, PersonRepo};
use autocache_testkit::memcached::{self, Memcached};
use sqlx::Sqlite;

use crate::collection_workload::RunCollections;
use crate::databases::TestDatabase;
use crate::env::{Kind, env_on_with, env_with, unique_name};
use crate::workload::{RunOn, Workload};

/// Fault injection: up to 3 ms between a reader's database read and its fill.
fn racy_options() -> Options {
    Options {
        fill_delay: Duration::from_millis(3),
        ..Options::default()
    }
}

/// Both checkers on database `DB` with backend `kind`. Prints `R1` lines; those of PostgreSQL
/// and MariaDB name the database (`db=postgres`), SQLite's keep their original form.
async fn stale_reads_on<DB>(kind: Kind, name: &str)
where
    DB: TestDatabase + RunCollections,
    Workload: RunOn<DB>,
{
    let db = match DB::DIALECT {
        "sqlite" => String::new(),
        other => format!(" db={other}"),
    };
    let env = env_on_with::<DB>(kind, racy_options()).await;
    let out = Workload::default().run(&env.ctx, async {}).await;
    println!(
        "R1 backend={name}{db} reads={} writes={} stale={}",
        out.reads, out.writes, out.stale
    );
    assert!(out.reads > 100 && out.writes > 10, "workload too small: {out:?}");
    assert_eq!(out.stale, 0, "stale reads on {name}: {out:?}");
    assert_eq!(out.caller_errors, 0, "{:?}", out.first_error);

    let out = crate::collection_workload::run(&env.ctx, Duration::from_secs(2)).await;
    println!(
        "R1 backend={name}{db} kind=collections reads={} writes={} stale={}",
        out.reads, out.writes, out.stale
    );
    assert!(
        out.reads > 100 && out.writes > 10,
        "collection workload too small: {out:?}"
    );
    assert_eq!(out.stale, 0, "stale collection reads on {name}: {out:?}");
    assert_eq!(out.caller_errors, 0, "{:?}", out.first_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_reads() {
    stale_reads_on::<Sqlite>(Kind::Memory, "memory").await;
    stale_reads_on::<Sqlite>(Kind::MemcachedOne, "memcached").await;
    stale_reads_on::<Sqlite>(Kind::MemcachedTwo, "memcached-2").await;
    stale_reads_on::<Sqlite>(Kind::Redis, "redis").await;
    stale_reads_on::<Sqlite>(Kind::RedisCluster, "redis-cluster").await;

    // The same workload with an unconditional fill must be caught.
    let (pool, _cleanup) = <Sqlite as TestDatabase>::open().await;
    let naive: SharedBackend = Arc::new(NaiveFill(Arc::new(MemoryBackend::new(64 << 20))));
    let ctx = Context::builder(pool).options(racy_options()).fallback(naive).build();
    let out = Workload::default().run(&ctx, async {}).await;
    println!(
        "R1 backend=naive reads={} writes={} stale={}",
        out.reads, out.writes, out.stale
    );
    assert!(
        out.stale > 0,
        "the checker failed to see the naive fill's stale reads: {out:?}"
    );
}

mod postgres {
    use super::{Kind, stale_reads_on};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stale_reads() {
        stale_reads_on::<sqlx::Postgres>(Kind::MemcachedTwo, "memcached-2").await;
    }
}

mod mysql {
    use super::{Kind, stale_reads_on};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stale_reads() {
        stale_reads_on::<sqlx::MySql>(Kind::MemcachedTwo, "memcached-2").await;
    }
}

/// Test code only: the seed's cache-aside fill, an unconditional set that ignores tokens.
struct NaiveFill(SharedBackend);

#[async_trait]
impl CacheBackend for NaiveFill {
    fn kind(&self) -> &'static str {
        "naive"
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        let found = self.0.lookup(keys, lease_ttl).await?;
        Ok(found
            .into_iter()
            .map(|l| if l == Lookup::Busy { Lookup::Lease(Token(0)) } else { l })
            .collect())
    }

    async fn fill(&self, key: &str, bytes: &[u8], _token: Token, ttl: Duration) -> Result<bool, CacheError> {
        self.0.lock(&[key], bytes, ttl).await.map(|_| true)
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        self.0.lock(keys, marker, ttl).await
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        self.0.release(key, token).await
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        self.0.evict(keys).await
    }
}

async fn herd_on(kind: Kind, name: &str) {
    let env = env_with(kind, Options::default()).await;
    let people = PersonRepo::new(&env.ctx);
    let hot = people.insert(&NewPerson { name: "hot".into() }).await.unwrap();
    people.evict(hot.id).await.unwrap();
    let before = env.ctx.snapshot();
    let reads = (0..100).map(|_| {
        let ctx = env.ctx.clone();
        tokio::spawn(async move { PersonRepo::new(&ctx).get(hot.id).await })
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap().unwrap().map(|p| p.name), Some("hot".to_owned()));
    }
    let queries = (env.ctx.snapshot() - before).db_queries;
    println!("P5 readers=100 db_queries={queries} backend={name}");
    assert_eq!(queries, 1, "herd on {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn herd() {
    herd_on(Kind::Memory, "memory").await;
    herd_on(Kind::MemcachedTwo, "memcached-2").await;
    herd_on(Kind::Redis, "redis").await;
    herd_on(Kind::RedisCluster, "redis-cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_server_killed_and_restarted() {
    let mut servers = [Memcached::start(), Memcached::start()];
    let url = memcached::url(&servers.iter().collect::<Vec<_>>());
    let (pool, _cleanup) = <Sqlite as TestDatabase>::open().await;
    let options = Options {
        key_namespace: format!("{}:", unique_name("r2")),
        ..racy_options()
    };
    let ctx = Context::builder(pool)
        .options(options)
        .backend_url("default", &url)
        .await
        .unwrap()
        .build();
    // Sixteen rows, so that both servers hold hot keys (all on one: 1 chance in 32768).
    let workload = Workload {
        rows: 16,
        duration: Duration::from_secs(3),
        ..Workload::default()
    };
    let victim = &mut servers[1];
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        victim.kill();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        victim.restart();
    };
    let out = workload.run(&ctx, chaos).await;
    let stats = ctx.snapshot();
    println!(
        "R2 caller_errors={} stale={} reads={} writes={} cache_errors={}",
        out.caller_errors, out.stale, out.reads, out.writes, stats.cache_errors
    );
    assert_eq!(out.caller_errors, 0, "{:?}", out.first_error);
    assert_eq!(out.stale, 0);
    assert!(stats.cache_errors > 0, "the kill was not noticed");
}
