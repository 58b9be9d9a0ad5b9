//! autocache runtime: what generated repositories call.
//!
//! - [`Context`]: a database pool plus named cache backends ([`backend`]).
//! - [`Scope`]: where a generated repository runs, the context or a [`Transaction`]; its
//!   reads and writes keep the cache exactly in step with the database, through the lease /
//!   lock / compare-and-swap protocol of `protocol`.
//! - [`key`] and [`codec`]: safe keys and compact, versioned values.
//! - [`Stats`]: hits, misses, fills, invalidations and database queries, per context.
//!
//! # Layers
//!
//! The modules, bottom to top; each uses only modules listed before it (`tests/layers.rs`
//! fails if a module uses, directly or through others, one that uses it):
//!
//! 1. `codec`, `key`, `registry`, `stats`, `db`, `backend`, `error`, `fence`, `near`, `guard`, `filter`, `reserve`, `one_shot`:
//!    values, keys, counters, SQL dialects, cache servers and their fault handling, reserved
//!    primary keys, deletes in one statement.
//! 2. `model`, `relation`: what generated code declares, static descriptions and traits.
//! 3. `context`: the pool, the named backends, the options, the stats.
//! 4. `trace`, `protocol`, `fetch`: tracing spans; the consistency protocol on one model's
//!    keys; statements run and counted.
//! 5. `plans`: the write plans of a transaction, locked before its commit, completed after.
//! 6. `read`, `repo`: reads through the cache; evictions.
//! 7. `effects`: the keys a write of a row changes, planned.
//! 8. `write`, `join`, `bulk`, `lock_first`: the writes, run on a transaction's connection
//!    and planned, or (an update or insert that locks its one key first) on their own.
//! 9. `scope`: the [`Scope`] trait.
//! 10. `transaction`: [`Transaction`], a scope whose writes commit together.
//! 11. `standalone`: the context as a scope, each write a transaction of its own.

#![deny(unreachable_pub)]

pub mod backend;
mod bulk;
pub mod codec;
pub mod context;
pub mod db;
mod effects;
pub mod error;
mod fence;
mod fetch;
pub mod filter;
mod guard;
mod join;
pub mod key;
mod lock_first;
pub mod model;
mod near;
mod one_shot;
mod plans;
mod protocol;
mod read;
mod registry;
pub mod relation;
pub mod repo;
mod reserve;
mod scope;
mod standalone;
pub mod stats;
mod trace;
mod transaction;
mod write;

pub use backend::{CacheBackend, CacheError, Lookup, SharedBackend, Token};
pub use context::{Context, ContextBuilder, Options};
pub use db::Dialect;
pub use error::{Error, Result};
pub use filter::{Filter, Op, Test};
pub use key::Holds;
pub use model::{
    Changes, Collection, Dependent, DependentRows, Footprint, Joined, KeyedInsert, Membership, Model, ModelInfo,
    ModelSql, NewModel, OnDelete, Pair, UniqueField, UpdateReturns,
};
pub use relation::{JoinChange, JoinSide, Through};
pub use scope::Scope;
pub use stats::{Stats, StatsSnapshot};
pub use transaction::Transaction;

/// Re-exported so generated code, and a crate using it, needs no direct dependency on these
/// crates (their versions are the runtime's): `autocache::sqlx::types::chrono`, `…::Uuid` and
/// `…::JsonValue` are the field types of generated rows.
pub use {serde, sqlx};
