//! Generic repository operations on instances; generated `<Model>Repo` methods delegate here.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use futures::future::BoxFuture;
use sqlx::Database;
use tracing::Instrument;

use crate::backend::CacheBackend;
use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::key;
use crate::model::{
    Collection, Dependent, Footprint, Model, ModelInfo, NewModel, OnDelete, UniqueField, UpdateReturns,
};
use crate::plans::{PlanSet, cache_for, read_cache_for};
use crate::protocol::read_through;
use crate::relation::plan_refill;
use crate::scope::Scope as _;
use crate::transaction::write_alone;

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

/// The cache key of the row with primary key `id`, in `ctx`'s key namespace.
pub fn primary_key<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> String {
    key::primary(&ctx.key_prefix(&M::INFO), id)
}

/// Reads rows by primary key: one cache round trip, the misses in one SQL query.
/// Reads keys `<prefix>:pk:<id>`; missing rows are cached as "does not exist".
pub(crate) async fn get_many<M: Model>(ctx: &Context<M::Db>, ids: &[M::Id]) -> Result<Vec<Option<M>>> {
    let span = crate::trace::call(&M::INFO, "get_many");
    async move {
        let cache = read_cache_for::<M>(ctx)?;
        let keys: Vec<String> = ids.iter().map(|id| key::primary(&cache.prefix, id)).collect();
        read_through(&cache, &keys, |indices| async move {
            let wanted: Vec<M::Id> = indices.iter().map(|&i| ids[i].clone()).collect();
            let mut conn = ctx.pool().acquire().await?;
            select_in_order::<M>(ctx, &mut conn, &wanted).await
        })
        .await
    }
    .instrument(span)
    .await
}

/// Reads a row by a unique field, or a `unique_together` group: the key
/// `<prefix>:uq.<field>:<value>` caches the primary key, then the row is read as by [`get_many`].
/// `value` is the lookup's key text (as [`Model::unique_values`] spells it for a row, see
/// [`key::compose`] for a group) and `bind` binds the lookup's values to
/// [`UniqueField::select_row`].
pub(crate) async fn get_by_unique<M, B>(
    ctx: &Context<M::Db>,
    unique: &UniqueField,
    value: &str,
    bind: B,
) -> Result<Option<M>>
where
    M: Model,
    B: Fn(SqlQuery<M::Db>) -> SqlQuery<M::Db> + Send + Sync,
{
    let span = crate::trace::call(&M::INFO, "get_by_unique");
    async move {
        let cache = read_cache_for::<M>(ctx)?;
        let keys = [key::unique(&cache.prefix, unique.field, value)];
        let bind = &bind;
        let ids = read_through::<M::Id, _, _>(&cache, &keys, |_| async move {
            let mut conn = ctx.pool().acquire().await?;
            let rows = fetch(ctx, &M::INFO, &mut conn, bind(sqlx::query(unique.select_row))).await?;
            let row = rows.first().map(M::from_row).transpose()?;
            Ok(vec![row.map(|row| row.id())])
        })
        .await?;
        match ids.into_iter().next().flatten() {
            Some(id) => ctx.get::<M>(&id).await,
            None => Ok(None),
        }
    }
    .instrument(span)
    .await
}

/// What a write does to the keys of one row version.
enum RowEffect {
    /// The row as it now is: write through its instance and unique keys.
    Current,
    /// The row as it was (before an update or delete): empty its old unique keys.
    Former,
}

