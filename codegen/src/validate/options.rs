//! Settings of the schema and of each model, with their defaults: `namespace`, `database`,
//! `rollout`, and a model's `backend`, `ttl` and `near` cache.

use serde_yaml::Value;

use super::context::{Validator, describe};
use crate::diagnostic::did_you_mean;
use crate::ir::Dialect;
use crate::parse::{ModelDef, SchemaFile, join};

/// `database:` values.
pub const DATABASES: &[&str] = &["sqlite", "postgres", "mysql"];
/// Default `namespace:`.
pub const DEFAULT_NAMESPACE: &str = "app";
/// Default `backend:`.
pub const DEFAULT_BACKEND: &str = "default";
/// Default `rollout:` in seconds.
pub const DEFAULT_ROLLOUT_SECS: u64 = 15 * 60;
/// Default `ttl:` in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Longest `namespace:` (it prefixes every cache key).
pub const MAX_NAMESPACE_LEN: usize = 32;

impl Validator<'_> {
    /// `namespace:` (lowercase ASCII letters, digits and `_`, not too long); the default when
    /// absent.
    pub(super) fn namespace(&mut self, file: &SchemaFile) -> String {
        match &file.namespace {
            None => DEFAULT_NAMESPACE.to_string(),
            Some(ns) => {
                if ns.is_empty()
                    || !ns
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    let pos = self.p.value_or_up("namespace");
                    self.err(
                        "schema::invalid_namespace",
                        pos,
                        format!("invalid namespace `{ns}`"),
                        "invalid namespace",
                    )
                    .set_help("a namespace uses lowercase ASCII letters, digits and `_` only (it prefixes cache keys)");
                } else if ns.len() > MAX_NAMESPACE_LEN {
                    let pos = self.p.value_or_up("namespace");
                    self.err(
                        "schema::invalid_namespace",
                        pos,
                        format!(
                            "namespace `{ns}` is too long ({} characters; at most {MAX_NAMESPACE_LEN})",
                            ns.len()
                        ),
                        "too long",
                    )
                    .set_help("the namespace prefixes every cache key, and keys must fit in 250 bytes");
                }
                ns.clone()
            }
        }
    }

    /// `database:`: one of [`DATABASES`]; SQLite when absent (or unknown, reported).
    pub(super) fn dialect(&mut self, file: &SchemaFile) -> Dialect {
        match file.database.as_deref() {
            None | Some("sqlite") => Dialect::Sqlite,
            Some("postgres") => Dialect::Postgres,
            Some("mysql") => Dialect::Mysql,
            Some(other) => {
                let pos = self.p.value_or_up("database");
                let help = did_you_mean(other, DATABASES.iter().copied(), || None);
                let e = self.err(
                    "schema::unknown_database",
                    pos,
                    format!("unknown database `{other}`; valid databases: {}", DATABASES.join(", ")),
                    "unknown database",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                Dialect::Sqlite
            }
        }
    }

    /// `rollout:` in seconds: a positive number of seconds, or of `s`, `m`, `h` or `d`.
    pub(super) fn rollout(&mut self, value: Option<&Value>) -> u64 {
        let Some(value) = value else {
            return DEFAULT_ROLLOUT_SECS;
        };
        let seconds = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(text) => parse_duration(text),
            _ => None,
        };
        match seconds.filter(|&s| s > 0) {
            Some(seconds) => seconds,
            None => {
                let pos = self.p.value_or_up("rollout");
                self.err(
                    "schema::invalid_rollout",
                    pos,
                    format!("`rollout` must be a positive duration, got {}", describe(value)),
                    "not a duration",
                )
                .set_help(format!(
                    "write seconds (`900`) or a number with `s`, `m`, `h` or `d` (`15m`, `1h`); omit it for the default ({DEFAULT_ROLLOUT_SECS} seconds)"
                ));
                DEFAULT_ROLLOUT_SECS
            }
        }
    }

    /// A model's `backend:` (an identifier), or the default backend.
    pub(super) fn backend(&mut self, path: &str, def: &ModelDef) -> String {
        match &def.backend {
            Some(backend) => {
                let ok = backend
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && backend.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    let pos = self.p.value_or_up(&join(path, "backend"));
                    self.err(
                        "schema::invalid_backend",
                        pos,
                        format!("invalid backend name `{backend}`"),
                        "invalid backend",
                    )
                    .set_help(
                        "backend names are identifiers: ASCII letters, digits and `_`, not starting with a digit",
                    );
                }
                backend.clone()
            }
            None => DEFAULT_BACKEND.to_string(),
        }
    }

    /// A model's `ttl:` (positive seconds), or the default.
    pub(super) fn ttl(&mut self, path: &str, def: &ModelDef) -> u64 {
        match def.ttl {
            None => DEFAULT_TTL_SECS,
            Some(ttl) if ttl > 0 => ttl as u64,
            Some(ttl) => {
                let pos = self.p.value_or_up(&join(path, "ttl"));
                self.err(
                    "schema::invalid_ttl",
                    pos,
                    format!("`ttl` must be a positive number of seconds, got {ttl}"),
                    "not positive",
                )
                .set_help(format!("omit `ttl` for the default ({DEFAULT_TTL_SECS} seconds)"));
                DEFAULT_TTL_SECS
            }
        }
    }

    /// The entries of the model's near cache: 0 without `near:`; a positive `entries` is
    /// required with it.
    pub(super) fn near_entries(&mut self, path: &str, def: &ModelDef) -> u64 {
        let Some(near) = &def.near else {
            return 0;
        };
        match near.entries {
            Some(entries) if entries > 0 => entries as u64,
            entries => {
                let near_path = join(path, "near");
                let pos = self.p.value_or_up(&join(&near_path, "entries"));
                let what = entries.map_or_else(|| "no `entries`".to_owned(), |n| format!("`entries: {n}`"));
                self.err(
                    "schema::invalid_near",
                    pos,
                    format!("a near cache needs a positive number of entries, got {what}"),
                    "not a positive number",
                )
                .set_help(
                    "write `near: { entries: 10000 }` (entries kept per process), or omit `near` for no near cache",
                );
                0
            }
        }
    }
}

/// Seconds in `90s`, `15m`, `1h`, `2d` (or a bare number of seconds).
fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}
