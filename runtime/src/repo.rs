//! Evictions of a model's cached keys, as an LRU eviction would make them (what generated
//! repositories' `evict…` methods call), and the key of a row. Their reads and writes run
//! through a [`crate::Scope`].

use std::fmt::Display;

use crate::backend::CacheBackend;
use crate::context::Context;
use crate::error::Result;
use crate::key;
use crate::model::{Collection, Model};
use crate::plans::cache_for;

/// The cache key of the row with primary key `id`, in `ctx`'s key namespace.
pub fn primary_key<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> String {
    key::primary(&ctx.key_prefix(&M::INFO), id)
}

/// Evicts the cached row `id` (as an LRU eviction would); the next read costs one query.
pub async fn evict<M: Model>(ctx: &Context<M::Db>, id: &M::Id) -> Result<()> {
    let backend = ctx.backend_for(&M::INFO)?;
    let _ = backend.evict(&[primary_key::<M>(ctx, id).as_str()]).await;
    Ok(())
}

/// Evicts a cached collection (one a generated collection accessor reads); the next read costs one query.
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
