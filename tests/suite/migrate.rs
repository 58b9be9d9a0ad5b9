//! `migrate` on each database: a database created with the old schema's `ddl` and migrated
//! with `migrate`'s statements must hold the same tables (read back with `import`'s catalog
//! readers) as one created fresh with the new schema's `ddl`; and what would lose data is
//! refused, with the places it is about.

use autocache_codegen::import::{Catalog, infer};
use autocache_codegen::ir::{Dialect, Schema};
use autocache_codegen::migrate::migrate;
use autocache_codegen::validate::load;
use sqlx::{Executor, Pool};

use crate::databases::TestDatabase;
use crate::import::{run, shape};

const BASE: &str = "
models:
  Person:
    fields:
      name: { type: string, max_length: 20 }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
  Book:
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
";

/// New fields (nullable, with a default, unique, a relation), a new model, a new
/// many-to-many and a new unique_together.
const ADDED: &str = "
models:
  Person:
    fields:
      name: { type: string, max_length: 20 }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
      email: { type: string, max_length: 40, null: true, unique: true }
      level: { type: small_integer, default: 1 }
      favorite: { type: foreign_key, to: Book, null: true, related_name: fans, on_delete: set_null }
  Book:
    unique_together: [[title, author]]
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
      tags: { type: many_to_many, to: Tag, related_name: books }
  Tag:
    fields:
      label: { type: string, max_length: 20, unique: true }
";

/// Columns of issue 13's types (decimal, enum, char, unsigned), a model with a
/// `small_integer` key, `index: true` on an existing field and an `indexes:` group.
const TYPED: &str = "
models:
  Person:
    indexes: [[name, score]]
    fields:
      name: { type: string, max_length: 20, index: true }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
      balance: { type: decimal, precision: 7, scale: 2, default: 0 }
      tier: { type: enum, values: [bronze, silver, PG-13], default: bronze, index: true }
      code: { type: char, max_length: 2, null: true }
      level: { type: small_integer, unsigned: true, default: 1 }
      country: { type: foreign_key, to: Country, null: true, on_delete: set_null, related_name: people }
  Book:
    indexes: [[author, title]]
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
  Country:
    primary_key: { name: id, type: small_integer }
    fields:
      code: { type: char, max_length: 2, unique: true }
";

/// Times the database sets, added to a table with rows: not on SQLite (`ADD COLUMN` takes
/// only a constant default there).
const CLOCKED: &str = "
models:
  Person:
    fields:
      name: { type: string, max_length: 20 }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
      seen: { type: datetime, default: now }
      created: { type: datetime, auto_now_add: true }
      changed: { type: datetime, auto_now: true }
  Book:
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
";

/// Indexes to drop (going back to `BASE`).
const INDEXED: &str = "
models:
  Person:
    indexes: [[age, score]]
    fields:
      name: { type: string, max_length: 20, index: true }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
  Book:
    indexes: [[author, title]]
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
";

/// A renamed model (and table) and a renamed field.
const RENAMED: &str = "
models:
  Writer:
    fields:
      name: { type: string, max_length: 20 }
      age: { type: integer, null: true }
      score: { type: integer, default: 0 }
  Book:
    fields:
      heading: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Writer, related_name: books }
";

/// Wider types, a column made nullable, a new default: not in place on SQLite.
const WIDENED: &str = "
models:
  Person:
    fields:
      name: { type: string, max_length: 40, null: true }
      age: { type: big_integer, null: true }
      score: { type: integer, default: 5 }
  Book:
    fields:
      title: { type: text }
      author: { type: foreign_key, to: Person, related_name: books }
";

/// What loses data: a dropped field, a narrowed type, NOT NULL on a nullable column, a NOT
/// NULL column without a default.
const UNSAFE: &str = "
models:
  Person:
    fields:
      name: { type: string, max_length: 10 }
      age: { type: integer }
  Book:
    fields:
      title: { type: string, max_length: 20 }
      author: { type: foreign_key, to: Person, related_name: books }
      pages: { type: integer }
";

fn schema(yaml: &str, dialect: Dialect) -> Schema {
    let mut schema = load(yaml, "migrate.yaml").unwrap_or_else(|errors| panic!("{errors}"));
    schema.dialect = dialect;
    schema
}

