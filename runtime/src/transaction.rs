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
use tokio::sync::Mutex;

use crate::bulk::{delete_where_planned, update_where_planned};
use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::fence::{Undelivered, record_in};
use crate::fetch::{fetch_models, select_in_order};
use crate::filter::Filter;
use crate::join::join_write_planned;
use crate::model::{Changes, Collection, Model, NewModel, UniqueField};
use crate::plans::{PlanSet, finish};
use crate::protocol::LockedWrite;
use crate::relation::{JoinChange, JoinKey, JoinSide, KeyValue};
use crate::scope::{Scope, Sealed};
use crate::write::{delete_planned, insert_planned, update_planned};

/// An open database transaction whose cache invalidations wait for its commit. Repositories
/// run in it as on the context: `BookRepo::new(&tx).add_editors(…)` (see [`Scope`]).
pub struct Transaction<'c, DB: Dialect> {
    ctx: &'c Context<DB>,
    /// The connection and the writes' locks; one call at a time uses them.
    open: Mutex<Open<'c, DB>>,
    /// Whether the fence outbox exists, so missed locks can be recorded in the transaction.
    can_fence: bool,
    /// Begun at `REPEATABLE READ` for one delete ([`Context::begin_at_snapshot`]).
    at_snapshot: bool,
}

/// The state of an open transaction.
struct Open<'c, DB: Dialect> {
    /// `None` once committed or rolled back.
    tx: Option<sqlx::Transaction<'static, DB>>,
    locked: Vec<LockedWrite<'c, 'c>>,
    /// Invalidations whose lock did not reach their server, recorded in the fence outbox
    /// inside this transaction (see [`crate::fence`]).
    fenced: HashSet<Undelivered>,
}

impl<DB: Dialect> Context<DB> {
    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Transaction<'_, DB>> {
        self.begin_with(DB::BEGIN_WRITE, false).await
    }

    /// Begins a transaction at `REPEATABLE READ` ([`Dialect::BEGIN_SNAPSHOT`]) for one
    /// delete, which is its first statement; `None` where the dialect has none.
    pub(crate) async fn begin_at_snapshot(&self) -> Result<Option<Transaction<'_, DB>>> {
        match DB::BEGIN_SNAPSHOT {
            Some(statement) => self.begin_with(statement, true).await.map(Some),
            None => Ok(None),
        }
    }

    /// Begins a transaction with `statement`.
    async fn begin_with(&self, statement: &'static str, at_snapshot: bool) -> Result<Transaction<'_, DB>> {
        // The outbox is created outside any transaction (MySQL commits on DDL).
        let can_fence = match self.fence() {
            Some(fence) => fence.ensure_created().await,
            None => false,
        };
        Ok(Transaction {
            ctx: self,
            open: Mutex::new(Open {
                tx: Some(self.pool().begin_with(statement).await?),
                locked: Vec::new(),
                fenced: HashSet::new(),
            }),
            can_fence,
            at_snapshot,
        })
    }
}

impl<'c, DB: Dialect> Open<'c, DB> {
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
    /// in the fence outbox inside this transaction (if it exists), so they become visible
    /// with its commit.
    async fn keep(&mut self, plans: PlanSet<'c, DB>, can_fence: bool) -> Result<()> {
        let locked = plans.lock().await;
        let missed: Vec<Undelivered> = locked
            .iter()
            .flat_map(LockedWrite::missed)
            .filter(|missed| !self.fenced.contains(*missed))
            .cloned()
            .collect();
        self.locked.extend(locked);
        if !missed.is_empty() && can_fence {
            record_in::<DB>(self.conn(), &missed).await?;
            self.fenced.extend(missed);
        }
        Ok(())
    }
}

impl<DB: Dialect> Transaction<'_, DB> {
    /// Commits, then fills or releases every key the writes locked.
    pub async fn commit(mut self) -> Result<()> {
        let open = self.open.get_mut();
        let (tx, locked) = open.take();
        let fenced = std::mem::take(&mut open.fenced);
        finish(self.ctx, tx, locked, &fenced).await
    }

    /// Rolls back and gives every lock back: the cache is as it was before.
    pub async fn rollback(mut self) -> Result<()> {
        let (tx, locked) = self.open.get_mut().take();
        let result = tx.rollback().await;
        futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
        Ok(result?)
    }

    /// Runs one query on the transaction's connection and decodes its rows as `M`.
    async fn rows<M: Model<Db = DB>>(&self, query: SqlQuery<DB>) -> Result<Vec<M>> {
        let mut open = self.open.lock().await;
        fetch_models(self.ctx, open.conn(), query).await
    }
}

