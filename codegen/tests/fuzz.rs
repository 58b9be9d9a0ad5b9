//! Property tests (proptest): whatever the bytes of a schema file, the loader
//! ([`validate::load_bytes`]) and the whole generator ([`Config::generate`]: load, plan,
//! render, format) return — a schema or located errors — without panicking, within
//! [`CASE_LIMIT`] per input.
//!
//! Inputs: arbitrary bytes, YAML-ish token soup, mutations of `schema.yaml`, the fixtures and
//! the error corpus, and random well-formed schemas (which mostly validate, so they exercise
//! rendering and formatting too). A schema that loads must generate: a render or format error
//! is a generator bug.
//!
//! Case counts are sized for a debug build on two cores; `PROPTEST_CASES=<n>` runs `n` cases
//! per property instead, for a longer search.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use autocache_codegen::diagnostic::SchemaErrors;
use autocache_codegen::ir::{Dialect, Schema};
use autocache_codegen::validate::{DATABASES, FIELD_TYPES, ON_DELETE_VALUES, PRIMARY_KEY_TYPES, load_bytes};
use autocache_codegen::{Config, Error};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};

/// The longest one input may take, in the loader or in the generator (a debug build).
const CASE_LIMIT: Duration = Duration::from_secs(2);
/// Wall time after which a case counts as hung.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// Cases per property: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // Failing inputs are saved to tests/fuzz.proptest-regressions and replayed first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        // Shrinking re-runs the (bounded) pipeline; keep a failing run from taking minutes.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Valid and invalid schemas to mutate: the sample, the fixtures and the error corpus.
static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut paths = vec![manifest_dir().join("../schema.yaml")];
    for dir in ["tests/fixtures", "tests/schema_errors"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join(dir))
            .expect("seed directory")
            .map(|entry| entry.expect("entry").path())
            .collect();
        files.sort();
        paths.extend(files);
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
});

/// Runs `f` on its own thread; fails the case if it panics or takes longer than [`CASE_LIMIT`].
///
/// Time is the thread's CPU time where the OS reports it (Linux), so that a busy machine does
/// not fail a case; a case still running after [`HANG_LIMIT`] of wall time fails as hung (its
/// thread is left behind: the run fails anyway).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("fuzz {what}"))
        .spawn(move || {
            let (cpu, wall) = (thread_cpu_time(), Instant::now());
            let result = catch_unwind(AssertUnwindSafe(f));
            let took = match (cpu, thread_cpu_time()) {
                (Some(before), Some(after)) => after.saturating_sub(before),
                _ => wall.elapsed(),
            };
            let _ = tx.send((result, took));
        })
        .map_err(|e| TestCaseError::fail(format!("spawn: {e}")))?;
    match rx.recv_timeout(HANG_LIMIT) {
        Ok((Ok(_), took)) if took > CASE_LIMIT => Err(TestCaseError::fail(format!(
            "{what} took {took:?} (limit {CASE_LIMIT:?})"
        ))),
        Ok((Ok(value), _)) => Ok(value),
        Ok((Err(panic), _)) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!("{what} panicked: {message}")))
        }
        Err(_) => Err(TestCaseError::fail(format!(
            "{what} hung: still running after {HANG_LIMIT:?}"
        ))),
    }
}

/// CPU time used so far by the calling thread, from `/proc/thread-self/stat` (Linux).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields from the third (the state) on: the second, `(name)`, may contain spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // utime and stime (fields 14 and 15), in clock ticks of 1/100 s.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Every error is located (`<file>:<line>:<col>: ` with 1-based numbers) and renders.
fn check_errors(errors: &SchemaErrors, file: &str) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    for error in errors.iter() {
        prop_assert!(error.line() >= 1 && error.column() >= 1, "{error}");
        let prefix = format!("{file}:{}:{}: ", error.line(), error.column());
        prop_assert!(error.to_string().starts_with(&prefix), "{error} lacks {prefix}");
    }
    Ok(())
}

/// A fresh path under the test's temporary directory.
fn temp_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codegen-fuzz");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!(
        "{}-{}.yaml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Loads `bytes`, then runs the whole generator on them (from a file); both must return
