//! Writes of one row (insert, update, delete), run on a transaction's connection and
//! planned into its [`PlanSet`]: their keys are locked before the commit and filled or
//! emptied after it.

use autocache_effects::Change;
use sqlx::Database;

use crate::context::Context;
use crate::effects::{Visited, plan_footprint, plan_probed_footprint, plan_row, probe_and_delete};
use crate::error::Result;
use crate::fetch::{fetch, select_by_ids};
use crate::model::{Model, NewModel, UpdateReturns};
use crate::plans::PlanSet;

/// Inserts a row on `conn` and plans its keys: after commit, `<prefix>:pk:<id>` and its
/// unique-field keys hold it and the collections it joins are refilled, so the next reads
/// cost no query.
pub(crate) async fn insert_planned<'a, N: NewModel>(
    ctx: &'a Context<<N::Model as Model>::Db>,
    conn: &mut <<N::Model as Model>::Db as Database>::Connection,
    plans: &mut PlanSet<'a, <N::Model as Model>::Db>,
    new: &N,
) -> Result<N::Model> {
    let rows = fetch(
        ctx,
        &<N::Model as Model>::INFO,
        conn,
        new.bind_insert(sqlx::query(<N::Model as Model>::SQL.insert)),
    )
    .await?;
    let row = N::Model::from_row(rows.first().ok_or(sqlx::Error::RowNotFound)?)?;
    plan_row(plans, ctx, &row, Change::Written)?;
    Ok(row)
}

/// Updates every column of a row by primary key on `conn` and plans its keys; `None` if no
/// such row. After commit, `<prefix>:pk:<id>` and the new unique-field keys hold it, the old
/// ones are emptied, the collections of its old and new owners are refilled and, when its
/// ordering fields changed, the many-to-many collections it is in are re-sorted (re-read).
pub(crate) async fn update_planned<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    row: &M,
) -> Result<Option<M>> {
    let id = &[row.id()];
    let update = row.bind_update(sqlx::query(M::SQL.update));
    let (old, new) = match M::SQL.update_returns {
        UpdateReturns::OldThenRow => {
            let returned = fetch(ctx, &M::INFO, conn, update).await?;
            match returned.as_slice() {
                [old, new] => (Some(M::from_row(old)?), Some(M::from_row(new)?)),
                _ => (None, None),
            }
        }
        UpdateReturns::Row => {
            let old = select_by_ids::<M>(ctx, conn, M::SQL.select_for_update, id).await?.pop();
            let returned = fetch(ctx, &M::INFO, conn, update).await?;
            (old, returned.first().map(M::from_row).transpose()?)
        }
        UpdateReturns::Nothing => {
            let old = select_by_ids::<M>(ctx, conn, M::SQL.select_for_update, id).await?.pop();
            fetch(ctx, &M::INFO, conn, update).await?;
            let new = match old {
                Some(_) => select_by_ids::<M>(ctx, conn, M::SQL.select_by_ids, id).await?.pop(),
                None => None,
            };
            (old, new)
        }
    };
    let Some(new) = new else { return Ok(None) };
    update_rows_planned(ctx, conn, plans, old.as_slice(), std::slice::from_ref(&new)).await?;
    Ok(Some(new))
}

/// Plans the keys of updated rows, given their versions before (`old`, possibly missing)
/// and after (`new`) the update.
pub(crate) async fn update_rows_planned<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    old: &[M],
    new: &[M],
) -> Result<()> {
    for row in new {
        plan_row(plans, ctx, row, Change::Written)?;
        let id = row.id();
        let before = old.iter().find(|o| o.id() == id);
        if let Some(before) = before {
            plan_row(plans, ctx, before, Change::Replaced)?;
        }
        if before.is_none_or(|before| !row.same_order(before)) {
            plan_footprint::<M>(plans, ctx, conn, id.to_string(), Change::Reordered, &mut Visited::new()).await?;
        }
    }
    Ok(())
}

