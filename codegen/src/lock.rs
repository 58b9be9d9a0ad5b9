//! The lock file next to a schema (`schema.yaml` → `schema.lock`): each model's key digest
//! and the digests of its earlier versions, with when they were retired.
//!
//! Every cache key carries its model's digest, so a schema change moves a model to new
//! keys. During a rolling deploy, processes of the old and new versions run side by side:
//! the generated code of the new version knows the retired digests (from this file) and, for
//! `rollout:` after it starts, evicts their keys on every write and reads around its own
//! (see `docs/consistency.md`, Rolling deploys). `generate` maintains the file; `check`
//! fails when it does not record the schema's current digests; `build.rs` only reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ir::Schema;

/// Retired digests are kept for at least this long (and each model's latest always), so a
/// build deployed long after the change that retired a digest still evicts its keys.
pub const KEEP_SECS: i64 = 30 * 86_400;

/// The first lines of every lock file.
const HEADER: &str = "# Written by `autocache-codegen generate`; commit it with the schema.\n\
# Each model's cache key digest, and those of its earlier versions, which the generated\n\
# code keeps evicting during a rolling deploy (`rollout:` in the schema).\n";

/// The contents of a lock file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// By model name.
    pub models: BTreeMap<String, ModelDigests>,
}

/// One model's digests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDigests {
    /// The key digest of the schema's current version: the model's digest, salted with
    /// `epoch` when that is not zero.
    pub digest: String,
    /// How many times the model went back to a row layout it had before (a revert): each
    /// time its keys move to a fresh digest, since the old keys may hold values older than
    /// the other version's writes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
    /// Earlier digests, most recently retired first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
}

/// A digest that is no longer current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retired {
    /// The digest.
    pub digest: String,
    /// When `generate` first saw the schema without it (RFC 3339, UTC).
    pub at: String,
}

/// Reading or parsing a lock file failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct LockError {
    /// The lock file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The lock file of the schema at `schema`: the same path with the extension `lock`.
pub fn path_for(schema: &Path) -> PathBuf {
    schema.with_extension("lock")
}

/// Reads the lock file at `path`; an empty lock if there is none.
pub fn read(path: &Path) -> Result<Lock, LockError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
        Err(error) => return Err(lock_error(path, error)),
    };
    serde_yaml::from_str(&text).map_err(|error| lock_error(path, error))
}

/// Brings the lock file at `path` up to date with `schema` (loaded without a lock: its
/// row-layout digests) at `now` (see [`Lock::updated`]); whether the file changed.
pub fn write_updated(path: &Path, schema: &Schema, now: chrono::DateTime<chrono::Utc>) -> Result<bool, LockError> {
    let old = read(path)?;
    let new = old.updated(schema, now);
    if new == old && path.exists() {
        return Ok(false);
    }
    std::fs::write(path, new.render()).map_err(|error| lock_error(path, error))?;
    Ok(true)
}

fn is_zero(epoch: &u32) -> bool {
    *epoch == 0
}

