//! Property tests (proptest) of the value codec and the cache keys.
//!
//! - `codec::decode` never panics, whatever the bytes (arbitrary, or mutations of real
//!   encodings), for rows shaped like the generated ones and for the lists the cache holds;
//!   what it does decode re-encodes to a fixed point.
//! - `encode` → `decode` gives the value back, for arbitrary values.
//! - `key::primary` / `unique` / `relation` give keys that are safe for every protocol and at
//!   most 250 bytes, for arbitrary values and any names the code generator accepts; distinct
//!   inputs give distinct keys (checked across every generated case).
//!
//! `PROPTEST_CASES=<n>` runs `n` cases per property instead of the defaults below.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use autocache::codec::{self, Cached};
use autocache::{Holds, key};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// Like the generated `Person`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Person {
    id: i64,
    name: String,
}

/// Like the generated `Book`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Book {
    id: i64,
    title: String,
    author_id: i64,
    rank: i32,
}

/// Like the generated row of a model with every field type (the `all_types` fixture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sink {
    id: i64,
    small: i16,
    count: i32,
    enabled: bool,
    ratio: f64,
    notes: Option<String>,
    blob: Vec<u8>,
    external_id: uuid::Uuid,
    made_on: NaiveDate,
    opens_at: NaiveTime,
    updated_at: DateTime<Utc>,
    #[serde(with = "autocache::codec::json_text")]
    settings: serde_json::Value,
    label: Option<String>,
}

/// Decodes `bytes` as `T`; checks the markers, and that a decoded value re-encodes to bytes
/// that decode and re-encode to themselves.
fn decode_checked<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
    match codec::decode::<T>(bytes) {
        Cached::Value(value) => {
            let canonical = codec::encode(Some(&value)).expect("a decoded value encodes");
            let again = match codec::decode::<T>(&canonical) {
                Cached::Value(again) => again,
                _ => return Err(TestCaseError::fail("a re-encoded value does not decode")),
            };
            prop_assert_eq!(codec::encode(Some(&again)).expect("encodes"), canonical);
        }
        Cached::Absent => {
            let marker = codec::encode::<T>(None).expect("marker");
            prop_assert_eq!(bytes, marker.as_slice());
        }
        Cached::Locked { at_ms: 0 } if bytes.len() == 1 => prop_assert_eq!(bytes, codec::LOCK_MARKER),
        Cached::Locked { at_ms } => {
            let marker = codec::lock_marker(at_ms);
            prop_assert_eq!(bytes, marker.as_slice());
        }
        Cached::Corrupt => {}
    }
    Ok(())
}

fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_checked::<Person>(bytes)?;
    decode_checked::<Book>(bytes)?;
    decode_checked::<Sink>(bytes)?;
    decode_checked::<Vec<i64>>(bytes)?;
    decode_checked::<Vec<String>>(bytes)?;
    decode_checked::<Vec<uuid::Uuid>>(bytes)?;
    decode_checked::<i64>(bytes)?;
    decode_checked::<String>(bytes)?;
    decode_checked::<Option<i64>>(bytes)?;
    Ok(())
}

/// JSON values; with `floats`, numbers include arbitrary finite floats (see
/// [`json_floats_round_trip`]), else only integers and floats with few digits.
fn json(floats: bool) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let float = if floats {
        any::<f64>().prop_filter("finite", |f| f.is_finite()).boxed()
    } else {
        (any::<i32>(), 0u32..4)
            .prop_map(|(m, e)| f64::from(m) / 10f64.powi(e as i32))
            .boxed()
    };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float.prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn sink() -> impl Strategy<Value = Sink> {
    let dates = (
        // Every date chrono can represent.
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).expect("in range")),
        // Nanoseconds past 1e9 are a leap second.
        (0u32..86_400, 0u32..2_000_000_000).prop_map(|(s, n)| {
            NaiveTime::from_num_seconds_from_midnight_opt(s, if s % 60 == 59 { n } else { n % 1_000_000_000 })
                .expect("valid time")
        }),
        (
            DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            0u32..1_000_000_000,
        )
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range")),
    );
    (
        (any::<i64>(), any::<i16>(), any::<i32>(), any::<bool>(), any::<f64>()),
        (
            proptest::option::of(any::<String>()),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<u128>(),
        ),
        dates,
        (json(false), proptest::option::of(".{0,20}")),
    )
        .prop_map(
            |(
                (id, small, count, enabled, ratio),
                (notes, blob, uuid),
                (made_on, opens_at, updated_at),
                (settings, label),
            )| {
                Sink {
                    id,
                    small,
                    count,
                    enabled,
                    ratio,
                    notes,
                    blob,
                    external_id: uuid::Uuid::from_u128(uuid),
                    made_on,
                    opens_at,
                    updated_at,
                    settings,
                    label,
                }
            },
        )
}

