//! A model's digest: the canonical text of what shapes its cached rows, and its hash (it
//! names the model's cache keys, so a change of shape reads none of the old rows).

use sha2::{Digest, Sha256};

use crate::ir::{Model, PrimaryKey};
use crate::type_names::type_key;

/// The canonical text the digest is computed over: everything that shapes a cached row's
/// bytes (namespace, model name, primary key and fields: names, types, nullability, in order).
pub fn digest_input(namespace: &str, model: &Model) -> String {
    let mut out = format!("autocache-row-v1\nnamespace={namespace}\nmodel={}\n", model.name);
    match &model.primary_key {
        PrimaryKey::Column(pk) => out.push_str(&format!("pk={}:{}\n", pk.name, type_key(&pk.ty))),
        PrimaryKey::Composite(parts) => out.push_str(&format!("pk=({})\n", parts.join(","))),
    }
    for field in &model.fields {
        let null = if field.nullable { "null" } else { "not_null" };
        out.push_str(&format!("field={}:{}:{null}\n", field.name, type_key(&field.ty)));
    }
    out
}

/// First 8 hex digits of SHA-256 over [`digest_input`].
pub fn digest(namespace: &str, model: &Model) -> String {
    let hash = Sha256::digest(digest_input(namespace, model).as_bytes());
    hash.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
