//! What generated code declares about each model: the runtime's only view of a schema.

use std::any::Any;
use std::fmt::Display;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::{Dialect, SqlQuery};
use crate::key::Holds;

/// Static facts about a model, decided by the generator.
#[derive(Debug)]
pub struct ModelInfo {
    /// The model's name in the schema (`Person`).
    pub name: &'static str,
    /// The named cache backend its keys live on (`default`).
    pub backend: &'static str,
    /// How long its cached values live.
    pub ttl: Duration,
    /// `<namespace>:<Model>:<schema digest>`, the start of every key of this model.
    pub key_prefix: &'static str,
    /// The key prefixes of the model's earlier schema versions (from the schema's lock
    /// file): processes of those versions may still run during a rolling deploy.
    pub retired: &'static [&'static str],
    /// How long a rolling deploy may take (the schema's `rollout:`): for this long after a
    /// context starts, while `retired` is not empty, see [`crate::context::Context::retired_prefixes`].
    pub rollout: Duration,
}

/// The SQL the generator wrote for a model, for its dialect.
#[derive(Debug)]
pub struct ModelSql {
    /// Selects every column of the rows whose primary key is in `{ids}`.
    pub select_by_ids: &'static str,
    /// Inserts one row and returns every column.
    pub insert: &'static str,
    /// Present where an insert locks its one key before the statement: every key an insert
    /// of a row touches follows from its primary key (no unique or indexed field, no foreign
    /// key or one-to-one of its own, no through model), and the database assigns that key
    /// from a sequence the runtime can reserve keys from (PostgreSQL's auto keys). The
    /// statement then commits on its own (`docs/consistency.md`, "Writes that lock first").
    pub keyed_insert: Option<KeyedInsert>,
    /// Updates every non-key column of one row by primary key (returning what
    /// `update_returns` says).
    pub update: &'static str,
    /// What `update` returns.
    pub update_returns: UpdateReturns,
    /// Deletes the row whose primary key is in `{ids}` and returns every column.
    pub delete: &'static str,
    /// Present where a delete may run as one statement that commits on its own at a
    /// snapshot (PostgreSQL, a key of one column, the instance key the model's only key of
    /// its own): the key column's value from the key's text bound as `$1`, such as
    /// `CAST($1 AS BIGINT)` (`docs/consistency.md`, "Writes that lock first").
    pub key_from_text: Option<&'static str>,
    /// Like `select_by_ids`, locking the selected rows until commit where the dialect can.
    pub select_for_update: &'static str,
    /// `SELECT <every column> FROM <table> WHERE `, for bulk writes' filters.
    pub select_where: &'static str,
    /// Appended to `select_where` to lock the rows until commit (empty where the dialect
    /// locks otherwise).
    pub lock_rows: &'static str,
    /// `UPDATE <table> SET `, for bulk updates.
    pub update_set: &'static str,
    /// ` WHERE <primary key> IN ({ids})`, for bulk updates.
    pub where_ids: &'static str,
}

/// An insert whose key is reserved before the statement (see [`ModelSql::keyed_insert`]);
/// keys travel as their text, cast by the statements.
#[derive(Debug)]
pub struct KeyedInsert {
    /// Reserves keys, as many as its one bound value says: a row each, the key's text first;
    /// no row where the key column has no sequence to reserve from (the model's inserts then
    /// run in a transaction).
    pub reserve: &'static str,
    /// Inserts one row, binding its key's text first, then the values of
    /// [`NewModel::bind_insert`], and returns every column.
    pub insert: &'static str,
}

/// What a model's [`ModelSql::update`] returns, in the generator's SQL for the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateReturns {
    /// Nothing (MySQL/MariaDB have no `RETURNING`): the old row is selected `FOR UPDATE`
    /// before it, the new one after it.
    Nothing,
    /// The row as updated; the old row is selected `FOR UPDATE` before it.
    Row,
    /// Two rows: the old row (locked by the statement itself), then the row as updated;
    /// none if no row has the key.
    OldThenRow,
}

