//! Reads through the cache, in a context: rows by primary key or unique field, collections
//! and index lookups. Each loads its misses with one counted statement and fills their keys
//! under the protocol's leases ([`crate::protocol::read_through`]).

use std::sync::Mutex;

use tracing::Instrument;

use crate::context::Context;
use crate::db::SqlQuery;
use crate::error::Result;
use crate::fetch::{fetch, fetch_rows, select_in_order, select_members};
use crate::key::{self, Holds};
use crate::model::{Collection, Model, UniqueField};
use crate::plans::cache_for;
use crate::protocol::{Cache, read_through};
use crate::relation::KeyValue;

/// The cache a read of `M` works against: [`cache_for`] with the model's near cache, if
/// the context has near caches and sizes one for `M`, or none at all on a view made by
/// [`Context::uncached`].
fn read_cache_for<M: Model>(ctx: &Context<M::Db>) -> Result<Cache<'_>> {
    let mut cache = cache_for(ctx, &M::INFO)?;
    if ctx.reads_uncached() {
        cache.uncached = true;
        return Ok(cache);
    }
    cache.near = ctx
        .near()
        .and_then(|near| near.scope(M::INFO.name, &cache.prefix, M::NEAR_ENTRIES));
    Ok(cache)
}

/// Reads rows by primary key: one cache round trip, the misses in one SQL query.
/// Reads keys `<prefix>:pk:<id>`; missing rows are cached as "does not exist".
pub(crate) async fn get_many<M: Model>(ctx: &Context<M::Db>, ids: &[M::Id]) -> Result<Vec<Option<M>>> {
    let span = crate::trace::call(&M::INFO, "get_many");
    async move {
        let cache = read_cache_for::<M>(ctx)?;
        let keys = key::primaries(&cache.prefix, ids);
        read_through(&cache, &keys.all(), |indices| async move {
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
        let key = key::unique(&cache.prefix, unique.field, value);
        let bind = &bind;
        let ids = read_through::<M::Id, _, _>(&cache, &[&key], |_| async move {
            let mut conn = ctx.pool().acquire().await?;
            let rows = fetch(ctx, &M::INFO, &mut conn, bind(sqlx::query(unique.select_row))).await?;
            let row = rows.first().map(M::from_row).transpose()?;
            Ok(vec![row.map(|row| row.id())])
        })
        .await?;
        match ids.into_iter().next().flatten() {
            Some(id) => Ok(get_many::<M>(ctx, std::slice::from_ref(&id)).await?.pop().flatten()),
            None => Ok(None),
        }
    }
    .instrument(span)
    .await
}

/// Reads the members of `collection` owned by `owner`, in the members' ordering.
///
/// Reads key `<member prefix>:rows.<name>:<owner>` (the rows), or for a many-to-many side
/// `<member prefix>:rel.<name>:<owner>` (their primary keys) and then the members as
/// [`get_many`]. On a miss, one query returns the rows and fills the key.
pub(crate) async fn collection<M: Model, O: KeyValue<M::Db>>(
    ctx: &Context<M::Db>,
    collection: &Collection,
    owner: O,
) -> Result<Vec<M>> {
    let span = crate::trace::call(&M::INFO, "collection");
    async move {
        let cache = read_cache_for::<M>(ctx)?;
        let key = collection.key(&cache.prefix, &owner.to_string());
        if collection.holds == Holds::Rows {
            return rows_of::<M, _>(ctx, &cache, collection, &key, |query| query.bind(owner.clone())).await;
        }
        let loaded: Mutex<Option<Vec<M>>> = Mutex::new(None);
        let ids = read_through::<Vec<M::Id>, _, _>(&cache, &[&key], |_| {
            let (owner, loaded) = (owner.clone(), &loaded);
            async move {
                let rows = select_members::<M, O>(ctx, collection, owner).await?;
                let ids = rows.iter().map(M::id).collect();
                *loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(rows);
                Ok(vec![Some(ids)])
            }
        })
        .await?;
        if let Some(rows) = loaded.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Ok(rows);
        }
        let ids = ids.into_iter().next().flatten().unwrap_or_default();
        Ok(get_many::<M>(ctx, &ids).await?.into_iter().flatten().collect())
    }
    .instrument(span)
    .await
}

/// Reads a collection of rows by its key; on a miss, one query (its statement with `bind`'s
/// values) returns the rows and fills the key.
async fn rows_of<M: Model, B>(
    ctx: &Context<M::Db>,
    cache: &Cache<'_>,
    collection: &Collection,
    key: &str,
    bind: B,
) -> Result<Vec<M>>
where
    B: Fn(SqlQuery<M::Db>) -> SqlQuery<M::Db> + Send + Sync,
{
    let bind = &bind;
    let rows = read_through::<Vec<M>, _, _>(cache, &[key], |_| async move {
        Ok(vec![Some(
            fetch_rows::<M>(ctx, bind(sqlx::query(collection.select))).await?,
        )])
    })
    .await?;
    Ok(rows.into_iter().next().flatten().unwrap_or_default())
}

/// Reads the rows of an index lookup (`find_by_<…>`): those holding the values `bind`
/// binds to the lookup's statement, in the model's ordering. Reads key
/// `<prefix>:rows.by.<fields>:<value>`, `value` being the values' key text (as
/// [`Model::memberships`] spells it for a row); on a miss, one query fills it.
pub(crate) async fn find<M: Model, B>(
    ctx: &Context<M::Db>,
    collection: &Collection,
    value: &str,
    bind: B,
) -> Result<Vec<M>>
where
    B: Fn(SqlQuery<M::Db>) -> SqlQuery<M::Db> + Send + Sync,
{
    let span = crate::trace::call(&M::INFO, "find");
    async move {
        let cache = read_cache_for::<M>(ctx)?;
        let key = collection.key(&cache.prefix, value);
        rows_of::<M, _>(ctx, &cache, collection, &key, bind).await
    }
    .instrument(span)
    .await
}
