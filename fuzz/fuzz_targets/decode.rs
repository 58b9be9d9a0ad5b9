//! The value codec on arbitrary bytes, for rows like the generated ones and the lists the cache
//! holds: `decode` never panics, and what it decodes re-encodes to a fixed point.
#![no_main]

use autocache::codec::{self, Cached};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Person {
    id: i64,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Book {
    id: i64,
    title: String,
    author_id: i64,
    rank: i32,
}

#[derive(Serialize, Deserialize)]
struct Row {
    id: uuid::Uuid,
    small: i16,
    ratio: f64,
    notes: Option<String>,
    blob: Vec<u8>,
    // No JSON column: without serde_json's `float_roundtrip` feature a JSON float can move by
    // one ULP on each trip through its text, so the fixed-point check below would not hold
    // (runtime/tests/fuzz.rs, `json_floats_round_trip`).
}

fn check<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    if let Cached::Value(value) = codec::decode::<T>(bytes) {
        let canonical = codec::encode(Some(&value)).expect("a decoded value encodes");
        match codec::decode::<T>(&canonical) {
            Cached::Value(again) => assert_eq!(codec::encode(Some(&again)).expect("encodes"), canonical),
            _ => panic!("a re-encoded value does not decode"),
        }
    }
}

fn check_all(bytes: &[u8]) {
    check::<Person>(bytes);
    check::<Book>(bytes);
    check::<Row>(bytes);
    check::<Vec<i64>>(bytes);
    check::<Vec<String>>(bytes);
    check::<i64>(bytes);
    check::<String>(bytes);
}

fuzz_target!(|data: &[u8]| {
    check_all(data);
    // With the value format byte in front, every input reaches postcard.
    let mut value = Vec::with_capacity(data.len() + 1);
    value.push(0xA1);
    value.extend_from_slice(data);
    check_all(&value);
});
