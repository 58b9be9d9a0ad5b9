//! Generic repository operations; generated `<Model>Repo` methods delegate here.

use std::collections::HashMap;
use std::fmt::Display;

use sqlx::Database;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::key;
use crate::model::{Model, NewModel, UniqueField};
use crate::protocol::{Cache, WritePlan, read_through};
use crate::stats::Stats;

fn cache<'a, M: Model>(ctx: &'a Context<M::Db>) -> Result<Cache<'a>> {
    Ok(Cache {
        backend: ctx.backend_for(&M::INFO)?,
        options: ctx.options(),
        stats: ctx.stats(),
        ttl: M::INFO.ttl,
        prefix: format!("{}{}", ctx.options().key_namespace, M::INFO.key_prefix),
    })
}

/// Runs one statement on `conn`, counting it.
async fn fetch<DB: Dialect>(ctx: &Context<DB>, conn: &mut DB::Connection, query: SqlQuery<DB>) -> Result<Vec<DB::Row>> {
    Stats::add(&ctx.stats().db_queries, 1);
    Ok(DB::fetch_all(conn, query).await?)
}

/// Selects the rows with these primary keys, in one statement.
async fn select_by_ids<M: Model>(ctx: &Context<M::Db>, conn: &mut <M::Db as Database>::Connection, ids: &[M::Id]) -> Result<Vec<M>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = M::Db::expand_id_list(M::SQL.select_by_ids, ids.len());
    let rows = fetch(ctx, conn, M::bind_ids(sqlx::query(sql), ids)).await?;
    rows.iter().map(|row| Ok(M::from_row(row)?)).collect()
}

/// The cache key of the row with primary key `id`, in `ctx`'s key namespace.
pub fn primary_key<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> String {
    key::primary(&format!("{}{}", ctx.options().key_namespace, M::INFO.key_prefix), id)
}

/// Reads rows by primary key: one cache round trip, the misses in one SQL query.
/// Reads keys `<prefix>:pk:<id>`; missing rows are cached as "does not exist".
pub async fn get_many<M: Model>(ctx: &Context<M::Db>, ids: &[M::Id]) -> Result<Vec<Option<M>>> {
    let cache = cache::<M>(ctx)?;
    let keys: Vec<String> = ids.iter().map(|id| key::primary(&cache.prefix, id)).collect();
    read_through(&cache, &keys, |indices| async move {
        let wanted: Vec<M::Id> = indices.iter().map(|&i| ids[i].clone()).collect();
        let mut conn = ctx.pool().acquire().await?;
        let mut rows: HashMap<M::Id, M> = select_by_ids::<M>(ctx, &mut conn, &wanted)
            .await?
            .into_iter()
            .map(|row| (row.id().clone(), row))
            .collect();
        Ok(wanted.iter().map(|id| rows.remove(id)).collect())
    })
    .await
}

/// Reads one row by primary key (see [`get_many`]).
pub async fn get<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<Option<M>> {
    Ok(get_many::<M>(ctx, std::slice::from_ref(id)).await?.pop().flatten())
}

/// Reads a row by a unique field: the key `<prefix>:<field>:<value>` caches the primary
/// key, then the row is read as by [`get`].
pub async fn get_by_unique<M, V>(ctx: &Context<M::Db>, unique: &UniqueField, value: V) -> Result<Option<M>>
where
    M: Model,
    V: for<'q> sqlx::Encode<'q, M::Db> + sqlx::Type<M::Db> + Display + Clone + Send + Sync,
{
    let cache = cache::<M>(ctx)?;
    let keys = [key::unique(&cache.prefix, unique.field, &value.to_string())];
    let ids = read_through::<M::Id, _, _>(&cache, &keys, |_| {
        let value = value.clone();
        async move {
            let mut conn = ctx.pool().acquire().await?;
            let rows = fetch(ctx, &mut conn, sqlx::query(unique.select_row).bind(value)).await?;
            let row = rows.first().map(M::from_row).transpose()?;
            Ok(vec![row.map(|row| row.id().clone())])
        }
    })
    .await?;
    match ids.into_iter().next().flatten() {
        Some(id) => get::<M>(ctx, &id).await,
        None => Ok(None),
    }
}

