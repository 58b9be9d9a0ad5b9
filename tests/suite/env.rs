//! A test environment: a fresh database (SQLite, PostgreSQL or MariaDB, see
//! [`crate::databases`]) with the sample schema's tables, and a context whose `default` and
//! `other` backends are of one kind, on real servers that live as long as the environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use autocache::backend::memory::MemoryBackend;
use autocache::{Context, Dialect, Options, StatsSnapshot};
use autocache_testkit::memcached::{self, Memcached};
use autocache_testkit::redis::{Redis, RedisCluster};
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::databases::{Cleanup, TestDatabase};

/// The backend kinds every scenario runs on.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// The in-process cache (embedded default).
    Memory,
    /// One memcached server holding both named backends.
    MemcachedOne,
    /// Two memcached servers; each named backend spreads its keys over both.
    MemcachedTwo,
    /// One redis server.
    Redis,
    /// A three-master Redis Cluster.
    RedisCluster,
}

/// Servers kept alive for the environment's lifetime.
#[allow(dead_code)]
pub enum Servers {
    None,
    Memcached(Vec<Memcached>),
    Redis(Redis),
    Cluster(RedisCluster),
}

/// One test's database, context and servers (SQLite unless said otherwise).
pub struct Env<DB: Dialect = Sqlite> {
    pub ctx: Context<DB>,
    _servers: Servers,
    /// Removes the database; declared last, so it runs after the context (and its pool) is gone.
    _database: Cleanup,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A name unique to this test process and call.
pub fn unique_name(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A fresh SQLite database file with the sample schema's tables.
pub async fn database() -> (sqlx::SqlitePool, PathBuf) {
    let (pool, path) = empty_database().await;
    autocache_generated::create_tables(&pool).await.expect("create tables");
    (pool, path)
}

/// A fresh SQLite database file without tables.
pub async fn empty_database() -> (sqlx::SqlitePool, PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name("autocache-test")));
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("open sqlite");
    (pool, path)
}

/// Starts the servers of `kind` and a context on SQLite whose `default` and `other` use them.
pub async fn env(kind: Kind) -> Env {
    env_on::<Sqlite>(kind).await
}

/// Like [`env`], with protocol options.
pub async fn env_with(kind: Kind, options: Options) -> Env {
    env_on_with::<Sqlite>(kind, options).await
}

/// Like [`env`], on a fresh database of `DB`.
pub async fn env_on<DB: TestDatabase>(kind: Kind) -> Env<DB> {
    env_on_with::<DB>(kind, Options::default()).await
}

/// Like [`env_on`], with protocol options.
pub async fn env_on_with<DB: TestDatabase>(kind: Kind, options: Options) -> Env<DB> {
    context_on(kind, options, DB::open().await).await
}

/// Like [`env_on`], on a database without tables (the test creates its own).
pub async fn empty_env<DB: TestDatabase>(kind: Kind) -> Env<DB> {
    context_on(kind, Options::default(), DB::open_empty().await).await
}

/// A context on `pool` whose `default` and `other` backends are servers of `kind`.
async fn context_on<DB: Dialect>(
    kind: Kind,
    mut options: Options,
    (pool, database): (sqlx::Pool<DB>, Cleanup),
) -> Env<DB> {
    options.key_namespace = format!("{}:", unique_name("t"));
    let builder = Context::builder(pool).options(options);
    let (builder, servers) = match kind {
        Kind::Memory => {
            let memory = Arc::new(MemoryBackend::new(64 << 20));
            (
                builder.backend("default", memory.clone()).backend("other", memory),
                Servers::None,
            )
        }
        Kind::MemcachedOne | Kind::MemcachedTwo => {
            let count = if matches!(kind, Kind::MemcachedOne) { 1 } else { 2 };
            let servers: Vec<Memcached> = (0..count).map(|_| Memcached::start()).collect();
            let url = memcached::url(&servers.iter().collect::<Vec<_>>());
            (with_url(builder, &url).await, Servers::Memcached(servers))
        }
        Kind::Redis => {
            let redis = Redis::start();
            (with_url(builder, &redis.url()).await, Servers::Redis(redis))
        }
        Kind::RedisCluster => {
            let cluster = RedisCluster::start();
            (with_url(builder, &cluster.url()).await, Servers::Cluster(cluster))
        }
    };
    Env {
        ctx: builder.build(),
        _servers: servers,
        _database: database,
    }
}

async fn with_url<DB: Dialect>(builder: autocache::ContextBuilder<DB>, url: &str) -> autocache::ContextBuilder<DB> {
    let builder = builder
        .backend_url("default", url)
        .await
        .expect("connect default backend");
    builder.backend_url("other", url).await.expect("connect other backend")
}

impl<DB: Dialect> Env<DB> {
    /// Runs `work` and asserts it issued exactly `queries` database queries.
    pub async fn queries<T>(&self, queries: u64, work: impl Future<Output = T>) -> T {
        let before = self.ctx.snapshot();
        let out = work.await;
        let delta: StatsSnapshot = self.ctx.snapshot() - before;
        assert_eq!(
            delta.db_queries, queries,
            "expected {queries} database queries, stats: {delta:?}"
        );
        out
    }
}
