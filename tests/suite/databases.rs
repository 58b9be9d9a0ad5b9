//! The databases the suite runs on: SQLite (a fresh file per test), PostgreSQL (a fresh
//! schema per test) and MariaDB (a fresh database per test), each with the sample schema's
//! repositories generated for its dialect by build.rs and its tables created with the
//! generated `create_tables` (or empty, for the differential checker's schemas). Every test's database is dropped when the test ends.
//!
//! PostgreSQL and MariaDB are servers the machine runs; the tests find them through
//! `AUTOCACHE_TEST_PG` and `AUTOCACHE_TEST_MYSQL`. A server that cannot be reached fails
//! the test with a message saying so: nothing is skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use autocache::Dialect;
use sqlx::pool::PoolOptions;
use sqlx::{AssertSqlSafe, Connection, Executor, Pool, Row};

/// A database the suite can open fresh for one test.
pub trait TestDatabase: Dialect {
    /// The dialect's name, as printed in figures (`db=postgres`).
    const DIALECT: &'static str;

    /// A fresh database without tables, and what removes it.
    fn open_empty() -> impl Future<Output = (Pool<Self>, Cleanup)> + Send;

    /// Creates the sample schema's tables (its generated `create_tables`).
    fn create_sample_tables(pool: &Pool<Self>) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// A fresh database with the sample schema's tables, and what removes it.
    fn open() -> impl Future<Output = (Pool<Self>, Cleanup)> + Send {
        async {
            let (pool, cleanup) = Self::open_empty().await;
            Self::create_sample_tables(&pool)
                .await
                .unwrap_or_else(|error| panic!("create the sample tables on {}: {error}", Self::DIALECT));
            (pool, cleanup)
        }
    }
}

/// Removes a test's database when dropped (also when the test panics).
pub struct Cleanup(Option<Box<dyn FnOnce() + Send>>);

impl Cleanup {
    fn new(remove: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(remove)))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(remove) = self.0.take() {
            remove();
        }
    }
}

/// Connections per test pool (the workloads run 20 tasks on one pool).
const POOL_SIZE: u32 = 8;

/// How long connecting to a server may take before the test fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub mod sqlite {
    //! SQLite: the generated crate `autocache_generated` (schema.yaml says `database: sqlite`).

    pub use autocache_generated as sample;

    use super::{Cleanup, TestDatabase};

    pub type Db = sqlx::Sqlite;

    impl TestDatabase for Db {
        const DIALECT: &'static str = "sqlite";

        async fn create_sample_tables(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::Error> {
            sample::create_tables(pool).await
        }

        async fn open_empty() -> (sqlx::Pool<Db>, Cleanup) {
            let (pool, path) = crate::env::empty_database().await;
            let cleanup = Cleanup::new(move || {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            });
            (pool, cleanup)
        }
    }
}

pub mod postgres {
    //! PostgreSQL: schema.yaml generated for `Dialect::Postgres` into `OUT_DIR/sample_postgres.rs`;
    //! each test gets its own schema, selected through the connections' `search_path`.

    use sqlx::postgres::PgConnectOptions;

    use super::{Cleanup, Server, TestDatabase};

    pub mod sample {
        include!(concat!(env!("OUT_DIR"), "/sample_postgres.rs"));
    }

    pub type Db = sqlx::Postgres;

    const SERVER: Server = Server {
        product: "PostgreSQL",
        variable: "AUTOCACHE_TEST_PG",
        default_url: "postgres://postgres@127.0.0.1:5432/test",
        list: "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'autocache\\_%'",
        create: "CREATE SCHEMA \"{name}\"",
        drop: "DROP SCHEMA IF EXISTS \"{name}\" CASCADE",
        lock_timeout: "SET lock_timeout = '10s'",
    };

    impl TestDatabase for Db {
        const DIALECT: &'static str = "postgres";

        async fn create_sample_tables(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::Error> {
            sample::create_tables(pool).await
        }

        async fn open_empty() -> (sqlx::Pool<Db>, Cleanup) {
            SERVER
                .open(|options: PgConnectOptions, schema| options.options([("search_path", schema)]))
                .await
        }
    }
}

pub mod mysql {
    //! MariaDB (the MySQL dialect): schema.yaml generated for `Dialect::Mysql` into
    //! `OUT_DIR/sample_mysql.rs`; each test gets its own database.

    use sqlx::mysql::MySqlConnectOptions;

    use super::{Cleanup, Server, TestDatabase};

    pub mod sample {
        include!(concat!(env!("OUT_DIR"), "/sample_mysql.rs"));
    }

    pub type Db = sqlx::MySql;

    const SERVER: Server = Server {
        product: "MariaDB",
        variable: "AUTOCACHE_TEST_MYSQL",
        default_url: "mysql://root@127.0.0.1:3306/test",
        list: "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name LIKE 'autocache\\_%'",
        create: "CREATE DATABASE `{name}`",
        drop: "DROP DATABASE IF EXISTS `{name}`",
        lock_timeout: "SET SESSION lock_wait_timeout = 10",
    };

    impl TestDatabase for Db {
        const DIALECT: &'static str = "mysql";