/// A cached model: implemented by generated code, read and written through a [`crate::Scope`].
pub trait Model: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The database this model is generated for.
    type Db: Dialect;
    /// The primary key type: a column's value, or a generated key struct of several
    /// (`EnrollmentKey`) whose `Display` is its parts' key text (see [`crate::key::compose`]).
    type Id: Display + Clone + Eq + Hash + Send + Sync + Unpin + Serialize + DeserializeOwned + 'static;

    /// Static facts: name, backend, TTL, key prefix.
    const INFO: ModelInfo;
    /// The generated statements.
    const SQL: ModelSql;
    /// Entries of the model's near cache (`near: { entries: N }` in the schema); 0: the
    /// context's [`Options::near_entries`](crate::Options::near_entries) decides.
    const NEAR_ENTRIES: u64 = 0;

    /// How many columns hold the primary key: 1, or the parts of a composite key, which
    /// statements bind one after another and `{ids}` lists as row values.
    const KEY_COLUMNS: usize = 1;

    /// Whether a row's instance key is the only key its own values are cached under: the
    /// model has no unique or indexed field, no foreign key or one-to-one of its own (no
    /// collection it joins through its columns), and is no through model. A delete then
    /// needs nothing of the row as it was (`docs/consistency.md`, "Deletes at a snapshot").
    const ONLY_INSTANCE_KEY: bool = false;

    /// Whether every key an update of a row touches follows from its primary key: its
    /// instance key is its only key ([`Model::ONLY_INSTANCE_KEY`]) and no many-to-many
    /// collection sorts it by a field an update can change. Such an update locks its one key
    /// before its statement, which then commits on its own (`docs/consistency.md`, "Writes
    /// that lock first").
    const UPDATE_LOCKS_FIRST: bool = false;

    /// The row's primary key.
    fn id(&self) -> Self::Id;

    /// Decodes a row selected with the model's column list.
    fn from_row(row: &<Self::Db as sqlx::Database>::Row) -> Result<Self, sqlx::Error>;

    /// Binds the primary keys (every part of each) for [`ModelSql::select_by_ids`].
    fn bind_ids(query: SqlQuery<Self::Db>, ids: &[Self::Id]) -> SqlQuery<Self::Db>;

    /// Binds every non-key column, then the primary key, for [`ModelSql::update`].
    fn bind_update(&self, query: SqlQuery<Self::Db>) -> SqlQuery<Self::Db>;

    /// The values of the model's unique fields, as `(field, value)`; `None` values are skipped.
    fn unique_values(&self) -> Vec<(&'static str, String)>;

    /// The collections this row is a member of through its own columns (a foreign key or
    /// one-to-one points at the owner); `None` values are skipped.
    fn memberships(&self) -> Vec<Membership<Self>>;

    /// For a through model's row: the many-to-many collections its pair is in, emptied by
    /// every write of the row. Empty for other models.
    fn pairs(&self) -> Vec<Pair> {
        Vec::new()
    }

    /// Whether `self` sorts like `other` in collections (the ordering fields are equal).
    fn same_order(&self, other: &Self) -> bool;

    /// Every cached key, other than its own, that depends on a row of this model.
    const FOOTPRINT: Footprint<Self::Db>;
}

/// A cached, ordered collection of rows of one model related to one row of another (the
/// owner): a reverse foreign key, a reverse one-to-one, or a side of a many-to-many. Its
/// key is `<member prefix>:rows.<name>:<owner id>` when it holds the rows, and
/// `<member prefix>:rel.<name>:<owner id>` when it holds their primary keys; `name` is
/// `<owner model>.<accessor>`, so no two collections of a schema share a key.
#[derive(Debug)]
pub struct Collection {
    /// Names the relation in the key: `<owner model>.<accessor on the owner>`
    /// (`Person.books`), shortened with a digest by the generator when it would make keys
    /// too long. Accessors are unique per model, so the name is unique per member model.
    pub name: &'static str,
    /// Selects every column of the members of one owner (bound once), in the members'
    /// model ordering.
    pub select: &'static str,
    /// What its key caches.
    pub holds: Holds,
}

impl Collection {
    /// Its key for the owner `owner` among the keys starting with `prefix` (the members'
    /// model's prefix in a context's namespace); see [`crate::key::collection`].
    pub fn key(&self, prefix: &str, owner: &str) -> String {
        crate::key::collection(prefix, self.holds, self.name, owner)
    }
}

/// A collection a row belongs to through one of its own columns.
pub struct Membership<M: Model> {
    /// The collection.
    pub collection: &'static Collection,
    /// The owner's primary key as it appears in keys.
    pub owner: String,
    /// Binds the owner's primary key, read from a row, to the collection's select.
    pub bind_owner: BindOwner<M>,
}

