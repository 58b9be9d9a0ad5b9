//! Writes that lock first: when every key an update, an insert or a delete touches follows
//! from the row's primary key ([`Model::UPDATE_LOCKS_FIRST`],
//! [`crate::model::ModelSql::keyed_insert`], [`Model::ONLY_INSTANCE_KEY`] and nothing
//! pointing at the deleted row) and that key is known before the statement (an insert's is
//! reserved from the key's sequence, see [`crate::reserve`]), the key is locked before the
//! statement, so the statement needs no transaction of its own: it commits by itself,
//! between the lock and the fill (`docs/consistency.md`, "Writes that lock first"). Such a
//! write costs the statement and two cache round trips, not `BEGIN`, the statement, a lock,
//! `COMMIT` and a fill. The standalone writes (`standalone.rs`) try this first.

use std::collections::HashSet;
use std::fmt::Display;

use futures::channel::oneshot;
use tracing::Instrument;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::effects;
use crate::error::Result;
use crate::fetch::{fetch, select_by_ids};
use crate::key;
use crate::model::{KeyedInsert, Model, NewModel, UpdateReturns};
use crate::plans::{PlanSet, complete_after};
use crate::protocol::{LockedWrite, WritePlan};
use crate::reserve::Taken;

/// Updates every column of a row by primary key, locking first, where the model allows it
/// and the dialect's update returns the row. `None` where it does not, or when the lock did
/// not reach its server (nothing was written; the fence must then record the key inside a
/// transaction): the caller runs the update in a transaction of its own.
pub(crate) async fn update<M: Model>(ctx: &Context<M::Db>, row: &M) -> Result<Option<Option<M>>> {
    let returned_at = match M::SQL.update_returns {
        _ if !M::UPDATE_LOCKS_FIRST => return Ok(None),
        UpdateReturns::Nothing => return Ok(None),
        UpdateReturns::Row => 0,
        UpdateReturns::OldThenRow => 1,
    };
    let update = row.bind_update(sqlx::query(M::SQL.update));
    locked_write::<M>(ctx, &row.id(), update, returned_at)
        .instrument(crate::trace::call(&M::INFO, "update"))
        .await
}

/// Inserts a row under a reserved key, locking first, where the model allows it. `None`
/// where it does not, or when the lock did not reach its server (nothing was written, and
/// the key goes back to the reserved ones): the caller runs the insert in a transaction.
pub(crate) async fn insert<N: NewModel>(ctx: &Context<<N::Model as Model>::Db>, new: &N) -> Result<Option<N::Model>> {
    let (Some(keyed), 1..) = (&<N::Model as Model>::SQL.keyed_insert, ctx.options().reserved_keys) else {
        return Ok(None);
    };
    let model = &<N::Model as Model>::INFO;
    let span = crate::trace::call(model, "insert");
    async {
        let key = match ctx.reserved().take(model.name) {
            Taken::Key(key) => key,
            Taken::Unavailable => return Ok(None),
            Taken::Empty => match reserve::<N::Model>(ctx, keyed).await? {
                Some(key) => key,
                None => {
                    ctx.reserved().make_unavailable(model.name);
                    return Ok(None);
                }
            },
        };
        let insert = new.bind_insert(<N::Model as Model>::Db::bind_text(
            sqlx::query(keyed.insert),
            key.clone(),
        ));
        match locked_write::<N::Model>(ctx, &key, insert, 0).await? {
            Some(inserted) => Ok(Some(inserted.ok_or(sqlx::Error::RowNotFound)?)),
            None => {
                ctx.reserved().add(model.name, [key]);
                Ok(None)
            }
        }
    }
    .instrument(span)
    .await
}

/// Deletes a row by primary key, locking first, where its instance key is its only key of
/// its own: the key is locked, then one statement deletes the row and commits on its own — a
/// plain `DELETE` where nothing can point at the row, else the probe of what points at it
/// deleting the row only if it found nothing, at a snapshot ([`crate::one_shot`]) — then the
/// key holds "does not exist". `None` where the model or the dialect does not allow it, or
/// rows pointed at it lately ([`crate::one_shot::DeleteHints`]), or when nothing was deleted
/// because the lock missed its server, rows point at it, or a write racing it made the
/// snapshot fail: the caller runs the delete in a transaction.
pub(crate) async fn delete<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<Option<bool>> {
    let footprint = &M::FOOTPRINT;
    let nothing_points_at_it = footprint.joined.is_empty() && footprint.dependents.is_empty();
    let at_snapshot = M::SQL.key_from_text.is_some()
        && M::Db::SNAPSHOT_ALONE.is_some()
        && ctx.delete_hints().worth_trying(M::INFO.name);
    if !M::ONLY_INSTANCE_KEY || !(nothing_points_at_it || at_snapshot) {
        return Ok(None);
    }
    let span = crate::trace::call(&M::INFO, "delete");
    async {
        let Some(locked) = lock_instance::<M>(ctx, id, |plan, key| plan.fill::<M>(key, None)).await? else {
            return Ok(None);
        };
        match delete_alone::<M>(ctx, id, nothing_points_at_it).await {
            Ok(Some(deleted)) => complete_after(ctx, async { Ok(deleted) }, locked, &HashSet::new())
                .await
                .map(Some),
            ran => {
                give_back(locked).await;
                ran
            }
        }
    }
    .instrument(span)
    .await
}

