//! Relations between models, as generated code declares them: the values that key a
//! collection or a join table, the sides of many-to-many relations and their through models,
//! and how a many-to-many write changes pairs. A collection key caches the member rows in
//! order ([`Holds::Rows`](crate::Holds::Rows): one lookup per read) or, for many-to-many sides, their primary
//! keys ([`Holds::Ids`](crate::Holds::Ids): the rows come from their own instance keys).

use std::fmt::Display;

use crate::db::Dialect;
use crate::model::{Collection, ModelInfo};

/// A value that can be bound to a statement and written into a key.
pub trait KeyValue<DB: Dialect>:
    for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + Display + Clone + Send + Sync + 'static
{
}

impl<DB: Dialect, T> KeyValue<DB> for T where
    T: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + Display + Clone + Send + Sync + 'static
{
}

/// A single-column primary key, as a many-to-many join table holds it: bound to its
/// statements and decoded from their rows.
pub trait JoinKey<DB: Dialect>: KeyValue<DB> + for<'r> sqlx::Decode<'r, DB> {}

impl<DB: Dialect, T> JoinKey<DB> for T where T: KeyValue<DB> + for<'r> sqlx::Decode<'r, DB> {}

/// One side of a many-to-many relation, as seen from model `S` towards model `O`.
#[derive(Debug)]
pub struct JoinSide {
    /// Inserts the pair (this side's key, the other side's key), ignoring an existing pair.
    pub insert: &'static str,
    /// Deletes the pair (this side's key, the other side's key).
    pub delete: &'static str,
    /// Selects the other side's keys paired with one key of this side.
    pub select_others: &'static str,
    /// The collection of other-side rows owned by a row of this side (`editors`).
    pub own: &'static Collection,
    /// The collection of this side's rows owned by an other-side row (`edited`).
    pub theirs: &'static Collection,
    /// The through model whose rows are the pairs, if the relation has one.
    pub through: Option<&'static Through>,
}

/// A many-to-many relation's through model, as seen from one side: the keys of its rows
/// that a pair written by the relation's writers changes.
#[derive(Debug)]
pub struct Through {
    /// The through model.
    pub model: &'static ModelInfo,
    /// Whether this side's key is the first part of the through model's key.
    pub this_first: bool,
    /// The through model's rows pointing at one row of this side (its foreign key's reverse).
    pub own: &'static Collection,
    /// The through model's rows pointing at one row of the other side.
    pub theirs: &'static Collection,
}

/// How a many-to-many write changes the pairs of one row.
pub enum JoinChange<'v, T> {
    /// Pairs these rows with it.
    Add(&'v [T]),
    /// Unpairs these rows from it.
    Remove(&'v [T]),
    /// Makes exactly these rows its pairs.
    Set(&'v [T]),
}