/// Migrates a database of `old` to `new` on `DB` and compares it with a fresh one of `new`.
async fn migrated_like_fresh<DB: TestDatabase>(
    dialect: Dialect,
    name: &str,
    (old, new): (&str, &str),
    read: impl AsyncFn(&Pool<DB>) -> Catalog,
) where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let (old, new) = (schema(old, dialect), schema(new, dialect));
    let statements = migrate(&old, &new, dialect).unwrap_or_else(|refused| panic!("{name} on {dialect:?}: {refused}"));
    let (migrated, _cleanup) = DB::open_empty().await;
    run(&migrated, name, &autocache_codegen::ddl::statements(&old)).await;
    run(&migrated, name, &statements).await;
    let (fresh, _cleanup_fresh) = DB::open_empty().await;
    run(&fresh, name, &autocache_codegen::ddl::statements(&new)).await;
    let imported = |catalog: Catalog| {
        let imported = infer(&catalog, dialect);
        let schema = load(&imported.yaml, "imported.yaml").unwrap_or_else(|errors| panic!("{errors}"));
        (shape(&schema, dialect), imported.notes)
    };
    assert_eq!(
        imported(read(&migrated).await),
        imported(read(&fresh).await),
        "{name} on {dialect:?}: the migrated database differs from a fresh one; statements:\n{}",
        statements.join(";\n")
    );
    println!(
        "migrate {name} on {dialect:?}: {} statements, same catalog as a fresh ddl",
        statements.len()
    );
}

/// The places `migrate` refuses from `BASE` to `new`.
fn refused_places(new: &str, dialect: Dialect) -> Vec<String> {
    match migrate(&schema(BASE, dialect), &schema(new, dialect), dialect) {
        Ok(statements) => panic!("migrate accepted an unsafe change: {statements:?}"),
        Err(refused) => refused.0.into_iter().map(|r| r.place).collect(),
    }
}

/// The `(old, new)` changes PostgreSQL and MySQL make in place.
fn changes() -> [(&'static str, (&'static str, &'static str)); 6] {
    [
        ("added", (BASE, ADDED)),
        ("renamed", (BASE, RENAMED)),
        ("widened", (BASE, WIDENED)),
        ("typed", (BASE, TYPED)),
        ("clocked", (BASE, CLOCKED)),
        ("unindexed", (INDEXED, BASE)),
    ]
}

const UNSAFE_PLACES: [&str; 4] = ["Person.name", "Person.age", "Person.score", "Book.pages"];

#[tokio::test]
async fn sqlite_migrations() {
    let read = async |pool: &Pool<sqlx::Sqlite>| {
        let mut conn = pool.acquire().await.expect("a connection");
        autocache_codegen::import::sqlite::read(&mut conn)
            .await
            .expect("read the catalog")
    };
    for (name, change) in [
        ("added", (BASE, ADDED)),
        ("renamed", (BASE, RENAMED)),
        ("typed", (BASE, TYPED)),
        ("unindexed", (INDEXED, BASE)),
    ] {
        migrated_like_fresh(Dialect::Sqlite, name, change, read).await;
    }
    assert_eq!(
        refused_places(CLOCKED, Dialect::Sqlite),
        ["Person.seen", "Person.created", "Person.changed"],
        "SQLite adds no column whose default is the time"
    );
    assert_eq!(
        refused_places(WIDENED, Dialect::Sqlite),
        ["Person.name", "Person.age", "Person.score", "Book.title"],
        "SQLite changes no column in place"
    );
    assert_eq!(refused_places(UNSAFE, Dialect::Sqlite), UNSAFE_PLACES);
}

#[tokio::test]
async fn postgres_migrations() {
    let read = async |pool: &Pool<sqlx::Postgres>| {
        let mut conn = pool.acquire().await.expect("a connection");
        autocache_codegen::import::postgres::read(&mut conn)
            .await
            .expect("read the catalog")
    };
    for (name, change) in changes() {
        migrated_like_fresh(Dialect::Postgres, name, change, read).await;
    }
    assert_eq!(refused_places(UNSAFE, Dialect::Postgres), UNSAFE_PLACES);
}

#[tokio::test]
async fn mysql_migrations() {
    let read = async |pool: &Pool<sqlx::MySql>| {
        let mut conn = pool.acquire().await.expect("a connection");
        autocache_codegen::import::mysql::read(&mut conn)
            .await
            .expect("read the catalog")
    };
    for (name, change) in changes() {
        migrated_like_fresh(Dialect::Mysql, name, change, read).await;
    }
    assert_eq!(refused_places(UNSAFE, Dialect::Mysql), UNSAFE_PLACES);
}
