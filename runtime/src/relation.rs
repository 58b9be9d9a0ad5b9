//! Related collections: reads of reverse foreign keys, reverse one-to-ones and both sides
//! of many-to-many relations, and the many-to-many writers. A collection key caches the
//! member rows in order ([`Holds::Rows`]: one lookup per read) or, for many-to-many sides,
//! their primary keys ([`Holds::Ids`]: the rows come from their own instance keys).

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::Mutex;

use tracing::Instrument;

use crate::context::Context;
use crate::db::{Dialect, SqlQuery};
use crate::error::Result;
use crate::key;
use crate::key::Holds;
use crate::model::{Collection, Model, ModelInfo};
use crate::plans::{PlanSet, read_cache_for};
use crate::protocol::{Cache, WritePlan, read_through};
use crate::repo::{fetch, fetch_rows, get_many};
use crate::scope::Scope as _;
use crate::transaction::write_alone;

/// A value that can be bound to a statement and written into a key.
pub trait KeyValue<DB: Dialect>:
    for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + Display + Clone + Send + Sync + 'static
{
}

impl<DB: Dialect, T> KeyValue<DB> for T where
    T: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + Display + Clone + Send + Sync + 'static
{
}

/// A single-column primary key, as a many-to-many join table holds it: bound to its
/// statements and decoded from their rows.
pub trait JoinKey<DB: Dialect>: KeyValue<DB> + for<'r> sqlx::Decode<'r, DB> {}

impl<DB: Dialect, T> JoinKey<DB> for T where T: KeyValue<DB> + for<'r> sqlx::Decode<'r, DB> {}

