//! R9: "never stale" across processes. A writer and several readers run as separate OS
//! processes, each with its own `autocache::Context` (own database pool, own cache
//! connections), on PostgreSQL and real cache servers (two memcached, redis, a Redis
//! Cluster), while the orchestrator injects one fault per scenario: none, a server frozen
//! and thawed, killed and restarted empty, one process partitioned from one server by a
//! relay, the writer killed while its transaction holds locks; plus a naive control reader
//! that fills the cache unconditionally, which the checker must catch.
//!
//! This binary is both: without [`spec::NODE_VARIABLE`] it is the orchestrator
//! ([`orchestrator`], which documents the knobs), with it a node ([`node`]) that the
//! orchestrator started by running this very executable again. Each scenario prints
//!
//! ```text
//! R9 scenario=<name> backend=<memcached2|redis|cluster> processes=<n> reads=<n> writes=<n> stale=<n> stale_churn=<n> caller_errors=<n> p99_read_ms=<x> max_write_ms=<x>
//! ```
//!
//! The rolling-deploy scenarios (R12) run two processes of two builds (the sample schema and
//! its next version, see [`builds`]) that both write and read, and print
//!
//! ```text
//! R12 scenario=rolling-deploy processes=2 reads=<n> writes=<n> stale=<n> stale_v1=<n> stale_v2=<n> …
//! ```
//!
//! R13 runs the same with near caches in every node (process memory in front of the two
//! memcached servers, kept right by a redis pub/sub invalidation channel of its own): steady
//! state, the channel frozen and killed, one reader frozen, the writer killed, and the naive
//! control whose writes do not wait for near invalidations, which the checker must catch:
//!
//! ```text
//! R13 scenario=<name> processes=<n> near_hits=<n> reads=<n> writes=<n> stale=<n> caller_errors=<n> near_share=<x> max_write_ms=<x>
//! ```
//!
//! Run it alone with `cargo test --test processes` (`AUTOCACHE_TEST_PG` names the
//! PostgreSQL server, as for the suite).

mod builds;
mod checker;
mod database;
mod faults;
mod node;
mod nodes;
mod orchestrator;
mod spec;

/// The sample schema's repositories, generated for PostgreSQL by build.rs.
mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample_postgres.rs"));
}

/// The sample schema's next version (R12), generated for PostgreSQL by build.rs with its
/// lock file (see [`builds`]).
mod sample_v2 {
    include!(concat!(env!("OUT_DIR"), "/rolling/sample.rs"));
}

/// The same without its lock file: the rolling deploy's naive control.
mod sample_v2_naive {
    include!(concat!(env!("OUT_DIR"), "/rolling_naive/sample.rs"));
}

fn main() {
    match spec::NodeSpec::of_this_process() {
        Some(spec) => node::run(spec),
        None => orchestrator::run(),
    }
}
