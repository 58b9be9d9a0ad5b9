//! Where a repository runs: a [`Context`] (reads through the cache, each write a
//! transaction of its own) or an open [`Transaction`](crate::Transaction) (reads on its
//! connection, seeing its writes; writes join it, their cache effects after its commit).
//! Generated repositories are generic over it, as sqlx's queries are over `Executor`:
//! `BookRepo::new(&ctx)` and `BookRepo::new(&tx)` have the same methods. The context's
//! implementation is in `crate::standalone`, the transaction's in `crate::transaction`.

use std::future::Future;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::filter::Filter;
use crate::model::{Changes, Collection, Model, NewModel, UniqueField};
use crate::relation::{JoinChange, JoinKey, JoinSide, KeyValue};

mod sealed {
    /// Only the runtime's scopes are scopes.
    pub trait Sealed {}
}

/// Implemented by the runtime's scopes only: [`Context`] and [`Transaction`](crate::Transaction).
pub(crate) use sealed::Sealed;

impl<DB: Dialect> Sealed for Context<DB> {}

/// A context or an open transaction: what a repository's calls run against. Its methods
/// are what generated repositories call; use the repositories.
pub trait Scope<DB: Dialect>: Sealed + Send + Sync {
    /// The context (pool, caches, options) of this scope.
    fn context(&self) -> &Context<DB>;

    /// Reads rows by primary key, in the order of `ids` (see [`crate::read::get_many`]).
    #[doc(hidden)]
    fn get_many<M: Model<Db = DB>>(&self, ids: &[M::Id]) -> impl Future<Output = Result<Vec<Option<M>>>> + Send;

    /// Reads one row by primary key.
    #[doc(hidden)]
    fn get<M: Model<Db = DB>>(&self, id: &M::Id) -> impl Future<Output = Result<Option<M>>> + Send {
        async move { Ok(self.get_many::<M>(std::slice::from_ref(id)).await?.pop().flatten()) }
    }

    /// Reads a row by a unique field or group (see [`crate::read::get_by_unique`]).
    #[doc(hidden)]
    fn get_by_unique<M, B>(
        &self,
        unique: &UniqueField,
        value: &str,
        bind: B,
    ) -> impl Future<Output = Result<Option<M>>> + Send
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync;

    /// Reads the members of a collection (see [`crate::read::collection`]).
    #[doc(hidden)]
    fn collection<M: Model<Db = DB>, O: KeyValue<DB>>(
        &self,
        collection: &Collection,
        owner: O,
    ) -> impl Future<Output = Result<Vec<M>>> + Send;

    /// Reads the single member of a reverse one-to-one.
    #[doc(hidden)]
    fn one<M: Model<Db = DB>, O: KeyValue<DB>>(
        &self,
        collection: &Collection,
        owner: O,
    ) -> impl Future<Output = Result<Option<M>>> + Send {
        async move { Ok(self.collection::<M, O>(collection, owner).await?.into_iter().next()) }
    }

    /// Reads the rows of an index lookup (see [`crate::read::find`]).
    #[doc(hidden)]
    fn find<M, B>(&self, collection: &Collection, value: &str, bind: B) -> impl Future<Output = Result<Vec<M>>> + Send
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync;

    /// Inserts a row (see [`crate::write::insert_planned`]).
    #[doc(hidden)]
    fn insert<N>(&self, new: &N) -> impl Future<Output = Result<N::Model>> + Send
    where
        N: NewModel,
        N::Model: Model<Db = DB>;

    /// Updates a row (see [`crate::write::update_planned`]).
    #[doc(hidden)]
    fn update<M: Model<Db = DB>>(&self, row: &M) -> impl Future<Output = Result<Option<M>>> + Send;

    /// Deletes a row (see [`crate::write::delete_planned`]).
    #[doc(hidden)]
    fn delete<M: Model<Db = DB>>(&self, id: &M::Id) -> impl Future<Output = Result<bool>> + Send;

    /// Changes many-to-many pairs (see [`crate::join::join_write_planned`]).
    #[doc(hidden)]
    fn join_write<S, O>(
        &self,
        side: &'static JoinSide,
        id: &S::Id,
        change: JoinChange<'_, O::Id>,
    ) -> impl Future<Output = Result<()>> + Send
    where
        S: Model<Db = DB, Id: JoinKey<DB>>,
        O: Model<Db = DB, Id: JoinKey<DB>>;

    /// Updates the rows matching `filter` (see [`crate::bulk::update_where_planned`]).
    #[doc(hidden)]
    fn update_where<M, F, C>(&self, filter: &F, changes: &C) -> impl Future<Output = Result<u64>> + Send
    where
        M: Model<Db = DB>,
        F: Filter<DB>,
        C: Changes<DB>;

    /// Deletes the rows matching `filter` (see [`crate::bulk::delete_where_planned`]).
    #[doc(hidden)]
    fn delete_where<M: Model<Db = DB>, F: Filter<DB>>(&self, filter: &F) -> impl Future<Output = Result<u64>> + Send;
}