/// without panicking within the time limit, with located errors, and agree.
fn check_input(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let input = bytes.clone();
    let loaded = bounded("load", move || {
        let result = load_bytes(&input, "fuzz.yaml");
        // Rendering is part of reporting: it must not panic either.
        if let Err(errors) = &result {
            let _ = errors.render(80);
        }
        result
    })?;
    if let Err(errors) = &loaded {
        check_errors(errors, "fuzz.yaml")?;
    }

    let path = temp_path();
    std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(format!("write: {e}")))?;
    let file = path.display().to_string();
    let generated = bounded("generate", {
        let path = path.clone();
        move || Config::new().generate(&path)
    });
    let _ = std::fs::remove_file(&path);
    match (&loaded, generated?) {
        (Ok(schema), Ok(files)) => {
            prop_assert_eq!(files.len(), 1);
            prop_assert!(files.values().all(|code| code.contains("@generated")));
            if schema.dialect != Dialect::Mysql {
                prop_assert!(files.values().all(|code| !code.contains("() VALUES ()")));
            }
            check_ddl_order(schema)?;
        }
        (Err(_), Err(Error::Schema(errors))) => check_errors(&errors, &file)?,
        (Ok(_), Err(e)) => return Err(TestCaseError::fail(format!("a valid schema failed to generate: {e}"))),
        (Err(e), Ok(_)) => return Err(TestCaseError::fail(format!("generated from an invalid schema: {e}"))),
        (Err(_), Err(e)) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
    }
    Ok(())
}

/// On the dialects without forward references (PostgreSQL, MySQL), every table a
/// `CREATE TABLE` references is created before it (or is itself): cycles are closed by
/// `ALTER TABLE`, which comes after every table.
fn check_ddl_order(schema: &Schema) -> Result<(), TestCaseError> {
    /// The quoted identifier at the start of `text` (`"x"` or `` `x` ``).
    fn ident(text: &str) -> &str {
        let quote = text.chars().next().unwrap_or('"');
        text[1..].split(quote).next().unwrap_or_default()
    }
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let mut schema = schema.clone();
        schema.dialect = dialect;
        let mut created: Vec<&str> = Vec::new();
        let statements = autocache_codegen::ddl::statements(&schema);
        for statement in &statements {
            let Some(rest) = statement.strip_prefix("CREATE TABLE ") else {
                continue;
            };
            let table = ident(rest);
            for target in statement.split("REFERENCES ").skip(1).map(ident) {
                prop_assert!(
                    target == table || created.contains(&target),
                    "{dialect:?}: {table} references {target} before it exists:\n{}",
                    statements.join(";\n")
                );
            }
            created.push(table);
        }
    }
    Ok(())
}

/// Pieces of YAML and of the schema vocabulary (the type, `on_delete` and database names
/// come from the validator's own lists).
fn token() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "\n",
        "\n",
        "\n  ",
        "\n    ",
        "\n      ",
        " ",
        "  ",
        ":",
        ": ",
        "- ",
        "-",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "#",
        "'",
        "\"",
        "&a ",
        "*a",
        "!!str ",
        "!!int ",
        "!!binary ",
        "!custom ",
        "? ",
        "|\n",
        ">-\n",
        "---\n",
        "...\n",
        "%YAML 1.2\n",
        "\t",
        "<<: ",
        "~",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "64",
        "65536",
        "99999999999999999999",
        "1.5e400",
        ".nan",
        ".inf",
        "0x1F",
        "\\u0000",
        "é",
        "\u{feff}",
        "\r\n",
        "models",
        "namespace",
        "database",
        "fields",
        "type",
        "to",
        "related_name",
        "on_delete",
        "through",
        "primary_key",
        "ordering",
        "unique_together",
        "max_length",
        "default",
        "unique",
        "column",
        "table",
        "backend",
        "ttl",
        "name",
        "Person",
        "Book",
        "Self",
        "Option",
        "id",
        "author",
        "books",
        "-rank",
    ];
    prop_oneof![
        8 => proptest::sample::select(vocabulary(TOKENS)).prop_map(str::to_string),
        2 => "[A-Za-z_][A-Za-z0-9_]{0,12}",
        1 => any::<char>().prop_map(String::from),
    ]
}

