//! Decides, from the IR, every cache key of every model and what each write does to which
//! key. The rendered doc comments and `explain` both read this plan, so they can never
//! disagree with each other.

use serde::Serialize;

use crate::ir::{Model, Schema};

/// The cache plan of one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelPlan {
    /// Model name.
    pub model: String,
    /// `<namespace>:<Model>:<digest>`, the start of every key of this model.
    pub key_prefix: String,
    /// Named backend the keys live on.
    pub backend: String,
    /// TTL of cached values, in seconds.
    pub ttl_secs: u64,
    /// Every key the model's reads use.
    pub keys: Vec<KeyPlan>,
    /// Every write and the keys it touches.
    pub writes: Vec<WriteEffect>,
}

/// One cache key pattern.
#[derive(Clone, Debug, Serialize)]
pub struct KeyPlan {
    /// The reading method (`get`, `get_by_email`).
    pub read_by: String,
    /// The key pattern, with `<…>` for the variable part.
    pub pattern: String,
    /// What the key caches.
    pub holds: String,
}

/// What one write does to the cache after its transaction commits. Every key listed is
/// locked before commit, which makes any in-flight fill of it fail.
#[derive(Clone, Debug, Serialize)]
pub struct WriteEffect {
    /// The writing method (`insert`, `update`, `delete`).
    pub op: String,
    /// Keys written through with the committed value.
    pub fills: Vec<String>,
    /// Keys emptied, to be refilled by the next reader.
    pub releases: Vec<String>,
}

/// Plans every model of `schema`.
pub fn plan(schema: &Schema) -> Vec<ModelPlan> {
    schema.models.iter().map(|model| plan_model(schema, model)).collect()
}

/// The key prefix of a model.
pub fn key_prefix(schema: &Schema, model: &Model) -> String {
    format!("{}:{}:{}", schema.namespace, model.name, model.digest)
}

fn plan_model(schema: &Schema, model: &Model) -> ModelPlan {
    let prefix = key_prefix(schema, model);
    let pk = &model.primary_key.name;
    let pk_key = format!("{prefix}:pk:<{pk}>");
    let unique_keys: Vec<(String, String)> = model
        .fields
        .iter()
        .filter(|field| field.unique)
        .map(|field| (field.name.clone(), format!("{prefix}:{}:<{}>", field.name, field.name)))
        .collect();
    let mut keys = vec![KeyPlan {
        read_by: "get / get_many".into(),
        pattern: pk_key.clone(),
        holds: format!("the `{}` row, or \"does not exist\"", model.name),
    }];
    keys.extend(unique_keys.iter().map(|(field, pattern)| KeyPlan {
        read_by: format!("get_by_{field}"),
        pattern: pattern.clone(),
        holds: format!("the `{pk}` of the row with that `{field}`, or \"does not exist\""),
    }));
    let new_unique: Vec<String> = unique_keys.iter().map(|(_, pattern)| pattern.clone()).collect();
    let old_unique: Vec<String> = unique_keys.iter().map(|(_, pattern)| format!("{pattern} (old value)")).collect();
    let fills_row = || {
        let mut fills = vec![pk_key.clone()];
        fills.extend(new_unique.iter().cloned());
        fills
    };
    let writes = vec![
        WriteEffect { op: "insert".into(), fills: fills_row(), releases: Vec::new() },
        WriteEffect { op: "update".into(), fills: fills_row(), releases: old_unique.clone() },
        WriteEffect {
            op: "delete".into(),
            fills: vec![format!("{pk_key} (\"does not exist\")")],
            releases: new_unique.clone(),
        },
    ];
    ModelPlan {
        model: model.name.clone(),
        key_prefix: prefix,
        backend: model.backend.clone(),
        ttl_secs: model.ttl_secs,
        keys,
        writes,
    }
}

/// The plan of one model as text (the `explain` verb).
pub fn explain(plan: &ModelPlan) -> String {
    let mut out = format!("{} (backend `{}`, ttl {} s)\n  keys:\n", plan.model, plan.backend, plan.ttl_secs);
    for key in &plan.keys {
        out.push_str(&format!("    {:<18} {}  — {}\n", key.read_by, key.pattern, key.holds));
    }
    out.push_str("  writes (keys locked before commit; after commit):\n");
    for write in &plan.writes {
        out.push_str(&format!("    {}\n", write.op));
        for key in &write.fills {
            out.push_str(&format!("      writes through {key}\n"));
        }
        for key in &write.releases {
            out.push_str(&format!("      empties        {key}\n"));
        }
    }
    out
}
