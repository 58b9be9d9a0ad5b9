//! Statements run on a connection: each counted as a database query of its model, and their
//! rows decoded. What the cached reads load misses with, and what transactions and the write
//! planners read with.

use std::collections::HashMap;

use sqlx::Database;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::model::{Collection, Model, ModelInfo};
use crate::relation::KeyValue;

/// Runs one statement on `conn`, counting it for `model`.
pub(crate) async fn fetch<DB: Dialect>(
    ctx: &Context<DB>,
    model: &ModelInfo,
    conn: &mut DB::Connection,
    query: SqlQuery<DB>,
) -> Result<Vec<DB::Row>> {
    ctx.meter(model).add(|s| &s.db_queries, 1);
    Ok(DB::fetch_all(conn, query).await?)
}

/// Runs `query` on `conn`, counted for `M`, and decodes every row.
pub(crate) async fn fetch_models<M: Model>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    query: SqlQuery<M::Db>,
) -> Result<Vec<M>> {
    let rows = fetch(ctx, &M::INFO, conn, query).await?;
    rows.iter().map(|row| Ok(M::from_row(row)?)).collect()
}

/// Runs `query` on a connection of the pool, counted for `M`, and decodes every row.
pub(crate) async fn fetch_rows<M: Model>(ctx: &Context<M::Db>, query: SqlQuery<M::Db>) -> Result<Vec<M>> {
    let mut conn = ctx.pool().acquire().await?;
    fetch_models(ctx, &mut *conn, query).await
}

/// Selects the rows with these primary keys, in one statement.
pub(crate) async fn select_by_ids<M: Model>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    sql: &'static str,
    ids: &[M::Id],
) -> Result<Vec<M>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = M::Db::expand_id_list(sql, ids.len(), M::KEY_COLUMNS);
    fetch_models(ctx, conn, M::bind_ids(sqlx::query(sql), ids)).await
}

/// Reads the rows with these primary keys on `conn`, in the order of `ids` (`None`: no
/// such row; an id asked for twice gets the row twice).
pub(crate) async fn select_in_order<M: Model>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    ids: &[M::Id],
) -> Result<Vec<Option<M>>> {
    let rows: HashMap<M::Id, M> = select_by_ids::<M>(ctx, conn, M::SQL.select_by_ids, ids)
        .await?
        .into_iter()
        .map(|row| (row.id(), row))
        .collect();
    Ok(ids.iter().map(|id| rows.get(id).cloned()).collect())
}

/// Selects the members of `collection` owned by `owner`, in order (one counted query).
pub(crate) async fn select_members<M: Model, O: KeyValue<M::Db>>(
    ctx: &Context<M::Db>,
    collection: &Collection,
    owner: O,
) -> Result<Vec<M>> {
    fetch_rows::<M>(ctx, sqlx::query(collection.select).bind(owner)).await
}
