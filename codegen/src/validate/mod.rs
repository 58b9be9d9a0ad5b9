//! Validation: the parsed syntax tree + positions → [`ir::Schema`](crate::ir::Schema),
//! collecting every error.
//!
//! Entry point: [`load`] (parse + validate). This module is the driver: the order of the
//! passes (`Validator::schema`); each concern is a module of its own, below it:
//! `options` (schema and model settings), `names` and `clashes` (single names; names that
//! must differ), `model` (one model, field by field), `fields`, `type_params` and `defaults`
//! (a field's type, parameters and default), `keys` (primary keys), `relations` and
//! `many_to_many`, `field_refs`, `ordering` and `lookups` (fields named in groups), `digest`
//! (the row digest); `context` holds what they share. Type names come from one table,
//! `crate::type_names`.

mod clashes;
mod context;
mod defaults;
mod digest;
mod field_refs;
mod fields;
mod keys;
mod lookups;
mod many_to_many;
mod model;
mod names;
mod options;
mod ordering;
mod relations;
mod type_params;

use std::collections::HashMap;

use indexmap::IndexMap;

use self::context::{ModelInfo, Validator};
use crate::diagnostic::{Diagnostics, SchemaErrors};
use crate::ir::Schema;
use crate::parse::{self, ModelDef, Parsed, SchemaFile};

pub use self::digest::{digest, digest_input};
pub use self::keys::DEFAULT_PRIMARY_KEY;
pub use self::names::{MAX_NAME_LEN, MAX_SQL_IDENTIFIER, RESERVED_MODEL_NAMES, RUST_KEYWORDS};
pub use self::options::{
    DATABASES, DEFAULT_BACKEND, DEFAULT_NAMESPACE, DEFAULT_ROLLOUT_SECS, DEFAULT_TTL_SECS, MAX_NAMESPACE_LEN,
};
pub use self::relations::ON_DELETE_VALUES;
pub(crate) use self::type_params::valid_enum_value;
pub use self::type_params::{MAX_CHAR_LENGTH, MAX_DECIMAL_PRECISION, MAX_ENUM_VALUE_LEN, MAX_STRING_LENGTH};
pub use crate::type_names::{FIELD_TYPES, PRIMARY_KEY_TYPES, type_key};

/// Parses and validates a schema file: the public entry point.
///
/// `file_name` is used in messages (`schema.yaml:12:7: unknown model ...`).
pub fn load(source: &str, file_name: &str) -> Result<Schema, SchemaErrors> {
    let mut diags = Diagnostics::new(file_name, source);
    let Some(parsed) = parse::parse(source, &mut diags) else {
        return Err(diags.into_errors());
    };
    let schema = validate(&parsed, &mut diags);
    diags.finish(schema)
}

/// Like [`load`], for the raw bytes of a schema file: bytes that are not UTF-8 are reported
/// at the first invalid byte, like any other error.
pub fn load_bytes(bytes: &[u8], file_name: &str) -> Result<Schema, SchemaErrors> {
    if bytes.len() > parse::MAX_SOURCE_BYTES {
        // Rejected for its size before anything else; the text only serves the report.
        return load(&String::from_utf8_lossy(bytes), file_name);
    }
    match std::str::from_utf8(bytes) {
        Ok(source) => load(source, file_name),
        Err(error) => Err(parse::invalid_utf8(bytes, &error, file_name)),
    }
}

/// Validates a parsed schema; errors go to `diags`. The returned schema is only meaningful
/// when no error was recorded.
pub fn validate(parsed: &Parsed, diags: &mut Diagnostics) -> Schema {
    Validator {
        p: &parsed.positions,
        diags,
        tables: HashMap::new(),
    }
    .schema(&parsed.file)
}

impl<'a> Validator<'a> {
    /// The passes, in order: the schema's settings; each model as declared (settings, key,
    /// fields); each model's IR (relations need every model's key); reverse relations (they
    /// need every model's names); ordering, unique and index groups; through models; digests;
    /// enum type names; last, in an otherwise valid schema, cycles of NOT NULL foreign keys.
    fn schema(&mut self, file: &'a SchemaFile) -> Schema {
        let namespace = self.namespace(file);
        let dialect = self.dialect(file);
        let rollout_secs = self.rollout(file.rollout.as_ref());
        let mut schema = Schema {
            namespace,
            dialect,
            rollout_secs,
            models: Vec::new(),
        };
        let Some(models) = self.declared_models(file) else {
            return schema;
        };
        let mut infos: Vec<ModelInfo<'a>> = Vec::new();
        for (name, def) in models {
            infos.push(self.model_info(name, def));
        }
        let mut known: Vec<&str> = infos.iter().map(|m| m.name).collect();
        known.sort_unstable();

        let mut members = Vec::new();
        let mut columns = Vec::new();
        let mut reverses = Vec::new();
        for info in &infos {
            let (model, model_members, model_columns, model_reverses) = self.model(info, &infos, &known);
            schema.models.push(model);
            members.push(model_members);
            columns.push(model_columns);
            reverses.extend(model_reverses);
        }
        self.attach_reverses(&infos, &mut members, reverses, &mut schema);
        for (index, info) in infos.iter().enumerate() {
            let ordering = self.ordering(info, &columns[index]);
            let unique_together = self.unique_together(info, &columns[index]);
            let indexes = self.indexes(info, &columns[index], &schema.models[index]);
            let model = &mut schema.models[index];
            model.ordering = ordering;
            model.unique_together = unique_together;
            model.indexes = indexes;
        }
        self.through_models(&mut schema);
        for model in &mut schema.models {
            model.digest = digest(&schema.namespace, model);
        }
        self.enum_type_clashes(&infos, &schema);
        // Cycles are looked for in an otherwise valid schema (nullability and targets known).
        if !self.diags.has_errors() {
            self.not_null_cycles(&infos, &schema);
        }
        schema
    }

    /// The `models:` mapping; reported when it is missing or empty, and its repeated names.
    fn declared_models(&mut self, file: &'a SchemaFile) -> Option<&'a IndexMap<String, ModelDef>> {
        let Some(models) = &file.models else {
            let pos = self.p.key_or_up("models");
            self.err("schema::missing_models", pos, "the schema declares no `models`", "expected `models:` here")
                .set_help("add a mapping of model names to models:\nmodels:\n  Person:\n    fields:\n      name: { type: string, max_length: 64 }");
            return None;
        };
        if models.is_empty() {
            let pos = self.p.value_or_up("models");
            self.err(
                "schema::missing_models",
                pos,
                "`models` is empty: declare at least one model",
                "no models",
            )
            .set_help("models:\n  Person:\n    fields:\n      name: { type: string, max_length: 64 }");
            return None;
        }
        self.duplicate_keys("models", "schema::duplicate_model", |k| {
            format!("duplicate model `{k}`")
        });
        Some(models)
    }
}
