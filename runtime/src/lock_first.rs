//! Writes that lock first: when every key an update or an insert touches follows from the
//! row's primary key ([`Model::UPDATE_LOCKS_FIRST`], [`crate::model::ModelSql::keyed_insert`]) and that
//! key is known before the statement (an insert's is reserved from the key's sequence, see
//! [`crate::reserve`]), the key is locked before the statement, so the statement needs no
//! transaction of its own: it commits by itself, between the lock and the fill
//! (`docs/consistency.md`, "Writes that lock first"). Such a write costs the statement and
//! two cache round trips, not `BEGIN`, the statement, a lock, `COMMIT` and a fill. The
//! standalone writes (`standalone.rs`) try this first.

use std::collections::HashSet;
use std::fmt::Display;

use futures::channel::oneshot;
use tracing::Instrument;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::fetch::fetch;
use crate::key;
use crate::model::{KeyedInsert, Model, NewModel, UpdateReturns};
use crate::plans::{PlanSet, complete_after};
use crate::protocol::LockedWrite;
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
    let mut plans = PlanSet::new(ctx);
    let (cache, plan) = plans.of(&M::INFO)?;
    let instance = key::primary(&cache.prefix, id);
    // Filled after the statement with the row it returned; no row: the key is evicted.
    plan.refill(instance, async move {
        written.await.map_err(|_| sqlx::Error::RowNotFound.into())
    });
    let locked = plans.lock().await;
    if locked.iter().any(|write| !write.missed().is_empty()) {
        futures::future::join_all(locked.into_iter().map(LockedWrite::abort)).await;
        return Ok(None);
    }
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
