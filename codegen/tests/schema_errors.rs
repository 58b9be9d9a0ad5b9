//! Malformed schemas and the diagnostics they produce, pinned by snapshots (miette's
//! graphical report, unicode without colors, 100 columns), plus the valid sample schema.
//!
//! The corpus is every file in `tests/schema_errors/` (each listed in [`CORPUS`] with the
//! locations it must report) and a few inputs generated here because they are too large or
//! not UTF-8 ([`generated`]). Each is loaded under `catch_unwind`; the test prints one line,
//! `R4 bad_schemas=<n> panics=<n>` (see it with `-- --nocapture`).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autocache_codegen::diagnostic::SchemaErrors;
use autocache_codegen::ir::{DefaultValue, Dialect, FieldType, OnDelete, RelationKind, ReverseKind, Schema};
use autocache_codegen::validate::{load, load_bytes};

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

/// Every file of `tests/schema_errors/` (without `.yaml`) and the `<line>:<col>` of each error
/// it must produce, in order.
const CORPUS: &[(&str, &[&str])] = &[
    // `type: auto` outside a primary key; an SQL type name (did you mean `string`).
    ("auto_field_type", &["4:20", "5:21"]),
    // `auto_now_add` or `auto_now` (not both), only on `datetime`, without a `default`;
    // the database's clock as a default is `now`.
    ("auto_now_errors", &["4:54", "5:50", "6:26", "7:47"]),
    ("bad_backend", &["3:14"]),
    ("bad_database", &["1:11"]),
    // Defaults must match the type.
    ("bad_default", &["4:39", "5:47", "6:44"]),
    ("bad_default_not_supported", &["7:37", "8:36", "9:47", "10:54"]),
    ("bad_default_out_of_range", &["4:49", "5:40", "6:45", "7:38"]),
    (
        "bad_default_wrong_type",
        &["4:53", "5:37", "6:43", "7:35", "8:34", "9:41", "10:38"],
    ),
    ("bad_namespace", &["1:12"]),
    // `entries: 0`; `near` without `entries`.
    ("bad_near", &["3:22", "7:5"]),
    ("bad_on_delete", &["7:59", "8:81"]),
    ("bad_rollout", &["1:10"]),
    ("bad_ttl", &["3:10", "7:10"]),
    ("bad_type", &["4:21", "5:21"]),
    // A composite key: a part twice (by field and column name), an unknown part, a
    // many_to_many, a float and a nullable part; one part only; relations to a model with a
    // composite key.
    (
        "composite_key_errors",
        &["9:36", "9:48", "9:54", "9:60", "9:67", "17:18", "22:44", "23:39"],
    ),
    // Only comments, `---` and `...`: empty, reported at the start.
    ("comments_and_markers_only", &["1:1"]),
    // `char` needs `max_length` (at most 255); `unsigned` is for the signed integer types.
    (
        "char_and_unsigned_errors",
        &["5:21", "6:38", "7:50", "8:45", "9:39", "10:65"],
    ),
    // `decimal` needs `precision` (1 to 28) and a `scale` within it; defaults must fit.
    ("decimal_errors", &["4:22", "5:40", "6:51", "7:62", "8:63", "9:31"]),
    ("deep_nesting", &["4:41"]),
    ("duplicate_column", &["5:53"]),
    ("duplicate_field", &["6:7"]),
    ("duplicate_field_key", &["4:45"]),
    ("duplicate_model", &["8:3"]),
    ("duplicate_table", &["7:12"]),
    ("duplicate_top_level_key", &["6:1"]),
    ("empty", &["1:1"]),
    // Zero bytes.
    ("empty_file", &["1:1"]),
    ("empty_models", &["2:9"]),
    ("empty_namespace", &["1:12"]),
    // `enum` needs `values`: well-formed, distinct as Rust variants; a default among them;
    // its Rust type (`FilmRepo`) may not be another generated type's name.
    (
        "enum_errors",
        &["4:23", "5:37", "6:43", "7:43", "7:50", "8:62", "9:7", "10:45"],
    ),
    // The target's primary key type is reported; the foreign key adds no second error.
    ("foreign_key_to_invalid_primary_key", &["4:39"]),
    // A field named like the implicit primary key `id`.
    ("implicit_id_clash", &["4:7"]),
    // `index: true` / `indexes:` not on a unique field, bytes or JSON, nor on a foreign key
    // field (it is indexed already); groups not empty, without repeats, each once.
    (
        "index_errors",
        &["5:60", "6:30", "8:32", "8:44", "8:52", "8:73", "8:80", "11:48"],
    ),
    ("integer_too_large", &["5:38"]),
    ("invalid_field_name", &["4:7", "5:7", "6:7", "7:7", "8:7"]),
    // Invalid names; `Book-Review` also derives the table of `book_review`.
    ("invalid_model_name", &["2:3", "4:3", "6:3", "6:3", "8:3"]),
    ("invalid_sql_names", &["3:12", "5:53", "6:34"]),
    ("key_not_applicable", &["4:32", "5:29"]),
    // Valid names whose derived table, column, join table or join columns are too long.
    ("long_derived_names", &["3:3", "8:7", "9:7", "13:7", "13:7"]),
    ("long_names", &["2:3", "4:7"]),
    // Several independent problems: all of them are reported at once.
    (
        "many_errors",
        &[
            "2:12", "3:11", "5:3", "6:10", "10:38", "11:23", "11:40", "14:40", "14:59", "15:39",
        ],
    ),
    ("many_to_many_keys_not_applicable", &["7:50", "7:62", "7:82", "7:101"]),
    ("many_to_many_through_clash", &["7:59", "8:86"]),
    // `through:` with keys of its own (a mapping) instead of a table name.
    ("many_to_many_through_mapping", &["8:59"]),
    ("max_length_out_of_range", &["4:38", "5:38", "6:38"]),
    ("merge_key", &["2:1", "6:5"]),
    ("missing_models", &["1:1"]),
    ("missing_relation_target", &["7:7", "8:7"]),
    ("missing_type_and_fields", &["2:3", "6:7", "7:7"]),
    ("namespace_too_long", &["2:12"]),
    // Columns count characters, not bytes.
    ("non_ascii_positions", &["2:12", "7:44"]),
    ("not_a_mapping", &["1:1"]),
    // Foreign keys in a cycle whose columns are all NOT NULL: the first row cannot exist.
    ("not_null_cycle", &["6:41"]),
    ("not_null_self_reference", &["5:40"]),
    ("null_document", &["1:1"]),
    ("ordering_invalid_fields", &["6:16", "6:25", "6:43"]),
    ("ordering_unknown_field", &["3:16"]),
    ("primary_key_errors", &["3:37", "6:26", "9:32", "12:26", "12:57"]),
    // The reverse accessor `name` would hide Person's own field `name`.
    ("related_name_field_clash", &["8:62"]),
    ("related_name_primary_key_clash", &["7:62"]),
    ("relation_column_clash", &["9:7"]),
    ("reverse_clash_many_to_many", &["9:42"]),
    // Two foreign keys to Person without related_name both default to `book_set`.
    ("reverse_name_clash", &["9:44"]),
    ("rust_keyword_field", &["4:7", "5:7"]),
    ("rust_keyword_model", &["2:3", "4:3", "6:3"]),
    ("rust_keyword_names", &["3:26", "8:62", "9:7"]),
    ("scalar_document", &["1:1"]),
    // Both sides of a self many-to-many with one name would share their collection keys.
    ("self_many_to_many_clash", &["6:64"]),
    ("set_null_without_null", &["7:59"]),
    ("string_without_max_length", &["4:21", "5:42"]),
    ("syntax_bad_indentation", &["5:6"]),
    ("syntax_missing_colon", &["3:11"]),
    ("syntax_multiple_documents", &["5:1"]),
    ("syntax_tab_indentation", &["3:2"]),
    ("syntax_unclosed_quote", &["4:12"]),
    ("syntax_unclosed_sequence", &["4:11"]),
    ("syntax_undefined_alias", &["3:13"]),
    // A through model keyed otherwise than by its two foreign keys; its other columns
    // without a value an `add_…` insert could leave to the database, or unique.
    ("through_model_errors", &["5:55", "17:7", "18:7"]),
    ("unique_together_errors", &["3:23", "3:40", "3:56"]),
    // `tabel` is not a model key, `nul` is not a field key.
    ("unknown_key", &["4:5", "6:45"]),
    ("unknown_key_primary_key", &["3:48"]),
    ("unknown_key_top_level", &["2:1"]),
    ("unknown_keys_every_level", &["2:1", "5:5", "6:42", "8:45"]),
    // A relation to a model that does not exist (a typo).
    ("unknown_model", &["10:40"]),
    ("unknown_model_case", &["7:40"]),
    ("unknown_model_many_to_many", &["5:39"]),
    ("whitespace_only", &["1:1"]),
    ("wrong_type_field_scalar", &["4:13"]),
    ("wrong_type_fields_sequence", &["4:7"]),
    ("wrong_type_max_length", &["4:41"]),
    ("wrong_type_model_null", &["2:3"]),
    ("wrong_type_models_sequence", &["2:3"]),
    ("wrong_type_namespace", &["1:12"]),
    ("wrong_type_null_flag", &["4:55"]),
    ("wrong_type_ordering", &["3:15"]),
    ("wrong_type_ttl_float", &["3:10"]),
    // `ttl: soon`.
    ("wrong_value_type", &["3:10"]),
    // An unclosed flow mapping: the error points at the next line and at the open `{`.
    ("yaml_syntax_error", &["5:7"]),
];

