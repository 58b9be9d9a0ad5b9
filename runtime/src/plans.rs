//! The write side of the protocol across models and backends: one [`WritePlan`] per model
//! touched by a transaction, all locked before its commit and completed after it.

use std::collections::HashSet;
use std::future::Future;
use std::time::Instant;

use crate::context::Context;
use crate::db::Dialect;
use crate::error::Result;
use crate::fence::Undelivered;
use crate::key;
use crate::model::{Model, ModelInfo};
use crate::protocol::{Cache, LockedWrite, WritePlan};

/// The cache of one model within a context.
pub(crate) fn cache_for<'a, DB: Dialect>(ctx: &'a Context<DB>, model: &ModelInfo) -> Result<Cache<'a>> {
    Ok(Cache {
        backend: ctx.shared_backend_for(model)?,
        options: ctx.options(),
        stats: ctx.meter(model),
        ttl: model.ttl,
        prefix: ctx.key_prefix(model),
        retired: ctx.retired_prefixes(model),
        near: None,
        uncached: false,
    })
}

/// Write plans by model, for one transaction.
pub(crate) struct PlanSet<'a, DB: Dialect> {
    ctx: &'a Context<DB>,
    plans: Vec<(&'static str, Cache<'a>, WritePlan<'a>)>,
    /// Keys locked while the statements ran ([`PlanSet::lock_instance_while`]), not locked again.
    early: Vec<LockedWrite<'a, 'a>>,
}

impl<'a, DB: Dialect> PlanSet<'a, DB> {
    /// No keys planned yet.
    pub(crate) fn new(ctx: &'a Context<DB>) -> Self {
        Self {
            ctx,
            plans: Vec::new(),
            early: Vec::new(),
        }
    }

    /// Runs `statement` while the instance key of `M`'s row `id` is locked, to hold "does not
    /// exist" after commit (a deleted row's key, which follows from the statement's
    /// arguments). A lock confirmed before its own commit keeps the protocol's argument
    /// (`docs/consistency.md`, "Writes that lock first"); whatever is planned for the key
    /// later is not locked again.
    pub(crate) async fn lock_instance_while<M, T>(
        &mut self,
        id: &M::Id,
        statement: impl Future<Output = T>,
    ) -> Result<T>
    where
        M: Model<Db = DB>,
    {
        let cache = cache_for(self.ctx, &M::INFO)?;
        let mut plan = WritePlan::default();
        plan.fill::<M>(key::primary(&cache.prefix, id), None);
        let (ran, locked) = futures::future::join(statement, plan.lock(cache)).await;
        self.early.push(locked);
        Ok(ran)
    }

    /// The plan (and cache) of `model`'s keys.
    pub(crate) fn of(&mut self, model: &'static ModelInfo) -> Result<(&Cache<'a>, &mut WritePlan<'a>)> {
        let index = match self.plans.iter().position(|(name, _, _)| *name == model.name) {
            Some(index) => index,
            None => {
                self.plans
                    .push((model.name, cache_for(self.ctx, model)?, WritePlan::default()));
                self.plans.len() - 1
            }
        };
        let (_, cache, plan) = &mut self.plans[index];
        Ok((cache, plan))
    }

    /// Gives back the keys locked early (the write failed; nothing else was locked yet).
    pub(crate) async fn abort(self) {
        futures::future::join_all(self.early.into_iter().map(LockedWrite::abort)).await;
    }

    /// Locks every planned key (after the statements, before commit): the models' locks
    /// in parallel, so a write touching several models waits for one round trip, not one
    /// per model (the order of the locks does not matter, only that all precede the commit).
    pub(crate) async fn lock(self) -> Vec<LockedWrite<'a, 'a>> {
        let mut locked = self.early;
        let early: Vec<String> = locked.iter().flat_map(LockedWrite::keys).map(str::to_owned).collect();
        let plans = self.plans.into_iter().map(|(_, cache, mut plan)| {
            plan.forget(&early);
            plan.lock(cache)
        });
        locked.extend(futures::future::join_all(plans).await);
        locked
    }
}

/// Commits `tx`, then completes every locked write (see [`complete_after`]).
pub(crate) async fn finish<DB: Dialect>(
    ctx: &Context<DB>,
    tx: sqlx::Transaction<'_, DB>,
    locked: Vec<LockedWrite<'_, '_>>,
    fenced: &HashSet<Undelivered>,
) -> Result<()> {
    complete_after(ctx, async { Ok(tx.commit().await?) }, locked, fenced).await
}

/// Runs `commit` (what makes the write visible: a transaction's `COMMIT`, or a statement that
/// commits on its own), then completes every locked write, or aborts them if it fails.
/// Invalidations that did not reach their server are settled by the fence before this
/// returns (`fenced`: those already recorded in the transaction). With near caches, the keys
/// are published as the commit is sent (every lock is confirmed or fenced by then), while the
/// commit runs and the remote keys are filled; the keys that were not filled with this
/// write's value under its own lock are published again once the remote cache and the
/// fence are done with them (`docs/consistency.md`, near caches).
pub(crate) async fn complete_after<DB: Dialect, T>(
    ctx: &Context<DB>,
    commit: impl Future<Output = Result<T>>,
    locked: Vec<LockedWrite<'_, '_>>,
    fenced: &HashSet<Undelivered>,
) -> Result<T> {
    let near_keys: Vec<String> = match ctx.near() {
        Some(_) => locked.iter().flat_map(LockedWrite::keys).map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let write = async {
        let committed = match commit.await {
            Ok(committed) => committed,
            Err(error) => {
                futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
                return Err(error);
            }
        };
        let committed_at = Instant::now();
        let mut missed = Vec::new();
        let mut unfilled = Vec::new();
        for completed in futures::future::join_all(locked.into_iter().map(LockedWrite::complete)).await {
            missed.extend(completed.missed);
            unfilled.extend(completed.unfilled);
        }
        if let (false, Some(fence)) = (missed.is_empty(), ctx.fence()) {
            fence.settle(missed, fenced, committed_at).await;
        }
        Ok((committed, unfilled))
    };
    match ctx.near() {
        None => write.await.map(|(committed, _)| committed),
        Some(near) => {
            let (published, written) = futures::future::join(near.publish(&near_keys), write).await;
            let (committed, unfilled) = written?;
            near.settle(published, &near_keys, &unfilled, Instant::now()).await;
            Ok(committed)
        }
    }
}