/// Selects the members of `collection` owned by `owner`, in order (one counted query).
pub(crate) async fn select_members<M: Model, O: KeyValue<M::Db>>(
    ctx: &Context<M::Db>,
    collection: &Collection,
    owner: O,
) -> Result<Vec<M>> {
    fetch_rows::<M>(ctx, sqlx::query(collection.select).bind(owner)).await
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
        let keys = [collection.key(&cache.prefix, &owner.to_string())];
        if collection.holds == Holds::Rows {
            return rows_of::<M, _>(ctx, &cache, collection, &keys, |query| query.bind(owner.clone())).await;
        }
        let loaded: Mutex<Option<Vec<M>>> = Mutex::new(None);
        let ids = read_through::<Vec<M::Id>, _, _>(&cache, &keys, |_| {
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

/// Reads a collection of rows by its key `keys[0]`; on a miss, one query (its statement with
/// `bind`'s values) returns the rows and fills the key.
async fn rows_of<M: Model, B>(
    ctx: &Context<M::Db>,
    cache: &Cache<'_>,
    collection: &Collection,
    keys: &[String],
    bind: B,
) -> Result<Vec<M>>
where
    B: Fn(SqlQuery<M::Db>) -> SqlQuery<M::Db> + Send + Sync,
{
    let bind = &bind;
    let rows = read_through::<Vec<M>, _, _>(cache, keys, |_| async move {
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
        let keys = [collection.key(&cache.prefix, value)];
        rows_of::<M, _>(ctx, &cache, collection, &keys, bind).await
    }
    .instrument(span)
    .await
}

/// Plans, after commit, a refill of the key of `collection` owned by `owner` with what
/// `members` then returns (the rows, or their primary keys, as the collection holds).
pub(crate) fn plan_refill<'f, M: Model>(
    plan: &mut WritePlan<'f>,
    prefix: &str,
    collection: &Collection,
    owner: &str,
    members: impl Future<Output = Result<Vec<M>>> + Send + 'f,
) {
    let key = collection.key(prefix, owner);
    match collection.holds {
        Holds::Rows => plan.refill(key, members),
        Holds::Ids => plan.refill(key, async move {
            Ok(members.await?.iter().map(M::id).collect::<Vec<M::Id>>())
        }),
    }
}

/// One side of a many-to-many relation, as seen from model `S` towards model `O`.
#[derive(Debug)]
pub struct JoinSide {
    /// Inserts the pair (this side's key, the other side's key), ignoring an existing pair.
    pub insert: &'static str,
    /// Deletes the pair (this side's key, the other side's key).
    pub delete: &'static str,
    /// Selects the other side's keys paired with one key of this side.
    pub select_others: &'static str,
    /// The collection of other-side rows owned by a row of this side (`editors`).
    pub own: &'static Collection,
    /// The collection of this side's rows owned by an other-side row (`edited`).
    pub theirs: &'static Collection,
    /// The through model whose rows are the pairs, if the relation has one.
    pub through: Option<&'static Through>,
}

/// A many-to-many relation's through model, as seen from one side: the keys of its rows
/// that a pair written by the relation's writers changes.
#[derive(Debug)]
pub struct Through {
    /// The through model.
    pub model: &'static ModelInfo,
    /// Whether this side's key is the first part of the through model's key.
    pub this_first: bool,
    /// The through model's rows pointing at one row of this side (its foreign key's reverse).
    pub own: &'static Collection,
    /// The through model's rows pointing at one row of the other side.
    pub theirs: &'static Collection,
}

impl Through {
    /// Plans the eviction of the keys a changed pair (`this`, `others`) leaves wrong: the
    /// through rows' instance keys and the collections of them owned by either side.
    fn plan<DB: Dialect>(&self, plans: &mut PlanSet<'_, DB>, this: &str, others: &[String]) -> Result<()> {
        let (cache, plan) = plans.of(self.model)?;
        plan.evict(self.own.key(&cache.prefix, this));
        for other in others {
            let parts = if self.this_first {
                [this, other]
            } else {
                [other.as_str(), this]
            };
            plan.evict(key::primary(&cache.prefix, &key::compose(&parts)));
            plan.evict(self.theirs.key(&cache.prefix, other));
        }
        Ok(())
    }
}

/// How a many-to-many write changes the pairs of one row.
pub enum JoinChange<'v, T> {
    /// Pairs these rows with it.
    Add(&'v [T]),
    /// Unpairs these rows from it.
    Remove(&'v [T]),
    /// Makes exactly these rows its pairs.
    Set(&'v [T]),
}

/// Changes the pairs of row `id` of `S` on `side`; refills, after commit, the collection
/// `<O prefix>:rel.<own>:<id>` and `<S prefix>:rel.<theirs>:<other>` of every other row
/// whose pairing changed; with a through model, empties the changed pairs' instance keys
/// and the through model's collections owned by `id` and by those rows.
pub(crate) async fn join_write<S, O>(
    ctx: &Context<S::Db>,
    side: &'static JoinSide,
    id: &S::Id,
    change: JoinChange<'_, O::Id>,
) -> Result<()>
where
    S: Model<Id: JoinKey<S::Db>>,
    O: Model<Db = S::Db, Id: JoinKey<S::Db>>,
{
    write_alone!(ctx, &S::INFO, "join_write", |tx| tx
        .join_write::<S, O>(side, id, change))
}

/// Runs a many-to-many write on `conn` and plans its keys (see [`join_write`]).
pub(crate) async fn join_write_planned<'a, S, O>(
    ctx: &'a Context<S::Db>,
    conn: &mut <S::Db as sqlx::Database>::Connection,
    plans: &mut PlanSet<'a, S::Db>,
    side: &'static JoinSide,
    id: &S::Id,
    change: JoinChange<'_, O::Id>,
) -> Result<()>
where
    S: Model<Id: JoinKey<S::Db>>,
    O: Model<Db = S::Db, Id: JoinKey<S::Db>>,
{
    let current: Vec<O::Id> = {
        let rows = fetch(ctx, &S::INFO, conn, sqlx::query(side.select_others).bind(id.clone())).await?;
        rows.iter()
            .map(|row| S::Db::column::<O::Id>(row, 0))
            .collect::<Result<_, _>>()?
    };
    let (remove, add): (Vec<O::Id>, Vec<O::Id>) = match change {
        JoinChange::Add(others) => (
            Vec::new(),
            others.iter().filter(|o| !current.contains(o)).cloned().collect(),
        ),
        JoinChange::Remove(others) => (
            others.iter().filter(|o| current.contains(o)).cloned().collect(),
            Vec::new(),
        ),
        JoinChange::Set(others) => (
            current.iter().filter(|o| !others.contains(o)).cloned().collect(),
            others
                .iter()
                .filter(|o| !current.contains(o))
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect(),
        ),
    };
    let pairs = remove
        .iter()
        .map(|other| (side.delete, other))
        .chain(add.iter().map(|other| (side.insert, other)));
    for (sql, other) in pairs {
        fetch(
            ctx,
            &S::INFO,
            conn,
            sqlx::query(sql).bind(id.clone()).bind(other.clone()),
        )
        .await?;
    }
    if let Some(through) = side.through {
        let others: Vec<String> = remove.iter().chain(&add).map(ToString::to_string).collect();
        if !others.is_empty() {
            through.plan(plans, &id.to_string(), &others)?;
        }
    }
    let (cache, plan) = plans.of(&O::INFO)?;
    let members = select_members::<O, S::Id>(ctx, side.own, id.clone());
    plan_refill(plan, &cache.prefix, side.own, &id.to_string(), members);
    for other in remove.into_iter().chain(add) {
        let (cache, plan) = plans.of(&S::INFO)?;
        let owner = other.to_string();
        let members = select_members::<S, O::Id>(ctx, side.theirs, other);
        plan_refill(plan, &cache.prefix, side.theirs, &owner, members);
    }
    Ok(())
}
