//! Cached values: one format byte, then postcard bytes.
//!
//! postcard is compact and fast but not self-describing; the schema digest in every key is
//! what guarantees that the bytes under a key were written for this exact struct. Bytes
//! that still fail to decode (garbage, truncation, a foreign writer) read as
//! [`Cached::Corrupt`]: a miss that gets replaced, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format byte of a present value.
const VALUE: u8 = 0xA1;
/// Format byte of the cached "does not exist" marker.
const ABSENT: u8 = 0xA2;
/// Format byte of a writer's lock marker.
const LOCKED: u8 = 0xA3;

/// An undated lock marker: reads as a lock taken long ago (see [`lock_marker`]).
pub const LOCK_MARKER: &[u8] = &[LOCKED];

/// The bytes a writer stores to lock a key until it commits and fills it, dated `at_ms`
/// (milliseconds since the Unix epoch): a reader waits for the fill of a young lock, but
/// reads the database at once past an old one, whose writer may have died.
pub fn lock_marker(at_ms: u64) -> [u8; 9] {
    let mut marker = [LOCKED; 9];
    marker[1..].copy_from_slice(&at_ms.to_le_bytes());
    marker
}

/// Milliseconds since the Unix epoch, as lock markers are dated.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// What a cached item decodes to.
#[derive(Debug, PartialEq)]
pub enum Cached<T> {
    /// A value.
    Value(T),
    /// The database has no such row (cached, so the next read costs no query).
    Absent,
    /// A writer holds the key since `at_ms` (0: undated): read the database, or wait
    /// for its fill.
    Locked {
        /// When the lock was taken, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Unreadable bytes: treat as a miss and replace them.
    Corrupt,
}

/// Encodes a value, or the "does not exist" marker for `None`.
pub fn encode<T: Serialize>(value: Option<&T>) -> Option<Vec<u8>> {
    match value {
        None => Some(vec![ABSENT]),
        Some(value) => {
            let mut bytes = postcard::to_extend(value, vec![VALUE]).ok()?;
            bytes.shrink_to_fit();
            Some(bytes)
        }
    }
}

/// Decodes cached bytes; never panics.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Cached<T> {
    match bytes.split_first() {
        Some((&VALUE, body)) => match postcard::take_from_bytes::<T>(body) {
            Ok((value, [])) => Cached::Value(value),
            _ => Cached::Corrupt,
        },
        Some((&ABSENT, [])) => Cached::Absent,
        Some((&LOCKED, [])) => Cached::Locked { at_ms: 0 },
        Some((&LOCKED, dated)) => match <[u8; 8]>::try_from(dated) {
            Ok(at) => Cached::Locked {
                at_ms: u64::from_le_bytes(at),
            },
            Err(_) => Cached::Corrupt,
        },
        _ => Cached::Corrupt,
    }
}

/// Serde helper for JSON columns: postcard cannot carry `serde_json::Value` (it is not
/// self-describing), so JSON values are cached as their JSON text.
pub mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes `value` as a JSON string.
    pub fn serialize<T: Serialize, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    /// Deserializes a value from a JSON string.
    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// `value` at `scale` digits after the point, rounded half away from zero as PostgreSQL and
/// MySQL round a `decimal` column: generated code binds decimals, and spells them in keys,
/// this way, so that one number has one text (`1.5` and `1.50` are the same key).
pub fn decimal_at(value: rust_decimal::Decimal, scale: u32) -> rust_decimal::Decimal {
    let mut value = value;
    value.rescale(scale);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        id: i64,
        name: String,
    }

    #[test]
    fn round_trips_and_markers() {
        let row = Row {
            id: 7,
            name: "Ann".into(),
        };
        let bytes = encode(Some(&row)).unwrap();
        assert_eq!(decode::<Row>(&bytes), Cached::Value(row));
        assert_eq!(decode::<Row>(&encode::<Row>(None).unwrap()), Cached::Absent);
        assert_eq!(decode::<Row>(LOCK_MARKER), Cached::Locked { at_ms: 0 });
        assert_eq!(decode::<Row>(&lock_marker(1234)), Cached::Locked { at_ms: 1234 });
        assert_eq!(decode::<Row>(&lock_marker(1234)[..5]), Cached::Corrupt);
    }

    #[test]
    fn bad_bytes_are_corrupt() {
        let bytes = encode(Some(&Row {
            id: 7,
            name: "Ann".into(),
        }))
        .unwrap();
        for bad in [
            &[][..],
            &[0u8],
            &bytes[..bytes.len() - 1],
            &[VALUE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(decode::<Row>(bad), Cached::Corrupt, "{bad:?}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode::<Row>(&trailing), Cached::Corrupt);
    }
}