/// One malformed input: its snapshot name, file name, bytes and expected `<line>:<col>`s.
struct Case {
    name: String,
    file: String,
    bytes: Vec<u8>,
    expected: Vec<String>,
}

/// Inputs made here rather than committed: too large, too long a line, too deep, too many
/// errors, or not UTF-8.
fn generated() -> Vec<Case> {
    let case = |name: &str, bytes: Vec<u8>, expected: &[&str]| Case {
        name: format!("generated_{name}"),
        file: format!("{name}.yaml"),
        bytes,
        expected: expected.iter().map(|s| s.to_string()).collect(),
    };
    let model = |i: usize| format!("  Model{i}:\n    fields:\n      name: {{ type: string, max_length: 64 }}\n");

    // 5 MB of valid models: over the 4 MiB limit, rejected before parsing.
    let mut huge = String::from("models:\n");
    let mut i = 0;
    while huge.len() < 5_000_000 {
        huge.push_str(&model(i));
        i += 1;
    }
    // Half a megabyte (thousands of models), with one unknown model at the very end.
    let mut large = String::from("models:\n");
    let mut i = 0;
    while large.len() < 500_000 {
        large.push_str(&model(i));
        i += 1;
    }
    large.push_str("  Last:\n    fields:\n      owner: { type: foreign_key, to: Nobody }\n");
    let large_line = format!("{}:39", large.lines().count());
    // Hundreds of errors.
    let mut many = String::from("models:\n  Wide:\n    fields:\n");
    for i in 0..300 {
        many.push_str(&format!("      f{i}: {{ type: strng }}\n"));
    }
    let many_expected: Vec<String> = (0..300)
        .map(|i| format!("{}:{}", i + 4, 18 + i.to_string().len()))
        .collect();
    // One line of 20 kB: the plain message still locates the error; no snippet is shown.
    let fields: Vec<String> = (0..600).map(|i| format!("f{i}: {{ type: integer }}")).collect();
    let long_line = format!(
        "models: {{ A: {{ fields: {{ {}, bad: {{ type: intger }} }} }} }}\n",
        fields.join(", ")
    );
    let long_col = format!("1:{}", long_line.find("intger").unwrap() + 1);
    // 100 000 nested brackets.
    let deep = format!("models: {}{}", "[".repeat(100_000), "]".repeat(100_000));

    let mut cases = vec![
        case("huge_file", huge.into_bytes(), &["1:1"]),
        case(
            "large_file_with_an_error_at_the_end",
            large.into_bytes(),
            &[&large_line],
        ),
        case("long_line", long_line.into_bytes(), &[&long_col]),
        case("very_deep", deep.into_bytes(), &["1:264"]),
        // Not UTF-8: an invalid byte in a name, Latin-1 text, a cut multi-byte character, UTF-16.
        case(
            "invalid_utf8_in_name",
            b"models:\n  Per\xffson:\n    fields: {}\n".to_vec(),
            &["2:6"],
        ),
        case(
            "latin1_comment",
            b"# caf\xe9 au lait\nmodels:\n  Person:\n    fields: {}\n".to_vec(),
            &["1:6"],
        ),
        case(
            "truncated_utf8",
            b"models:\n  Person:\n    fields: {}\n# \xe2\x82".to_vec(),
            &["4:3"],
        ),
        case(
            "utf16",
            "models:\n  Person:\n    fields: {}\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .fold(vec![0xff, 0xfe], |mut v, b| {
                    v.push(b);
                    v
                }),
            &["1:1"],
        ),
    ];
    let mut many_case = case("many_errors", many.into_bytes(), &[]);
    many_case.expected = many_expected;
    cases.push(many_case);
    cases
}

