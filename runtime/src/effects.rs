//! The cache keys a write of a row changes, planned into a [`PlanSet`]: its instance and
//! unique keys, the collections it is a member of, and what depends on it (its footprint:
//! collections it owns, many-to-many collections it is in, the rows that point at it,
//! recursively for cascaded deletes). The planned writes (`crate::write`, `crate::join`,
//! `crate::bulk`) call these after their statements.
//!
//! Which kind of key becomes what is the planner's (`autocache_effects::plan`), the same
//! the generator's `explain` prints; here the kinds become keys, spelled from the row's
//! values, with the selects that find what depends on it.

use std::collections::HashSet;
use std::marker::PhantomData;

use autocache_effects::{self as effects, After, Change, Key, PairKey, Step};
use futures::future::BoxFuture;
use sqlx::Database;

use crate::context::Context;
use crate::db::{Dialect, key_list, placeholders};
use crate::error::Result;
use crate::fetch::{fetch, fetch_rows};
use crate::key::{self, Holds};
use crate::model::{Collection, Dependent, DependentRows, Footprint, Model, ModelInfo, OnDelete};
use crate::one_shot::{self, Ran};
use crate::plans::PlanSet;
use crate::protocol::WritePlan;
use crate::relation::Through;

/// Plans the keys of one version of `row` that follow from the row itself, as the planner
/// says for `change` (see [`autocache_effects::plan`]): its instance and unique keys, the
/// collections it is a member of through its own columns (refilled) and, for a through
/// model's row, the many-to-many collections holding its pair. What depends on the row is
/// [`plan_footprint`]'s.
pub(crate) fn plan_row<'a, M: Model>(
    plans: &mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    row: &M,
    change: Change,
) -> Result<()> {
    let prefix = plans.of(&M::INFO)?.0.prefix.clone();
    for step in effects::plan(change) {
        let &Step::Key(kind, after) = step else { continue };
        let (_, plan) = plans.of(&M::INFO)?;
        match kind {
            Key::Instance => {
                let key = key::primary(&prefix, &row.id());
                match after {
                    After::WriteThrough => plan.fill(key, Some(row)),
                    After::DoesNotExist => plan.fill::<M>(key, None),
                    After::Refill | After::Empty => plan.evict(key),
                }
            }
            Key::Uniques => {
                let id = row.id();
                for (field, value) in row.unique_values() {
                    let key = key::unique(&prefix, field, &value);
                    match after {
                        After::WriteThrough => plan.fill(key, Some(&id)),
                        _ => plan.evict(key),
                    }
                }
            }
            Key::Memberships => {
                for membership in row.memberships() {
                    let row = row.clone();
                    let members = async move {
                        let query = (membership.bind_owner)(&row, sqlx::query(membership.collection.select));
                        fetch_rows::<M>(ctx, query).await
                    };
                    plan_collection(plan, &prefix, membership.collection, &membership.owner, after, members);
                }
            }
            Key::Pairs => {
                for pair in row.pairs() {
                    let (cache, plan) = plans.of(pair.members)?;
                    plan.evict(pair.collection.key(&cache.prefix, &pair.owner));
                }
            }
            Key::Joined | Key::Owned => {}
        }
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
type PlanDependents<DB> = for<'a, 'c> fn(
    &'c mut PlanSet<'a, DB>,
    &'a Context<DB>,
    &'c mut <DB as Database>::Connection,
    &'static Dependent<DB>,
    String,
    &'c mut Visited,
) -> BoxFuture<'c, Result<()>>;

impl<DB: Dialect> DependentRows<DB> {
    /// The planner of rows of model `M`.
    pub const fn of<M: Model<Db = DB>>() -> Self {
        Self {
            planner: &Planner::<M>::PLAN,
            dialect: PhantomData,
        }
    }

    /// The planner [`DependentRows::of`] holds.
    fn planner(&self) -> PlanDependents<DB> {
        *self
            .planner
            .downcast_ref::<PlanDependents<DB>>()
            .expect("DependentRows::of holds a planner of its own dialect")
    }
}

/// [`plan_dependents`] of `M`, as a constant: what [`DependentRows::of`] refers to.
struct Planner<M>(PhantomData<M>);

impl<M: Model> Planner<M> {
    const PLAN: PlanDependents<M::Db> = plan_dependents::<M>;
}

/// Plans every key that depends on row `id` of `M`, as the planner says for `change`: its
/// many-to-many memberships (re-sorted after commit, or emptied when it is deleted) and, when
/// it is deleted, the collections it owns and the rows that point at it (recursively for
/// cascaded deletes). Runs its selects inside the write's transaction, before the write,
/// while the dependents still exist.
pub(crate) fn plan_footprint<'a, 'c, M: Model>(
    plans: &'c mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    conn: &'c mut <M::Db as Database>::Connection,
    id: String,
    change: Change,
    visited: &'c mut Visited,
) -> BoxFuture<'c, Result<()>> {
    Box::pin(async move {
        let deleted = matches!(change, Change::Orphaned { .. });
        let found = match deleted.then(|| probe(&M::FOOTPRINT)).flatten() {
            Some(sql) => Some(probe_parts::<M::Db>(ctx, &M::INFO, conn, sql, &id).await?),
            None => None,
        };
        plan_probed_footprint::<M>(plans, ctx, conn, id, found, change, visited).await
    })
}

/// [`plan_footprint`] given what a [`probe`] of the row's footprint `found` (`None`: not
/// probed; every part is then selected on its own). A deleted row's change is
/// `Orphaned { points_at }` with `points_at` as the probe found it.
pub(crate) fn plan_probed_footprint<'a, 'c, M: Model>(
    plans: &'c mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    conn: &'c mut <M::Db as Database>::Connection,
    id: String,
    mut found: Option<Vec<Vec<String>>>,
    change: Change,
    visited: &'c mut Visited,
) -> BoxFuture<'c, Result<()>> {
    Box::pin(async move {
        let footprint = &M::FOOTPRINT;
        let change = match change {
            Change::Orphaned { .. } => Change::Orphaned {
                points_at: found
                    .as_ref()
                    .is_none_or(|found| found.iter().any(|part| !part.is_empty())),
            },
            other => other,
        };
        for step in effects::plan(change) {
            match *step {
                Step::Key(Key::Joined, after) => {
                    for (index, joined) in footprint.joined.iter().enumerate() {
                        let owners = match &mut found {
                            Some(found) => std::mem::take(&mut found[index]),
                            None => select_texts(ctx, &M::INFO, conn, joined.owners, &id).await?,
                        };
                        let (cache, plan) = plans.of(&M::INFO)?;
                        let prefix = cache.prefix.clone();
                        for owner in owners {
                            // Refilled: re-sorted (re-read after commit), so the next read of
                            // the collection costs no query.
                            let text = owner.clone();
                            let members = async move {
                                let query = <M::Db as Dialect>::bind_text(sqlx::query(joined.members), text);
                                fetch_rows::<M>(ctx, query).await
                            };
                            plan_collection(plan, &prefix, joined.collection, &owner, after, members);
                        }
                    }
                }
                Step::Key(Key::Owned, _) => {
                    for &(members, collection) in footprint.owned {
                        let (cache, plan) = plans.of(members)?;
                        plan.evict(collection.key(&cache.prefix, &id));
                    }
                }
                Step::Dependents => {
                    for (index, dependent) in footprint.dependents.iter().enumerate() {
                        // Probed: only the dependents that have rows are selected.
                        if found
                            .as_ref()
                            .is_none_or(|found| !found[footprint.joined.len() + index].is_empty())
                        {
                            (dependent.rows.planner())(plans, ctx, conn, dependent, id.clone(), visited).await?;
                        }
                    }
                }
                // The row's own keys are `plan_row`'s.
                Step::Key(_, _) => {}
            }
        }
        Ok(())
    })
}