/// Plans the keys of one version of `row`: instance and unique keys, a refill of every
/// collection the row is a member of through its own columns and, for a through model's
/// row, an eviction of the many-to-many collections holding its pair.
fn plan_row<'a, M: Model>(
    plans: &mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    row: &M,
    effect: RowEffect,
) -> Result<()> {
    let (cache, plan) = plans.of(&M::INFO)?;
    let prefix = cache.prefix.clone();
    match effect {
        RowEffect::Current => {
            let id = row.id();
            plan.fill(key::primary(&prefix, &id), Some(row));
            for (field, value) in row.unique_values() {
                plan.fill(key::unique(&prefix, field, &value), Some(&id));
            }
        }
        RowEffect::Former => {
            for (field, value) in row.unique_values() {
                plan.evict(key::unique(&prefix, field, &value));
            }
        }
    }
    for membership in row.memberships() {
        let row = row.clone();
        let members = async move {
            let query = (membership.bind_owner)(&row, sqlx::query(membership.collection.select));
            fetch_rows::<M>(ctx, query).await
        };
        plan_refill(plan, &prefix, membership.collection, &membership.owner, members);
    }
    for pair in row.pairs() {
        let (cache, plan) = plans.of(pair.members)?;
        plan.evict(pair.collection.key(&cache.prefix, &pair.owner));
    }
    Ok(())
}

/// Selects primary keys as text with a footprint statement.
async fn select_texts<DB: Dialect>(
    ctx: &Context<DB>,
    model: &ModelInfo,
    conn: &mut DB::Connection,
    sql: &'static str,
    id: &str,
) -> Result<Vec<String>> {
    let rows = fetch(ctx, model, conn, DB::bind_text(sqlx::query(sql), id.to_owned())).await?;
    rows.iter().map(|row| Ok(DB::text_column(row, 0)?)).collect()
}

/// Rows already planned as deleted by one delete, as `(model, primary key text)`: a cycle
/// of cascades (rows that point at each other) is followed once.
pub(crate) type Visited = HashSet<(&'static str, String)>;

/// Plans the keys of the rows of one model that reference a deleted row (see
/// [`crate::DependentRows`]): `(plans, ctx, conn, dependent, referenced key text, visited)`.
pub(crate) type PlanDependents<DB> = for<'a, 'c> fn(
    &'c mut PlanSet<'a, DB>,
    &'a Context<DB>,
    &'c mut <DB as Database>::Connection,
    &'static Dependent<DB>,
    String,
    &'c mut Visited,
) -> BoxFuture<'c, Result<()>>;

/// Plans every key that depends on row `id` of `M`: its many-to-many memberships
/// (re-sorted after commit, or emptied when `deleted`) and, when `deleted`, the collections
/// it owns and the rows that point at it
/// (recursively for cascaded deletes). Runs its selects inside the write's transaction,
/// before the write, while the dependents still exist.
fn plan_footprint<'a, 'c, M: Model>(
    plans: &'c mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    conn: &'c mut <M::Db as Database>::Connection,
    id: String,
    deleted: bool,
    visited: &'c mut Visited,
) -> BoxFuture<'c, Result<()>> {
    Box::pin(async move {
        let footprint = &M::FOOTPRINT;
        let mut found = match deleted.then(|| probe(footprint)).flatten() {
            Some(sql) => Some(probe_parts::<M::Db>(ctx, &M::INFO, conn, sql, &id).await?),
            None => None,
        };
        for (index, joined) in footprint.joined.iter().enumerate() {
            let owners = match &mut found {
                Some(found) => std::mem::take(&mut found[index]),
                None => select_texts(ctx, &M::INFO, conn, joined.owners, &id).await?,
            };
            let (cache, plan) = plans.of(&M::INFO)?;
            let prefix = cache.prefix.clone();
            for owner in owners {
                if deleted {
                    plan.evict(joined.collection.key(&prefix, &owner));
                    continue;
                }
                // The row stays but its ordering fields changed: re-sort (re-read after
                // commit), so the next read of the collection costs no query.
                let text = owner.clone();
                let members = async move {
                    let query = <M::Db as Dialect>::bind_text(sqlx::query(joined.members), text);
                    fetch_rows::<M>(ctx, query).await
                };
                plan_refill(plan, &prefix, joined.collection, &owner, members);
            }
        }
        if !deleted {
            return Ok(());
        }
        for &(members, collection) in footprint.owned {
            let (cache, plan) = plans.of(members)?;
            plan.evict(collection.key(&cache.prefix, &id));
        }
        for (index, dependent) in footprint.dependents.iter().enumerate() {
            // Probed: only the dependents that have rows are selected.
            if found
                .as_ref()
                .is_none_or(|found| !found[footprint.joined.len() + index].is_empty())
            {
                (dependent.rows.0)(plans, ctx, conn, dependent, id.clone(), visited).await?;
            }
        }
        Ok(())
    })
}

