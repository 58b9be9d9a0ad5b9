//! Cache keys: `<namespace>:<Model>:<schema digest>:<kind>:<value>`.
//!
//! The digest changes whenever the model's schema changes, so a new binary never reads
//! bytes written by an old one. Values that would make a key unsafe for any protocol
//! (longer than 250 bytes, spaces, control characters, non-ASCII) are replaced by a SHA-256
//! digest, so a primary key can never inject protocol commands.

use std::fmt::Display;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::model::Holds;

/// Longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// The key of a row by primary key: `<prefix>:pk:<id>`.
pub fn primary(prefix: &str, id: &impl Display) -> String {
    build(prefix, "pk", &id.to_string())
}

/// The key of a unique-field lookup: `<prefix>:uq.<field>:<value>`; it caches the primary key.
pub fn unique(prefix: &str, field: &str, value: &str) -> String {
    build(prefix, &format!("uq.{field}"), value)
}

/// The key of a related collection of `prefix`'s model owned by one row of another model:
/// `<prefix>:rows.<name>:<owner>` when it caches the member rows, `<prefix>:rel.<name>:<owner>`
/// when it caches their primary keys (the kind keeps the two formats apart).
pub fn collection(prefix: &str, holds: Holds, name: &str, owner: &str) -> String {
    let kind = match holds {
        Holds::Rows => "rows",
        Holds::Ids => "rel",
    };
    build(prefix, &format!("{kind}.{name}"), owner)
}

fn build(prefix: &str, kind: &str, value: &str) -> String {
    let key = format!("{prefix}:{kind}:{value}");
    if is_safe(&key) {
        return key;
    }
    let mut hashed = format!("{prefix}:{kind}#");
    for byte in Sha256::digest(value.as_bytes()) {
        let _ = write!(hashed, "{byte:02x}");
    }
    hashed
}

/// Whether `key` can be sent as is to memcached and redis.
pub fn is_safe(key: &str) -> bool {
    key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_readable() {
        assert_eq!(primary("ns:Person:0a1b", &42), "ns:Person:0a1b:pk:42");
    }

    #[test]
    fn hostile_values_are_hashed() {
        for value in ["a b", "x\r\nset y 0 0 1\r\n", "ünï", &"k".repeat(300), ""] {
            let key = unique("ns:Person:0a1b", "name", value);
            assert!(is_safe(&key), "{key:?}");
            if !value.is_empty() {
                assert!(key.starts_with("ns:Person:0a1b:uq.name"), "{key}");
            }
        }
        assert_ne!(unique("p", "f", "a b"), unique("p", "f", "a  b"));
    }
}
