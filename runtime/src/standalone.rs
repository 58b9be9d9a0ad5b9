//! The context as a [`Scope`]: its reads go through the cache ([`crate::read`]), and each of
//! its writes is a transaction of its own (a standalone write: begun, written as in any
//! transaction, committed).

use std::future::Future;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::filter::Filter;
use crate::lock_first;
use crate::model::{Changes, Collection, Model, NewModel, UniqueField};
use crate::read;
use crate::relation::{JoinChange, JoinKey, JoinSide, KeyValue};
use crate::scope::Scope;

/// Runs one write as a transaction of its own, inside the call's tracing span: `$write` is
/// a [`Scope`] method call on the transaction `$tx`.
macro_rules! write_alone {
    ($ctx:expr, $model:expr, $op:literal, |$tx:ident| $write:expr) => {{
        let ctx = $ctx;
        let span = crate::trace::call($model, $op);
        tracing::Instrument::instrument(
            async move {
                let $tx = ctx.begin().await?;
                let written = $write.await?;
                $tx.commit().await?;
                Ok(written)
            },
            span,
        )
        .await
    }};
}

/// Reads through the cache; each write commits alone, its cache effects right after.
impl<DB: Dialect> Scope<DB> for Context<DB> {
    fn context(&self) -> &Context<DB> {
        self
    }

    fn get_many<M: Model<Db = DB>>(&self, ids: &[M::Id]) -> impl Future<Output = Result<Vec<Option<M>>>> + Send {
        read::get_many::<M>(self, ids)
    }

    fn get_by_unique<M, B>(
        &self,
        unique: &UniqueField,
        value: &str,
        bind: B,
    ) -> impl Future<Output = Result<Option<M>>> + Send
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync,
    {
        read::get_by_unique::<M, B>(self, unique, value, bind)
    }

    fn collection<M: Model<Db = DB>, O: KeyValue<DB>>(
        &self,
        collection: &Collection,
        owner: O,
    ) -> impl Future<Output = Result<Vec<M>>> + Send {
        read::collection::<M, O>(self, collection, owner)
    }

    fn find<M, B>(&self, collection: &Collection, value: &str, bind: B) -> impl Future<Output = Result<Vec<M>>> + Send
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync,
    {
        read::find::<M, B>(self, collection, value, bind)
    }

    async fn insert<N>(&self, new: &N) -> Result<N::Model>
    where
        N: NewModel,
        N::Model: Model<Db = DB>,
    {
        if let Some(inserted) = lock_first::insert(self, new).await? {
            return Ok(inserted);
        }
        write_alone!(self, &<N::Model as Model>::INFO, "insert", |tx| tx.insert(new))
    }

    async fn update<M: Model<Db = DB>>(&self, row: &M) -> Result<Option<M>> {
        if let Some(updated) = lock_first::update(self, row).await? {
            return Ok(updated);
        }
        write_alone!(self, &M::INFO, "update", |tx| tx.update(row))
    }

    async fn delete<M: Model<Db = DB>>(&self, id: &M::Id) -> Result<bool> {
        write_alone!(self, &M::INFO, "delete", |tx| tx.delete::<M>(id))
    }

    async fn join_write<S, O>(&self, side: &'static JoinSide, id: &S::Id, change: JoinChange<'_, O::Id>) -> Result<()>
    where
        S: Model<Db = DB, Id: JoinKey<DB>>,
        O: Model<Db = DB, Id: JoinKey<DB>>,
    {
        write_alone!(self, &S::INFO, "join_write", |tx| tx
            .join_write::<S, O>(side, id, change))
    }

    async fn update_where<M, F, C>(&self, filter: &F, changes: &C) -> Result<u64>
    where
        M: Model<Db = DB>,
        F: Filter<DB>,
        C: Changes<DB>,
    {
        write_alone!(self, &M::INFO, "update_where", |tx| tx
            .update_where::<M, F, C>(filter, changes))
    }

    async fn delete_where<M: Model<Db = DB>, F: Filter<DB>>(&self, filter: &F) -> Result<u64> {
        write_alone!(self, &M::INFO, "delete_where", |tx| tx.delete_where::<M, F>(filter))
    }
}
