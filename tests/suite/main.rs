//! The integration suite: the seed's scenarios in our words, on every backend, with real
//! servers started by the test harness, on SQLite, PostgreSQL and MariaDB
//! (`AUTOCACHE_TEST_PG`, `AUTOCACHE_TEST_MYSQL`; see `databases`).

/// One `#[tokio::test]` per backend kind, each running `$scenarios(kind)`:
/// `backend_tests!(all_scenarios: memory => Memory, redis => Redis)`.
macro_rules! backend_tests {
    ($scenarios:ident: $($test:ident => $kind:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $scenarios(crate::env::Kind::$kind).await;
            }
        )+
    };
}

mod bad_input;
mod bulk;
mod collection_workload;
mod collections;
mod consistency;
mod databases;
mod env;
mod fixtures;
mod instances;
mod multicache;
mod observability;
mod transactions;
mod workload;
