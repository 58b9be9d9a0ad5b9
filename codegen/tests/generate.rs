//! The generator's output, pinned by snapshots: the repository's schema.yaml and fixtures
//! covering a string/uuid primary key, a nullable foreign key, and every field type.

use std::path::Path;

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;

fn generate(path: &str) -> String {
    let files = Config::new()
        .generate(Path::new(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(files.len(), 1);
    files.into_values().next().unwrap()
}

#[test]
fn sample_schema() {
    insta::assert_snapshot!(generate("../schema.yaml"));
}

#[test]
fn string_primary_key() {
    insta::assert_snapshot!(generate("tests/fixtures/string_pk.yaml"));
}

#[test]
fn nullable_foreign_key() {
    insta::assert_snapshot!(generate("tests/fixtures/nullable_fk.yaml"));
}

#[test]
fn every_field_type() {
    insta::assert_snapshot!(generate("tests/fixtures/all_types.yaml"));
}

/// Decimal, enum and char columns, small integer keys, `unsigned`, lookups on
/// `unique_together` groups and range filters (issue 13).
#[test]
fn shop_schema() {
    insta::assert_snapshot!(generate("tests/fixtures/shop.yaml"));
}

/// The shop's DDL per dialect: `NUMERIC`/`DECIMAL` (text on SQLite), enum values as a CHECK
/// (MySQL: `ENUM`), `CHAR(n)`, `CHECK (… >= 0)` for `unsigned` (the suite runs each on its
/// server).
#[test]
fn ddl_shop() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let schema = Config::new()
            .dialect(dialect)
            .load(Path::new("tests/fixtures/shop.yaml"))
            .unwrap();
        insta::assert_snapshot!(
            format!("ddl_shop_{dialect:?}").to_lowercase(),
            autocache_codegen::ddl::statements(&schema).join(";\n")
        );
    }
}

#[test]
fn output_is_byte_identical_to_committed_generated_crate() {
    let committed = std::fs::read_to_string("../generated/src/sample.rs").expect("generated/src/sample.rs");
    assert_eq!(
        generate("../schema.yaml"),
        committed,
        "run: autocache-codegen generate schema.yaml --out generated/src"
    );
}

#[test]
fn write_touches_only_changed_files_and_removes_stale_ones() {
    let dir = std::env::temp_dir().join(format!("autocache-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = Config::new().out_dir(&dir).compile("../schema.yaml").unwrap();
    assert_eq!(first.written.len(), 1);
    let again = Config::new().out_dir(&dir).compile("../schema.yaml").unwrap();
    assert!(again.written.is_empty() && again.unchanged.len() == 1);
    let stale = dir.join("old.rs");
    std::fs::write(
        &stale,
        format!("{} from old.yaml\n", autocache_codegen::format::HEADER_MARK),
    )
    .unwrap();
    let handwritten = dir.join("lib.rs");
    std::fs::write(&handwritten, "// mine\n").unwrap();
    // Another schema compiled into the same directory (a second call in one build.rs)
    // leaves the first one's output alone; only an explicit remove_stale removes it.
    let other = Config::new()
        .out_dir(&dir)
        .compile("tests/fixtures/string_pk.yaml")
        .unwrap();
    assert!(other.removed.is_empty() && stale.exists() && dir.join("sample.rs").exists());
    // The same schema for other databases, into the same directory: a file per dialect.
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let written = Config::new()
            .out_dir(&dir)
            .dialect(dialect)
            .compile("../schema.yaml")
            .unwrap();
        assert_eq!(written.written, vec![dir.join(format!("sample_{}.rs", dialect.name()))]);
    }
    let sqlite = std::fs::read_to_string(dir.join("sample.rs")).unwrap();
    assert!(
        sqlite.contains("autocache::sqlx::Sqlite;"),
        "the schema's own dialect kept its file"
    );
    let third = Config::new()
        .out_dir(&dir)
        .remove_stale(true)
        .compile_all(&["../schema.yaml", "tests/fixtures/string_pk.yaml"])
        .unwrap();
    let mut removed = third.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        vec![stale, dir.join("sample_mysql.rs"), dir.join("sample_postgres.rs")]
    );
    assert!(handwritten.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The DDL of a schema with a foreign-key cycle and a model without fields, per dialect: the
/// cycle is closed by `ALTER TABLE … ADD CONSTRAINT` (deferrable on PostgreSQL) except on
/// SQLite, which takes the forward reference (the suite runs every statement on each).
#[test]
fn ddl_closes_cycles() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let schema = Config::new()
            .dialect(dialect)
            .load(Path::new("tests/fixtures/breakers.yaml"))
            .unwrap();
        insta::assert_snapshot!(
            format!("ddl_breakers_{dialect:?}").to_lowercase(),
            autocache_codegen::ddl::statements(&schema).join(";\n")
        );
    }
}

