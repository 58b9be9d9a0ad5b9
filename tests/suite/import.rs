//! `import` round trip on each database: a fixture schema's `ddl` is run in a fresh
//! database, its catalog is read back and turned into a schema, which must validate and
//! describe the same tables as the fixture (up to the names the user chose: model, field and
//! related names, ordering, TTLs and backends live only in the schema file). Types the
//! dialect stores alike are compared as the dialect stores them (see [`stored_as`]): SQLite
//! keeps a `decimal` as its text, so it comes back as `text` (with its default as a
//! string), and only MySQL's `ON UPDATE` tells `auto_now` from `default: now`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use autocache_codegen::Config;
use autocache_codegen::import::{Catalog, Imported, infer};
use autocache_codegen::ir::{DefaultValue, Dialect, FieldType, OnDelete, RelationKind, Schema, SetBy};
use autocache_codegen::validate::type_key;
use sqlx::{Executor, Pool};

use crate::databases::TestDatabase;

/// The schemas every database round-trips.
const FIXTURES: [&str; 5] = [
    "schema.yaml",
    "codegen/tests/fixtures/all_types.yaml",
    "codegen/tests/fixtures/breakers.yaml",
    "codegen/tests/fixtures/sakila.yaml",
    "codegen/tests/fixtures/shop.yaml",
];

/// A column as the database sees it: type, nullability, default, uniqueness, `CHECK (>= 0)`,
/// whether every update sets it (MySQL), and the relation it holds (target table,
/// `on_delete`, one-to-one).
#[derive(Debug, PartialEq)]
struct ColumnShape {
    ty: Option<String>,
    nullable: bool,
    default: Option<DefaultValue>,
    unique: bool,
    unsigned: bool,
    updates_to_now: bool,
    relation: Option<(String, OnDelete, RelationKind)>,
}

/// A table as the database sees it.
#[derive(Debug, PartialEq)]
pub(crate) struct TableShape {
    primary_key: (String, String),
    columns: BTreeMap<String, ColumnShape>,
    unique_together: BTreeSet<BTreeSet<String>>,
    /// The columns of each non-unique index but a foreign key's own.
    indexes: BTreeSet<Vec<String>>,
    /// `(join table, target table)`.
    many_to_many: BTreeSet<(String, String)>,
}

/// How `dialect` stores a type: a `positive_integer` is an unsigned `integer`; SQLite has
/// one integer type, and keeps JSON and decimals as text and UUIDs as blobs; MySQL keeps a
/// unique text as `VARCHAR(255)`.
fn stored_as(dialect: Dialect, ty: &FieldType, unique: bool) -> FieldType {
    match (dialect, ty) {
        (Dialect::Sqlite, FieldType::Int | FieldType::PositiveInt) => FieldType::BigInt,
        (_, FieldType::PositiveInt) => FieldType::Int,
        (Dialect::Sqlite, FieldType::Decimal { .. }) => FieldType::Text,
        (Dialect::Sqlite, FieldType::Json) => FieldType::Text,
        (Dialect::Sqlite, FieldType::Uuid) => FieldType::Bytes,
        (Dialect::Mysql, FieldType::Text) if unique => FieldType::String { max_length: 255 },
        (_, ty) => ty.clone(),
    }
}

/// The tables of `schema` as a database of `dialect` stores them, by table name.
pub(crate) fn shape(schema: &Schema, dialect: Dialect) -> BTreeMap<String, TableShape> {
    let table_of = |model: &str| {
        schema
            .models
            .iter()
            .find(|m| m.name == model)
            .map(|m| m.table.clone())
            .unwrap_or_default()
    };
    schema
        .models
        .iter()
        .map(|model| {
            let pk_type = match model.key_column() {
                Some(pk) if pk.auto => "auto".to_owned(),
                Some(pk) => type_key(&stored_as(dialect, &pk.ty, true)),
                None => "composite".to_owned(),
            };
            let pk_columns: Vec<String> = model.key_fields().iter().map(|f| f.column.clone()).collect();
            let column_of = |name: &str| {
                model
                    .key_column()
                    .into_iter()
                    .chain(&model.fields)
                    .find(|f| f.name == name || f.relation.as_ref().is_some_and(|r| r.name == name))
                    .map(|f| f.column.clone())
                    .unwrap_or_default()
            };
            let foreign_key = |group: &Vec<String>| {
                let [column] = group.as_slice() else { return false };
                model
                    .fields
                    .iter()
                    .any(|f| f.column == *column && f.relation.is_some() && !f.unique)
            };
            let columns = model
                .fields
                .iter()
                .map(|field| {
                    let relation = field
                        .relation
                        .as_ref()
                        .map(|r| (table_of(&r.target), r.on_delete, r.kind));
                    let default = match (dialect, &field.default) {
                        (Dialect::Sqlite, Some(DefaultValue::Decimal(text))) => Some(DefaultValue::Str(text.clone())),
                        (_, default) => default.clone(),
                    };
                    let shape = ColumnShape {
                        ty: relation
                            .is_none()
                            .then(|| type_key(&stored_as(dialect, &field.ty, field.unique))),
                        nullable: field.nullable,
                        default,
                        unique: field.unique,
                        unsigned: field.unsigned || field.ty == FieldType::PositiveInt,
                        updates_to_now: dialect == Dialect::Mysql && field.set_by_database == Some(SetBy::EveryWrite),
                        relation,
                    };
                    (field.column.clone(), shape)
                })
                .collect();
            let shape = TableShape {
                primary_key: (pk_columns.join(", "), pk_type),
                columns,
                unique_together: model
                    .unique_together
                    .iter()
                    .map(|group| group.iter().map(|name| column_of(name)).collect())
                    .collect(),
                indexes: model
                    .indexes
                    .iter()
                    .map(|group| group.iter().map(|name| column_of(name)).collect())
                    .filter(|group| !foreign_key(group))
                    .collect(),
                // Join tables; a through model's table is a model's own, compared as such.
                many_to_many: model
                    .many_to_many
                    .iter()
                    .filter(|m2m| m2m.through_model.is_none())
                    .map(|m2m| (m2m.through.clone(), table_of(&m2m.target)))
                    .collect(),
            };
            (model.table.clone(), shape)
        })
        .collect()
}