/// A many-to-many collection holding one side of a through model's pair.
pub struct Pair {
    /// The collection's members' model.
    pub members: &'static ModelInfo,
    /// The collection.
    pub collection: &'static Collection,
    /// The owner's primary key as it appears in keys (a part of the through row's key).
    pub owner: String,
}

/// Binds an owner's primary key, read from a member row, to a statement.
pub type BindOwner<M> = fn(&M, SqlQuery<<M as Model>::Db>) -> SqlQuery<<M as Model>::Db>;

/// Keys that depend on a row of a model, beyond its own instance key, found by primary key
/// text (so one description serves every model, whatever its key type).
#[derive(Debug)]
pub struct Footprint<DB: Dialect> {
    /// Collections owned by the row: `(member model, collection)`.
    pub owned: &'static [(&'static ModelInfo, &'static Collection)],
    /// Many-to-many collections the row is a member of.
    pub joined: &'static [Joined],
    /// Rows of other models that point at this one.
    pub dependents: &'static [Dependent<DB>],
}

/// A many-to-many collection that a row is a member of, as its footprint finds it.
#[derive(Debug)]
pub struct Joined {
    /// The collection (on the other side of the join table).
    pub collection: &'static Collection,
    /// Selects the owners' primary keys as text, binding this row's primary key as text.
    pub owners: &'static str,
    /// Selects one owner's members (rows of this model) in order, binding the owner's
    /// primary key as text: the writer re-sorts the collection with it after commit.
    pub members: &'static str,
}

/// Rows of another model that reference a model through a foreign key or one-to-one whose
/// `on_delete` changes them (`cascade`, `set_null`).
#[derive(Debug)]
pub struct Dependent<DB: Dialect> {
    /// The referencing model.
    pub model: &'static ModelInfo,
    /// Selects every column of the referencing rows, binding the referenced row's primary
    /// key as text.
    pub select_rows: &'static str,
    /// What deleting the referenced row does to them.
    pub on_delete: OnDelete,
    /// Plans the keys of the referencing rows (see [`DependentRows::of`]).
    pub rows: DependentRows<DB>,
}

/// `on_delete` of a foreign key or one-to-one, as the database enforces it: the planner's
/// own (`restrict` relations are no [`Dependent`]: the database refuses the delete while rows
/// point at the target, so a delete that succeeds changed no referencing row).
pub use autocache_effects::OnDelete;

/// How the keys of the referencing rows of one [`Dependent`] are planned: typed by their
/// model, so each row is decoded and every key holding it (its instance and unique keys,
/// every collection it is a member of through any of its columns) is planned. Made by
/// `DependentRows::of::<Model>()`, which the write planner defines (`crate::effects`): this
/// layer holds the planner without knowing its type, so descriptions stay below it.
pub struct DependentRows<DB: Dialect> {
    /// The planner of the referencing model's rows (a `crate::effects::PlanDependents<DB>`).
    pub(crate) planner: &'static (dyn Any + Send + Sync),
    /// The dialect the planner is for.
    pub(crate) dialect: PhantomData<fn() -> DB>,
}

impl<DB: Dialect> std::fmt::Debug for DependentRows<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DependentRows")
    }
}

/// The values of a row to insert (generated as `New<Model>`).
pub trait NewModel: Send + Sync {
    /// The model the row becomes.
    type Model: Model;

    /// Binds the inserted columns for [`ModelSql::insert`].
    fn bind_insert(&self, query: SqlQuery<<Self::Model as Model>::Db>) -> SqlQuery<<Self::Model as Model>::Db>;
}

/// A unique field of a model, with its lookup statement (generated per unique field).
#[derive(Debug)]
pub struct UniqueField {
    /// The field's name.
    pub field: &'static str,
    /// Selects every column of the row holding one value of the field.
    pub select_row: &'static str,
}

/// New values for some columns, for bulk updates (generated as `<Model>Changes`).
pub trait Changes<DB: Dialect>: Send + Sync {
    /// The quoted columns that change, in order.
    fn columns(&self) -> Vec<&'static str>;

    /// Binds the new values, in the order of [`Changes::columns`].
    fn bind(&self, query: SqlQuery<DB>) -> SqlQuery<DB>;
}
