//! `explain` says what the runtime does, in both directions, on the cache-breaking schema,
//! the shop and sakila (issue 13: lookups on `unique_together` groups and indexes), for every
//! write the differential checker generates, each run in a transaction that is rolled back:
//! - every key a write locks (every key it writes through, refills or empties after commit)
//!   matches a key pattern `explain` lists for that write — a delete's cascades followed into
//!   the cascaded model's own `delete`;
//! - every key pattern `explain` lists for a write is matched by a key some run of that write
//!   locked, except the few [`UNREACHED`] names with the reason the checker's writes cannot
//!   reach them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use autocache::backend::memory::MemoryBackend;
use autocache::{CacheBackend, CacheError, Context, Lookup, Token};
use autocache_codegen::ir::{OnDelete, Schema};
use autocache_codegen::plan::{self, ModelPlan};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// The in-process cache, remembering every key locked.
struct Recording {
    inner: MemoryBackend,
    locked: Mutex<Vec<String>>,
}

#[async_trait]
impl CacheBackend for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        self.inner.lookup(keys, lease_ttl).await
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        self.inner.fill(key, bytes, token, ttl).await
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        self.locked
            .lock()
            .unwrap()
            .extend(keys.iter().map(|key| (*key).to_owned()));
        self.inner.lock(keys, marker, ttl).await
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        self.inner.release(key, token).await
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        self.inner.evict(keys).await
    }
}

/// The key patterns `explain` lists for write `op` of `model` itself.
fn own_patterns<'p>(plans: &'p [ModelPlan], model: &str, op: &str) -> impl Iterator<Item = &'p String> {
    let plan = plans.iter().find(|p| p.model == model).expect("a model");
    let write = plan
        .writes
        .iter()
        .find(|w| w.op == op)
        .unwrap_or_else(|| panic!("explain lists {model} {op}"));
    write.fills.iter().chain(&write.refills).chain(&write.releases)
}

/// The key patterns `explain` lists for write `op` of `model`, and, for a delete, those of
/// the `delete` of every model it cascades to.
fn patterns(schema: &Schema, plans: &[ModelPlan], model: &str, op: &str, out: &mut Vec<String>) {
    out.extend(own_patterns(plans, model, op).cloned());
    if op == "delete" {
        let footprint = plan::footprint(schema, plan::model(schema, model));
        for dependent in footprint.dependents {
            if dependent.relation.on_delete == OnDelete::Cascade && dependent.source.name != model {
                patterns(schema, plans, &dependent.source.name, "delete", out);
            }
        }
    }
}

/// Patterns `explain` lists that no write of the checker locks a key of, as `(schema
/// namespace, model, write, part of the pattern, why)`: each is a key the runtime does
/// plan, but the checker's data does not give it a row to plan it for.
const UNREACHED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "sakila",
        "Language",
        "delete",
        "",
        "the checker's languages are keys 0 to 3, each soon a `Film`'s `language` (restrict): every delete is refused",
    ),
    (
        "breakers",
        "Clerk",
        "delete",
        "whose checker is this row",
        "an `Invoice` whose `checker` is the clerk has it as its `clerk` too (restrict) among the checker's rows: the delete is refused",
    ),
    (
        "sakila",
        "Staff",
        "delete",
        "whose manager_staff is this row",
        "the checker inserts each round's `Store`s before its `Staff`: few stores name a manager",
    ),
];

/// Which explained patterns the locked keys matched, by `(model, write)`.
#[derive(Default)]
struct Coverage {
    /// Patterns some locked key matched.
    matched: HashMap<(String, String), HashSet<String>>,
    /// The writes run, each with the patterns it must hit.
    run: HashMap<(String, String), Vec<String>>,
}

impl Coverage {
    /// The patterns `explain` lists for a write, none of whose keys any run of the write
    /// locked (and not known to be [`UNREACHED`]), as lines for a failure message.
    fn unmatched(&self, namespace: &str) -> Vec<String> {
        let mut missing = Vec::new();
        for (write, patterns) in &self.run {
            let matched = self.matched.get(write);
            for pattern in patterns {
                let known = UNREACHED.iter().any(|(ns, model, op, part, _)| {
                    *ns == namespace && *model == write.0 && *op == write.1 && pattern.contains(part)
                });
                if !known && matched.is_none_or(|matched| !matched.contains(pattern)) {
                    missing.push(format!("{} {}: {pattern}", write.1, write.0));
                }
            }
        }
        missing.sort();
        missing
    }

    /// The [`UNREACHED`] entries of schema `namespace` whose every pattern a locked key did
    /// match after all.
    fn reached(&self, namespace: &str) -> Vec<&'static str> {
        UNREACHED
            .iter()
            .filter(|(ns, model, op, part, _)| {
                let write = ((*model).to_owned(), (*op).to_owned());
                let (Some(run), Some(matched)) = (self.run.get(&write), self.matched.get(&write)) else {
                    return false;
                };
                *ns == namespace
                    && run
                        .iter()
                        .filter(|pattern| pattern.contains(part))
                        .all(|pattern| matched.contains(pattern))
            })
            .map(|(_, _, _, _, why)| *why)
            .collect()
    }
}

