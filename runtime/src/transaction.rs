//! Transactions: several writes committed together, their cache effects applied only
//! after the commit.
//!
//! Reads inside a transaction go to the database on the transaction's connection (they
//! see its own writes) and never touch the cache. Each write locks its keys right after
//! its statement, as outside a transaction; the fills happen after [`Transaction::commit`].
//! [`Transaction::rollback`] gives the locks back and leaves the cache as it was. A
//! transaction dropped without either rolls back in the database, and a task gives its
//! locks back (if there is no tokio runtime to run it on, they expire after `lock_ttl`;
//! until then readers of those keys read the database).

use std::collections::HashSet;

use sqlx::Database;

use crate::bulk::{delete_where_planned, update_where_planned};
use crate::context::Context;
use crate::db::Dialect;
use crate::error::Result;
use crate::fence::{Undelivered, record_in};
use crate::model::{Changes, Filter, Model, NewModel};
use crate::plans::{PlanSet, finish};
use crate::protocol::LockedWrite;
use crate::relation::{JoinChange, JoinKey, JoinSide, join_write_planned};
use crate::repo::{delete_planned, get_uncached, insert_planned, update_planned};

/// Runs one write as a transaction of its own, inside the call's tracing span: `$write` is
/// a [`Transaction`] method call on `$tx`. What a standalone `insert`, `update`, ... is.
macro_rules! write_alone {
    ($ctx:expr, $model:expr, $op:literal, |$tx:ident| $write:expr) => {{
        let ctx = $ctx;
        let span = crate::trace::call($model, $op);
        tracing::Instrument::instrument(
            async move {
                let mut $tx = ctx.begin().await?;
                let written = $write.await?;
                $tx.commit().await?;
                Ok(written)
            },
            span,
        )
        .await
    }};
}
pub(crate) use write_alone;

/// An open database transaction whose cache invalidations wait for its commit.
pub struct Transaction<'c, DB: Dialect> {
    ctx: &'c Context<DB>,
    /// `None` once committed or rolled back.
    tx: Option<sqlx::Transaction<'static, DB>>,
    locked: Vec<LockedWrite<'c, 'c>>,
    /// Invalidations whose lock did not reach their server, recorded in the fence outbox
    /// inside this transaction (see [`crate::fence`]).
    fenced: HashSet<Undelivered>,
    /// Whether the fence outbox exists, so missed locks can be recorded in the transaction.
    can_fence: bool,
}

impl<DB: Dialect> Context<DB> {
    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Transaction<'_, DB>> {
        // The outbox is created outside any transaction (MySQL commits on DDL).
        let can_fence = match self.fence() {
            Some(fence) => fence.ensure_created().await,
            None => false,
        };
        Ok(Transaction {
            ctx: self,
            tx: Some(crate::db::begin_write(self.pool()).await?),
            locked: Vec::new(),
            fenced: HashSet::new(),
            can_fence,
        })
    }
}

impl<'c, DB: Dialect> Transaction<'c, DB> {
    fn conn(&mut self) -> &mut <DB as Database>::Connection {
        self.tx
            .as_mut()
            .expect("an open transaction: commit and rollback consume it")
    }

    /// The transaction and its locks, taken out (so that `Drop` has nothing left to do).
    fn take(&mut self) -> (sqlx::Transaction<'static, DB>, Vec<LockedWrite<'c, 'c>>) {
        let tx = self
            .tx
            .take()
            .expect("an open transaction: commit and rollback consume it");
        (tx, std::mem::take(&mut self.locked))
    }

    /// Locks the keys of one write; the locks that did not reach their server are recorded
    /// in the fence outbox inside this transaction, so they become visible with its commit.
    async fn keep(&mut self, plans: PlanSet<'c, DB>) -> Result<()> {
        let locked = plans.lock().await;
        let missed: Vec<Undelivered> = locked
            .iter()
            .flat_map(LockedWrite::missed)
            .filter(|missed| !self.fenced.contains(*missed))
            .cloned()
            .collect();
        self.locked.extend(locked);
        if !missed.is_empty() && self.can_fence {
            record_in::<DB>(self.conn(), &missed).await?;
            self.fenced.extend(missed);
        }
        Ok(())
    }

