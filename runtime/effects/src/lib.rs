//! What a write does to the cache keys of a row: the one planner behind both the runtime's
//! writes (`autocache`, which spells the keys from the row's values, selects what depends on
//! it, and locks, fills and empties them) and `explain` (`autocache-codegen`, which prints the
//! same steps as key patterns, in the generated repositories' docs too).
//!
//! A plan is a list of [`Step`]s for one [`Change`] of one row: which kind of key becomes
//! what after the commit. It knows no values, no SQL and no key spelling: those are the
//! runtime's (and, as patterns, the generator's). `tests/suite/explained.rs` runs every
//! write of three schemas and checks the keys locked against `explain`, both ways.

#![deny(unreachable_pub, missing_docs)]

/// The keys of one kind that a row has, or that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Its instance key (`get`, `get_many`).
    Instance,
    /// Its unique-lookup keys (`get_by_<unique>`), one per unique field or group.
    Uniques,
    /// The collections it is a member of through its own columns (a foreign key or
    /// one-to-one points at their owner).
    Memberships,
    /// For a through model's row: the many-to-many collections holding its pair.
    Pairs,
    /// The many-to-many collections it is a member of, one per row paired with it.
    Joined,
    /// The collections it owns (the rows pointing at it, the rows paired with it).
    Owned,
}

/// What becomes of a key after the commit (it is locked before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Holds the row as written.
    WriteThrough,
    /// Holds "does not exist".
    DoesNotExist,
    /// Read again from the database, so the next read costs no query (a collection).
    Refill,
    /// Emptied: the next read fills it.
    Empty,
}

/// `on_delete` of a foreign key or one-to-one whose target is deleted (the database
/// refuses a `restrict` delete while rows point at the target, so it changes nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    /// The rows pointing at the target are deleted too.
    Cascade,
    /// The rows' column is set to NULL.
    SetNull,
}

/// What happened to one version of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Inserted, or updated: the row as it now is.
    Written,
    /// Updated: the row as it was.
    Replaced,
    /// Updated with its ordering fields changed (or its old version unknown): the
    /// many-to-many collections holding it are re-sorted.
    Reordered,
    /// Deleted: the row as it was.
    Deleted,
    /// Deleted: what depends on it (selected before the `DELETE`). `points_at`: whether any
    /// row or pair points at it, as far as the footprint's select knows (`true` when it did
    /// not ask).
    Orphaned {
        /// Whether any row or pair points at the deleted row.
        points_at: bool,
    },
    /// Its column set to NULL by the delete of the row it pointed at.
    Nulled,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Every key of one kind becomes what `After` says.
    Key(Key, After),
    /// The rows pointing at the row (through a relation whose `on_delete` changes them)
    /// change as [`dependents`] says, and are planned in turn.
    Dependents,
}

/// The steps of `change`.
pub fn plan(change: Change) -> &'static [Step] {
    use After::*;
    use Key::*;
    use Step::Key as K;
    match change {
        Change::Written => &[
            K(Instance, WriteThrough),
            K(Uniques, WriteThrough),
            K(Memberships, Refill),
            K(Pairs, Empty),
        ],
        Change::Replaced => &[K(Uniques, Empty), K(Memberships, Refill), K(Pairs, Empty)],
        Change::Reordered => &[K(Joined, Refill)],
        Change::Deleted => &[
            K(Instance, DoesNotExist),
            K(Uniques, Empty),
            K(Memberships, Refill),
            K(Pairs, Empty),
        ],
        // The collections a row owns change only through the rows that point at it and its
        // pairs: when there are none, they are empty and stay so.
        Change::Orphaned { points_at: true } => &[K(Joined, Empty), K(Owned, Empty), Step::Dependents],
        Change::Orphaned { points_at: false } => &[],
        Change::Nulled => &[
            K(Instance, Empty),
            K(Uniques, Empty),
            K(Memberships, Refill),
            K(Pairs, Empty),
            K(Joined, Refill),
        ],
    }
}

/// What the delete of a row does to each row pointing at it through a relation with
/// `on_delete`: a cascaded row is deleted (and what depends on it follows), a nulled row
/// changes.
pub fn dependents(on_delete: OnDelete) -> &'static [Change] {
    match on_delete {
        OnDelete::Cascade => &[Change::Deleted, Change::Orphaned { points_at: true }],
        OnDelete::SetNull => &[Change::Nulled],
    }
}

/// The keys a change of one row's pairs in one many-to-many relation touches (`add_…`,
/// `remove_…`, `set_…`, `clear_…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKey {
    /// The row's collection of that relation.
    Own,
    /// The other side's collection of that relation, of each row paired or unpaired.
    Theirs,
    /// With a through model: the through row of each pair made or undone.
    ThroughRows,
    /// With a through model: its collections owned by the row and by each row paired or
    /// unpaired (its foreign keys' reverses).
    ThroughCollections,
}

/// What a change of one row's pairs does to the keys it touches.
pub fn pairing() -> &'static [(PairKey, After)] {
    &[
        (PairKey::Own, After::Refill),
        (PairKey::Theirs, After::Refill),
        (PairKey::ThroughRows, After::Empty),
        (PairKey::ThroughCollections, After::Empty),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of one kind a plan changes, and how.
    fn keys(change: Change) -> Vec<(Key, After)> {
        plan(change)
            .iter()
            .filter_map(|step| match *step {
                Step::Key(key, after) => Some((key, after)),
                Step::Dependents => None,
            })
            .collect()
    }

    #[test]
    fn a_row_and_its_former_self_touch_the_same_kinds() {
        let kinds = |change| keys(change).into_iter().map(|(key, _)| key).collect::<Vec<_>>();
        assert_eq!(kinds(Change::Written), kinds(Change::Deleted));
        let mut replaced = kinds(Change::Replaced);
        replaced.insert(0, Key::Instance);
        assert_eq!(
            kinds(Change::Written),
            replaced,
            "an update writes the instance key through once"
        );
    }

    #[test]
    fn only_a_written_row_is_written_through() {
        for change in [Change::Replaced, Change::Reordered, Change::Deleted, Change::Nulled] {
            assert!(
                keys(change).iter().all(|&(_, after)| after != After::WriteThrough),
                "{change:?}"
            );
        }
        assert!(keys(Change::Deleted).contains(&(Key::Instance, After::DoesNotExist)));
    }

    #[test]
    fn what_depends_on_a_deleted_row_is_followed_only_when_something_points_at_it() {
        assert!(plan(Change::Orphaned { points_at: true }).contains(&Step::Dependents));
        assert!(plan(Change::Orphaned { points_at: false }).is_empty());
        assert_eq!(
            dependents(OnDelete::Cascade),
            [Change::Deleted, Change::Orphaned { points_at: true }]
        );
        assert_eq!(dependents(OnDelete::SetNull), [Change::Nulled]);
    }
}
