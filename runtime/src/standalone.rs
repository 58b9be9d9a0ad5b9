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

/// How many times a standalone delete at a snapshot is tried before it runs as any other
/// write (each try that fails was refused by the database: a row came to point at the
/// deleted one meanwhile).
const SNAPSHOT_ATTEMPTS: usize = 3;

/// Runs one write as a transaction of its own, inside the call's tracing span: `$write` is
/// a [`Scope`] method call on the transaction `$tx`. With `$begin`, `$write` is given what
/// `ctx.$begin()` returned and commits it itself.
macro_rules! write_alone {
    ($ctx:expr, $model:expr, $op:literal, |$tx:ident| $write:expr) => {{
        write_alone!(
            $ctx,
            $model,
            $op,
            |$tx| async {
                let written = $write.await?;
                $tx.commit().await?;
                Ok(written)
            },
            begin
        )
    }};
    ($ctx:expr, $model:expr, $op:literal, |$tx:ident| $write:expr, $begin:ident) => {{
        let ctx = $ctx;
        let span = crate::trace::call($model, $op);
        tracing::Instrument::instrument(
            async move {
                let $tx = ctx.$begin().await?;
                $write.await
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
        if let Some(deleted) = lock_first::delete::<M>(self, id).await? {
            return Ok(deleted);
        }
        if M::ONLY_INSTANCE_KEY {
            for _ in 0..SNAPSHOT_ATTEMPTS {
                let attempt: Result<Option<bool>> = write_alone!(
                    self,
                    &M::INFO,
                    "delete",
                    |tx| async {
                        let Some(tx) = tx else { return Ok(None) };
                        let deleted = tx.delete::<M>(id).await?;
                        tx.commit().await?;
                        Ok(Some(deleted))
                    },
                    begin_at_snapshot
                );
                match attempt {
                    Ok(Some(deleted)) => return Ok(deleted),
                    Ok(None) => break,
                    Err(error) if error.is_serialization_failure() => continue,
                    Err(error) => return Err(error),
                }
            }
        }
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