/// For a deleted row whose footprint has more than one select: one statement asking them
/// all, tagged by part (see [`probe_parts_sql`]), so a delete sends one statement per level
/// instead of one per part.
fn probe<DB: Dialect>(footprint: &Footprint<DB>) -> Option<(String, usize)> {
    let parts = probe_parts_sql(footprint);
    (parts.len() >= 2).then(|| (parts.join(" UNION ALL "), parts.len()))
}

/// The selects of a deleted row's footprint, each tagged by its part: the many-to-many
/// owners' keys, then a row of each dependent model that has any. Each part binds the
/// deleted row's key text (once on PostgreSQL, whose parts share `$1`).
fn probe_parts_sql<DB: Dialect>(footprint: &Footprint<DB>) -> Vec<String> {
    let joined = footprint.joined.iter().map(|joined| joined.owners);
    let dependents = footprint.dependents.iter().map(|dependent| dependent.select_rows);
    joined
        .enumerate()
        .map(|(part, sql)| format!("SELECT '{part}', v.* FROM ({sql}) v"))
        .chain(dependents.enumerate().map(|(index, sql)| {
            let part = footprint.joined.len() + index;
            format!("SELECT '{part}', '' FROM ({sql} LIMIT 1) v")
        }))
        .collect()
}

/// Where a dialect can delete inside a `WITH` (PostgreSQL): the probe of a row's footprint
/// and its delete in one statement, the delete done only when no dependent model has rows
/// (so the database's cascade touches nothing the probe did not see). Binds the row's key
/// text as `$1` and its key columns from `$2` on; its rows are the probe's, then one tagged
/// with the part after the last holding how many rows it deleted. `None` when the dialect
/// cannot or the model's footprint has nothing to probe.
fn probe_and_delete_sql<M: Model>() -> Option<(String, usize)> {
    let footprint = &M::FOOTPRINT;
    with_probe::<M>(|parts| {
        let keys = placeholders::<M::Db>(2, M::KEY_COLUMNS);
        if footprint.dependents.is_empty() {
            return key_list::<M::Db>(2, 1, M::KEY_COLUMNS);
        }
        let dependents: Vec<String> = (footprint.joined.len()..parts)
            .map(|part| format!("'{part}'"))
            .collect();
        format!(
            "SELECT {keys} WHERE NOT EXISTS (SELECT 1 FROM autocache_probe WHERE part IN ({}))",
            dependents.join(", ")
        )
    })
}

