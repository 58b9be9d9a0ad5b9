//! `explain` says what the runtime does: every key a write locks (every key it writes
//! through, refills or empties after commit) matches a key pattern `explain` lists for that
//! write — a delete's cascades followed into the cascaded model's own `delete` — on the
//! cache-breaking schema, the shop and sakila (issue 13: lookups on `unique_together` groups and
//! indexes), for every write the differential checker generates, each run in a
//! transaction that is rolled back.

use std::collections::HashMap;
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

/// The key patterns `explain` lists for write `op` of `model`, and, for a delete, those of
/// the `delete` of every model it cascades to.
fn patterns(schema: &Schema, plans: &[ModelPlan], model: &str, op: &str, out: &mut Vec<String>) {
    let plan = plans.iter().find(|p| p.model == model).expect("a model");
    let write = plan
        .writes
        .iter()
        .find(|w| w.op == op)
        .unwrap_or_else(|| panic!("explain lists {model} {op}"));
    out.extend(write.fills.iter().chain(&write.refills).chain(&write.releases).cloned());
    if op == "delete" {
        let footprint = plan::footprint(schema, plan::model(schema, model));
        for dependent in footprint.dependents {
            if dependent.relation.on_delete == OnDelete::Cascade && dependent.source.name != model {
                patterns(schema, plans, &dependent.source.name, "delete", out);
            }
        }
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
/// `$path` and requires each key it locks to match a pattern `explain` lists.
macro_rules! every_locked_key_is_explained {
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
            adapter::load(&ctx, &mut rng).await;
            let (mut keys, mut unexplained) = (0, Vec::new());
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
                for _ in 0..4 {
                    recording.locked.lock().unwrap().clear();
                    let mut tx = ctx.begin().await.unwrap();
                    let _ = adapter::run(&ctx, Some(&mut tx), &mut rng, op).await;
                    tx.rollback().await.unwrap();
                    for key in recording.locked.lock().unwrap().drain(..) {
                        keys += 1;
                        if !allowed.iter().any(|pattern| matches(pattern, &key, &prefixes)) {
                            unexplained.push(format!("{name}: {key}"));
                        }
                    }
                }
            }
            println!("explained keys={keys} unexplained={}", unexplained.len());
            assert!(keys > 100, "the writes locked too few keys ({keys}) to tell");
            assert!(
                unexplained.is_empty(),
                "locked, but not in explain:\n{}",
                unexplained.join("\n")
            );
        }
    };
}

every_locked_key_is_explained!(every_locked_key_is_explained: "codegen/tests/fixtures/breakers.yaml", crate::differential::sqlite::breakers);
every_locked_key_is_explained!(every_locked_key_of_the_shop_is_explained: "codegen/tests/fixtures/shop.yaml", crate::differential::sqlite::shop);
every_locked_key_is_explained!(every_locked_key_of_sakila_is_explained: "codegen/tests/fixtures/sakila.yaml", crate::differential::sqlite::sakila);