/// What loading one malformed input gave.
struct Outcome {
    /// Every error's `Display`, in order.
    messages: Vec<String>,
    /// The rendered report, pinned by a snapshot.
    rendered: String,
}

/// Loads one input (under `catch_unwind`) and checks that it is rejected with errors that each
/// start with `<file>:<line>:<col>: ` matching their span, at exactly the expected places.
fn check(case: &Case) -> Result<Outcome, String> {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        load_bytes(&case.bytes, &case.file).map(|_| ()).map_err(|errors| {
            let rendered = render(&errors);
            (errors, rendered)
        })
    }));
    let elapsed = started.elapsed();
    let (errors, rendered): (SchemaErrors, String) = match result {
        Err(_) => return Err(format!("{}: PANICKED", case.file)),
        Ok(Ok(())) => return Err(format!("{}: should be rejected", case.file)),
        Ok(Err(found)) => found,
    };
    let mut problems = Vec::new();
    if elapsed > Duration::from_secs(10) {
        problems.push(format!("took {elapsed:?}"));
    }
    // The text the spans index: the file, or its lossy form when it is not UTF-8 (or too
    // large to be read at all).
    let source = String::from_utf8_lossy(&case.bytes);
    for error in errors.iter() {
        let (offset, _) = error.span();
        let prefix = format!("{}:{}:{}: ", case.file, error.line(), error.column());
        if !error.to_string().starts_with(&prefix) {
            problems.push(format!("{error} does not start with {prefix}"));
        }
        if line_col(&source, offset) != (error.line(), error.column()) {
            problems.push(format!("{error}: span and location disagree"));
        }
    }
    let plain = errors.to_string();
    if plain.lines().count() != errors.len() {
        problems.push(format!("Display does not list every error on its own line:\n{plain}"));
    }
    let found: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.line(), e.column())).collect();
    if found != case.expected {
        problems.push(format!(
            "expected errors at {:?}, found {found:?}:\n{plain}",
            case.expected
        ));
    }
    if problems.is_empty() {
        Ok(Outcome {
            messages: errors.iter().map(|e| e.to_string()).collect(),
            rendered,
        })
    } else {
        Err(format!("{}: {}", case.file, problems.join("\n")))
    }
}