/// Whether `key` is an instance of `pattern` (`<Model>:` stands for the model's key prefix,
/// `<…>` for a value, spelled out or hashed; what follows a space is commentary).
fn matches(pattern: &str, key: &str, prefixes: &HashMap<&str, &str>) -> bool {
    let pattern = pattern.split(' ').next().unwrap_or_default();
    let pattern = match pattern.strip_prefix('<').and_then(|rest| rest.split_once(">:")) {
        Some((model, rest)) => format!("{}:{rest}", prefixes[model]),
        None => pattern.to_owned(),
    };
    let fixed = &pattern[..pattern.find('<').unwrap_or(pattern.len())];
    let plain = key
        .strip_prefix(fixed)
        .is_some_and(|value| !value.is_empty() && !value.contains(':'));
    // A value unsafe in a key (a space, say) is replaced by `#` and its SHA-256.
    let hashed = fixed
        .strip_suffix(':')
        .and_then(|kind| key.strip_prefix(kind))
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    plain || hashed
}

/// A test that runs every write of the checker's adapter `$adapter` for the schema at
/// `$path` and requires each key it locks to match a pattern `explain` lists, and each
/// pattern `explain` lists for it to be matched by a key one of its runs locks.
macro_rules! explain_and_writes_agree {
    ($test:ident: $path:literal, $adapter:path) => {
        #[tokio::test]
        async fn $test() {
            use $adapter as adapter;
            let schema = autocache_codegen::Config::new()
                .load(std::path::Path::new($path))
                .unwrap();
            let plans = plan::plan(&schema);
            let prefixes: HashMap<&str, &str> = plans
                .iter()
                .map(|p| (p.model.as_str(), p.key_prefix.as_str()))
                .collect();
            let (pool, _path) = crate::env::empty_database().await;
            adapter::create_tables(&pool).await.unwrap();
            let recording = Arc::new(Recording {
                inner: MemoryBackend::new(16 << 20),
                locked: Mutex::new(Vec::new()),
            });
            let ctx = Context::builder(pool)
                .backend("default", recording.clone())
                .build();
            let mut rng = StdRng::seed_from_u64(12);
            let (mut keys, mut unexplained) = (0, Vec::new());
            let mut coverage = Coverage::default();
            // Rounds on more and more rows: the first leaves keys free to insert, the later
            // ones have rows none point at (their deletes succeed) and pairs to change.
            for _ in 0..ROUNDS {
                adapter::load(&ctx, &mut rng).await;
                for (op, name) in adapter::OPS.iter().enumerate() {
                    if name.starts_with("add_") {
                        for _ in 0..PAIRINGS {
                            let _ = adapter::run(&ctx, None, &mut rng, op).await;
                        }
                    }
                }
                for (op, name) in adapter::OPS.iter().enumerate() {
                    let (verb, model) = name.split_once(' ').expect("`<verb> <Model>`");
                    let explained = match verb {
                        "evict" => continue,
                        "update_where" => "update",
                        "delete_where" => "delete",
                        other => other,
                    };
                    let mut allowed = Vec::new();
                    patterns(&schema, &plans, model, explained, &mut allowed);
                    let write = (model.to_owned(), explained.to_owned());
                    let own = own_patterns(&plans, model, explained).cloned().collect();
                    coverage.run.insert(write.clone(), own);
                    let matched = coverage.matched.entry(write).or_default();
                    for _ in 0..RUNS {
                        recording.locked.lock().unwrap().clear();
                        let mut tx = ctx.begin().await.unwrap();
                        let _ = adapter::run(&ctx, Some(&mut tx), &mut rng, op).await;
                        tx.rollback().await.unwrap();
                        for key in recording.locked.lock().unwrap().drain(..) {
                            keys += 1;
                            let hits: Vec<&String> = allowed
                                .iter()
                                .filter(|pattern| matches(pattern, &key, &prefixes))
                                .collect();
                            if hits.is_empty() {
                                unexplained.push(format!("{name}: {key}"));
                            }
                            matched.extend(hits.into_iter().cloned());
                        }
                    }
                }
            }
            let unmatched = coverage.unmatched(&schema.namespace);
            println!(
                "explained keys={keys} unexplained={} unmatched patterns={}",
                unexplained.len(),
                unmatched.len()
            );
            assert!(keys > 100, "the writes locked too few keys ({keys}) to tell");
            assert!(
                unexplained.is_empty(),
                "locked, but not in explain:\n{}",
                unexplained.join("\n")
            );
            let reached = coverage.reached(&schema.namespace);
            assert!(
                reached.is_empty(),
                "reached after all, not UNREACHED: {reached:?}"
            );
            assert!(
                unmatched.is_empty(),
                "in explain, but no run of the write locked such a key:\n{}",
                unmatched.join("\n")
            );
        }
    };
}

/// How many times each write of the checker runs (on random rows), per round.
const RUNS: usize = 16;

/// How many times each of the checker's `add_…` writes runs (and commits) before the writes
/// run, per round: few enough that rows stay left to pair.
const PAIRINGS: usize = 4;

/// How many rounds of the checker's loader, then every write.
const ROUNDS: usize = 3;

explain_and_writes_agree!(explain_and_writes_agree_on_breakers: "codegen/tests/fixtures/breakers.yaml", crate::differential::sqlite::breakers);
explain_and_writes_agree!(explain_and_writes_agree_on_the_shop: "codegen/tests/fixtures/shop.yaml", crate::differential::sqlite::shop);
explain_and_writes_agree!(explain_and_writes_agree_on_sakila: "codegen/tests/fixtures/sakila.yaml", crate::differential::sqlite::sakila);