/// `encode` → `decode` gives `value` back (compared through its encoding too, so that a NaN
/// float, unequal to itself, still counts).
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
    comparable: bool,
) -> Result<(), TestCaseError> {
    let bytes = codec::encode(Some(value)).expect("encodes");
    match codec::decode::<T>(&bytes) {
        Cached::Value(back) => {
            prop_assert_eq!(codec::encode(Some(&back)).expect("encodes"), bytes);
            if comparable {
                prop_assert_eq!(&back, value);
            }
        }
        other => return Err(TestCaseError::fail(format!("{value:?} decoded as {other:?}"))),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes)?;
        // With the value format byte in front, the bytes reach postcard.
        let mut value = vec![0xA1];
        value.extend_from_slice(&bytes);
        decode_all(&value)?;
    }

    #[test]
    fn decode_never_panics_on_damaged_encodings(
        row in sink(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut bytes = codec::encode(Some(&row)).expect("encodes");
        for (at, byte, kind) in edits {
            // Never empty: truncation and removal keep at least the first byte.
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i.max(1)),
                2 => bytes.insert(i.max(1), byte),
                _ if bytes.len() > 1 => {
                    bytes.remove(i.max(1));
                }
                _ => {}
            }
        }
        decode_all(&bytes)?;
    }

    #[test]
    fn values_round_trip(
        person in (any::<i64>(), any::<String>()).prop_map(|(id, name)| Person { id, name }),
        book in (any::<i64>(), any::<String>(), any::<i64>(), any::<i32>())
            .prop_map(|(id, title, author_id, rank)| Book { id, title, author_id, rank }),
        row in sink(),
        ids in proptest::collection::vec(any::<i64>(), 0..64),
        keys in proptest::collection::vec(any::<String>(), 0..8),
        number in any::<i64>(),
        text in any::<String>(),
    ) {
        round_trip(&person, true)?;
        round_trip(&book, true)?;
        round_trip(&row, !row.ratio.is_nan())?;
        round_trip(&ids, true)?;
        round_trip(&keys, true)?;
        round_trip(&number, true)?;
        round_trip(&text, true)?;
        round_trip(&Some(number), true)?;
        prop_assert_eq!(codec::decode::<Book>(&codec::encode::<Book>(None).expect("marker")), Cached::Absent);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// JSON columns are cached as JSON text (`codec::json_text`). serde_json parses floats
    /// exactly only with its `float_roundtrip` feature; without it some floats come back one
    /// ULP off (4.849795625621134e248 → 4.849795625621133e248), so a cached row would differ
    /// from the one written. Ignored until the workspace enables
    /// `serde_json = { version = "1", features = ["float_roundtrip"] }`.
    #[test]
    fn json_floats_round_trip(value in json(true)) {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Row {
            #[serde(with = "autocache::codec::json_text")]
            settings: serde_json::Value,
        }
        round_trip(&Row { settings: value }, true)?;
    }
}

/// Key prefixes as generated: `<namespace>:<Model>:<digest>`, with names as long as the code
/// generator allows (namespace 32, model 63 characters).
fn prefix() -> impl Strategy<Value = String> {
    ("[a-z0-9_]{1,32}", "[A-Z][A-Za-z0-9]{0,62}", "[0-9a-f]{8}")
        .prop_map(|(namespace, model, digest)| format!("{namespace}:{model}:{digest}"))
}

/// Field names in unique keys: snake_case, up to 63 characters, plus `_id` for one-to-ones.
fn field() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,62}(_id)?"
}

/// Values: anything, with an emphasis on what is hard for a key (spaces, control characters,
/// protocol syntax, non-ASCII, long strings) and on near-duplicates.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a :#\r\n\u{e9}\u{0}]{0,4}",
        1 => "[ -~]{0,300}",
        1 => "\\PC{200,400}",
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => "[0-9a-f]{64}",
    ]
}

