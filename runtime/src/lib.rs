//! autocache runtime: what generated repositories call.
//!
//! - [`Context`]: a database pool plus named cache backends ([`backend`]).
//! - [`repo`]: generic reads and writes that keep the cache exactly in step with the
//!   database, through the lease / lock / compare-and-swap protocol in [`protocol`].
//! - [`key`] and [`codec`]: safe keys and compact, versioned values.
//! - [`Stats`]: hits, misses, fills, invalidations and database queries, per context.

#![deny(unreachable_pub)]

pub mod backend;
mod bulk;
pub mod codec;
pub mod context;
pub mod db;
pub mod error;
mod fence;
pub mod filter;
mod guard;
pub mod key;
mod lock_first;
pub mod model;
mod near;
mod plans;
mod protocol;
pub mod relation;
pub mod repo;
mod scope;
pub mod stats;
mod trace;
mod transaction;

pub use backend::{CacheBackend, CacheError, Lookup, SharedBackend, Token};
pub use context::{Context, ContextBuilder, Options};
pub use db::Dialect;
pub use error::{Error, Result};
pub use filter::{Filter, Op, Test};
pub use key::Holds;
pub use model::{
    Changes, Collection, Dependent, DependentRows, Footprint, Joined, Membership, Model, ModelInfo, ModelSql, NewModel,
    OnDelete, Pair, UniqueField, UpdateReturns,
};
pub use relation::{JoinChange, JoinSide, Through};
pub use scope::Scope;
pub use stats::{Stats, StatsSnapshot};
pub use transaction::Transaction;

/// Re-exported so generated code, and a crate using it, needs no direct dependency on these
/// crates (their versions are the runtime's): `autocache::sqlx::types::chrono`, `…::Uuid` and
/// `…::JsonValue` are the field types of generated rows.
pub use {serde, sqlx};
