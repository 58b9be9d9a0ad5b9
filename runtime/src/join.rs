//! Many-to-many writes, run on a transaction's connection and planned into its
//! [`PlanSet`]: the pairs of one row added, removed or set.

use std::collections::HashSet;

use autocache_effects::{self as effects, PairKey};

use crate::context::Context;
use crate::db::Dialect;
use crate::effects::{plan_collection, plan_through};
use crate::error::Result;
use crate::fetch::{fetch, select_members};
use crate::model::Model;
use crate::plans::PlanSet;
use crate::relation::{JoinChange, JoinKey, JoinSide};

/// Changes the pairs of row `id` of `S` on `side`, on `conn`, and plans its keys: after
/// commit, the collection `<O prefix>:rel.<own>:<id>` and `<S prefix>:rel.<theirs>:<other>`
/// of every other row whose pairing changed are refilled; with a through model, the changed
/// pairs' instance keys and the through model's collections owned by `id` and by those rows
/// are emptied.
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
    let changed: Vec<O::Id> = remove.into_iter().chain(add).collect();
    let others: Vec<String> = changed.iter().map(ToString::to_string).collect();
    for &(kind, after) in effects::pairing() {
        match kind {
            PairKey::Own => {
                let (cache, plan) = plans.of(&O::INFO)?;
                let members = select_members::<O, S::Id>(ctx, side.own, id.clone());
                plan_collection(plan, &cache.prefix, side.own, &id.to_string(), after, members);
            }
            PairKey::Theirs => {
                for (other, owner) in changed.iter().zip(&others) {
                    let (cache, plan) = plans.of(&S::INFO)?;
                    let members = select_members::<S, O::Id>(ctx, side.theirs, other.clone());
                    plan_collection(plan, &cache.prefix, side.theirs, owner, after, members);
                }
            }
            PairKey::ThroughRows | PairKey::ThroughCollections => {
                if let (Some(through), false) = (side.through, others.is_empty()) {
                    plan_through(plans, through, kind, &id.to_string(), &others)?;
                }
            }
        }
    }
    Ok(())
}