/// Deletes a row by primary key on `conn` and plans its keys; whether it existed. After
/// commit, `<prefix>:pk:<id>` caches "does not exist", its unique-field keys and every key
/// that depended on it (collections it owned, rows the database deleted or changed with it)
/// are emptied, and the collections it was a member of are refilled. `at_snapshot`: the
/// delete is the first statement of a transaction at `REPEATABLE READ`
/// ([`crate::db::Dialect::BEGIN_SNAPSHOT`]).
pub(crate) async fn delete_planned<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    id: &M::Id,
    at_snapshot: bool,
) -> Result<bool> {
    let footprint = &M::FOOTPRINT;
    let selects_footprint = !(footprint.joined.is_empty() && footprint.dependents.is_empty());
    if at_snapshot && M::ONLY_INSTANCE_KEY {
        // The probe and the delete in the transaction's first statement, no row lock first:
        // a row or pair that comes to point at the row after the statement's snapshot makes
        // the database's cascade fail with a serialization error (the caller retries), and
        // the deleted row's only key of its own, its instance key, is locked meanwhile.
        let probe = probe_and_delete::<M>(ctx, conn, id);
        if let Some((found, deleted)) = plans.lock_instance_while::<M, _>(id, probe).await?? {
            return delete_probed::<M>(ctx, conn, plans, id, found, deleted).await;
        }
    } else if selects_footprint && !M::SQL.lock_rows.is_empty() {
        // Lock the row before its footprint is selected: a row or pair that would point at
        // it (an insert, an update, an `add_…`) waits for this commit instead of slipping in
        // between the footprint's select and the `DELETE`, whose cascade would remove it
        // unplanned. (SQLite's write transaction holds the whole database already.)
        // Its instance key, which will read "does not exist" whatever the row lock finds,
        // is locked meanwhile.
        let select = select_by_ids::<M>(ctx, conn, M::SQL.select_for_update, std::slice::from_ref(id));
        let Some(old) = plans.lock_instance_while::<M, _>(id, select).await??.pop() else {
            return Ok(false);
        };
        // The probe and the delete in one statement, which deletes only a row no dependent
        // points at; otherwise the dependents are selected (and locked) before the delete.
        if let Some((found, deleted)) = probe_and_delete::<M>(ctx, conn, id).await? {
            if !delete_probed::<M>(ctx, conn, plans, id, found, deleted).await? {
                return Ok(false);
            }
            plan_row(plans, ctx, &old, Change::Deleted)?;
            return Ok(true);
        }
    }
    delete_locked_planned::<M>(ctx, conn, plans, id).await
}

/// Plans what a delete's probe `found` pointing at row `id`, and deletes the row unless the
/// probe's statement did (`deleted`; it does not when a dependent has rows, which are then
/// selected and locked first): whether a row was deleted. The row's own keys are the
/// caller's to plan.
async fn delete_probed<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    id: &M::Id,
    found: Vec<Vec<String>>,
    deleted: bool,
) -> Result<bool> {
    if M::ONLY_INSTANCE_KEY {
        // Only these models' deletes may run as one statement, which the hint decides.
        let pointed_at = found.iter().any(|texts| !texts.is_empty());
        ctx.delete_hints().found(M::INFO.name, pointed_at);
    }
    let mut visited = Visited::from([(M::INFO.name, id.to_string())]);
    plan_probed_footprint::<M>(plans, ctx, conn, id.to_string(), Some(found), ORPHANED, &mut visited).await?;
    Ok(deleted
        || !select_by_ids::<M>(ctx, conn, M::SQL.delete, std::slice::from_ref(id))
            .await?
            .is_empty())
}

/// [`delete_planned`] of a row the transaction has already locked (a bulk delete's matching
/// rows, selected `FOR UPDATE`).
pub(crate) async fn delete_locked_planned<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    id: &M::Id,
) -> Result<bool> {
    let mut visited = Visited::from([(M::INFO.name, id.to_string())]);
    plan_footprint::<M>(plans, ctx, conn, id.to_string(), ORPHANED, &mut visited).await?;
    let Some(old) = select_by_ids::<M>(ctx, conn, M::SQL.delete, std::slice::from_ref(id))
        .await?
        .pop()
    else {
        return Ok(false);
    };
    plan_row(plans, ctx, &old, Change::Deleted)?;
    Ok(true)
}

/// What a delete does to what depends on the row (whether anything points at it is what
/// the footprint's select finds).
const ORPHANED: Change = Change::Orphaned { points_at: true };
