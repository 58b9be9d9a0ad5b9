//! The run's PostgreSQL schema: created by the orchestrator with the sample tables
//! (`AUTOCACHE_TEST_PG`, a fresh schema `autocache_r9_<pid>` per run, dropped at the end, as
//! are those of earlier runs that were killed), and each node's pool on it.

use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;
use autocache_codegen::migrate::migrate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool};

use crate::sample;

/// The server's URL comes from this variable.
const URL_VARIABLE: &str = "AUTOCACHE_TEST_PG";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Connections per node: a reader's tasks and a writer's transaction.
const NODE_POOL_SIZE: u32 = 4;

/// How long connecting may take before the run fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sample schema's next version, which the rolling-deploy scenarios deploy.
const NEXT_VERSION: &str = "tests/processes/rolling/sample_v2.yaml";

/// Every run's schema starts so; the rest is the orchestrator's process id.
const SCHEMA_PREFIX: &str = "autocache_r9_";

/// The PostgreSQL URL of this run.
pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A pool whose connections use `schema`.
pub async fn pool(url: &str, schema: &str, connections: u32) -> PgPool {
    let options: PgConnectOptions = url
        .parse()
        .unwrap_or_else(|error| panic!("{URL_VARIABLE}: bad URL {url}: {error}"));
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {url} ({error}): start it, or set \
                 {URL_VARIABLE}=<url> (default {DEFAULT_URL}; the user must be allowed to create schemas)"
            )
        })
}

/// A node's pool on the run's schema.
pub async fn node_pool(url: &str, schema: &str) -> PgPool {
    pool(url, schema, NODE_POOL_SIZE).await
}

/// The run's schema, dropped with [`RunSchema::drop_now`].
pub struct RunSchema {
    /// Its name.
    pub name: String,
    /// A pool on it (the orchestrator seeds rows with it).
    pub pool: PgPool,
}

impl RunSchema {
    /// Drops the schemas of earlier runs whose orchestrator is gone, then creates this run's
    /// with the sample tables.
    pub async fn create(url: &str) -> RunSchema {
        let name = format!("{SCHEMA_PREFIX}{}", std::process::id());
        let admin = pool(url, "public", 1).await;
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
                .bind(SCHEMA_PREFIX)
                .fetch_all(&admin)
                .await
                .expect("list earlier runs' schemas");
        for leftover in existing.iter().filter(|schema| is_leftover(schema)) {
            let _ = admin
                .execute(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{leftover}\" CASCADE")))
                .await;
        }
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .await
            .unwrap_or_else(|error| panic!("create schema {name}: {error}"));
        admin.close().await;
        let pool = pool(url, &name, 2).await;
        sample::create_tables(&pool).await.expect("create the sample tables");
        RunSchema { name, pool }
    }

    /// Drops the schema.
    pub async fn drop_now(self) {
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        if let Err(error) = self.pool.execute(AssertSqlSafe(statement)).await {
            eprintln!("warning: could not drop schema {}: {error}", self.name);
        }
        self.pool.close().await;
    }
}

/// Migrates the run's tables to the sample schema's next version
/// (`rolling/sample_v2.yaml`) with `autocache-codegen migrate`, as the migration before a
/// rolling deploy would (its new columns are nullable, so the running version's inserts and
/// updates, which do not name them, go on working). Once per run: the scenarios share the
/// run's schema.
pub async fn migrate_to_next_version(pool: &PgPool) {
    static MIGRATED: AtomicBool = AtomicBool::new(false);
    if MIGRATED.swap(true, Ordering::SeqCst) {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = |path: &str| {
        Config::new()
            .load(&root.join(path))
            .unwrap_or_else(|error| panic!("{path}: {error}"))
    };
    let (old, new) = (load("schema.yaml"), load(NEXT_VERSION));
    let statements = migrate(&old, &new, Dialect::Postgres).unwrap_or_else(|refused| panic!("{refused}"));
    for statement in statements {
        pool.execute(AssertSqlSafe(statement.clone()))
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

/// Whether `schema` belongs to a run whose process no longer exists.
fn is_leftover(schema: &str) -> bool {
    schema
        .strip_prefix(SCHEMA_PREFIX)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists())
}