/// Which key function, with its name argument.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Primary,
    Unique(String),
    Relation(String),
    Rows(String),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Primary),
        field().prop_map(Kind::Unique),
        "[a-z][a-z0-9_]{0,62}".prop_map(Kind::Relation),
        "[a-z][a-z0-9_]{0,62}".prop_map(Kind::Rows),
        // A small pool of names, so that cases share kinds and values compete for keys.
        proptest::sample::select(&["name", "email", "books", "book_id"][..]).prop_map(|n| Kind::Unique(n.to_string())),
        proptest::sample::select(&["books", "edited", "name"][..]).prop_map(|n| Kind::Relation(n.to_string())),
        proptest::sample::select(&["books", "edited", "name"][..]).prop_map(|n| Kind::Rows(n.to_string())),
    ]
}

fn make_key(prefix: &str, kind: &Kind, value: &str) -> String {
    match kind {
        Kind::Primary => key::primary(prefix, &value),
        Kind::Unique(field) => key::unique(prefix, field, value),
        Kind::Relation(name) => key::collection(prefix, Holds::Ids, name, value),
        Kind::Rows(name) => key::collection(prefix, Holds::Rows, name, value),
    }
}

/// The input of a key: prefix, function and name, value.
type KeyInput = (String, Kind, String);

/// Every key seen by the key properties, with the input that gave it.
static SEEN: LazyLock<Mutex<HashMap<String, KeyInput>>> = LazyLock::new(Default::default);

fn check_key(prefix: &str, kind: &Kind, value: &str) -> Result<(), TestCaseError> {
    let key = make_key(prefix, kind, value);
    prop_assert!(key::is_safe(&key), "unsafe key {key:?}");
    prop_assert!(key.len() <= key::MAX_KEY_LEN, "{} bytes: {key}", key.len());
    prop_assert!(key.starts_with(&format!("{prefix}:")), "{key} lacks its prefix");
    prop_assert_eq!(make_key(prefix, kind, value), key.clone(), "keys are deterministic");
    let input = (prefix.to_string(), kind.clone(), value.to_string());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    match seen.get(&key) {
        Some(other) if *other != input => {
            return Err(TestCaseError::fail(format!("{other:?} and {input:?} both give {key}")));
        }
        Some(_) => {}
        None => {
            seen.insert(key, input);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn keys_are_safe_short_and_distinct(
        prefix in prefix(),
        shared in proptest::sample::select(&["app:Person:0a1b2c3d", "sample:Book:9cc002a8"][..]),
        inputs in proptest::collection::vec((kind(), value()), 1..24),
    ) {
        for (kind, value) in &inputs {
            // A prefix of its own, and one shared by every case (so keys compete across cases).
            check_key(&prefix, kind, value)?;
            check_key(shared, kind, value)?;
        }
    }

    #[test]
    fn primary_keys_of_every_key_type(prefix in prefix(), n in any::<i64>(), id in any::<u128>(), s in value()) {
        for key in [
            key::primary(&prefix, &n),
            key::primary(&prefix, &uuid::Uuid::from_u128(id)),
            key::primary(&prefix, &s),
        ] {
            prop_assert!(key::is_safe(&key) && key.len() <= key::MAX_KEY_LEN, "{key}");
        }
        // Integer and UUID keys are short enough to stay readable.
        prop_assert_eq!(key::primary(&prefix, &n), format!("{prefix}:pk:{n}"));
    }
}

/// The longest names the code generator accepts still give keys within the limit, readable
/// or hashed.
#[test]
fn longest_names_fit() {
    let prefix = format!("{}:M{}:0123abcd", "n".repeat(32), "m".repeat(62));
    let field = format!("{}_id", "f".repeat(63));
    let relation = "r".repeat(63);
    for value in ["1", &"v".repeat(1000), "a b"] {
        for key in [
            key::primary(&prefix, &value),
            key::unique(&prefix, &field, value),
            key::collection(&prefix, Holds::Ids, &relation, value),
            key::collection(&prefix, Holds::Rows, &relation, value),
        ] {
            assert!(key::is_safe(&key), "{} bytes: {key}", key.len());
        }
    }
}
