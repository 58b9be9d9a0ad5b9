//! Cache keys: `<namespace>:<Model>:<schema digest>:<kind>:<value>`.
//!
//! The digest changes whenever the model's schema changes, so a new binary never reads
//! bytes written by an old one. Values that would make a key unsafe for any protocol
//! (longer than 250 bytes, spaces, control characters, non-ASCII) are replaced by a SHA-256
//! digest, so a primary key can never inject protocol commands.

use std::any::Any;
use std::fmt::Display;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// What a collection key caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// The member rows, in order: one lookup answers the whole collection. For reverse
    /// foreign keys and one-to-ones, whose members name their owner in their own row, so
    /// that every write to a member refills its owners' keys.
    Rows,
    /// The members' primary keys, in order; the rows come from their instance keys. For
    /// many-to-many sides, whose members' rows change without their pairs changing.
    Ids,
}

/// Longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// The key of a row by primary key: `<prefix>:pk:<id>`. Written as a batch's keys are
/// (by the same code), so that a write invalidates exactly the key a read of the row uses.
pub fn primary(prefix: &str, id: &impl Display) -> String {
    let mut key = String::with_capacity(prefix.len() + 4 + 12);
    push_primary(&mut key, prefix, is_safe(prefix), |key| {
        let _ = write!(key, "{id}");
    });
    key
}

/// The keys of rows by primary key ([`primary`] of each id, in order), written into one
/// buffer: a batch costs one allocation (two for more than one key), not one per key.
pub(crate) fn primaries<I: Display + 'static>(prefix: &str, ids: &[I]) -> Keys {
    let mut text = String::with_capacity(ids.len() * (prefix.len() + 4 + 12));
    let mut ends = Vec::with_capacity(ids.len().saturating_sub(1));
    let prefix_safe = is_safe(prefix);
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            ends.push(text.len());
        }
        push_primary(&mut text, prefix, prefix_safe, |text| push_value(text, id));
    }
    Keys { text, ends }
}

/// Appends the key `<prefix>:pk:<value>` to `text`, `value` being what `write_value` appends,
/// hashed if the key is unsafe; `prefix_safe` is [`is_safe`] of `prefix`, checked once per
/// batch, so that only the value's bytes are checked per key.
fn push_primary(text: &mut String, prefix: &str, prefix_safe: bool, write_value: impl FnOnce(&mut String)) {
    let start = text.len();
    text.push_str(prefix);
    text.push_str(":pk:");
    let value_at = text.len() - start;
    write_value(text);
    let key = &text[start..];
    if !(prefix_safe && key.len() <= MAX_KEY_LEN && all_graphic(&key.as_bytes()[value_at..])) {
        let key = finish(key.to_owned(), value_at);
        text.truncate(start);
        text.push_str(&key);
    }
}

/// Appends `value` as [`Display`] writes it; integers (the usual primary keys) without the
/// formatting machinery, which costs several times as much per key.
fn push_value<I: Display + 'static>(text: &mut String, value: &I) {
    let any: &dyn Any = value;
    let mut digits = itoa::Buffer::new();
    let written = if let Some(&n) = any.downcast_ref::<i64>() {
        digits.format(n)
    } else if let Some(&n) = any.downcast_ref::<i32>() {
        digits.format(n)
    } else if let Some(&n) = any.downcast_ref::<i16>() {
        digits.format(n)
    } else if let Some(&n) = any.downcast_ref::<u64>() {
        digits.format(n)
    } else if let Some(&n) = any.downcast_ref::<u32>() {
        digits.format(n)
    } else {
        let _ = write!(text, "{value}");
        return;
    };
    text.push_str(written);
}

/// Keys written one after the other into one string ([`primaries`]).
pub(crate) struct Keys {
    /// The keys, one after the other (empty: no keys, since no key is empty).
    text: String,
    /// Where each key but the last ends (the last ends with `text`).
    ends: Vec<usize>,
}

impl Keys {
    /// Every key, in order.
    pub(crate) fn all(&self) -> Listed<'_> {
        if self.text.is_empty() {
            return Listed::Many(Vec::new());
        }
        if self.ends.is_empty() {
            return Listed::One([&self.text]);
        }
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        let ends = self.ends.iter().copied().chain(std::iter::once(self.text.len()));
        Listed::Many(starts.zip(ends).map(|(start, end)| &self.text[start..end]).collect())
    }
}