/// Plans the unique-field keys of `row` to point at it after commit.
fn fill_unique<M: Model>(cache: &Cache<'_>, plan: &mut WritePlan, row: &M) {
    for (field, value) in row.unique_values() {
        plan.fill(key::unique(&cache.prefix, field, &value), Some(row.id()));
    }
}

/// Plans the unique-field keys of `row` to be emptied after commit.
fn release_unique<M: Model>(cache: &Cache<'_>, plan: &mut WritePlan, row: &M) {
    for (field, value) in row.unique_values() {
        plan.release(key::unique(&cache.prefix, field, &value));
    }
}

/// Runs `plan` around the commit of `tx`: lock, commit, then fill (or give the locks back
/// if the commit fails).
async fn commit_with<DB: Dialect>(cache: &Cache<'_>, tx: sqlx::Transaction<'_, DB>, plan: WritePlan) -> Result<()> {
    let locked = plan.lock(cache).await;
    match tx.commit().await {
        Ok(()) => {
            locked.complete().await;
            Ok(())
        }
        Err(error) => {
            locked.abort().await;
            Err(error.into())
        }
    }
}

/// Inserts a row. Writes through the key `<prefix>:pk:<id>` and its unique-field keys, so
/// the next read costs no query.
pub async fn insert<N: NewModel>(ctx: &Context<<N::Model as Model>::Db>, new: &N) -> Result<N::Model> {
    let cache = cache::<N::Model>(ctx)?;
    let mut tx = ctx.pool().begin().await?;
    let rows = fetch(ctx, &mut tx, new.bind_insert(sqlx::query(<N::Model as Model>::SQL.insert))).await?;
    let row = N::Model::from_row(rows.first().ok_or(sqlx::Error::RowNotFound)?)?;
    let mut plan = WritePlan::default();
    plan.fill(key::primary(&cache.prefix, row.id()), Some(&row));
    fill_unique(&cache, &mut plan, &row);
    commit_with(&cache, tx, plan).await?;
    Ok(row)
}

/// Updates every column of a row by primary key; `None` if no such row. Writes through
/// `<prefix>:pk:<id>` and the new unique-field keys, and empties the old unique-field keys.
pub async fn update<M: Model>(ctx: &Context<M::Db>, row: &M) -> Result<Option<M>> {
    let cache = cache::<M>(ctx)?;
    let mut tx = ctx.pool().begin().await?;
    let old = if row.unique_values().is_empty() {
        None
    } else {
        let sql = M::Db::expand_id_list(M::SQL.select_for_update, 1);
        let rows = fetch(ctx, &mut tx, M::bind_ids(sqlx::query(sql), std::slice::from_ref(row.id()))).await?;
        rows.first().map(M::from_row).transpose()?
    };
    let rows = fetch(ctx, &mut tx, row.bind_update(sqlx::query(M::SQL.update))).await?;
    let Some(new) = rows.first().map(M::from_row).transpose()? else {
        return Ok(None);
    };
    let mut plan = WritePlan::default();
    plan.fill(key::primary(&cache.prefix, new.id()), Some(&new));
    fill_unique(&cache, &mut plan, &new);
    if let Some(old) = &old {
        release_unique(&cache, &mut plan, old);
    }
    commit_with(&cache, tx, plan).await?;
    Ok(Some(new))
}

/// Deletes a row by primary key; whether it existed. Caches "does not exist" under
/// `<prefix>:pk:<id>` and empties its unique-field keys.
pub async fn delete<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<bool> {
    let cache = cache::<M>(ctx)?;
    let mut tx = ctx.pool().begin().await?;
    let sql = M::Db::expand_id_list(M::SQL.delete, 1);
    let rows = fetch(ctx, &mut tx, M::bind_ids(sqlx::query(sql), std::slice::from_ref(id))).await?;
    let Some(old) = rows.first().map(M::from_row).transpose()? else {
        return Ok(false);
    };
    let mut plan = WritePlan::default();
    plan.fill::<M>(key::primary(&cache.prefix, id), None);
    release_unique(&cache, &mut plan, &old);
    commit_with(&cache, tx, plan).await?;
    Ok(true)
}

/// Evicts the cached row `id` (as an LRU eviction would); the next read costs one query.
pub async fn evict<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<()> {
    let backend = ctx.backend_for(&M::INFO)?;
    let _ = backend.evict(&[primary_key::<M>(ctx, id).as_str()]).await;
    Ok(())
}
