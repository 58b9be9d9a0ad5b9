//! The data the benchmark reads: a SQLite file with the sample schema's tables (what the
//! repositories run on), the same people in a PostgreSQL schema (the sqlx baselines, and the
//! writes of P9), and the contexts over the cache servers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use autocache::{CacheBackend, CacheError, Context, Dialect, Lookup, Options, SharedBackend, Token};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Pool, SqlitePool};

/// Books of [`Data::author50`].
pub const AUTHOR_BOOKS: usize = 50;

/// The rows loaded, by id (ids are dense from 1).
pub struct Data {
    pub persons: i64,
    /// Books (ids dense from 1, in author order).
    pub books: i64,
    /// The person with [`AUTHOR_BOOKS`] books (person 1).
    pub author50: i64,
}

/// A SQLite database file, removed on drop.
pub struct Database {
    pub pool: SqlitePool,
    pub data: Data,
    path: PathBuf,
}

impl Drop for Database {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// Rows per multi-row INSERT (SQLite allows 32766 bound values).
const INSERT_CHUNK: usize = 1000;

/// How many books person `p` (1-based) has: person 1 has [`AUTHOR_BOOKS`], the others 0..=3.
fn books_of(p: i64) -> i64 {
    if p == 1 { AUTHOR_BOOKS as i64 } else { p % 4 }
}

impl Database {
    /// A new database with `persons` people, their books (about 1.5 each, 50 for person 1),
    /// a volume for every third book and one editor per book.
    pub async fn create(persons: i64, label: &str) -> Database {
        let path = std::env::temp_dir().join(format!("autocache-bench-{}-{label}.sqlite", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("open the SQLite database");
        autocache_generated::create_tables(&pool)
            .await
            .expect("create the sample tables");

        let mut tx = pool.begin().await.expect("begin");
        let people: Vec<i64> = (1..=persons).collect();
        for chunk in people.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO person (id, name) VALUES {}",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &p in chunk {
                query = query.bind(p).bind(initial_name(p));
            }
            query.execute(&mut *tx).await.expect("insert people");
        }
        // (book id, author, rank)
        let mut books: Vec<(i64, i64, i64)> = Vec::new();
        for p in 1..=persons {
            for k in 0..books_of(p) {
                books.push((books.len() as i64 + 1, p, k * 7 % 50));
            }
        }
        for chunk in books.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO book (id, title, author_id, rank) VALUES {}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &(b, author, rank) in chunk {
                query = query.bind(b).bind(format!("Book {b}")).bind(author).bind(rank);
            }
            query.execute(&mut *tx).await.expect("insert books");
        }
        for chunk in books.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO book_editors (book_id, person_id) VALUES {}",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &(b, author, _) in chunk {
                query = query.bind(b).bind(author % persons + 1);
            }
            query.execute(&mut *tx).await.expect("insert editors");
        }
        let volumes: Vec<i64> = books.iter().map(|&(b, _, _)| b).filter(|b| b % 3 == 0).collect();
        for chunk in volumes.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO volume (book_id, order_in_series) VALUES {}",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &b in chunk {
                query = query.bind(b).bind(b % 5 + 1);
            }
            query.execute(&mut *tx).await.expect("insert volumes");
        }
        tx.commit().await.expect("commit the rows");
        Database {
            pool,
            data: Data {
                persons,
                books: books.len() as i64,
                author50: 1,
            },
            path,
        }
    }
}

/// A person's name encodes its version for the stale-read checker: `<id>:<version>`.
pub fn initial_name(p: i64) -> String {
    format!("{p}:0")
}

