//! What generated code declares about each model: the runtime's only view of a schema.

use std::fmt::Display;
use std::hash::Hash;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::{Dialect, SqlQuery};

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
}

/// The SQL the generator wrote for a model, for its dialect.
#[derive(Debug)]
pub struct ModelSql {
    /// Selects every column of the rows whose primary key is in `{ids}`.
    pub select_by_ids: &'static str,
    /// Inserts one row and returns every column.
    pub insert: &'static str,
    /// Updates every non-key column of one row by primary key and returns every column.
    pub update: &'static str,
    /// Deletes the row whose primary key is in `{ids}` and returns every column.
    pub delete: &'static str,
    /// Like `select_by_ids`, locking the selected rows until commit where the dialect can.
    pub select_for_update: &'static str,
}

/// A cached model: implemented by generated code, used by [`crate::repo`].
pub trait Model: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The database this model is generated for.
    type Db: Dialect;
    /// The primary key type.
    type Id: Display
        + Clone
        + Eq
        + Hash
        + Send
        + Sync
        + Unpin
        + Serialize
        + DeserializeOwned
        + for<'q> sqlx::Encode<'q, Self::Db>
        + sqlx::Type<Self::Db>
        + 'static;

    /// Static facts: name, backend, TTL, key prefix.
    const INFO: ModelInfo;
    /// The generated statements.
    const SQL: ModelSql;

    /// The row's primary key.
    fn id(&self) -> &Self::Id;

    /// Decodes a row selected with the model's column list.
    fn from_row(row: &<Self::Db as sqlx::Database>::Row) -> Result<Self, sqlx::Error>;

    /// Binds the primary keys for [`ModelSql::select_by_ids`].
    fn bind_ids(query: SqlQuery<Self::Db>, ids: &[Self::Id]) -> SqlQuery<Self::Db>;

    /// Binds every non-key column, then the primary key, for [`ModelSql::update`].
    fn bind_update(&self, query: SqlQuery<Self::Db>) -> SqlQuery<Self::Db>;

    /// The values of the model's unique fields, as `(field, value)`; `None` values are skipped.
    fn unique_values(&self) -> Vec<(&'static str, String)>;
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