/// For a deleted row whose footprint has more than one select: one statement asking them
/// all, tagged by part (the many-to-many owners' keys, then a row of each dependent model
/// that has any), so a delete sends one statement per level instead of one per part. Each
/// part binds the deleted row's key text (once on PostgreSQL, whose parts share `$1`).
fn probe<DB: Dialect>(footprint: &Footprint<DB>) -> Option<(String, usize)> {
    if footprint.joined.len() + footprint.dependents.len() < 2 {
        return None;
    }
    let joined = footprint.joined.iter().map(|joined| joined.owners);
    let dependents = footprint.dependents.iter().map(|dependent| dependent.select_rows);
    let parts: Vec<String> = joined
        .enumerate()
        .map(|(part, sql)| format!("SELECT '{part}', v.* FROM ({sql}) v"))
        .chain(dependents.enumerate().map(|(index, sql)| {
            let part = footprint.joined.len() + index;
            format!("SELECT '{part}', '' FROM ({sql} LIMIT 1) v")
        }))
        .collect();
    Some((parts.join(" UNION ALL "), parts.len()))
}

/// Runs a [`probe`]: per part, the texts it found (owners' keys; one empty text for a
/// dependent model that has rows).
async fn probe_parts<DB: Dialect>(
    ctx: &Context<DB>,
    model: &ModelInfo,
    conn: &mut DB::Connection,
    (sql, parts): (String, usize),
    id: &str,
) -> Result<Vec<Vec<String>>> {
    // `?` placeholders are bound in order, one per part; `$1` once for every part.
    let binds = if DB::placeholder(2) == DB::placeholder(1) {
        parts
    } else {
        1
    };
    let query = (0..binds).fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, _| {
        DB::bind_text(query, id.to_owned())
    });
    let mut found = vec![Vec::new(); parts];
    for row in fetch(ctx, model, conn, query).await? {
        let part: usize = DB::text_column(&row, 0)?
            .parse()
            .map_err(|_| sqlx::Error::Decode("a footprint probe's part is not a number".into()))?;
        if let Some(texts) = found.get_mut(part) {
            texts.push(DB::text_column(&row, 1)?);
        }
    }
    Ok(found)
}

/// Plans the keys of the `M` rows that reference the deleted row `referenced` through
/// `dependent`, selected before the delete: a cascaded row as if deleted itself (its
/// instance key reads "does not exist", its unique keys are emptied, every collection it is
/// a member of through any of its columns is refilled, and what depends on it follows); a
/// row whose column is set to NULL has its instance and unique keys emptied and every
/// collection it is a member of refilled (the one of the deleted owner included), and the
/// many-to-many collections it is in emptied (its order may change).
pub(crate) fn plan_dependents<'a, 'c, M: Model>(
    plans: &'c mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    conn: &'c mut <M::Db as Database>::Connection,
    dependent: &'static Dependent<M::Db>,
    referenced: String,
    visited: &'c mut Visited,
) -> BoxFuture<'c, Result<()>> {
    Box::pin(async move {
        let query = <M::Db as Dialect>::bind_text(sqlx::query(dependent.select_rows), referenced);
        let rows = fetch(ctx, &M::INFO, conn, query).await?;
        let rows: Vec<M> = rows.iter().map(M::from_row).collect::<Result<_, _>>()?;
        for row in rows {
            let id = row.id().to_string();
            let cascade = dependent.on_delete == OnDelete::Cascade;
            if cascade && !visited.insert((M::INFO.name, id.clone())) {
                continue;
            }
            plan_row(plans, ctx, &row, RowEffect::Former)?;
            let (cache, plan) = plans.of(&M::INFO)?;
            let key = key::primary(&cache.prefix, &row.id());
            if cascade {
                plan.fill::<M>(key, None);
            } else {
                plan.evict(key);
            }
            plan_footprint::<M>(plans, ctx, conn, id, cascade, visited).await?;
        }
        Ok(())
    })
}

