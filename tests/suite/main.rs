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

/// The three database modules of a scenario file, each with its tests: `$scenarios!(db)`
/// defines `all_scenarios(kind)` on that database's repositories; SQLite runs it on every
/// backend kind, PostgreSQL and MariaDB on the in-process cache, two memcached servers and
/// redis.
macro_rules! on_every_database {
    ($scenarios:ident) => {
        pub mod sqlite {
            $scenarios!(sqlite);
            backend_tests!(all_scenarios:
                memory => Memory,
                memcached_one_server => MemcachedOne,
                memcached_two_servers => MemcachedTwo,
                redis => Redis,
                redis_cluster => RedisCluster,
            );
        }

        pub mod postgres {
            $scenarios!(postgres);
            backend_tests!(all_scenarios: memory => Memory, memcached_two_servers => MemcachedTwo, redis => Redis);
        }

        pub mod mysql {
            $scenarios!(mysql);
            backend_tests!(all_scenarios: memory => Memory, memcached_two_servers => MemcachedTwo, redis => Redis);
        }
    };
}

mod bad_input;
mod bulk;
mod cascades;
mod collection_workload;
mod collections;
mod consistency;
mod databases;
mod differential;
mod env;
mod explained;
mod fences;
mod fixtures;
mod import;
mod instances;
mod migrate;
mod multicache;
mod near;
mod observability;
mod schema_language;
mod transactions;
mod workload;