/// `digest` salted with `epoch`: the first 8 hex digits of SHA-256 over `<digest>#<epoch>`
/// (the digest itself for epoch 0), so keys keep their length.
fn salted(digest: &str, epoch: u32) -> String {
    if epoch == 0 {
        return digest.to_owned();
    }
    let hash = Sha256::digest(format!("{digest}#{epoch}").as_bytes());
    hash.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn lock_error(path: &Path, reason: impl std::fmt::Display) -> LockError {
    LockError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl Lock {
    /// The key digest and epoch of a model whose row layout has the digest `base`: salted
    /// with the recorded epoch, and with the next one for as long as that gives a digest
    /// the model had before (a revert must not reuse keys that may hold old values).
    fn effective(&self, model: &str, base: &str) -> (String, u32) {
        let Some(entry) = self.models.get(model) else {
            return (base.to_owned(), 0);
        };
        let mut epoch = entry.epoch;
        while entry.retired.iter().any(|r| r.digest == salted(base, epoch)) {
            epoch += 1;
        }
        (salted(base, epoch), epoch)
    }

    /// The digests a build evicts besides `current`, for `model`: the retired ones, and
    /// the recorded digest when the lock was not updated yet (a build script does not write
    /// the lock; the digest it records is the deployed one).
    pub fn retired_for(&self, model: &str, current: &str) -> Vec<String> {
        let Some(entry) = self.models.get(model) else {
            return Vec::new();
        };
        let mut digests: Vec<String> = Vec::new();
        let recorded = std::iter::once(&entry.digest).chain(entry.retired.iter().map(|r| &r.digest));
        for digest in recorded {
            if digest != current && !digests.contains(digest) {
                digests.push(digest.clone());
            }
        }
        digests
    }

    /// Sets every model's key digest (see [`Lock::updated`]) and retired digests in
    /// `schema`, whose digests are those of its row layouts.
    pub fn apply(&self, schema: &mut Schema) {
        for model in &mut schema.models {
            model.digest = self.effective(&model.name, &model.digest).0;
            model.retired = self.retired_for(&model.name, &model.digest);
        }
    }

    /// Whether this lock records every current key digest of `schema` (as [`Lock::apply`]
    /// set them), and no other model.
    pub fn is_current(&self, schema: &Schema) -> bool {
        self.models.len() == schema.models.len()
            && schema
                .models
                .iter()
                .all(|model| self.models.get(&model.name).is_some_and(|e| e.digest == model.digest))
    }

    /// The lock after `schema` (its row-layout digests, no lock applied) at `now`: a model
    /// whose key digest changed retires the recorded one at `now`; a model back at a layout
    /// it had before gets a new epoch, hence fresh keys; retired digests older than
    /// [`KEEP_SECS`] are dropped except each model's latest; models no longer in the schema
    /// are dropped (no build evicts their keys any more).
    pub fn updated(&self, schema: &Schema, now: chrono::DateTime<chrono::Utc>) -> Lock {
        let keep_after = now - chrono::Duration::seconds(KEEP_SECS);
        let models = schema
            .models
            .iter()
            .map(|model| {
                let (digest, epoch) = self.effective(&model.name, &model.digest);
                let mut entry = self.models.get(&model.name).cloned().unwrap_or_default();
                if !entry.digest.is_empty() && entry.digest != digest {
                    entry.retired.insert(
                        0,
                        Retired {
                            digest: std::mem::take(&mut entry.digest),
                            at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        },
                    );
                }
                entry.digest = digest;
                entry.epoch = epoch;
                let mut seen = vec![entry.digest.clone()];
                let mut index = 0;
                entry.retired.retain(|retired| {
                    let recent = chrono::DateTime::parse_from_rfc3339(&retired.at).is_ok_and(|at| at >= keep_after);
                    let keep = (index == 0 || recent) && !seen.contains(&retired.digest);
                    seen.push(retired.digest.clone());
                    index += 1;
                    keep
                });
                (model.name.clone(), entry)
            })
            .collect();
        Lock { models }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let body = serde_yaml::to_string(self).expect("a lock serializes");
        format!("{HEADER}{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(digests: &[(&str, &str)]) -> Schema {
        let yaml: String = digests
            .iter()
            .map(|(name, _)| format!("  {name}:\n    fields:\n      a: {{ type: integer }}\n"))
            .collect();
        let mut schema = crate::validate::load(&format!("models:\n{yaml}"), "t.yaml").expect("valid");
        for (model, (_, digest)) in schema.models.iter_mut().zip(digests) {
            model.digest = (*digest).to_owned();
        }
        schema
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text).expect("a date").to_utc()
    }

    #[test]
    fn a_changed_digest_is_retired_old_ones_expire_and_a_revert_gets_fresh_keys() {
        let first = Lock::default().updated(&schema(&[("A", "aaaa0001")]), at("2026-01-01T00:00:00Z"));
        assert!(first.models["A"].retired.is_empty());
        let second = first.updated(&schema(&[("A", "aaaa0002")]), at("2026-01-02T00:00:00Z"));
        assert_eq!(second.retired_for("A", "aaaa0002"), ["aaaa0001"]);
        let third = second.updated(&schema(&[("A", "aaaa0003")]), at("2026-03-01T00:00:00Z"));
        assert_eq!(
            third.retired_for("A", "aaaa0003"),
            ["aaaa0002"],
            "a month later only the latest stays"
        );
        let back = third.updated(&schema(&[("A", "aaaa0002")]), at("2026-03-01T01:00:00Z"));
        let fresh = salted("aaaa0002", 1);
        assert_eq!(back.models["A"].digest, fresh, "a revert gets fresh keys");
        assert_eq!(back.models["A"].epoch, 1);
        assert_eq!(back.retired_for("A", &fresh), ["aaaa0003", "aaaa0002"]);
        let mut reverted = schema(&[("A", "aaaa0002")]);
        back.apply(&mut reverted);
        assert_eq!(reverted.models[0].digest, fresh);
        assert!(back.is_current(&reverted));
        assert!(!back.is_current(&schema(&[("A", "aaaa0002"), ("B", "bbbb0001")])));
        let text = back.render();
        let parsed: Lock = serde_yaml::from_str(&text).expect("the rendered lock parses");
        assert_eq!(parsed, back);
    }

    #[test]
    fn a_lock_not_yet_updated_retires_its_recorded_digest() {
        let lock = Lock::default().updated(&schema(&[("A", "aaaa0001")]), at("2026-01-01T00:00:00Z"));
        assert_eq!(lock.retired_for("A", "aaaa0009"), ["aaaa0001"]);
        assert!(lock.retired_for("B", "bbbb0001").is_empty());
        // A revert seen only by a build script gets fresh keys too.
        let second = lock.updated(&schema(&[("A", "aaaa0002")]), at("2026-01-02T00:00:00Z"));
        let mut reverted = schema(&[("A", "aaaa0001")]);
        second.apply(&mut reverted);
        assert_eq!(reverted.models[0].digest, salted("aaaa0001", 1));
        assert_eq!(reverted.models[0].retired, ["aaaa0002", "aaaa0001"]);
    }
}