/// The report as pinned: every error in full, except for reports of more than twenty errors,
/// which keep the first three and the summary.
fn render(errors: &SchemaErrors) -> String {
    if errors.len() <= 20 {
        return errors.render(100);
    }
    let mut out = String::new();
    for error in &errors.errors()[..3] {
        out.push_str(&error.render(100));
    }
    let summary = errors.render(100);
    out.push_str(&format!("… {} more errors …\n", errors.len() - 3));
    out.push_str(summary.lines().last().unwrap_or_default());
    out.push('\n');
    out
}

#[test]
fn malformed_schemas_are_rejected_with_located_errors() {
    let dir = manifest_dir().join("tests/schema_errors");
    // Every committed file is listed, and every listed file exists.
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("tests/schema_errors")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = CORPUS.iter().map(|(name, _)| format!("{name}.yaml")).collect();
    assert_eq!(on_disk, listed, "tests/schema_errors/ and CORPUS disagree");

    let mut cases: Vec<Case> = CORPUS
        .iter()
        .map(|(name, expected)| Case {
            name: name.to_string(),
            file: format!("{name}.yaml"),
            bytes: std::fs::read(dir.join(format!("{name}.yaml"))).expect("corpus file"),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    cases.extend(generated());

    let mut panics = 0;
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for case in &cases {
        match check(case) {
            Ok(outcome) => outcomes.push((case, outcome)),
            Err(failure) => {
                panics += usize::from(failure.ends_with("PANICKED"));
                failures.push(failure);
            }
        }
    }
    println!("R4 bad_schemas={} panics={panics}", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for (case, outcome) in &outcomes {
        // Every message is located, whatever the case.
        assert!(
            outcome
                .messages
                .iter()
                .all(|m| m.starts_with(&format!("{}:", case.file)))
        );
        insta::assert_snapshot!(case.name.as_str(), outcome.rendered);
    }
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
    assert_eq!(person.target_key().name, "id");
    assert_eq!(person.target_key().ty, FieldType::BigInt);
    assert!(person.target_key().auto);
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
    assert_eq!(account.target_key().ty, FieldType::String { max_length: 32 });
    assert!(!account.target_key().auto);
    assert!(account.ordering.is_empty());
    let session = &schema.models[1];
    assert_eq!(session.target_key().ty, FieldType::Uuid);
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