/// Like [`probe_and_delete_sql`], the delete done only when the probe found nothing at all
/// (no pair either), so that it touches no key but the row's instance key: the statement of
/// a delete that commits on its own ([`crate::one_shot`]). Binds only the key text, `$1`
/// ([`crate::model::ModelSql::key_from_text`]).
fn probe_or_delete_sql<M: Model>() -> Option<(String, usize)> {
    let key = M::SQL.key_from_text?;
    with_probe::<M>(|_| format!("SELECT {key} WHERE NOT EXISTS (SELECT 1 FROM autocache_probe)"))
}

/// The probe of a row's footprint and the delete of the rows `ids` returns (given the
/// number of parts) in one statement (see [`probe_and_delete_sql`]), and its parts.
fn with_probe<M: Model>(ids: impl FnOnce(usize) -> String) -> Option<(String, usize)> {
    if !M::Db::DELETES_IN_WITH {
        return None;
    }
    let parts = probe_parts_sql(&M::FOOTPRINT);
    if parts.is_empty() {
        return None;
    }
    let count = parts.len();
    let sql = format!(
        "WITH autocache_probe (part, v) AS ({}), autocache_gone AS ({}) \
         SELECT part, v FROM autocache_probe \
         UNION ALL SELECT '{count}', CAST(COUNT(*) AS TEXT) FROM autocache_gone",
        parts.join(" UNION ALL "),
        M::SQL.delete.replace("{ids}", &ids(count)),
    );
    Some((sql, count))
}

/// Runs [`probe_and_delete_sql`] for row `id` of `M`: what the probe found (as
/// [`probe_parts`] returns it) and whether the row was deleted — `None` when the dialect or
/// the footprint does not allow it (nothing was run).
pub(crate) async fn probe_and_delete<M: Model>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    id: &M::Id,
) -> Result<Option<(Vec<Vec<String>>, bool)>> {
    let Some((sql, parts)) = probe_and_delete_sql::<M>() else {
        return Ok(None);
    };
    let query = <M::Db as Dialect>::bind_text(sqlx::query(sqlx::AssertSqlSafe(sql)), id.to_string());
    let query = M::bind_ids(query, std::slice::from_ref(id));
    let rows = fetch(ctx, &M::INFO, conn, query).await?;
    read_probe_and_delete::<M::Db>(rows, parts).map(Some)
}

/// Runs [`probe_or_delete_sql`] for row `id` of `M` as a transaction of its own at a
/// snapshot ([`one_shot::run_at_snapshot`]): whether rows pointed at it (then nothing was
/// deleted) and whether it was deleted — `None` when it cannot run here (nothing was
/// written).
pub(crate) async fn probe_or_delete_alone<M: Model>(
    ctx: &Context<M::Db>,
    conn: &mut <M::Db as Database>::Connection,
    id: &M::Id,
) -> Result<Option<(bool, bool)>> {
    let Some((sql, parts)) = probe_or_delete_sql::<M>() else {
        return Ok(None);
    };
    ctx.meter(&M::INFO).add(|s| &s.db_queries, 1);
    match one_shot::run_at_snapshot::<M::Db>(conn, &sql, &id.to_string()).await? {
        Ran::Rows(rows) => {
            let (found, deleted) = read_probe_and_delete::<M::Db>(rows, parts)?;
            Ok(Some((found.iter().any(|texts| !texts.is_empty()), deleted)))
        }
        Ran::Unavailable => Ok(None),
    }
}

