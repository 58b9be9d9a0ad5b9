//! Bulk writes: `update_where` and `delete_where` invalidate exactly the keys of the rows
//! they touched, which closes the seed's hole (its bulk updates left the cache stale).
//!
//! The touched rows are selected first, in the same transaction and locked until commit
//! (`FOR UPDATE` on PostgreSQL and MySQL; SQLite's write transaction holds the database),
//! so the write applies to exactly those rows and their old and new values are known: old
//! and new unique-field keys, old and new owners' collections, many-to-many collections.

use sqlx::Database;

use crate::context::Context;
use crate::db::{Dialect, key_list};
use crate::error::Result;
use crate::fetch::{fetch, fetch_models, select_by_ids};
use crate::filter::{self, Filter};
use crate::model::{Changes, Model};
use crate::plans::PlanSet;
use crate::write::{delete_locked_planned, update_rows_planned};

/// Selects, and locks, the rows matching `filter`.
async fn select_matching<M: Model, F: Filter<M::Db>>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    filter: &F,
) -> Result<Vec<M>> {
    let sql = format!(
        "{}{}{}",
        M::SQL.select_where,
        filter::condition(filter, &mut 1),
        M::SQL.lock_rows
    );
    fetch_models(ctx, conn, filter::bind(filter, sqlx::query(sqlx::AssertSqlSafe(sql)))).await
}

/// Updates the columns `changes` sets on every row matching `filter`, on `conn`, and plans
/// its keys; how many rows changed. After commit, the instance and new unique keys of exactly
/// those rows hold them, their old unique keys are emptied, the collections of their old and
/// new owners are refilled, and the many-to-many collections of rows whose ordering fields
/// changed are re-sorted.
pub(crate) async fn update_where_planned<'a, M: Model, F: Filter<M::Db>, C: Changes<M::Db>>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    filter: &F,
    changes: &C,
) -> Result<u64> {
    let columns = changes.columns();
    let old: Vec<M> = select_matching(ctx, conn, filter).await?;
    if old.is_empty() || columns.is_empty() {
        return Ok(0);
    }
    let ids: Vec<M::Id> = old.iter().map(M::id).collect();
    let assignments: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = {}", M::Db::placeholder(i + 1)))
        .collect();
    let sql = format!(
        "{}{}{}",
        M::SQL.update_set,
        assignments.join(", "),
        M::SQL.where_ids.replace(
            "{ids}",
            &key_list::<M::Db>(columns.len() + 1, ids.len(), M::KEY_COLUMNS)
        )
    );
    let query = M::bind_ids(changes.bind(sqlx::query(sqlx::AssertSqlSafe(sql))), &ids);
    fetch(ctx, &M::INFO, conn, query).await?;
    let new = select_by_ids::<M>(ctx, conn, M::SQL.select_by_ids, &ids).await?;
    update_rows_planned(ctx, conn, plans, &old, &new).await?;
    Ok(new.len() as u64)
}

/// Deletes every row matching `filter`, on `conn`, and plans its keys; how many were deleted.
/// Each row's keys are planned as by [`crate::write::delete_planned`]: "does not exist"
/// cached, unique keys and dependent keys (owned collections, cascaded rows) emptied, owners'
/// collections refilled.
pub(crate) async fn delete_where_planned<'a, M: Model, F: Filter<M::Db>>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    filter: &F,
) -> Result<u64> {
    let matching: Vec<M> = select_matching(ctx, conn, filter).await?;
    let mut deleted = 0;
    for row in &matching {
        if delete_locked_planned::<M>(ctx, conn, plans, &row.id()).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}