/// The version encoded in a person's name.
pub fn version_of(name: &str) -> u64 {
    name.rsplit(':').next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The sample schema's repositories generated for PostgreSQL (by `build/postgres.rs`).
pub mod pg {
    include!(concat!(env!("OUT_DIR"), "/sample_postgres.rs"));
}

/// Every run's PostgreSQL schema starts so; the rest is the process id.
const PG_SCHEMA_PREFIX: &str = "autocache_bench_";

/// A PostgreSQL schema of this process holding the sample tables and the same people as the
/// SQLite file; dropped by [`PgSchema::drop_schema`] (and, if the run was killed, by the
/// next run).
pub struct PgSchema {
    /// A pool as `PgPool::connect` makes it: it pings a connection before handing it out.
    pub pool: PgPool,
    /// A pool that does not (`test_before_acquire(false)`): the select alone.
    pub pool_no_ping: PgPool,
    /// A pool like `pool` whose commits do not wait for the WAL flush
    /// (`synchronous_commit=off`): writes without the disk's latency and its noise.
    pub pool_no_flush: PgPool,
    /// The primary-key select of a person.
    pub select: &'static str,
    name: String,
}

impl PgSchema {
    /// Drops the schemas of earlier runs whose process is gone, then creates this run's with
    /// the sample tables and people `1..=persons`.
    pub async fn create(url: &str, persons: i64) -> Result<PgSchema, sqlx::Error> {
        let options: PgConnectOptions = url.parse()?;
        let admin = pg_pool(options.clone(), true).await?;
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
                .bind(PG_SCHEMA_PREFIX)
                .fetch_all(&admin)
                .await?;
        let name = format!("{PG_SCHEMA_PREFIX}{}", std::process::id());
        for schema in existing.iter().filter(|schema| **schema == name || is_leftover(schema)) {
            drop_pg_schema(&admin, schema).await?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let options = options.options([("search_path", name.as_str())]);
        let pool = pg_pool(options.clone(), true).await?;
        pg::create_tables(&pool).await?;
        sqlx::query("INSERT INTO person (name) SELECT n::text || ':0' FROM generate_series(1, $1) AS n")
            .bind(persons)
            .execute(&pool)
            .await?;
        sqlx::raw_sql("ANALYZE person").execute(&pool).await?;
        Ok(PgSchema {
            pool,
            pool_no_ping: pg_pool(options.clone(), false).await?,
            pool_no_flush: pg_pool(options.options([("synchronous_commit", "off")]), true).await?,
            select: "SELECT id, name FROM person WHERE id = $1",
            name,
        })
    }

    /// Drops the schema and closes the pools.
    pub async fn drop_schema(self) {
        let _ = drop_pg_schema(&self.pool, &self.name).await;
        for pool in [self.pool, self.pool_no_ping, self.pool_no_flush] {
            pool.close().await;
        }
    }
}

/// A pool of 4 connections; `ping`: whether it tests a connection before handing it out.
async fn pg_pool(options: PgConnectOptions, ping: bool) -> Result<PgPool, sqlx::Error> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(ping)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

async fn drop_pg_schema(pool: &PgPool, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(pool)
    .await
    .map(drop)
}

/// Whether `schema` is a run's whose process is gone (the server is on this machine).
fn is_leftover(schema: &str) -> bool {
    schema
        .strip_prefix(PG_SCHEMA_PREFIX)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// A context whose `default` and `other` backends are both `backend`, keys under `namespace`.
pub fn context<DB: Dialect>(pool: &Pool<DB>, backend: SharedBackend, namespace: &str) -> Context<DB> {
    let options = Options {
        key_namespace: format!("{namespace}:"),
        ..Options::default()
    };
    Context::builder(pool.clone())
        .options(options)
        .backend("default", backend.clone())
        .backend("other", backend)
        .build()
}

/// A backend that never hits: every lookup grants a lease, every fill is refused. A
/// context over it runs exactly the database statements an uncached application would.
#[derive(Default)]
pub struct NeverHit {
    next: AtomicU64,
}

impl NeverHit {
    pub fn shared() -> SharedBackend {
        Arc::new(NeverHit::default())
    }

    fn token(&self) -> Token {
        Token(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[async_trait]
impl CacheBackend for NeverHit {
    fn kind(&self) -> &'static str {
        "never-hit"
    }

    async fn lookup(&self, keys: &[&str], _lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        Ok(keys.iter().map(|_| Lookup::Lease(self.token())).collect())
    }

    async fn fill(&self, _key: &str, _bytes: &[u8], _token: Token, _ttl: Duration) -> Result<bool, CacheError> {
        Ok(false)
    }

    async fn lock(&self, keys: &[&str], _marker: &[u8], _ttl: Duration) -> Result<Vec<Token>, CacheError> {
        Ok(keys.iter().map(|_| self.token()).collect())
    }

    async fn release(&self, _key: &str, _token: Token) -> Result<(), CacheError> {
        Ok(())
    }

    async fn evict(&self, _keys: &[&str]) -> Result<(), CacheError> {
        Ok(())
    }
}
