//! Malformed schemas and the diagnostics they produce, pinned by snapshots (miette's
//! graphical report, unicode without colors, 100 columns), plus the valid sample schema.

use std::path::{Path, PathBuf};

use autocache_codegen::diagnostic::SchemaErrors;
use autocache_codegen::ir::{DefaultValue, Dialect, FieldType, OnDelete, RelationKind, ReverseKind, Schema};
use autocache_codegen::validate::load;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 1-based line and column (in characters) of a byte offset, computed independently of the
/// crate's own helpers.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset];
    let line = before.lines().count().max(1) + usize::from(before.ends_with('\n'));
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Loads `tests/schema_errors/<name>.yaml`, which must be rejected; checks that every message
/// starts with `<file>:<line>:<col>: ` matching its span, that each of `expected` (a
/// `<file>:<line>:<col>` location) is reported, and pins the rendered report.
fn check(name: &str, expected: &[&str]) {
    let file = format!("{name}.yaml");
    let source = read(&manifest_dir().join("tests/schema_errors").join(&file));
    let errors: SchemaErrors = match load(&source, &file) {
        Ok(_) => panic!("{file} should be rejected"),
        Err(errors) => errors,
    };
    assert!(!errors.is_empty());
    for error in errors.iter() {
        let (offset, _) = error.span();
        let prefix = format!("{file}:{}:{}: ", error.line(), error.column());
        assert!(
            error.to_string().starts_with(&prefix),
            "{error} does not start with {prefix}"
        );
        assert_eq!(
            line_col(&source, offset),
            (error.line(), error.column()),
            "{error}: span and location disagree"
        );
    }
    let plain = errors.to_string();
    assert_eq!(
        plain.lines().count(),
        errors.len(),
        "Display lists every error on its own line:\n{plain}"
    );
    for location in expected {
        assert!(
            plain.lines().any(|line| line.starts_with(&format!("{location}: "))),
            "expected an error at {location}, got:\n{plain}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "unexpected number of errors:\n{plain}");
    insta::assert_snapshot!(name, errors.render(100));
}

#[test]
fn unknown_model_in_relation() {
    check("unknown_model", &["unknown_model.yaml:10:40"]);
}

#[test]
fn unknown_keys() {
    check("unknown_key", &["unknown_key.yaml:4:5", "unknown_key.yaml:6:45"]);
}

#[test]
fn bad_types() {
    check("bad_type", &["bad_type.yaml:4:21", "bad_type.yaml:5:21"]);
}

#[test]
fn duplicate_model() {
    check("duplicate_model", &["duplicate_model.yaml:8:3"]);
}

#[test]
fn duplicate_field() {
    check("duplicate_field", &["duplicate_field.yaml:6:7"]);
}

#[test]
fn reverse_name_clash_between_relations() {
    check("reverse_name_clash", &["reverse_name_clash.yaml:9:44"]);
}

#[test]
fn related_name_clashes_with_target_field() {
    check("related_name_field_clash", &["related_name_field_clash.yaml:8:62"]);
}

#[test]
fn set_null_requires_null() {
    check("set_null_without_null", &["set_null_without_null.yaml:7:59"]);
}

#[test]
fn defaults_must_match_the_type() {
    check(
        "bad_default",
        &[
            "bad_default.yaml:4:39",
            "bad_default.yaml:5:47",
            "bad_default.yaml:6:44",
        ],
    );
}

#[test]
fn rust_keyword_field_names() {
    check(
        "rust_keyword_field",
        &["rust_keyword_field.yaml:4:7", "rust_keyword_field.yaml:5:7"],
    );
}

#[test]
fn yaml_syntax_error() {
    check("yaml_syntax_error", &["yaml_syntax_error.yaml:5:7"]);
}

#[test]
fn empty_file() {
    check("empty", &["empty.yaml:1:1"]);
}

#[test]
fn string_needs_max_length() {
    check(
        "string_without_max_length",
        &[
            "string_without_max_length.yaml:4:21",
            "string_without_max_length.yaml:5:42",
        ],
    );
}

#[test]
fn ordering_on_unknown_field() {
    check("ordering_unknown_field", &["ordering_unknown_field.yaml:3:16"]);
}

#[test]
fn keys_that_do_not_apply_to_the_type() {
    check(
        "key_not_applicable",
        &["key_not_applicable.yaml:4:32", "key_not_applicable.yaml:5:29"],
    );
}

#[test]
fn top_level_not_a_mapping() {
    check("not_a_mapping", &["not_a_mapping.yaml:1:1"]);
}

#[test]
fn wrong_value_type() {
    check("wrong_value_type", &["wrong_value_type.yaml:3:10"]);
}

#[test]
fn field_named_like_the_implicit_primary_key() {
    check("implicit_id_clash", &["implicit_id_clash.yaml:4:7"]);
}

#[test]
fn all_errors_are_reported_at_once() {
    check(
        "many_errors",
        &[
            "many_errors.yaml:2:12",
            "many_errors.yaml:3:11",
            "many_errors.yaml:5:3",
            "many_errors.yaml:6:10",
            "many_errors.yaml:10:38",
            "many_errors.yaml:11:23",
            "many_errors.yaml:11:40",
            "many_errors.yaml:14:40",
            "many_errors.yaml:14:59",
            "many_errors.yaml:15:39",
        ],
    );
}

fn sample() -> Schema {
    let path = manifest_dir().join("../schema.yaml");
    match load(&read(&path), "schema.yaml") {
        Ok(schema) => schema,
        Err(errors) => panic!("the sample schema is valid, got:\n{errors}"),
    }
}

#[test]
fn sample_schema_loads_with_reverse_relations() {
    let schema = sample();
    assert_eq!(schema.namespace, "sample");
    assert_eq!(schema.dialect, Dialect::Sqlite);
    let names: Vec<&str> = schema.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Person", "Book", "Volume"]);
    let [person, book, volume] = &schema.models[..] else {
        unreachable!()
    };

    // Person: defaults everywhere; two reverse relations from Book.
    assert_eq!(
        (person.table.as_str(), person.backend.as_str(), person.ttl_secs),
        ("person", "default", 3600)
    );
    assert_eq!(person.primary_key.name, "id");
    assert_eq!(person.primary_key.ty, FieldType::BigInt);
    assert!(person.primary_key.auto);
    assert_eq!(person.fields.len(), 1);
    assert_eq!(person.fields[0].ty, FieldType::String { max_length: 64 });
    let reverse: Vec<_> = person
        .reverse
        .iter()
        .map(|r| (r.name.as_str(), r.source.as_str(), r.field.as_str(), r.kind))
        .collect();
    assert_eq!(
        reverse,
        [
            ("books", "Book", "author", ReverseKind::Collection),
            ("edited", "Book", "editors", ReverseKind::ManyToMany)
        ]
    );
    // No ordering declared: empty (the primary key, always the final tie-breaker, is implied).
    assert!(person.ordering.is_empty());

    // Book: a foreign key column `author_id`, a many-to-many, a declared ordering.
    assert_eq!(book.backend, "other");
    let fields: Vec<(&str, &str)> = book
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.column.as_str()))
        .collect();
    assert_eq!(
        fields,
        [("title", "title"), ("author_id", "author_id"), ("rank", "rank")]
    );
    let author = &book.fields[1];
    assert_eq!(author.ty, FieldType::BigInt);
    assert!(!author.nullable && !author.unique && !author.auto);
    let relation = author.relation.as_ref().expect("author is a relation");
    assert_eq!((relation.name.as_str(), relation.target.as_str()), ("author", "Person"));
    assert_eq!(relation.related_name, "books");
    assert_eq!(
        (relation.kind, relation.on_delete),
        (RelationKind::ForeignKey, OnDelete::Cascade)
    );
    assert_eq!(book.many_to_many.len(), 1);
    let editors = &book.many_to_many[0];
    assert_eq!(
        (
            editors.name.as_str(),
            editors.target.as_str(),
            editors.related_name.as_str(),
            editors.through.as_str(),
            editors.source_column.as_str(),
            editors.target_column.as_str()
        ),
        ("editors", "Person", "edited", "book_editors", "book_id", "person_id")
    );
    assert_eq!(
        book.ordering,
        [("rank".to_string(), true), ("title".to_string(), false)]
    );
    let reverse: Vec<_> = book
        .reverse
        .iter()
        .map(|r| (r.name.as_str(), r.source.as_str(), r.kind))
        .collect();
    assert_eq!(reverse, [("volume", "Volume", ReverseKind::One)]);

    // Volume: a unique one-to-one column and a default.
    let book_id = &volume.fields[0];
    assert_eq!(book_id.name, "book_id");
    assert!(book_id.unique);
    assert_eq!(book_id.relation.as_ref().map(|r| r.kind), Some(RelationKind::OneToOne));
    assert_eq!(volume.fields[1].ty, FieldType::PositiveInt);
    assert_eq!(volume.fields[1].default, Some(DefaultValue::Int(1)));
    assert!(volume.reverse.is_empty());

    // Digests: 8 hex digits, distinct per model, stable across loads.
    for model in &schema.models {
        assert_eq!(model.digest.len(), 8);
        assert!(
            model
                .digest
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    assert_ne!(person.digest, book.digest);
    assert_eq!(sample().models[1].digest, book.digest);
}

#[test]
fn digest_follows_row_shape_only() {
    let base = read(&manifest_dir().join("../schema.yaml"));
    let digests = |source: &str| -> Vec<String> {
        load(source, "schema.yaml")
            .expect("valid")
            .models
            .into_iter()
            .map(|m| m.digest)
            .collect()
    };
    let original = digests(&base);
    // Table, ttl, backend and ordering do not change the bytes of a row.
    let cosmetic = base.replace(
        "    backend: other\n",
        "    backend: other\n    ttl: 60\n    table: books\n",
    );
    assert_eq!(digests(&cosmetic), original);
    // A type, a nullability or the namespace does.
    let retyped = base.replace("rank: { type: integer }", "rank: { type: big_integer }");
    assert_ne!(digests(&retyped)[1], original[1]);
    assert_eq!(digests(&retyped)[0], original[0]);
    let nullable = base.replace("rank: { type: integer }", "rank: { type: integer, null: true }");
    assert_ne!(digests(&nullable)[1], original[1]);
    let renamespaced = base.replace("namespace: sample", "namespace: other");
    assert!(digests(&renamespaced).iter().zip(&original).all(|(a, b)| a != b));
}

#[test]
fn fixtures_load() {
    for name in ["all_types", "nullable_fk", "string_pk"] {
        let path = manifest_dir().join("tests/fixtures").join(format!("{name}.yaml"));
        if let Err(errors) = load(&read(&path), &format!("{name}.yaml")) {
            panic!("{name}.yaml should load:\n{errors}");
        }
    }
}

#[test]
fn string_primary_keys_give_string_foreign_keys() {
    let source = "\
models:
  Account:
    primary_key: { name: handle, type: string, max_length: 32 }
    fields:
      display_name: { type: string, max_length: 100 }
  Session:
    primary_key: { name: token, type: uuid }
    fields:
      account: { type: foreign_key, to: Account, null: true, on_delete: set_null, column: owner }
";
    let schema = load(source, "pk.yaml").expect("valid");
    let account = &schema.models[0];
    assert_eq!(account.primary_key.ty, FieldType::String { max_length: 32 });
    assert!(!account.primary_key.auto);
    assert!(account.ordering.is_empty());
    let session = &schema.models[1];
    assert_eq!(session.primary_key.ty, FieldType::Uuid);
    let fk = &session.fields[0];
    assert_eq!((fk.name.as_str(), fk.column.as_str()), ("account_id", "owner"));
    assert_eq!(fk.ty, FieldType::String { max_length: 32 });
    assert!(fk.nullable);
    assert_eq!(
        fk.relation.as_ref().map(|r| (r.on_delete, r.related_name.as_str())),
        Some((OnDelete::SetNull, "session_set"))
    );
}

#[test]
fn self_referential_relations() {
    let source = "\
models:
  Person:
    fields:
      name: { type: string, max_length: 64 }
      friends: { type: many_to_many, to: Person, related_name: friend_of }
      mentor: { type: foreign_key, to: Person, null: true, on_delete: set_null, related_name: mentees }
      twin: { type: one_to_one, to: Person, null: true, on_delete: restrict }
";
    let schema = load(source, "self.yaml").expect("valid");
    let person = &schema.models[0];
    let m2m = &person.many_to_many[0];
    assert_eq!(
        (m2m.source_column.as_str(), m2m.target_column.as_str()),
        ("from_person_id", "to_person_id")
    );
    assert_eq!(m2m.through, "person_friends");
    let reverse: Vec<_> = person.reverse.iter().map(|r| (r.name.as_str(), r.kind)).collect();
    assert_eq!(
        reverse,
        [
            ("friend_of", ReverseKind::ManyToMany),
            ("mentees", ReverseKind::Collection),
            ("person", ReverseKind::One)
        ]
    );
}

#[test]
fn miette_report_for_a_single_error_carries_source_and_help() {
    use miette::Diagnostic;
    let errors = load(
        "models:\n  A:\n    fields:\n      b: { type: foreign_key, to: Persn }\n",
        "s.yaml",
    )
    .expect_err("invalid");
    assert_eq!(errors.len(), 1);
    assert!(errors.source_code().is_some());
    assert_eq!(errors.labels().map(|l| l.count()), Some(1));
    assert_eq!(
        errors.code().map(|c| c.to_string()).as_deref(),
        Some("schema::unknown_model")
    );
    let error = &errors.errors()[0];
    assert_eq!(error.message(), "unknown model `Persn` in `to`; known models: A");
    assert_eq!((error.line(), error.column()), (4, 35));
}

#[test]
fn odd_inputs_are_errors_not_panics() {
    let sample = read(&manifest_dir().join("../schema.yaml"));
    // Every prefix of the sample: each either loads or is rejected with located errors.
    for (end, _) in sample.char_indices() {
        if let Err(errors) = load(&sample[..end], "prefix.yaml") {
            assert!(errors.iter().all(|e| e.to_string().starts_with("prefix.yaml:")));
        }
    }
    let inputs = [
        String::new(),
        "\u{feff}".to_string(),
        "---\n".to_string(),
        "...\n".to_string(),
        "null".to_string(),
        "42".to_string(),
        "[]".to_string(),
        "{}".to_string(),
        "models:".to_string(),
        "models: []".to_string(),
        "models: {}".to_string(),
        "models: { A: }".to_string(),
        "models: { A: { fields: } }".to_string(),
        "models: { A: { fields: { b: } } }".to_string(),
        "models: { A: { fields: { b: 3 } } }".to_string(),
        "models: { A: { fields: { b: { type: [x] } } } }".to_string(),
        "models: { A: { fields: {}, ordering: [-] } }".to_string(),
        "models: { A: { fields: {}, unique_together: [[]] } }".to_string(),
        "models: { A: { fields: {}, primary_key: { type: string, max_length: -1 } } }".to_string(),
        "models: { \"\": { fields: { \"\": { type: integer } } } }".to_string(),
        "models: { [A]: { fields: {} } }".to_string(),
        "models: &a { A: *a }".to_string(),
        "a: &x [*x]".to_string(),
        "models: !!binary aGVsbG8=".to_string(),
        "models:\n\t- a".to_string(),
        "é: { ü: [".to_string(),
        "models: { Aé: { fields: { bé: { type: string, max_length: 99999999999999999999 } } } }".to_string(),
        "a: 1\n---\nb: 2\n".to_string(),
        format!("models: {}", "[".repeat(100_000)),
        format!("models: {}{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
        format!("{}: 1", "k".repeat(1 << 20)),
        format!("models:\n{}", "  M: { fields: {} }\n".repeat(500)),
        format!("# {}", "x".repeat(8 << 20)),
    ];
    for input in &inputs {
        if let Err(errors) = load(input, "odd.yaml") {
            assert!(!errors.is_empty());
            assert!(
                errors
                    .iter()
                    .all(|e| e.to_string().starts_with("odd.yaml:") && e.line() >= 1 && e.column() >= 1)
            );
            let _ = errors.render(80);
        }
    }
}

#[test]
fn ordering_names_foreign_keys_and_the_primary_key() {
    let source = "\
models:
  Person:
    fields:
      name: { type: string, max_length: 64 }
  Book:
    ordering: [-author, id]
    unique_together: [[author, title]]
    fields:
      title: { type: string, max_length: 64 }
      author: { type: foreign_key, to: Person }
";
    let schema = load(source, "ordering.yaml").expect("valid");
    let book = &schema.models[1];
    assert_eq!(
        book.ordering,
        [("author_id".to_string(), true), ("id".to_string(), false)]
    );
    assert_eq!(book.unique_together, [["author_id".to_string(), "title".to_string()]]);
    assert_eq!(schema.models[0].reverse[0].name, "book_set");
}

/// The codes reported for `source`, in order.
fn codes(source: &str) -> Vec<&'static str> {
    match load(source, "inline.yaml") {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.code()).collect(),
    }
}

#[test]
fn more_rejections() {
    let cases: &[(&str, &[&str])] = &[
        (
            "models:\n  A: { table: shared, fields: {} }\n  B: { table: SHARED, fields: {} }\n",
            &["schema::duplicate_table"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { type: many_to_many, to: B }\n  AB: { table: a_b, fields: {} }\n  B: { fields: {} }\n",
            &["schema::duplicate_table"],
        ),
        (
            "models:\n  A:\n    fields:\n      x: { type: integer, column: c }\n      y: { type: integer, column: C }\n",
            &["schema::duplicate_column"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { type: foreign_key, to: A, unique: true }\n",
            &["schema::key_not_applicable"],
        ),
        (
            "models:\n  A:\n    ordering: [data]\n    fields:\n      data: { type: json }\n",
            &["schema::invalid_ordering"],
        ),
        (
            "models:\n  A:\n    fields:\n      n: { type: auto }\n",
            &["schema::unknown_type"],
        ),
        (
            "models:\n  A: { fields: {} }\n---\nmodels: {}\n",
            &["schema::multiple_documents"],
        ),
        (
            "base: &base { fields: {} }\nmodels:\n  A:\n    <<: *base\n",
            &["schema::unknown_key", "schema::unknown_key"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { type: one_to_one, to: A, on_delete: set_null }\n",
            &["schema::set_null_not_nullable"],
        ),
        (
            "models:\n  A:\n    primary_key: { type: uuid, max_length: 36 }\n    fields: {}\n",
            &["schema::key_not_applicable"],
        ),
        (
            "models:\n  A:\n    backend: \"redis-1\"\n    fields: {}\n",
            &["schema::invalid_backend"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { type: foreign_key, to: A, related_name: Parent }\n",
            &["schema::invalid_name"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { type: foreign_key }\n",
            &["schema::missing_target"],
        ),
        (
            "models:\n  A:\n    fields:\n      b: { null: true }\n",
            &["schema::missing_type"],
        ),
        ("models:\n  A: { ttl: 5 }\n", &["schema::missing_fields"]),
        (
            "models:\n  A:\n    fields:\n      d: { type: date, default: 2023-02-29 }\n",
            &["schema::invalid_default"],
        ),
        ("models:\n  Option: { fields: {} }\n", &["schema::reserved_name"]),
        (
            "models:\n  A:\n    fields:\n      b: { type: foreign_key, to: A }\n      b_id: { type: integer }\n",
            &["schema::duplicate_field"],
        ),
        ("namespace: sample\n", &["schema::missing_models"]),
        ("models: {}\n", &["schema::missing_models"]),
        (
            "models:\n  A:\n    fields: { x: { type: integer } }\n    fields: {}\n",
            &["schema::duplicate_key"],
        ),
    ];
    for (source, expected) in cases {
        assert_eq!(codes(source), *expected, "for:\n{source}");
    }
}