/// The statement of [`delete`], run: whether it deleted the row, or `None` if it left it
/// (rows point at it, or a write racing it made the snapshot fail) or cannot run here.
async fn delete_alone<M: Model>(ctx: &Context<M::Db>, id: &M::Id, nothing_points_at_it: bool) -> Result<Option<bool>> {
    let mut conn = ctx.pool().acquire().await?;
    if nothing_points_at_it {
        let deleted = select_by_ids::<M>(ctx, &mut conn, M::SQL.delete, std::slice::from_ref(id)).await?;
        return Ok(Some(!deleted.is_empty()));
    }
    match effects::probe_or_delete_alone::<M>(ctx, &mut conn, id).await {
        Ok(Some((false, deleted))) => Ok(Some(deleted)),
        Ok(Some((true, _))) => {
            ctx.delete_hints().found(M::INFO.name, true);
            Ok(None)
        }
        Ok(None) => {
            ctx.delete_hints().make_unavailable(M::INFO.name);
            Ok(None)
        }
        Err(error) if error.is_serialization_failure() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reserves `Options::reserved_keys` keys of `M` from its sequence: returns the first, and
/// keeps the others for the context's next inserts; `None` if the key column has no sequence.
async fn reserve<M: Model>(ctx: &Context<M::Db>, keyed: &KeyedInsert) -> Result<Option<String>> {
    let count = ctx.options().reserved_keys.to_string();
    let mut conn = ctx.pool().acquire().await?;
    let rows = fetch(
        ctx,
        &M::INFO,
        &mut conn,
        M::Db::bind_text(sqlx::query(keyed.reserve), count),
    )
    .await?;
    let mut keys = rows.iter().map(|row| M::Db::text_column(row, 0));
    let Some(first) = keys.next().transpose()? else {
        return Ok(None);
    };
    let rest = keys.collect::<Result<Vec<_>, _>>()?;
    ctx.reserved().add(M::INFO.name, rest);
    Ok(Some(first))
}

/// Locks the instance key of the row whose key is `id`, runs `statement` on its own, then
/// fills the key with its `returned_at`-th row (or evicts the key if it returned none).
/// `None` if the lock missed its server: nothing was written, and the lock (if any) is
/// given back.
async fn locked_write<M: Model>(
    ctx: &Context<M::Db>,
    id: &impl Display,
    statement: SqlQuery<M::Db>,
    returned_at: usize,
) -> Result<Option<Option<M>>> {
    let (returned, written) = oneshot::channel::<M>();
    // Filled after the statement with the row it returned; no row: the key is evicted.
    let refill = |plan: &mut WritePlan<'_>, key| {
        plan.refill(key, async move {
            written.await.map_err(|_| sqlx::Error::RowNotFound.into())
        })
    };
    let Some(locked) = lock_instance::<M>(ctx, id, refill).await? else {
        return Ok(None);
    };
    let run = async {
        let mut conn = ctx.pool().acquire().await?;
        let rows = fetch(ctx, &M::INFO, &mut conn, statement).await?;
        let row = rows.get(returned_at).map(M::from_row).transpose()?;
        if let Some(row) = &row {
            // The receiver is the planned refill, alive until the locks complete.
            let _ = returned.send(row.clone());
        }
        Ok(row)
    };
    complete_after(ctx, run, locked, &HashSet::new()).await.map(Some)
}

/// Locks the instance key of `M`'s row `id`, planned by `plan` (what the key holds once the
/// write committed). `None` if the lock missed its server: it is given back, and nothing
/// may be written without a transaction (the fence must record the key inside one).
async fn lock_instance<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    id: &impl Display,
    plan: impl FnOnce(&mut WritePlan<'a>, String),
) -> Result<Option<Vec<LockedWrite<'a, 'a>>>> {
    let mut plans = PlanSet::new(ctx);
    let (cache, planned) = plans.of(&M::INFO)?;
    let instance = key::primary(&cache.prefix, id);
    plan(planned, instance);
    let locked = plans.lock().await;
    if locked.iter().any(|write| !write.missed().is_empty()) {
        give_back(locked).await;
        return Ok(None);
    }
    Ok(Some(locked))
}

/// Gives back every lock of a write that wrote nothing.
async fn give_back(locked: Vec<LockedWrite<'_, '_>>) {
    futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
}