/// The keys of [`Keys::all`]: one key without a vector (every `get`), or several.
pub(crate) enum Listed<'k> {
    One([&'k str; 1]),
    Many(Vec<&'k str>),
}

impl<'k> std::ops::Deref for Listed<'k> {
    type Target = [&'k str];

    fn deref(&self) -> &Self::Target {
        match self {
            Listed::One(key) => key,
            Listed::Many(keys) => keys,
        }
    }
}

/// The key of a unique-field lookup: `<prefix>:uq.<field>:<value>`; it caches the primary key.
pub fn unique(prefix: &str, field: &str, value: &str) -> String {
    with_value(start(prefix, &["uq.", field]), value)
}

/// The key text of several values (a `unique_together` group): each value with `\\` and
/// `,` escaped by a `\\`, joined by `,`, so that different groups of values never share a
/// text.
pub fn compose(values: &[&str]) -> String {
    let mut text = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        for c in value.chars() {
            if matches!(c, '\\' | ',') {
                text.push('\\');
            }
            text.push(c);
        }
    }
    text
}

/// The key of a related collection of `prefix`'s model owned by one row of another model:
/// `<prefix>:rows.<name>:<owner>` when it caches the member rows, `<prefix>:rel.<name>:<owner>`
/// when it caches their primary keys (the kind keeps the two formats apart).
pub fn collection(prefix: &str, holds: Holds, name: &str, owner: &str) -> String {
    let kind = match holds {
        Holds::Rows => "rows.",
        Holds::Ids => "rel.",
    };
    with_value(start(prefix, &[kind, name]), owner)
}

/// `<prefix>:<kind parts>:`, with room for a value.
fn start(prefix: &str, kind: &[&str]) -> String {
    let kind_len: usize = kind.iter().map(|part| part.len()).sum();
    let mut key = String::with_capacity(prefix.len() + kind_len + 2 + 24);
    key.push_str(prefix);
    key.push(':');
    kind.iter().for_each(|part| key.push_str(part));
    key.push(':');
    key
}

fn with_value(mut key: String, value: &str) -> String {
    let value_at = key.len();
    key.push_str(value);
    finish(key, value_at)
}

/// `key` if it is safe; otherwise its value part (from `value_at`) replaced by `#` and the
/// value's SHA-256 in hex.
fn finish(key: String, value_at: usize) -> String {
    if is_safe(&key) {
        return key;
    }
    let mut hashed = String::with_capacity(value_at + 64);
    hashed.push_str(&key[..value_at - 1]);
    hashed.push('#');
    for byte in Sha256::digest(&key.as_bytes()[value_at..]) {
        let _ = write!(hashed, "{byte:02x}");
    }
    hashed
}

/// Whether `key` can be sent as is to memcached and redis.
pub fn is_safe(key: &str) -> bool {
    key.len() <= MAX_KEY_LEN && all_graphic(key.as_bytes())
}

/// Whether every byte is printable ASCII other than space.
fn all_graphic(bytes: &[u8]) -> bool {
    // A fold without an early exit, which the compiler turns into vector instructions.
    bytes.iter().fold(true, |safe, b| safe & b.is_ascii_graphic())
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

    #[test]
    fn a_batch_of_keys_is_each_key() {
        // The key `Display` spells, made safe as every key is: what integer ids written
        // with `itoa` must equal too.
        fn each<I: Display + 'static>(prefix: &str, ids: &[I]) {
            let displayed = |id: &I| finish(format!("{prefix}:pk:{id}"), prefix.len() + 4);
            let expected: Vec<String> = ids.iter().map(displayed).collect();
            assert_eq!(*primaries(prefix, ids).all(), expected);
            let one_by_one: Vec<String> = ids.iter().map(|id| primary(prefix, id)).collect();
            assert_eq!(one_by_one, expected);
        }
        let texts = ["7", "a b", "", "x\r\nset", &"k".repeat(300), "plain"].map(String::from);
        for prefix in ["ns:Person:0a1b", "ns:Pe rson:0a1b", &"p".repeat(240)] {
            each(prefix, &texts);
            each(prefix, &[0, 7, -1, i64::MIN, i64::MAX]);
            each(prefix, &[i32::MIN, i32::MAX]);
            each(prefix, &[i16::MIN, i16::MAX]);
            each(prefix, &[u64::MAX, 0]);
            each(prefix, &[u32::MAX]);
            each(prefix, &[1.5f64]);
        }
        assert!(primaries::<i64>("p", &[]).all().is_empty());
    }

    #[test]
    fn composed_values_stay_apart() {
        assert_eq!(compose(&["a", "b"]), "a,b");
        assert_ne!(compose(&["a,b", "c"]), compose(&["a", "b,c"]));
        assert_ne!(compose(&["a\\", ",b"]), compose(&["a\\,", "b"]));
        assert_ne!(compose(&["a\\", "b"]), compose(&["a", "\\b"]));
    }
}