        async fn create_sample_tables(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::Error> {
            sample::create_tables(pool).await
        }

        async fn open_empty() -> (sqlx::Pool<Db>, Cleanup) {
            SERVER
                .open(|options: MySqlConnectOptions, database| options.database(database))
                .await
        }
    }
}

/// A database server the machine runs, and how the suite uses it.
struct Server {
    product: &'static str,
    /// The environment variable holding its URL.
    variable: &'static str,
    default_url: &'static str,
    /// Lists the names of the suite's databases (`autocache_…`).
    list: &'static str,
    /// Creates the database `{name}` (a schema on PostgreSQL).
    create: &'static str,
    /// Drops the database `{name}`.
    drop: &'static str,
    /// Bounds how long the drop waits for locks.
    lock_timeout: &'static str,
}

/// The options a connection of database `DB` is made with.
type ConnectOptionsOf<DB> = <<DB as sqlx::Database>::Connection as Connection>::Options;

impl Server {
    /// A fresh, empty database (a schema on PostgreSQL) on this server, and what removes
    /// it: the pool's connections are pointed at it by `isolate`. The process's first call
    /// also drops the [`leftovers`] of killed runs.
    async fn open<DB>(
        &'static self,
        isolate: impl FnOnce(ConnectOptionsOf<DB>, &str) -> ConnectOptionsOf<DB>,
    ) -> (Pool<DB>, Cleanup)
    where
        DB: sqlx::Database,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        String: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
        DB::Arguments: sqlx::IntoArguments<DB>,
    {
        let url = self.url();
        let options: ConnectOptionsOf<DB> = url
            .parse()
            .unwrap_or_else(|error| panic!("{}: bad URL {url}: {error}", self.variable));
        let mut admin = self.connect(DB::Connection::connect_with(&options), &url).await;
        if self.first_open() {
            let rows = sqlx::query(self.list).fetch_all(&mut admin).await.unwrap_or_default();
            let names = rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect();
            for name in leftovers(names) {
                let _ = admin.execute(AssertSqlSafe(self.drop_statement(&name))).await;
            }
        }
        let name = unique_database_name();
        let create = self.create.replace("{name}", &name);
        admin
            .execute(AssertSqlSafe(create.clone()))
            .await
            .unwrap_or_else(|error| panic!("{create} on {url}: {error}"));
        let _ = admin.close().await;
        let drop = self.drop_statement(&name);
        let cleanup = self.cleanup(&name, {
            let (options, lock_timeout) = (options.clone(), self.lock_timeout);
            move || async move {
                let mut conn = DB::Connection::connect_with(&options).await?;
                conn.execute(lock_timeout).await?;
                conn.execute(AssertSqlSafe(drop)).await?;
                conn.close().await
            }
        });
        let pool = PoolOptions::<DB>::new()
            .max_connections(POOL_SIZE)
            .connect_with(isolate(options, &name))
            .await
            .unwrap_or_else(|error| panic!("connect to {url} ({name}): {error}"));
        (pool, cleanup)
    }

    fn url(&self) -> String {
        std::env::var(self.variable).unwrap_or_else(|_| self.default_url.to_owned())
    }

    /// Connects, or fails the test explaining how to point the suite at a server.
    async fn connect<C, E: std::fmt::Display>(&self, connect: impl Future<Output = Result<C, E>>, url: &str) -> C {
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(conn)) => return conn,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer in {CONNECT_TIMEOUT:?}"),
        };
        panic!(
            "{product} is not reachable at {url}: {error}\n\
             The suite runs on SQLite, PostgreSQL and MariaDB and skips none of them: start \
             {product}, or point the tests at a running server with {variable}=<url> \
             (defaults: AUTOCACHE_TEST_PG=postgres://postgres@127.0.0.1:5432/test, \
             AUTOCACHE_TEST_MYSQL=mysql://root@127.0.0.1:3306/test; the user must be allowed \
             to create and drop schemas / databases).",
            product = self.product,
            variable = self.variable,
        )
    }

    /// Whether this is the process's first database on this server (which then drops the
    /// [`leftovers`] of killed runs).
    fn first_open(&self) -> bool {
        static OPENED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
        !OPENED[usize::from(self.variable == "AUTOCACHE_TEST_MYSQL")].swap(true, Ordering::SeqCst)
    }

    /// The statement that drops the schema or database `name`.
    fn drop_statement(&self, name: &str) -> String {
        self.drop.replace("{name}", name)
    }

    /// Runs `drop` when the test ends: on its own thread and runtime, since it runs in `Drop`
    /// (possibly while the test's runtime unwinds a panic).
    fn cleanup<F, Fut>(&self, name: &str, drop: F) -> Cleanup
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), sqlx::Error>>,
    {
        let (name, product) = (name.to_owned(), self.product);
        Cleanup::new(move || {
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| error.to_string())?;
                runtime.block_on(async move {
                    match tokio::time::timeout(Duration::from_secs(30), drop()).await {
                        Ok(result) => result.map_err(|error| error.to_string()),
                        Err(_) => Err("timed out".to_owned()),
                    }
                })
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!("warning: could not drop {product} test database {name}: {error}"),
                Err(_) => eprintln!("warning: dropping {product} test database {name} panicked"),
            }
        })
    }
}

/// A 32-bit FNV-1a hash of this host's name, so that runs on other hosts sharing a server
/// never sweep each other's databases.
fn host_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let hash = host.trim().bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// `autocache_<host>_<pid>_<n>`: unique to this process and call, valid unquoted in both
/// servers (lowercase letters, digits and underscores).
fn unique_database_name() -> String {
    crate::env::unique_name(&format!("autocache_{}", host_tag())).replace('-', "_")
}

/// The databases among `names` that this suite made on this host in a process that is gone
/// (killed before its cleanup ran). Only where `/proc` tells which processes live.
fn leftovers(names: Vec<String>) -> Vec<String> {
    if !std::path::Path::new("/proc/self").exists() {
        return Vec::new();
    }
    let host = host_tag();
    names
        .into_iter()
        .filter(|name| {
            let parts: Vec<&str> = name.split('_').collect();
            matches!(parts.as_slice(), ["autocache", tag, pid, _] if *tag == host
                && pid.parse::<u32>().is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()))
        })
        .collect()
}