/// Writes a planned write on the transaction's connection, then locks its keys: `$write`
/// is a `*_planned` call given `$ctx`, `$conn` and `$plans`.
macro_rules! planned {
    ($self:ident, |$ctx:ident, $conn:ident, $plans:ident| $write:expr) => {{
        let $ctx = $self.ctx;
        let mut open = $self.open.lock().await;
        let mut plans = PlanSet::new($ctx);
        let written = {
            let ($conn, $plans) = (open.conn(), &mut plans);
            $write.await
        };
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                plans.abort().await;
                return Err(error);
            }
        };
        open.keep(plans, $self.can_fence).await?;
        Ok(written)
    }};
}

impl<DB: Dialect> Sealed for Transaction<'_, DB> {}

/// Reads see the transaction's writes and never touch the cache; writes lock their keys
/// right after their statements and complete them after the commit.
impl<DB: Dialect> Scope<DB> for Transaction<'_, DB> {
    fn context(&self) -> &Context<DB> {
        self.ctx
    }

    async fn get_many<M: Model<Db = DB>>(&self, ids: &[M::Id]) -> Result<Vec<Option<M>>> {
        let mut open = self.open.lock().await;
        select_in_order::<M>(self.ctx, open.conn(), ids).await
    }

    async fn get_by_unique<M, B>(&self, unique: &UniqueField, _value: &str, bind: B) -> Result<Option<M>>
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync,
    {
        Ok(self
            .rows(bind(sqlx::query(unique.select_row)))
            .await?
            .into_iter()
            .next())
    }

    async fn collection<M: Model<Db = DB>, O: KeyValue<DB>>(
        &self,
        collection: &Collection,
        owner: O,
    ) -> Result<Vec<M>> {
        self.rows(sqlx::query(collection.select).bind(owner)).await
    }

    async fn find<M, B>(&self, collection: &Collection, _value: &str, bind: B) -> Result<Vec<M>>
    where
        M: Model<Db = DB>,
        B: Fn(SqlQuery<DB>) -> SqlQuery<DB> + Send + Sync,
    {
        self.rows(bind(sqlx::query(collection.select))).await
    }

    async fn insert<N>(&self, new: &N) -> Result<N::Model>
    where
        N: NewModel,
        N::Model: Model<Db = DB>,
    {
        planned!(self, |ctx, conn, plans| insert_planned(ctx, conn, plans, new))
    }

    async fn update<M: Model<Db = DB>>(&self, row: &M) -> Result<Option<M>> {
        planned!(self, |ctx, conn, plans| update_planned(ctx, conn, plans, row))
    }

    async fn delete<M: Model<Db = DB>>(&self, id: &M::Id) -> Result<bool> {
        let at_snapshot = self.at_snapshot;
        planned!(self, |ctx, conn, plans| delete_planned::<M>(
            ctx,
            conn,
            plans,
            id,
            at_snapshot
        ))
    }

    async fn join_write<S, O>(&self, side: &'static JoinSide, id: &S::Id, change: JoinChange<'_, O::Id>) -> Result<()>
    where
        S: Model<Db = DB, Id: JoinKey<DB>>,
        O: Model<Db = DB, Id: JoinKey<DB>>,
    {
        planned!(self, |ctx, conn, plans| join_write_planned::<S, O>(
            ctx, conn, plans, side, id, change
        ))
    }

    async fn update_where<M, F, C>(&self, filter: &F, changes: &C) -> Result<u64>
    where
        M: Model<Db = DB>,
        F: Filter<DB>,
        C: Changes<DB>,
    {
        planned!(self, |ctx, conn, plans| update_where_planned::<M, F, C>(
            ctx, conn, plans, filter, changes
        ))
    }

    async fn delete_where<M: Model<Db = DB>, F: Filter<DB>>(&self, filter: &F) -> Result<u64> {
        planned!(self, |ctx, conn, plans| delete_where_planned::<M, F>(
            ctx, conn, plans, filter
        ))
    }
}

impl<DB: Dialect> Drop for Transaction<'_, DB> {
    /// Dropped open: sqlx rolls the transaction back; a task gives the locks back. Giving
    /// them back before the rollback has run is safe, since uncommitted rows are never seen.
    fn drop(&mut self) {
        let locks: Vec<_> = std::mem::take(&mut self.open.get_mut().locked)
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