/// Runs an insert on `conn` and plans its keys (see [`insert`]).
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
    plan_row(plans, ctx, &row, RowEffect::Current)?;
    Ok(row)
}

/// Inserts a row. Writes through `<prefix>:pk:<id>` and its unique-field keys, and refills
/// the collections it joins, so the next reads cost no query.
pub(crate) async fn insert<N: NewModel>(ctx: &Context<<N::Model as Model>::Db>, new: &N) -> Result<N::Model> {
    write_alone!(ctx, &<N::Model as Model>::INFO, "insert", |tx| tx.insert(new))
}

/// Runs an update on `conn` and plans its keys (see [`update`]).
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
        plan_row(plans, ctx, row, RowEffect::Current)?;
        let id = row.id();
        let before = old.iter().find(|o| o.id() == id);
        if let Some(before) = before {
            plan_row(plans, ctx, before, RowEffect::Former)?;
        }
        if before.is_none_or(|before| !row.same_order(before)) {
            plan_footprint::<M>(plans, ctx, conn, id.to_string(), false, &mut Visited::new()).await?;
        }
    }
    Ok(())
}

/// Updates every column of a row by primary key; `None` if no such row. Writes through
/// `<prefix>:pk:<id>` and the new unique-field keys, empties the old ones, refills the
/// collections of its old and new owners and, when its ordering fields changed, re-sorts the
/// many-to-many collections it is in (re-read after commit).
pub(crate) async fn update<M: Model>(ctx: &Context<M::Db>, row: &M) -> Result<Option<M>> {
    write_alone!(ctx, &M::INFO, "update", |tx| tx.update(row))
}

/// Runs a delete on `conn` and plans its keys (see [`delete`]).
pub(crate) async fn delete_planned<'a, M: Model>(
    ctx: &'a Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    plans: &mut PlanSet<'a, M::Db>,
    id: &M::Id,
) -> Result<bool> {
    let mut visited = Visited::from([(M::INFO.name, id.to_string())]);
    plan_footprint::<M>(plans, ctx, conn, id.to_string(), true, &mut visited).await?;
    let Some(old) = select_by_ids::<M>(ctx, conn, M::SQL.delete, std::slice::from_ref(id))
        .await?
        .pop()
    else {
        return Ok(false);
    };
    plan_row(plans, ctx, &old, RowEffect::Former)?;
    let (cache, plan) = plans.of(&M::INFO)?;
    let key = key::primary(&cache.prefix, id);
    plan.fill::<M>(key, None);
    Ok(true)
}

/// Deletes a row by primary key; whether it existed. Caches "does not exist" under
/// `<prefix>:pk:<id>`, empties its unique-field keys and every key that depended on it
/// (collections it owned, rows the database deleted or changed with it), and refills the
/// collections it was a member of.
pub(crate) async fn delete<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<bool> {
    write_alone!(ctx, &M::INFO, "delete", |tx| tx.delete::<M>(id))
}

/// Evicts the cached row `id` (as an LRU eviction would); the next read costs one query.
pub async fn evict<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<()> {
    let backend = ctx.backend_for(&M::INFO)?;
    let _ = backend.evict(&[primary_key::<M>(ctx, id).as_str()]).await;
    Ok(())
}

/// Evicts a cached collection (see [`crate::relation::collection`]); the next read costs one query.
pub async fn evict_collection<M: Model>(
    ctx: &Context<M::Db>,
    collection: &Collection,
    owner: &impl Display,
) -> Result<()> {
    let cache = cache_for(ctx, &M::INFO)?;
    let key = collection.key(&cache.prefix, &owner.to_string());
    let _ = cache.backend.evict(&[key.as_str()]).await;
    Ok(())
}