/// Sorts the rows of a probe and delete of `parts` parts: what each part found, and whether
/// the row was deleted (the count after the parts).
fn read_probe_and_delete<DB: Dialect>(rows: Vec<DB::Row>, parts: usize) -> Result<(Vec<Vec<String>>, bool)> {
    let mut found = read_probe::<DB>(rows, parts + 1)?;
    let deleted = found
        .pop()
        .and_then(|count| count.into_iter().next())
        .is_some_and(|count| count != "0");
    Ok((found, deleted))
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
    read_probe::<DB>(fetch(ctx, model, conn, query).await?, parts)
}

/// Sorts a probe's rows (part, text) into `parts` lists of texts.
fn read_probe<DB: Dialect>(rows: Vec<DB::Row>, parts: usize) -> Result<Vec<Vec<String>>> {
    let mut found = vec![Vec::new(); parts];
    for row in rows {
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
fn plan_dependents<'a, 'c, M: Model>(
    plans: &'c mut PlanSet<'a, M::Db>,
    ctx: &'a Context<M::Db>,
    conn: &'c mut <M::Db as Database>::Connection,
    dependent: &'static Dependent<M::Db>,
    referenced: String,
    visited: &'c mut Visited,
) -> BoxFuture<'c, Result<()>> {
    Box::pin(async move {
        // Locked until commit: no row comes to point at these (an insert, an update, an
        // `add_…` of one waits for this commit) before the cascade reaches them.
        let sql = [dependent.select_rows, M::SQL.lock_rows].concat();
        let query = <M::Db as Dialect>::bind_text(sqlx::query(sqlx::AssertSqlSafe(sql)), referenced);
        let rows = fetch(ctx, &M::INFO, conn, query).await?;
        let rows: Vec<M> = rows.iter().map(M::from_row).collect::<Result<_, _>>()?;
        for row in rows {
            let id = row.id().to_string();
            if dependent.on_delete == OnDelete::Cascade && !visited.insert((M::INFO.name, id.clone())) {
                continue;
            }
            for &change in effects::dependents(dependent.on_delete) {
                plan_row(plans, ctx, &row, change)?;
                plan_footprint::<M>(plans, ctx, conn, id.clone(), change, visited).await?;
            }
        }
        Ok(())
    })
}

/// Plans what becomes of the key of `collection` owned by `owner` after commit: refilled
/// with what `members` then returns, or emptied.
pub(crate) fn plan_collection<'f, M: Model>(
    plan: &mut WritePlan<'f>,
    prefix: &str,
    collection: &Collection,
    owner: &str,
    after: After,
    members: impl Future<Output = Result<Vec<M>>> + Send + 'f,
) {
    match after {
        After::Refill => plan_refill(plan, prefix, collection, owner, members),
        // A collection is never written through: the planner refills or empties it.
        After::WriteThrough | After::DoesNotExist | After::Empty => plan.evict(collection.key(prefix, owner)),
    }
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

/// Plans the eviction of the keys of one kind a changed many-to-many pair (`this`, each of
/// `others`) leaves wrong when the relation has a through model: the through rows
/// (`ThroughRows`), or the collections of them owned by either side (`ThroughCollections`).
pub(crate) fn plan_through<DB: Dialect>(
    plans: &mut PlanSet<'_, DB>,
    through: &Through,
    kind: PairKey,
    this: &str,
    others: &[String],
) -> Result<()> {
    let (cache, plan) = plans.of(through.model)?;
    match kind {
        PairKey::ThroughRows => {
            for other in others {
                let parts = if through.this_first {
                    [this, other]
                } else {
                    [other.as_str(), this]
                };
                plan.evict(key::primary(&cache.prefix, &key::compose(&parts)));
            }
        }
        PairKey::ThroughCollections => {
            plan.evict(through.own.key(&cache.prefix, this));
            for other in others {
                plan.evict(through.theirs.key(&cache.prefix, other));
            }
        }
        PairKey::Own | PairKey::Theirs => {}
    }
    Ok(())
}
