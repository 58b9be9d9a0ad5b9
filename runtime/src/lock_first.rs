//! Updates that lock first: when every key an update touches follows from the row's primary
//! key ([`Model::UPDATE_LOCKS_FIRST`]), the key is locked before the statement, so the
//! statement needs no transaction of its own: it commits by itself, between the lock and the
//! fill (`docs/consistency.md`, "Updates that lock first"). A standalone update then costs
//! the statement and two cache round trips, not `BEGIN`, the statement, a lock, `COMMIT`
//! and a fill. The standalone update (`standalone.rs`) tries this first.

use std::collections::HashSet;

use futures::channel::oneshot;
use tracing::Instrument;

use crate::context::Context;
use crate::error::Result;
use crate::fetch::fetch;
use crate::key;
use crate::model::{Model, UpdateReturns};
use crate::plans::{PlanSet, complete_after};
use crate::protocol::LockedWrite;

/// Updates every column of a row by primary key, locking first, where the model allows it
/// and the dialect's update returns the row. `None` where it does not, or when the lock did
/// not reach its server (nothing was written; the fence must then record the key inside a
/// transaction): the caller runs the update in a transaction of its own.
pub(crate) async fn update<M: Model>(ctx: &Context<M::Db>, row: &M) -> Result<Option<Option<M>>> {
    let returns_row = M::SQL.update_returns != UpdateReturns::Nothing;
    if !(M::UPDATE_LOCKS_FIRST && returns_row) {
        return Ok(None);
    }
    locked_update(ctx, row)
        .instrument(crate::trace::call(&M::INFO, "update"))
        .await
}

/// Locks the row's instance key, runs the update on its own, then fills the key with the
/// row it returned (or evicts it if no row has the key). `None` if the lock missed its
/// server: nothing was written, and the lock (if any) is given back.
async fn locked_update<M: Model>(ctx: &Context<M::Db>, row: &M) -> Result<Option<Option<M>>> {
    let (returned, updated) = oneshot::channel::<M>();
    let mut plans = PlanSet::new(ctx);
    let (cache, plan) = plans.of(&M::INFO)?;
    let instance = key::primary(&cache.prefix, &row.id());
    // Filled after the statement with the row it returned; no row: the key is evicted.
    plan.refill(instance, async move {
        updated.await.map_err(|_| sqlx::Error::RowNotFound.into())
    });
    let locked = plans.lock().await;
    if locked.iter().any(|write| !write.missed().is_empty()) {
        futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
        return Ok(None);
    }
    let statement = async {
        let mut conn = ctx.pool().acquire().await?;
        let rows = fetch(ctx, &M::INFO, &mut conn, row.bind_update(sqlx::query(M::SQL.update))).await?;
        let new = match M::SQL.update_returns {
            UpdateReturns::OldThenRow => rows.get(1),
            _ => rows.first(),
        };
        let new = new.map(M::from_row).transpose()?;
        if let Some(new) = &new {
            // The receiver is the planned refill, alive until the locks complete.
            let _ = returned.send(new.clone());
        }
        Ok(new)
    };
    complete_after(ctx, statement, locked, &HashSet::new()).await.map(Some)
}