/// `explain` of every model of the cache-breaking schema: collection keys name their owner
/// model, cascades and SET NULLs list what they do, `restrict` says the delete is refused.
#[test]
fn explain_breakers() {
    let schema = Config::new().load(Path::new("tests/fixtures/breakers.yaml")).unwrap();
    let text: String = autocache_codegen::plan::plan(&schema)
        .iter()
        .map(autocache_codegen::plan::explain)
        .collect();
    insta::assert_snapshot!(text);
}

#[test]
fn the_lock_file_carries_retired_digests_into_the_code() {
    let dir = std::env::temp_dir().join(format!("autocache-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("schema.yaml");
    let lock_path = autocache_codegen::lock::path_for(&schema);
    let person = "models:\n  Person:\n    fields:\n      name: { type: string, max_length: 64 }\n";
    std::fs::write(&schema, person).unwrap();
    // `generate` updates the lock from the row-layout digests (no lock applied).
    let layouts = |schema: &Path| {
        let mut config = Config::new();
        config.lock_file(None::<&Path>);
        config.load(schema).unwrap()
    };
    let first = layouts(&schema);
    assert!(autocache_codegen::lock::write_updated(&lock_path, &first, chrono::Utc::now()).unwrap());
    let old_prefix = format!("\"app:Person:{}\"", first.models[0].digest);
    let code = |config: &Config| config.generate(&schema).unwrap().into_values().next().unwrap();
    assert!(code(&Config::new()).contains("retired: &[]"), "no earlier version yet");

    std::fs::write(
        &schema,
        format!("{person}      nickname: {{ type: text, null: true }}\n"),
    )
    .unwrap();
    // A build script reads the lock without writing it: its recorded digest is retired.
    assert!(code(&Config::new()).contains(&format!("retired: &[{old_prefix}]")));
    let second = layouts(&schema);
    let lock = autocache_codegen::lock::read(&lock_path).unwrap();
    assert!(!lock.is_current(&second), "check fails until generate updates the lock");
    assert!(autocache_codegen::lock::write_updated(&lock_path, &second, chrono::Utc::now()).unwrap());
    let lock = autocache_codegen::lock::read(&lock_path).unwrap();
    assert!(lock.is_current(&Config::new().load(&schema).unwrap()));
    assert_eq!(lock.models["Person"].retired[0].digest, first.models[0].digest);
    assert!(code(&Config::new()).contains(&format!("retired: &[{old_prefix}]")));
    let mut naive = Config::new();
    naive.lock_file(None::<&Path>);
    assert!(
        code(&naive).contains("retired: &[]"),
        "without a lock file nothing is retired"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On PostgreSQL, a model whose only key is its own auto key (`Person`) inserts under a key
/// reserved from the key's sequence, so its insert locks first; a model whose insert touches
/// other keys (`Book` joins its author's books) and every model of a database without
/// sequences to reserve from (SQLite) insert in a transaction.
#[test]
fn writes_lock_first_where_the_key_is_known_before_the_statement() {
    let postgres = Config::new()
        .dialect(Dialect::Postgres)
        .generate(Path::new("../schema.yaml"))
        .unwrap();
    let postgres = postgres.values().next().unwrap();
    let model = |code: &str, name: &str| {
        let start = code.find(&format!("impl autocache::Model for {name} ")).unwrap();
        code[start..][..code[start..].find("fn id(").unwrap()].to_owned()
    };
    let person = model(postgres, "Person");
    assert!(
        person.contains(
            r#"reserve: "SELECT CAST(nextval(autocache_sequence) AS TEXT) FROM pg_get_serial_sequence('\"person\"', 'id') AS autocache_sequence, generate_series(1, CAST($1 AS BIGINT)) WHERE autocache_sequence IS NOT NULL""#
        ),
        "{person}"
    );
    assert!(
        person.contains(
            r#"insert: "INSERT INTO \"person\" (\"id\", \"name\") OVERRIDING SYSTEM VALUE VALUES (CAST($1 AS BIGINT), $2) RETURNING \"id\", \"name\"""#
        ),
        "{person}"
    );
    assert!(model(postgres, "Book").contains("keyed_insert: None"));
    assert!(model(&generate("../schema.yaml"), "Person").contains("keyed_insert: None"));
    // A delete may commit on its own where the instance key is the only key: PostgreSQL
    // casts the key's text to the column's type.
    assert!(
        person.contains(r#"key_from_text: Some("CAST($1 AS BIGINT)")"#),
        "{person}"
    );
    assert!(model(postgres, "Book").contains("key_from_text: None"));
    assert!(model(&generate("../schema.yaml"), "Person").contains("key_from_text: None"));
}