/// `tokens` and every word the validator lists as valid for `type`, `on_delete` and
/// `database`.
fn vocabulary(tokens: &[&'static str]) -> Vec<&'static str> {
    let lists = [FIELD_TYPES, PRIMARY_KEY_TYPES, ON_DELETE_VALUES, DATABASES];
    tokens.iter().chain(lists.into_iter().flatten()).copied().collect()
}

fn yaml_ish() -> impl Strategy<Value = String> {
    proptest::collection::vec(token(), 0..120).prop_map(|tokens| tokens.concat())
}

/// One edit of a seed file.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    SetByte(usize, u8),
    Duplicate(usize, usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        3 => (any::<usize>(), token()).prop_map(|(at, text)| Mutation::Insert(at, text)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        1 => (any::<usize>(), 1..80usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for m in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Delete(i, n) => {
                let start = at(*i);
                let end = (start + n).min(len);
                bytes.drain(start..end);
            }
            Mutation::Insert(i, text) => {
                let start = at(*i);
                bytes.splice(start..start, text.bytes());
            }
            Mutation::SetByte(i, b) => {
                if len > 0 {
                    bytes[i % len] = *b;
                }
            }
            Mutation::Duplicate(i, n) => {
                let start = at(*i);
                let end = (start + n).min(len);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<Vec<u8>> = bytes.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                lines.swap(a % n, b % n);
                bytes = lines.join(&b'\n');
            }
            Mutation::Truncate(i) => bytes.truncate(at(*i)),
        }
    }
    bytes
}

/// A random schema in the format's own shape: mostly valid (distinct names, declared targets,
/// defaults of the right type), and in one case out of five with the checks left to chance
/// (unknown targets, clashing names, defaults of the wrong type, options that do not apply).
fn schema_text() -> impl Strategy<Value = String> {
    use proptest::sample::{Index, select, subsequence};
    const MODELS: &[&str] = &["Person", "Book", "Volume", "Tag", "A", "BookReview", "X9"];
    const FIELDS: &[&str] = &[
        "name",
        "title",
        "rank",
        "author",
        "editors",
        "tags",
        "owner",
        "parent",
        "created_at",
        "data",
        "flag",
        "body",
    ];
    const DEFAULTS: &[&str] = &[
        "0",
        "-5",
        "1.5",
        "true",
        "\"x\"",
        "\"2024-02-29\"",
        "\"12:30:00\"",
        "\"2024-01-31T12:00:00Z\"",
        "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"",
    ];
    /// A default of the right type, for the types that take one.
    fn default_for(ty: &str) -> Option<&'static str> {
        Some(match ty {
            "small_integer" | "integer" | "positive_integer" | "big_integer" => "7",
            "boolean" => "false",
            "float" => "0.25",
            "string" | "text" => "\"it's\"",
            "uuid" => "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"",
            "date" => "\"2024-02-29\"",
            "time" => "\"23:59:59.5\"",
            "datetime" => "\"2024-01-31 12:00:00+02:00\"",
            _ => return None,
        })
    }
    let field = (
        select(FIELD_TYPES),
        any::<Index>(),
        any::<bool>(),
        proptest::option::weighted(0.3, select(DEFAULTS)),
        proptest::option::weighted(0.3, select(ON_DELETE_VALUES)),
        proptest::option::weighted(0.2, "[a-z]{1,6}(_[a-z]{1,4})?"),
        any::<bool>(),
    );
    let model = (
        proptest::option::weighted(0.3, select(PRIMARY_KEY_TYPES)),
        subsequence(FIELDS, 0..6),
        proptest::collection::vec(field, 6),
        proptest::option::weighted(0.3, proptest::collection::vec((any::<Index>(), any::<bool>()), 1..3)),
        proptest::option::weighted(0.2, 1u32..100_000),
    );
    (
        select(DATABASES),
        subsequence(MODELS, 1..4).prop_shuffle(),
        proptest::collection::vec(model, 4),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(database, names, models, chaos)| {
            let mut out = format!("namespace: fuzz\ndatabase: {database}\nmodels:\n");
            for (name, (pk, field_names, fields, ordering, ttl)) in names.iter().zip(models) {
                out.push_str(&format!("  {name}:\n"));
                if let Some(pk) = pk {
                    let max_length = if pk == "string" { ", max_length: 40" } else { "" };
                    out.push_str(&format!("    primary_key: {{ name: key, type: {pk}{max_length} }}\n"));
                }
                if let Some(ttl) = ttl {
                    out.push_str(&format!("    ttl: {ttl}\n"));
                }
                let plain = |i: usize| {
                    field_names
                        .get(i)
                        .is_some_and(|_| !matches!(fields[i].0, "many_to_many" | "json"))
                };
                if let Some(ordering) = ordering {
                    let entries: Vec<String> = ordering
                        .iter()
                        .map(|(i, descending)| (i.index(field_names.len().max(1)), *descending))
                        .filter(|(i, _)| chaos || plain(*i))
                        .map(|(i, descending)| {
                            let name = field_names.get(i).copied().unwrap_or("nope");
                            if descending {
                                format!("-{name}")
                            } else {
                                name.to_string()
                            }
                        })
                        .collect();
                    let mut entries = entries;
                    if !chaos {
                        entries.sort_by(|a, b| a.trim_start_matches('-').cmp(b.trim_start_matches('-')));
                        entries.dedup_by(|a, b| a.trim_start_matches('-') == b.trim_start_matches('-'));
                    }
                    out.push_str(&format!("    ordering: [{}]\n", entries.join(", ")));
                }
                out.push_str("    fields:\n");
                if field_names.is_empty() {
                    out.push_str("      {}\n");
                }
                for (field, (ty, target, null, default, on_delete, related, unique)) in field_names.iter().zip(&fields)
                {
                    let relation = matches!(*ty, "foreign_key" | "one_to_one" | "many_to_many");
                    let mut options = vec![format!("type: {ty}")];
                    if *ty == "string" {
                        options.push("max_length: 32".into());
                    }
                    if relation {
                        let target = if chaos {
                            *target.get(MODELS)
                        } else {
                            *target.get(&names)
                        };
                        options.push(format!("to: {target}"));
                        // Distinct reverse names, unless left to chance.
                        match (related, chaos) {
                            (Some(related), true) => options.push(format!("related_name: {related}")),
                            _ => options.push(format!("related_name: {}_{field}", name.to_lowercase())),
                        }
                    }
                    let nullable = *null && (chaos || *ty != "many_to_many");
                    if nullable {
                        options.push("null: true".into());
                    }
                    if let (true, Some(on_delete)) = (
                        matches!(*ty, "foreign_key" | "one_to_one"),
                        on_delete.filter(|d| chaos || nullable || *d != "set_null"),
                    ) {
                        options.push(format!("on_delete: {on_delete}"));
                    }
                    if *unique && (chaos || !relation) {
                        options.push("unique: true".into());
                    }
                    let default = if chaos {
                        *default
                    } else {
                        default.and_then(|_| default_for(ty))
                    };
                    if let Some(default) = default {
                        options.push(format!("default: {default}"));
                    }
                    out.push_str(&format!("      {field}: {{ {} }}\n", options.join(", ")));
                }
            }
            out
        })
}

// Default case counts: a few seconds each in a debug build (a schema that validates costs
// about 0.3 s to generate there, an invalid one a few milliseconds).

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check_input(bytes)?;
    }

    #[test]
    fn yaml_ish_text(text in yaml_ish()) {
        check_input(text.into_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn mutated_schemas(seed in 0..SEEDS.len(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        check_input(apply(&SEEDS[seed], &mutations))?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn random_schemas(text in schema_text()) {
        check_input(text.into_bytes())?;
    }
}

/// The seeds themselves go through the same checks (the valid ones generate).
#[test]
fn seeds_pass_the_checks() {
    for seed in SEEDS.iter() {
        if let Err(e) = check_input(seed.clone()) {
            panic!("{}\n{e}", String::from_utf8_lossy(seed));
        }
    }
}

/// The time limit is on CPU time where the OS reports it.
#[test]
#[cfg(target_os = "linux")]
fn thread_cpu_time_is_measured() {
    let before = thread_cpu_time().expect("/proc/thread-self/stat");
    let spin = Instant::now();
    while spin.elapsed() < Duration::from_millis(50) {
        std::hint::black_box(0);
    }
    assert!(thread_cpu_time().expect("readable") >= before);
}