    /// Reads a row by primary key from the database, seeing this transaction's writes.
    pub async fn get<M: Model<Db = DB>>(&mut self, id: &M::Id) -> Result<Option<M>> {
        let ctx = self.ctx;
        get_uncached::<M>(ctx, self.conn(), id).await
    }

    /// Inserts a row (see [`crate::repo::insert`]).
    pub async fn insert<N>(&mut self, new: &N) -> Result<N::Model>
    where
        N: NewModel,
        N::Model: Model<Db = DB>,
    {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        let row = insert_planned(ctx, self.conn(), &mut plans, new).await?;
        self.keep(plans).await?;
        Ok(row)
    }

    /// Updates a row (see [`crate::repo::update`]).
    pub async fn update<M: Model<Db = DB>>(&mut self, row: &M) -> Result<Option<M>> {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        let new = update_planned(ctx, self.conn(), &mut plans, row).await?;
        self.keep(plans).await?;
        Ok(new)
    }

    /// Deletes a row (see [`crate::repo::delete`]).
    pub async fn delete<M: Model<Db = DB>>(&mut self, id: &M::Id) -> Result<bool> {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        let existed = delete_planned::<M>(ctx, self.conn(), &mut plans, id).await?;
        self.keep(plans).await?;
        Ok(existed)
    }

    /// Changes many-to-many pairs (see [`crate::relation::join_write`]).
    pub async fn join_write<S, O>(
        &mut self,
        side: &'static JoinSide,
        id: &S::Id,
        change: JoinChange<'_, O::Id>,
    ) -> Result<()>
    where
        S: Model<Db = DB, Id: JoinKey<DB>>,
        O: Model<Db = DB, Id: JoinKey<DB>>,
    {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        join_write_planned::<S, O>(ctx, self.conn(), &mut plans, side, id, change).await?;
        self.keep(plans).await?;
        Ok(())
    }

    /// Updates the rows matching `filter` (see [`crate::bulk::update_where`]).
    pub async fn update_where<M, F, C>(&mut self, filter: &F, changes: &C) -> Result<u64>
    where
        M: Model<Db = DB>,
        F: Filter<DB>,
        C: Changes<DB>,
    {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        let count = update_where_planned::<M, F, C>(ctx, self.conn(), &mut plans, filter, changes).await?;
        self.keep(plans).await?;
        Ok(count)
    }

    /// Deletes the rows matching `filter` (see [`crate::bulk::delete_where`]).
    pub async fn delete_where<M: Model<Db = DB>, F: Filter<DB>>(&mut self, filter: &F) -> Result<u64> {
        let ctx = self.ctx;
        let mut plans = PlanSet::new(ctx);
        let count = delete_where_planned::<M, F>(ctx, self.conn(), &mut plans, filter).await?;
        self.keep(plans).await?;
        Ok(count)
    }

    /// Commits, then fills or releases every key the writes locked.
    pub async fn commit(mut self) -> Result<()> {
        let (tx, locked) = self.take();
        let fenced = std::mem::take(&mut self.fenced);
        finish(self.ctx, tx, locked, &fenced).await
    }

    /// Rolls back and gives every lock back: the cache is as it was before.
    pub async fn rollback(mut self) -> Result<()> {
        let (tx, locked) = self.take();
        let result = tx.rollback().await;
        futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
        Ok(result?)
    }
}

impl<DB: Dialect> Drop for Transaction<'_, DB> {
    /// Dropped open: sqlx rolls the transaction back; a task gives the locks back. Giving
    /// them back before the rollback has run is safe, since uncommitted rows are never seen.
    fn drop(&mut self) {
        let locks: Vec<_> = std::mem::take(&mut self.locked)
            .into_iter()
            .map(LockedWrite::into_locks)
            .filter(|(_, keys)| !keys.is_empty())
            .collect();
        if locks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for (backend, keys) in locks {
                let releases = keys.iter().map(|(key, token)| backend.release(key, *token));
                futures::future::join_all(releases).await;
            }
        });
    }
}