/// Requires the schema imported from `catalog` (of a database holding `fixture`'s tables)
/// to validate and to describe the same tables.
fn round_trip(dialect: Dialect, fixture: &str, catalog: Catalog) {
    let original = fixture_schema(fixture, dialect);
    let Imported { yaml, notes } = infer(&catalog, dialect);
    assert!(
        notes.is_empty(),
        "{fixture} on {dialect:?}: a schema autocache created has nothing inexpressible, got {notes:?}"
    );
    let imported = autocache_codegen::validate::load(&yaml, "imported.yaml")
        .unwrap_or_else(|errors| panic!("{fixture} on {dialect:?}: the imported schema is invalid:\n{errors}\n{yaml}"));
    assert_eq!(
        shape(&imported, dialect),
        shape(&original, dialect),
        "{fixture} on {dialect:?}: the imported schema differs:\n{yaml}"
    );
    println!(
        "import round trip: {fixture} on {dialect:?}: {} tables",
        original.models.len()
    );
}

/// A fixture schema, generated for `dialect`.
fn fixture_schema(fixture: &str, dialect: Dialect) -> Schema {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Config::new()
        .dialect(dialect)
        .lock_file(None::<&Path>)
        .load(&root.join(fixture))
        .unwrap_or_else(|error| panic!("{fixture}: {error}"))
}

/// Runs the fixture's `ddl` statements in `pool`.
async fn create<DB: TestDatabase>(pool: &Pool<DB>, fixture: &str, dialect: Dialect)
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let statements = autocache_codegen::ddl::statements(&fixture_schema(fixture, dialect));
    run(pool, fixture, &statements).await;
}

/// Runs `statements` in `pool`, failing the test (naming `what`) on the first error.
pub(crate) async fn run<DB: TestDatabase>(pool: &Pool<DB>, what: &str, statements: &[String])
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    for statement in statements {
        pool.execute(sqlx::AssertSqlSafe(statement.clone()))
            .await
            .unwrap_or_else(|error| panic!("{what}: {statement}: {error}"));
    }
}

#[tokio::test]
async fn sqlite_round_trips() {
    for fixture in FIXTURES {
        let (pool, _cleanup) = sqlx::Sqlite::open_empty().await;
        create(&pool, fixture, Dialect::Sqlite).await;
        let mut conn = pool.acquire().await.expect("a connection");
        let catalog = autocache_codegen::import::sqlite::read(&mut conn)
            .await
            .expect("read the catalog");
        round_trip(Dialect::Sqlite, fixture, catalog);
    }
}

#[tokio::test]
async fn postgres_round_trips() {
    for fixture in FIXTURES {
        let (pool, _cleanup) = sqlx::Postgres::open_empty().await;
        create(&pool, fixture, Dialect::Postgres).await;
        let mut conn = pool.acquire().await.expect("a connection");
        let catalog = autocache_codegen::import::postgres::read(&mut conn)
            .await
            .expect("read the catalog");
        round_trip(Dialect::Postgres, fixture, catalog);
    }
}

#[tokio::test]
async fn mysql_round_trips() {
    for fixture in FIXTURES {
        let (pool, _cleanup) = sqlx::MySql::open_empty().await;
        create(&pool, fixture, Dialect::Mysql).await;
        let mut conn = pool.acquire().await.expect("a connection");
        let catalog = autocache_codegen::import::mysql::read(&mut conn)
            .await
            .expect("read the catalog");
        round_trip(Dialect::Mysql, fixture, catalog);
    }
}
