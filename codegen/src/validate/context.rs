//! What every validation pass shares: the [`Validator`] (positions, diagnostics, tables seen),
//! what the first pass learns of each model and field ([`ModelInfo`], [`FieldInfo`]), what
//! building one model collects ([`ModelBuild`]), and small helpers for messages.

use std::collections::HashMap;

use serde_yaml::Value;

use crate::diagnostic::{Diagnostics, SchemaError};
use crate::ir::{DefaultValue, Field, FieldType, ManyToMany, Model, RelationKind, Reverse, SetBy};
use crate::parse::{FieldDef, ModelDef, Pos, Positions};

/// How a field is stored.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    Column(FieldType),
    Relation(RelationKind),
    ManyToMany,
    Invalid,
}

/// A field as first read: its name, where it is, its declaration and what it is.
pub(super) struct FieldInfo<'a> {
    pub(super) name: &'a str,
    pub(super) path: String,
    pub(super) def: &'a FieldDef,
    pub(super) kind: Kind,
    pub(super) default: Option<DefaultValue>,
    pub(super) set_by_database: Option<SetBy>,
}

/// A model as first read: its settings, primary key and fields (relations not yet resolved).
pub(super) struct ModelInfo<'a> {
    pub(super) name: &'a str,
    pub(super) path: String,
    pub(super) def: &'a ModelDef,
    pub(super) snake: String,
    pub(super) table: String,
    pub(super) backend: String,
    pub(super) ttl: u64,
    /// Near cache entries (0: none).
    pub(super) near: u64,
    /// `None` when the primary key declaration is invalid (already reported), or composite.
    pub(super) pk: Option<Field>,
    /// The parts of a composite key, as written (`primary_key: [student, course]`).
    pub(super) composite: Option<&'a [String]>,
    pub(super) pk_pos: Pos,
    pub(super) pk_implicit: bool,
    pub(super) fields: Vec<FieldInfo<'a>>,
}

/// A name on a model (field, relation accessor, reverse accessor), for clash detection.
pub(super) struct Member {
    pub(super) pos: Pos,
    pub(super) what: String,
    pub(super) reverse: bool,
}

/// What [`Validator::model`] builds for one model: its IR, its member names, its columns by
/// name and the reverse relations it gives its targets (target index, reverse, where).
pub(super) type ModelParts = (
    Model,
    HashMap<String, Member>,
    HashMap<String, Column>,
    Vec<(usize, Reverse, Pos)>,
);

/// A field name usable in `ordering` / `unique_together`.
pub(super) struct Column {
    pub(super) ir_name: String,
    pub(super) ty: Option<FieldType>,
    pub(super) many_to_many: bool,
}

/// Building one model: every model as first read (relations resolve their targets there)
/// and what the model's fields give, collected in declaration order.
pub(super) struct ModelBuild<'m> {
    /// Every model of the schema.
    pub(super) infos: &'m [ModelInfo<'m>],
    /// Their names, sorted (for messages).
    pub(super) known: &'m [&'m str],
    /// Names on the model, for clash detection.
    pub(super) members: HashMap<String, Member>,
    /// Field names usable in `ordering`, `unique_together`, `indexes` and a composite key.
    pub(super) columns: HashMap<String, Column>,
    /// Lower-cased column → (where, what).
    pub(super) sql_columns: HashMap<String, (Pos, String)>,
    /// Reverse relations the model gives its targets: (target index, reverse, where).
    pub(super) reverses: Vec<(usize, Reverse, Pos)>,
    /// The IR fields (columns and relations).
    pub(super) fields: Vec<Field>,
    /// The IR many-to-many relations.
    pub(super) many_to_many: Vec<ManyToMany>,
}

impl<'m> ModelBuild<'m> {
    /// Nothing collected yet.
    pub(super) fn new(infos: &'m [ModelInfo<'m>], known: &'m [&'m str]) -> Self {
        ModelBuild {
            infos,
            known,
            members: HashMap::new(),
            columns: HashMap::new(),
            sql_columns: HashMap::new(),
            reverses: Vec::new(),
            fields: Vec::new(),
            many_to_many: Vec::new(),
        }
    }
}

/// The validator: where everything is, where errors go, and the tables seen so far.
pub(super) struct Validator<'a> {
    pub(super) p: &'a Positions,
    pub(super) diags: &'a mut Diagnostics,
    /// Lower-cased table name → (where, what).
    pub(super) tables: HashMap<String, (Pos, String)>,
}

impl Validator<'_> {
    /// Records an error at `pos`.
    pub(super) fn err(
        &mut self,
        code: &'static str,
        pos: Pos,
        message: impl Into<String>,
        label: &str,
    ) -> &mut SchemaError {
        self.diags.error(code, pos, message, label)
    }

    /// Reports repeated keys of the mapping at `path` (serde keeps only the last value).
    pub(super) fn duplicate_keys(&mut self, path: &str, code: &'static str, message: impl Fn(&str) -> String) {
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        let keys: Vec<(String, Pos)> = self.p.keys(path).to_vec();
        for (key, pos) in &keys {
            if let Some(first) = seen.get(key.as_str()) {
                self.err(code, *pos, message(key), "defined again here")
                    .add_label(*first, "first defined here")
                    .set_help("names must be unique; rename or remove one of them (YAML keeps only the last one)");
            } else {
                seen.insert(key, *pos);
            }
        }
    }
}

/// Names for a message: all of them when there are few, else the first ones and a count.
pub(super) fn listing(names: &[&str]) -> String {
    const SHOWN: usize = 20;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..SHOWN].join(", "), names.len())
    }
}

/// A YAML value for a message (`integer `5``, `a sequence`).
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("float `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string `{s:?}`"),
        Value::Sequence(_) => "a sequence".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}
