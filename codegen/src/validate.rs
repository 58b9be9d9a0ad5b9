//! Validation: the parsed syntax tree + positions → [`ir::Schema`], collecting every error.
//!
//! Entry point: [`load`] (parse + validate).

use std::collections::HashMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use serde_yaml::Value;
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostics, SchemaError, SchemaErrors, closest, did_you_mean};
use crate::ir::{
    DefaultValue, Dialect, EnumType, EnumValue, Field, FieldType, ManyToMany, Model, OnDelete, PrimaryKey, Relation,
    RelationKind, Reverse, ReverseKind, Schema, SetBy,
};
use crate::parse::{self, FieldDef, ModelDef, Parsed, Pos, Positions, join};

/// Every field type, in documentation order.
pub const FIELD_TYPES: &[&str] = &[
    "small_integer",
    "integer",
    "positive_integer",
    "big_integer",
    "boolean",
    "float",
    "string",
    "text",
    "bytes",
    "uuid",
    "date",
    "time",
    "datetime",
    "json",
    "decimal",
    "enum",
    "char",
    "foreign_key",
    "one_to_one",
    "many_to_many",
];
/// Primary key types.
pub const PRIMARY_KEY_TYPES: &[&str] = &["auto", "string", "uuid", "big_integer", "integer", "small_integer"];
/// Most digits of a `decimal` (what rust_decimal's `Decimal` holds exactly).
pub const MAX_DECIMAL_PRECISION: i64 = 28;
/// Longest `char` (MySQL's limit for `CHAR(n)`).
pub const MAX_CHAR_LENGTH: i64 = 255;
/// Longest value of an `enum`.
pub const MAX_ENUM_VALUE_LEN: usize = 63;
/// `database:` values.
pub const DATABASES: &[&str] = &["sqlite", "postgres", "mysql"];
/// `on_delete:` values.
pub const ON_DELETE_VALUES: &[&str] = &["cascade", "set_null", "restrict"];
/// Default `namespace:`.
pub const DEFAULT_NAMESPACE: &str = "app";
/// Default `backend:`.
pub const DEFAULT_BACKEND: &str = "default";
/// Default `rollout:` in seconds.
pub const DEFAULT_ROLLOUT_SECS: u64 = 15 * 60;
/// Default `ttl:` in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Default primary key name.
pub const DEFAULT_PRIMARY_KEY: &str = "id";
/// Largest `max_length`.
pub const MAX_STRING_LENGTH: i64 = 65535;
/// Longest table, column or join-table name (PostgreSQL's identifier limit).
pub const MAX_SQL_IDENTIFIER: usize = 63;
/// Longest model, field, primary key or related name. Names become Rust identifiers, SQL
/// names and parts of cache keys: with these limits every key (`<namespace>:<Model>:<digest>:
/// uq.<field>_id#<sha-256>` at worst) fits memcached's 250 bytes.
pub const MAX_NAME_LEN: usize = 63;
/// Longest `namespace:` (it prefixes every cache key).
pub const MAX_NAMESPACE_LEN: usize = 32;

/// Rust keywords (strict, reserved and edition-2024 ones): not usable as names.
pub const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];
/// Model names that would shadow Rust prelude names in the generated code.
pub const RESERVED_MODEL_NAMES: &[&str] = &["Box", "Err", "None", "Ok", "Option", "Result", "Some", "String", "Vec"];

const COLUMN_KEYS: &[&str] = &["type", "null", "default", "unique", "column", "index"];
const INTEGER_KEYS: &[&str] = &["type", "null", "default", "unique", "column", "unsigned", "index"];
const DECIMAL_KEYS: &[&str] = &[
    "type",
    "precision",
    "scale",
    "null",
    "default",
    "unique",
    "column",
    "index",
];
const ENUM_KEYS: &[&str] = &["type", "values", "null", "default", "unique", "column", "index"];
const DATETIME_KEYS: &[&str] = &[
    "type",
    "null",
    "default",
    "unique",
    "column",
    "auto_now_add",
    "auto_now",
    "index",
];
const STRING_KEYS: &[&str] = &["type", "max_length", "null", "default", "unique", "column", "index"];
const RELATION_KEYS: &[&str] = &["type", "to", "related_name", "on_delete", "null", "column"];
const M2M_KEYS: &[&str] = &["type", "to", "related_name", "through"];

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

/// How a field is stored.
#[derive(Clone, Debug)]
enum Kind {
    Column(FieldType),
    Relation(RelationKind),
    ManyToMany,
    Invalid,
}

struct FieldInfo<'a> {
    name: &'a str,
    path: String,
    def: &'a FieldDef,
    kind: Kind,
    default: Option<DefaultValue>,
    set_by_database: Option<SetBy>,
}

struct ModelInfo<'a> {
    name: &'a str,
    path: String,
    def: &'a ModelDef,
    snake: String,
    table: String,
    backend: String,
    ttl: u64,
    /// Near cache entries (0: none).
    near: u64,
    /// `None` when the primary key declaration is invalid (already reported), or composite.
    pk: Option<Field>,
    /// The parts of a composite key, as written (`primary_key: [student, course]`).
    composite: Option<&'a [String]>,
    pk_pos: Pos,
    pk_implicit: bool,
    fields: Vec<FieldInfo<'a>>,
}

/// A name on a model (field, relation accessor, reverse accessor), for clash detection.
struct Member {
    pos: Pos,
    what: String,
    reverse: bool,
}

/// What [`Validator::model`] builds for one model: its IR, its member names, its columns by
/// name and the reverse relations it gives its targets (target index, reverse, where).
type ModelParts = (
    Model,
    HashMap<String, Member>,
    HashMap<String, Column>,
    Vec<(usize, Reverse, Pos)>,
);

/// A field name usable in `ordering` / `unique_together`.
struct Column {
    ir_name: String,
    ty: Option<FieldType>,
    many_to_many: bool,
}

struct Validator<'a> {
    p: &'a Positions,
    diags: &'a mut Diagnostics,
    /// Lower-cased table name → (where, what).
    tables: HashMap<String, (Pos, String)>,
}

impl<'a> Validator<'a> {
    fn err(&mut self, code: &'static str, pos: Pos, message: impl Into<String>, label: &str) -> &mut SchemaError {
        self.diags.error(code, pos, message, label)
    }

    fn schema(&mut self, file: &'a parse::SchemaFile) -> Schema {
        let namespace = match &file.namespace {
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
        };
        let dialect = match file.database.as_deref() {
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
        };
        let rollout_secs = self.rollout(file.rollout.as_ref());
        let mut schema = Schema {
            namespace,
            dialect,
            rollout_secs,
            models: Vec::new(),
        };
        let Some(models) = &file.models else {
            let pos = self.p.key_or_up("models");
            self.err("schema::missing_models", pos, "the schema declares no `models`", "expected `models:` here")
                .set_help("add a mapping of model names to models:\nmodels:\n  Person:\n    fields:\n      name: { type: string, max_length: 64 }");
            return schema;
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
            return schema;
        }
        self.duplicate_keys("models", "schema::duplicate_model", |k| {
            format!("duplicate model `{k}`")
        });

        let mut infos: Vec<ModelInfo<'a>> = Vec::new();
        for (name, def) in models {
            infos.push(self.model_info(name, def));
        }
        let mut known: Vec<&str> = infos.iter().map(|m| m.name).collect();
        known.sort_unstable();

        // Relations need every model's primary key; reverse names need every model's members.
        let mut members: Vec<HashMap<String, Member>> = Vec::new();
        let mut columns: Vec<HashMap<String, Column>> = Vec::new();
        let mut reverses: Vec<(usize, Reverse, Pos)> = Vec::new();
        for info in &infos {
            let (model, model_members, model_columns, model_reverses) = self.model(info, &infos, &known);
            schema.models.push(model);
            members.push(model_members);
            columns.push(model_columns);
            reverses.extend(model_reverses);
        }
        for (target, reverse, pos) in reverses {
            let target_name = infos[target].name;
            match members[target].get(&reverse.name) {
                Some(existing) if existing.reverse => {
                    let message = format!(
                        "reverse relation `{}` on `{target_name}` is defined twice: by {} and by `{}.{}`",
                        reverse.name, existing.what, reverse.source, reverse.field
                    );
                    let first = existing.pos;
                    self.err("schema::reverse_clash", pos, message, "same related_name")
                        .add_label(first, "first defined here")
                        .set_help(format!(
                            "give `{}.{}` a distinct `related_name:` (the default is `<model>_set`, or `<model>` for one_to_one)",
                            reverse.source, reverse.field
                        ));
                }
                Some(existing) => {
                    let message = format!(
                        "related name `{}` of `{}.{}` clashes with {} of `{target_name}`",
                        reverse.name, reverse.source, reverse.field, existing.what
                    );
                    let first = existing.pos;
                    self.err("schema::reverse_clash", pos, message, "clashing related_name")
                        .add_label(first, "already a name on the target")
                        .set_help(format!(
                            "set `related_name:` on `{}.{}` to a name `{target_name}` does not use",
                            reverse.source, reverse.field
                        ));
                }
                None => {
                    let what = format!("`{}.{}`", reverse.source, reverse.field);
                    members[target].insert(
                        reverse.name.clone(),
                        Member {
                            pos,
                            what,
                            reverse: true,
                        },
                    );
                    schema.models[target].reverse.push(reverse);
                }
            }
        }
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

    /// `rollout:` in seconds: a positive number of seconds, or of `s`, `m`, `h` or `d`.
    fn rollout(&mut self, value: Option<&Value>) -> u64 {
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

    /// Reports an `enum` field whose generated Rust type (`<Model><Field>`) has the name of
    /// another generated type: a model, its `New…`, `…Repo`, `…Filter` or `…Changes`, or
    /// another enum.
    fn enum_type_clashes(&mut self, infos: &[ModelInfo<'a>], schema: &Schema) {
        let mut taken: HashMap<String, String> = HashMap::new();
        for model in &schema.models {
            let m = &model.name;
            for (name, what) in [
                (m.clone(), format!("model `{m}`")),
                (format!("New{m}"), format!("the new-row struct of `{m}`")),
                (format!("{m}Repo"), format!("the repository of `{m}`")),
                (format!("{m}Filter"), format!("the bulk filter of `{m}`")),
                (format!("{m}Changes"), format!("the bulk changes of `{m}`")),
            ] {
                taken.entry(name).or_insert(what);
            }
        }
        for (model, info) in schema.models.iter().zip(infos) {
            for field in &model.fields {
                let FieldType::Enum(e) = &field.ty else { continue };
                let path = join(&join(&info.path, "fields"), &field.name);
                let pos = self.p.key_or_up(&path);
                match taken.get(&e.name) {
                    Some(what) => {
                        let message = format!(
                            "the Rust enum `{}` of `{}.{}` has the name of {what}",
                            e.name, model.name, field.name
                        );
                        self.err("schema::invalid_enum", pos, message, "name clash")
                            .set_help("an enum field's Rust type is `<Model><Field>`: rename the field");
                    }
                    None => {
                        taken.insert(e.name.clone(), format!("the enum of `{}.{}`", model.name, field.name));
                    }
                }
            }
        }
    }

    /// Reports every cycle of foreign keys (or one-to-ones) whose columns are all NOT NULL:
    /// the first row of such a cycle could never be inserted. A model pointing at itself is
    /// such a cycle when the database assigns its primary key (`auto`); otherwise its first
    /// row can point at itself. One error per cycle, at its first field in declaration order.
    fn not_null_cycles(&mut self, infos: &[ModelInfo<'a>], schema: &Schema) {
        let index = |name: &str| schema.models.iter().position(|m| m.name == name);
        // (source model, target model, field name) of every NOT NULL foreign key.
        let edges: Vec<(usize, usize, &str)> = schema
            .models
            .iter()
            .enumerate()
            .flat_map(|(source, model)| {
                model.fields.iter().filter(|f| !f.nullable).filter_map(move |f| {
                    let relation = f.relation.as_ref()?;
                    Some((source, relation.target.as_str(), relation.name.as_str()))
                })
            })
            .filter_map(|(source, target, field)| Some((source, index(target)?, field)))
            .filter(|&(source, target, _)| {
                source != target || schema.models[source].key_column().is_some_and(|key| key.auto)
            })
            .collect();
        let n = schema.models.len();
        let mut reach = vec![vec![false; n]; n];
        for &(source, target, _) in &edges {
            reach[source][target] = true;
        }
        for k in 0..n {
            let via = reach[k].clone();
            for row in &mut reach {
                if row[k] {
                    row.iter_mut().zip(&via).for_each(|(cell, &through)| *cell |= through);
                }
            }
        }
        let mut reported = vec![false; n];
        for model in 0..n {
            if reported[model] || !reach[model][model] {
                continue;
            }
            let cycle: Vec<usize> = (0..n).filter(|&m| reach[model][m] && reach[m][model]).collect();
            cycle.iter().for_each(|&m| reported[m] = true);
            let inside: Vec<&(usize, usize, &str)> = edges
                .iter()
                .filter(|(source, target, _)| cycle.contains(source) && cycle.contains(target))
                .collect();
            let names: Vec<String> = inside
                .iter()
                .map(|(source, target, field)| {
                    format!(
                        "`{}.{field}` → `{}`",
                        schema.models[*source].name, schema.models[*target].name
                    )
                })
                .collect();
            let &&(source, _, field) = inside.first().expect("a cycle has an edge");
            let Some(info) = infos
                .get(source)
                .and_then(|i| i.fields.iter().find(|f| f.name == field))
            else {
                continue;
            };
            let pos = self.p.value_or_up(&join(&info.path, "to"));
            self.err(
                "schema::not_null_cycle",
                pos,
                format!(
                    "foreign keys form a cycle of NOT NULL columns: {}; the first row of the cycle could never be inserted",
                    names.join(", ")
                ),
                "NOT NULL cycle",
            )
            .set_help(
                "make one of these fields `null: true`: insert that row with NULL first, then set the column once the row it points at exists",
            );
        }
    }

    /// Reports repeated keys of the mapping at `path` (serde keeps only the last value).
    fn duplicate_keys(&mut self, path: &str, code: &'static str, message: impl Fn(&str) -> String) {
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

    fn register_table(&mut self, table: &str, pos: Pos, what: String) {
        let lower = table.to_lowercase();
        if let Some((first, first_what)) = self.tables.get(&lower) {
            let (first, message) = (
                *first,
                format!("table `{table}` of {what} is already the table of {first_what}"),
            );
            self.err("schema::duplicate_table", pos, message, "duplicate table")
                .add_label(first, "first used here")
                .set_help(
                    "table names must be unique (case-insensitively); set `table:` (or `through:`) to another name",
                );
        } else {
            self.tables.insert(lower, (pos, what));
        }
    }

    fn check_sql_name(&mut self, name: &str, pos: Pos, what: &str) -> bool {
        let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let message = if !well_formed {
            format!("invalid {what} name `{name}`")
        } else if name.len() > MAX_SQL_IDENTIFIER {
            format!(
                "{what} name `{name}` is longer than {MAX_SQL_IDENTIFIER} characters ({})",
                name.len()
            )
        } else {
            return true;
        };
        self.err("schema::invalid_name", pos, message, "invalid name").set_help(format!(
            "{what} names are SQL identifiers: ASCII letters, digits and `_`, not starting with a digit, at most {MAX_SQL_IDENTIFIER} characters"
        ));
        false
    }

    /// Reports a name the generator derives (a table, column or join table) that is longer than
    /// SQL allows; `what` describes it, `fix` says how to avoid it.
    fn check_derived_length(&mut self, name: &str, pos: Pos, what: &str, fix: &str) {
        if name.len() > MAX_SQL_IDENTIFIER {
            self.err(
                "schema::invalid_name",
                pos,
                format!("{what} is longer than {MAX_SQL_IDENTIFIER} characters ({})", name.len()),
                "derived name too long",
            )
            .set_help(format!(
                "{fix} (SQL names have at most {MAX_SQL_IDENTIFIER} characters; PostgreSQL would silently truncate it)"
            ));
        }
    }

    /// Checks a snake_case Rust name (field, related_name, primary key); returns whether valid.
    fn check_snake_name(&mut self, name: &str, pos: Pos, what: &str) -> bool {
        if RUST_KEYWORDS.contains(&name) {
            self.err(
                "schema::reserved_name",
                pos,
                format!("{what} `{name}` is a Rust keyword"),
                "Rust keyword",
            )
            .set_help(format!(
                "choose another name; the column can keep this one with `column: {name}`"
            ));
            return false;
        }
        if is_snake_case(name) && name.len() > MAX_NAME_LEN {
            self.err(
                "schema::invalid_name",
                pos,
                format!(
                    "{what} `{name}` is too long ({} characters; at most {MAX_NAME_LEN})",
                    name.len()
                ),
                "too long",
            )
            .set_help("names become Rust identifiers, SQL names and parts of cache keys: use a shorter one");
            return false;
        }
        if !is_snake_case(name) {
            let suggestion = name.to_snake_case();
            let help = if is_snake_case(&suggestion) && !RUST_KEYWORDS.contains(&suggestion.as_str()) {
                format!(
                    "did you mean `{suggestion}`? names are snake_case: lowercase ASCII letters, digits and single `_` between words"
                )
            } else {
                "names are snake_case: lowercase ASCII letters, digits and single `_` between words, starting with a letter".to_string()
            };
            self.err(
                "schema::invalid_name",
                pos,
                format!("{what} `{name}` is not a snake_case identifier"),
                "not snake_case",
            )
            .set_help(help);
            return false;
        }
        true
    }

    fn model_info(&mut self, name: &'a str, def: &'a ModelDef) -> ModelInfo<'a> {
        let path = join("models", name);
        let name_pos = self.p.key_or_up(&path);
        if RUST_KEYWORDS.contains(&name) {
            self.err(
                "schema::reserved_name",
                name_pos,
                format!("model name `{name}` is a Rust keyword"),
                "Rust keyword",
            )
            .set_help("choose another name (the table can keep any name with `table:`)");
        } else if RESERVED_MODEL_NAMES.contains(&name) {
            self.err(
                "schema::reserved_name",
                name_pos,
                format!("model name `{name}` is reserved: it would shadow a Rust prelude name"),
                "reserved name",
            )
            .set_help(format!(
                "reserved model names: {}; the table can keep the name with `table:`",
                RESERVED_MODEL_NAMES.join(", ")
            ));
        } else if !is_upper_camel_case(name) {
            let suggestion = name.to_upper_camel_case();
            let help = if is_upper_camel_case(&suggestion) {
                format!(
                    "did you mean `{suggestion}`? model names are UpperCamelCase: ASCII letters and digits, starting with an uppercase letter"
                )
            } else {
                "model names are UpperCamelCase: ASCII letters and digits, starting with an uppercase letter (e.g. `Person`)".to_string()
            };
            self.err(
                "schema::invalid_name",
                name_pos,
                format!("model name `{name}` is not UpperCamelCase"),
                "not UpperCamelCase",
            )
            .set_help(help);
        } else if name.len() > MAX_NAME_LEN {
            self.err(
                "schema::invalid_name",
                name_pos,
                format!(
                    "model name `{name}` is too long ({} characters; at most {MAX_NAME_LEN})",
                    name.len()
                ),
                "too long",
            )
            .set_help("model names become Rust types, table names and parts of cache keys: use a shorter one");
        }
        let snake = name.to_snake_case();
        let name_ok = is_upper_camel_case(name) && name.len() <= MAX_NAME_LEN;

        let table = match &def.table {
            Some(table) => {
                let pos = self.p.value_or_up(&join(&path, "table"));
                self.check_sql_name(table, pos, "table");
                table.clone()
            }
            None => {
                if name_ok {
                    self.check_derived_length(
                        &snake,
                        name_pos,
                        &format!("table name `{snake}` derived from model `{name}`"),
                        "set `table:` to a shorter name",
                    );
                }
                snake.clone()
            }
        };
        let table_pos = self.p.value(&join(&path, "table")).unwrap_or(name_pos);
        self.register_table(&table, table_pos, format!("model `{name}`"));

        let backend = match &def.backend {
            Some(backend) => {
                let ok = backend
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && backend.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    let pos = self.p.value_or_up(&join(&path, "backend"));
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
        };

        let ttl = match def.ttl {
            None => DEFAULT_TTL_SECS,
            Some(ttl) if ttl > 0 => ttl as u64,
            Some(ttl) => {
                let pos = self.p.value_or_up(&join(&path, "ttl"));
                self.err(
                    "schema::invalid_ttl",
                    pos,
                    format!("`ttl` must be a positive number of seconds, got {ttl}"),
                    "not positive",
                )
                .set_help(format!("omit `ttl` for the default ({DEFAULT_TTL_SECS} seconds)"));
                DEFAULT_TTL_SECS
            }
        };

        let near = self.near_entries(&path, def);
        let (pk, pk_pos, pk_implicit) = self.primary_key(name, &path, def);
        let composite = match &def.primary_key {
            Some(parse::PrimaryKeySpec::Composite(parts)) => Some(parts.as_slice()),
            _ => None,
        };

        let mut fields = Vec::new();
        let fields_path = join(&path, "fields");
        match &def.fields {
            None => {
                self.err(
                    "schema::missing_fields",
                    name_pos,
                    format!("model `{name}` has no `fields`"),
                    "no `fields:`",
                )
                .set_help(
                    "add `fields:` with at least one field, e.g. `fields: { name: { type: string, max_length: 64 } }`",
                );
            }
            Some(defs) => {
                self.duplicate_keys(&fields_path, "schema::duplicate_field", |k| {
                    format!("duplicate field `{k}` in model `{name}`")
                });
                for (field_name, field_def) in defs {
                    fields.push(self.field_info(name, field_name, &join(&fields_path, field_name), field_def));
                }
            }
        }
        ModelInfo {
            name,
            path,
            def,
            snake,
            table,
            backend,
            ttl,
            near,
            pk,
            composite,
            pk_pos,
            pk_implicit,
            fields,
        }
    }

    /// The entries of the model's near cache: 0 without `near:`; a positive `entries` is
    /// required with it.
    fn near_entries(&mut self, path: &str, def: &ModelDef) -> u64 {
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

    fn primary_key(&mut self, model: &str, path: &str, def: &ModelDef) -> (Option<Field>, Pos, bool) {
        let pk_path = join(path, "primary_key");
        let pk = match &def.primary_key {
            None => {
                let pos = self.p.key_or_up(path);
                return (Some(pk_field(DEFAULT_PRIMARY_KEY, FieldType::BigInt, true)), pos, true);
            }
            // Its parts are checked with the fields (see `composite_key`).
            Some(parse::PrimaryKeySpec::Composite(_)) => return (None, self.p.value_or_up(&pk_path), false),
            Some(parse::PrimaryKeySpec::Column(pk)) => pk,
        };
        let name = pk.name.as_deref().unwrap_or(DEFAULT_PRIMARY_KEY);
        let name_pos = self
            .p
            .value(&join(&pk_path, "name"))
            .unwrap_or_else(|| self.p.key_or_up(&pk_path));
        let mut ok = self.check_snake_name(name, name_pos, "primary key name");
        let type_pos = self
            .p
            .value(&join(&pk_path, "type"))
            .unwrap_or_else(|| self.p.key_or_up(&pk_path));
        let ty_name = pk.ty.as_deref().unwrap_or("auto");
        let ty = match ty_name {
            "auto" => Some(FieldType::BigInt),
            "uuid" => Some(FieldType::Uuid),
            "big_integer" => Some(FieldType::BigInt),
            "integer" => Some(FieldType::Int),
            "small_integer" => Some(FieldType::SmallInt),
            "string" => match pk.max_length {
                None => {
                    self.err(
                        "schema::missing_max_length",
                        type_pos,
                        format!("the string primary key of `{model}` needs `max_length`"),
                        "string without max_length",
                    )
                    .set_help(format!("add `max_length: 64` (between 1 and {MAX_STRING_LENGTH})"));
                    None
                }
                Some(n) => self
                    .max_length(n, &join(&pk_path, "max_length"))
                    .map(|n| FieldType::String { max_length: n }),
            },
            other => {
                let help = did_you_mean(other, PRIMARY_KEY_TYPES.iter().copied(), || None);
                let e = self.err(
                    "schema::invalid_primary_key",
                    type_pos,
                    format!(
                        "`{other}` cannot be a primary key type; valid primary key types: {}",
                        PRIMARY_KEY_TYPES.join(", ")
                    ),
                    "invalid primary key type",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                None
            }
        };
        if ty_name != "string" && pk.max_length.is_some() {
            let pos = self.p.key_or_up(&join(&pk_path, "max_length"));
            self.err(
                "schema::key_not_applicable",
                pos,
                format!("`max_length` does not apply to a `{ty_name}` primary key"),
                "does not apply",
            )
            .set_help("only `string` primary keys take `max_length`");
            ok = false;
        }
        let field = ty.filter(|_| ok).map(|ty| pk_field(name, ty, ty_name == "auto"));
        (field, name_pos, false)
    }

    /// Checks a `max_length` value at `path`.
    fn max_length(&mut self, n: i64, path: &str) -> Option<u32> {
        if (1..=MAX_STRING_LENGTH).contains(&n) {
            return Some(n as u32);
        }
        let pos = self.p.value_or_up(path);
        self.err(
            "schema::invalid_max_length",
            pos,
            format!("`max_length` must be between 1 and {MAX_STRING_LENGTH}, got {n}"),
            "out of range",
        )
        .set_help(if n > MAX_STRING_LENGTH {
            format!("use `type: text` for strings longer than {MAX_STRING_LENGTH} characters")
        } else {
            "`max_length` is the longest value in characters: at least 1".to_string()
        });
        None
    }

    /// The type of a `decimal` field: `precision` (1 to 28) and `scale` (0 to `precision`).
    fn decimal(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> FieldType {
        let fallback = FieldType::Decimal {
            precision: MAX_DECIMAL_PRECISION as u32,
            scale: 0,
        };
        let Some(precision) = def.precision else {
            let pos = self
                .p
                .value(&join(path, "type"))
                .unwrap_or_else(|| self.p.key_or_up(path));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("decimal field `{model}.{name}` needs `precision`"),
                "decimal without precision",
            )
            .set_help(format!(
                "add `precision:` (total digits, 1 to {MAX_DECIMAL_PRECISION}) and `scale:` (digits after the point), e.g. `{{ type: decimal, precision: 10, scale: 2 }}`"
            ));
            return fallback;
        };
        if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) {
            let pos = self.p.value_or_up(&join(path, "precision"));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("`precision` must be between 1 and {MAX_DECIMAL_PRECISION}, got {precision}"),
                "out of range",
            )
            .set_help(format!(
                "{MAX_DECIMAL_PRECISION} digits is what a Rust `Decimal` holds exactly; use `float` or `text` for more"
            ));
            return fallback;
        }
        let scale = def.scale.unwrap_or(0);
        if !(0..=precision).contains(&scale) {
            let pos = self.p.value_or_up(&join(path, "scale"));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("`scale` must be between 0 and the precision ({precision}), got {scale}"),
                "out of range",
            )
            .set_help("`scale` is how many of the `precision` digits come after the decimal point");
            return fallback;
        }
        FieldType::Decimal {
            precision: precision as u32,
            scale: scale as u32,
        }
    }

    /// The type of an `enum` field: its generated Rust type and its `values`, each a
    /// distinct variant name.
    fn enumeration(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> FieldType {
        let type_name = format!("{model}{}", name.to_upper_camel_case());
        let mut values: Vec<EnumValue> = Vec::new();
        let values_path = join(path, "values");
        match &def.values {
            None => {
                let pos = self
                    .p
                    .value(&join(path, "type"))
                    .unwrap_or_else(|| self.p.key_or_up(path));
                self.err(
                    "schema::invalid_enum",
                    pos,
                    format!("enum field `{model}.{name}` needs `values`"),
                    "enum without values",
                )
                .set_help("list the values, e.g. `{ type: enum, values: [draft, published, archived] }`");
            }
            Some(list) if list.is_empty() => {
                let pos = self.p.value_or_up(&values_path);
                self.err(
                    "schema::invalid_enum",
                    pos,
                    format!("enum field `{model}.{name}` has no values"),
                    "empty",
                )
                .set_help("list at least one value, e.g. `values: [draft, published]`");
            }
            Some(list) => {
                for (i, value) in list.iter().enumerate() {
                    let pos = self.p.value_or_up(&join(&values_path, &i.to_string()));
                    if !valid_enum_value(value) {
                        self.err(
                            "schema::invalid_enum",
                            pos,
                            format!("invalid enum value `{value}` of `{model}.{name}`"),
                            "invalid value",
                        )
                        .set_help(format!(
                            "enum values use ASCII letters, digits, spaces, `-`, `_` and `.`, with at least one letter or digit, at most {MAX_ENUM_VALUE_LEN} characters"
                        ));
                        continue;
                    }
                    let variant = enum_variant(value);
                    if let Some(first) = values.iter().find(|v| v.variant == variant) {
                        let message = if first.value == *value {
                            format!("enum value `{value}` of `{model}.{name}` is listed twice")
                        } else {
                            format!(
                                "enum values `{}` and `{value}` of `{model}.{name}` both become the Rust variant `{variant}`",
                                first.value
                            )
                        };
                        self.err("schema::invalid_enum", pos, message, "repeated")
                            .set_help("enum values must differ in more than case and punctuation");
                        continue;
                    }
                    values.push(EnumValue {
                        value: value.clone(),
                        variant,
                    });
                }
            }
        }
        FieldType::Enum(EnumType {
            name: type_name,
            values,
        })
    }

    /// The length of a `char` field (`max_length`, 1 to 255).
    fn char_length(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> u32 {
        let Some(n) = def.max_length else {
            let pos = self
                .p
                .value(&join(path, "type"))
                .unwrap_or_else(|| self.p.key_or_up(path));
            self.err(
                "schema::missing_max_length",
                pos,
                format!("char field `{model}.{name}` needs `max_length`"),
                "char without max_length",
            )
            .set_help(format!(
                "add `max_length: 2` (its length, between 1 and {MAX_CHAR_LENGTH})"
            ));
            return 1;
        };
        if (1..=MAX_CHAR_LENGTH).contains(&n) {
            return n as u32;
        }
        let pos = self.p.value_or_up(&join(path, "max_length"));
        self.err(
            "schema::invalid_max_length",
            pos,
            format!("`max_length` of a `char` must be between 1 and {MAX_CHAR_LENGTH}, got {n}"),
            "out of range",
        )
        .set_help("use `type: string` for longer text");
        1
    }

    fn field_info(&mut self, model: &str, name: &'a str, path: &str, def: &'a FieldDef) -> FieldInfo<'a> {
        let key_pos = self.p.key_or_up(path);
        self.check_snake_name(name, key_pos, "field name");
        let type_pos = self.p.value(&join(path, "type")).unwrap_or(key_pos);
        let kind = match def.ty.as_deref() {
            None => {
                self.err(
                    "schema::missing_type",
                    key_pos,
                    format!("field `{model}.{name}` has no `type`"),
                    "no `type:`",
                )
                .set_help(format!("valid types: {}", FIELD_TYPES.join(", ")));
                Kind::Invalid
            }
            Some(ty) => match ty {
                "small_integer" => Kind::Column(FieldType::SmallInt),
                "integer" => Kind::Column(FieldType::Int),
                "positive_integer" => Kind::Column(FieldType::PositiveInt),
                "big_integer" => Kind::Column(FieldType::BigInt),
                "boolean" => Kind::Column(FieldType::Bool),
                "float" => Kind::Column(FieldType::Float),
                "text" => Kind::Column(FieldType::Text),
                "bytes" => Kind::Column(FieldType::Bytes),
                "uuid" => Kind::Column(FieldType::Uuid),
                "date" => Kind::Column(FieldType::Date),
                "time" => Kind::Column(FieldType::Time),
                "datetime" => Kind::Column(FieldType::DateTime),
                "json" => Kind::Column(FieldType::Json),
                "decimal" => Kind::Column(self.decimal(model, name, path, def)),
                "enum" => Kind::Column(self.enumeration(model, name, path, def)),
                "char" => Kind::Column(FieldType::Char {
                    length: self.char_length(model, name, path, def),
                }),
                "foreign_key" => Kind::Relation(RelationKind::ForeignKey),
                "one_to_one" => Kind::Relation(RelationKind::OneToOne),
                "many_to_many" => Kind::ManyToMany,
                "string" => match def.max_length {
                    None => {
                        self.err(
                            "schema::missing_max_length",
                            type_pos,
                            format!("string field `{model}.{name}` needs `max_length`"),
                            "string without max_length",
                        )
                        .set_help(format!(
                            "add `max_length: 255` (between 1 and {MAX_STRING_LENGTH}), or use `type: text` for unbounded text"
                        ));
                        Kind::Column(FieldType::String {
                            max_length: MAX_STRING_LENGTH as u32,
                        })
                    }
                    Some(n) => {
                        let max_length = self.max_length(n, &join(path, "max_length"));
                        Kind::Column(FieldType::String {
                            max_length: max_length.unwrap_or(MAX_STRING_LENGTH as u32),
                        })
                    }
                },
                "auto" => {
                    self.err("schema::unknown_type", type_pos, "`auto` is only a primary key type", "not a field type")
                        .set_help(format!(
                            "declare it as `primary_key: {{ name: {name}, type: auto }}`, or use `big_integer` for a plain column"
                        ));
                    Kind::Invalid
                }
                other => {
                    let help = did_you_mean(other, FIELD_TYPES.iter().copied(), || {
                        type_alias(other).map(|t| format!("did you mean `{t}`?"))
                    });
                    let e = self.err(
                        "schema::unknown_type",
                        type_pos,
                        format!("unknown type `{other}`; valid types: {}", FIELD_TYPES.join(", ")),
                        "unknown type",
                    );
                    if let Some(help) = help {
                        e.set_help(help);
                    }
                    Kind::Invalid
                }
            },
        };
        if let Some(ty) = def.ty.as_deref() {
            self.check_applicable_keys(path, ty, &kind);
        }
        let mut default = None;
        if let (Kind::Column(ty), Some(value)) = (&kind, &def.default) {
            let field = format!("{} field `{model}.{name}`", def.ty.as_deref().unwrap_or("?"));
            default = self.default_value(ty, &field, value, &join(path, "default"));
            if def.unsigned == Some(true) && matches!(default, Some(DefaultValue::Int(n)) if n < 0) {
                let pos = self.p.value_or_up(&join(path, "default"));
                self.err(
                    "schema::invalid_default",
                    pos,
                    format!("invalid default for {field}: it is `unsigned`, the default is negative"),
                    "negative",
                )
                .set_help("give a default of 0 or more");
                default = None;
            }
        }
        let set_by_database = self.set_by_database(model, name, path, def, &mut default);
        FieldInfo {
            name,
            path: path.to_string(),
            def,
            kind,
            default,
            set_by_database,
        }
    }

    /// `auto_now_add` / `auto_now` of a `datetime` field (at most one, without a `default`:
    /// the database sets the value, so the field's default becomes "now").
    fn set_by_database(
        &mut self,
        model: &str,
        name: &str,
        path: &str,
        def: &FieldDef,
        default: &mut Option<DefaultValue>,
    ) -> Option<SetBy> {
        let set_by = match (def.auto_now_add == Some(true), def.auto_now == Some(true)) {
            (false, false) => return None,
            (true, true) => {
                let pos = self.p.key_or_up(&join(path, "auto_now"));
                self.err(
                    "schema::invalid_auto_now",
                    pos,
                    format!("`{model}.{name}` has both `auto_now_add` and `auto_now`"),
                    "both given",
                )
                .set_help("`auto_now` sets the time on insert too: keep one of them");
                return None;
            }
            (true, false) => SetBy::Insert,
            (false, true) => SetBy::EveryWrite,
        };
        if def.default.is_some() {
            let pos = self.p.key_or_up(&join(path, "default"));
            self.err(
                "schema::invalid_auto_now",
                pos,
                format!("`{model}.{name}` is set by the database (`auto_now_add` / `auto_now`) and has a `default`"),
                "default not used",
            )
            .set_help("remove `default:`; the database writes the current time");
        }
        *default = Some(DefaultValue::Now);
        Some(set_by)
    }

    fn check_applicable_keys(&mut self, path: &str, ty: &str, kind: &Kind) {
        let allowed = match kind {
            Kind::Invalid => return,
            Kind::Column(FieldType::String { .. } | FieldType::Char { .. }) => STRING_KEYS,
            Kind::Column(FieldType::SmallInt | FieldType::Int | FieldType::BigInt) => INTEGER_KEYS,
            Kind::Column(FieldType::Decimal { .. }) => DECIMAL_KEYS,
            Kind::Column(FieldType::Enum(_)) => ENUM_KEYS,
            Kind::Column(FieldType::DateTime) => DATETIME_KEYS,
            Kind::Column(_) => COLUMN_KEYS,
            Kind::Relation(_) => RELATION_KEYS,
            Kind::ManyToMany => M2M_KEYS,
        };
        let keys: Vec<(String, Pos)> = self.p.keys(path).to_vec();
        for (key, pos) in keys {
            if allowed.contains(&key.as_str()) || !parse::FIELD_KEYS.contains(&key.as_str()) {
                continue;
            }
            let why = match (key.as_str(), kind) {
                ("max_length", _) => "only `string` and `char` fields take `max_length`".to_string(),
                ("precision" | "scale", _) => format!("only `decimal` fields take `{key}`"),
                ("values", _) => "only `enum` fields take `values`".to_string(),
                ("auto_now_add" | "auto_now", _) => format!("only `datetime` fields take `{key}`"),
                ("index", Kind::Relation(_)) => {
                    "foreign keys are indexed already: their rows are the target's reverse collection (or name the column in a model's `indexes:` group)".to_string()
                }
                ("unsigned", Kind::Column(FieldType::PositiveInt)) => {
                    "a `positive_integer` is never negative already".to_string()
                }
                ("unsigned", _) => {
                    "only `small_integer`, `integer` and `big_integer` fields take `unsigned`".to_string()
                }
                ("to" | "related_name" | "on_delete", Kind::Column(_)) => {
                    format!("`{key}` is for relations (foreign_key, one_to_one, many_to_many)")
                }
                ("through", _) => "`through` (the join table) is for many_to_many only".to_string(),
                ("unique", Kind::Relation(RelationKind::ForeignKey)) => {
                    "a unique foreign key is a `one_to_one`: use `type: one_to_one`".to_string()
                }
                ("unique", Kind::Relation(RelationKind::OneToOne)) => {
                    "one_to_one columns are always unique".to_string()
                }
                ("default", Kind::Relation(_)) => "relations take no default value".to_string(),
                (_, Kind::ManyToMany) => {
                    "a many_to_many has no column of its own: it lives in a join table".to_string()
                }
                _ => format!("`{key}` does not apply here"),
            };
            self.err(
                "schema::key_not_applicable",
                pos,
                format!("`{key}` does not apply to `{ty}` fields"),
                "does not apply",
            )
            .set_help(format!(
                "{why}\nkeys that apply to `{ty}` fields: {}",
                allowed.join(", ")
            ));
        }
    }

    fn default_value(&mut self, ty: &FieldType, field: &str, value: &Value, path: &str) -> Option<DefaultValue> {
        match check_default(ty, value) {
            Ok(v) => Some(v),
            Err((message, help)) => {
                let pos = self.p.value_or_up(path);
                let e = self.err(
                    "schema::invalid_default",
                    pos,
                    format!("invalid default for {field}: {message}"),
                    "invalid default",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                None
            }
        }
    }

    /// Resolves `to:` of a relation; reports a missing or unknown target.
    fn target<'m>(
        &mut self,
        infos: &'m [ModelInfo<'a>],
        known: &[&str],
        model: &str,
        field: &FieldInfo<'_>,
    ) -> Option<(usize, &'m ModelInfo<'a>)> {
        let ty = field.def.ty.as_deref().unwrap_or("?");
        let Some(to) = field.def.to.as_deref() else {
            let pos = self.p.key_or_up(&field.path);
            self.err(
                "schema::missing_target",
                pos,
                format!("`{ty}` field `{model}.{}` needs `to:` (the target model)", field.name),
                "no `to:`",
            )
            .set_help(format!("known models: {}", listing(known)));
            return None;
        };
        if let Some((index, target)) = infos.iter().enumerate().find(|(_, m)| m.name == to) {
            if target.composite.is_some() {
                let pos = self.p.value_or_up(&join(&field.path, "to"));
                self.err(
                    "schema::composite_target",
                    pos,
                    format!("`{model}.{}` points at `{to}`, whose primary key is composite", field.name),
                    "composite key",
                )
                .set_help(format!(
                    "relations can point only at models with a single-column primary key; reach `{to}` rows through its own foreign keys"
                ));
                return None;
            }
            return Some((index, target));
        }
        let pos = self.p.value_or_up(&join(&field.path, "to"));
        let help = did_you_mean(to, known.iter().copied(), || None);
        let e = self.err(
            "schema::unknown_model",
            pos,
            format!("unknown model `{to}` in `to`; known models: {}", listing(known)),
            "unknown model",
        );
        e.set_help(help.unwrap_or_else(|| "declare the model under `models:`, or fix the name".to_string()));
        None
    }

    fn related_name(&mut self, field: &FieldInfo<'_>, default: String) -> String {
        match &field.def.related_name {
            Some(name) => {
                let pos = self.p.value_or_up(&join(&field.path, "related_name"));
                self.check_snake_name(name, pos, "related_name");
                name.clone()
            }
            None => default,
        }
    }

    /// Builds one model's IR (without reverse relations, ordering and digest), its member
    /// names, its orderable columns and the reverse relations it gives its targets.
    fn model(&mut self, info: &ModelInfo<'a>, infos: &[ModelInfo<'a>], known: &[&str]) -> ModelParts {
        let model_name = info.name;
        let mut members: HashMap<String, Member> = HashMap::new();
        let mut columns: HashMap<String, Column> = HashMap::new();
        // Lower-cased column → (where, what).
        let mut sql_columns: HashMap<String, (Pos, String)> = HashMap::new();
        let mut reverses = Vec::new();
        let mut fields = Vec::new();
        let mut many_to_many = Vec::new();

        let pk = info
            .pk
            .clone()
            .unwrap_or_else(|| pk_field(DEFAULT_PRIMARY_KEY, FieldType::BigInt, true));
        // A composite key has no column of its own: its parts are fields.
        if info.composite.is_none() {
            members.insert(
                pk.name.clone(),
                Member {
                    pos: info.pk_pos,
                    what: format!("the primary key `{}`", pk.name),
                    reverse: false,
                },
            );
            sql_columns.insert(
                pk.column.to_lowercase(),
                (info.pk_pos, format!("the primary key `{}`", pk.name)),
            );
            columns.insert(
                pk.name.clone(),
                Column {
                    ir_name: pk.name.clone(),
                    ty: Some(pk.ty.clone()),
                    many_to_many: false,
                },
            );
        }

        for field in &info.fields {
            let key_pos = self.p.key_or_up(&field.path);
            let mut add_member = |v: &mut Self, name: &str, what: String| {
                if let Some(existing) = members.get(name) {
                    let (first, message) = (
                        existing.pos,
                        format!("{what} of `{model_name}` clashes with {}", existing.what),
                    );
                    let help = if existing.what.starts_with("the primary key") && info.pk_implicit {
                        format!(
                            "every model has an implicit primary key `{DEFAULT_PRIMARY_KEY}` (`primary_key: {{ name: id, type: auto }}`); rename this field, or declare `primary_key:` with another name"
                        )
                    } else {
                        "rename one of them".to_string()
                    };
                    v.err("schema::duplicate_field", key_pos, message, "name clash")
                        .add_label(first, "already used here")
                        .set_help(help);
                    false
                } else {
                    members.insert(
                        name.to_string(),
                        Member {
                            pos: key_pos,
                            what,
                            reverse: false,
                        },
                    );
                    true
                }
            };
            match &field.kind {
                Kind::Invalid => {
                    add_member(self, field.name, format!("field `{}`", field.name));
                }
                Kind::Column(ty) => {
                    let fresh = add_member(self, field.name, format!("field `{}`", field.name));
                    columns.insert(
                        field.name.to_string(),
                        Column {
                            ir_name: field.name.to_string(),
                            ty: Some(ty.clone()),
                            many_to_many: false,
                        },
                    );
                    let column = self.column_name(field, field.name.to_string(), &mut sql_columns, fresh);
                    fields.push(Field {
                        name: field.name.to_string(),
                        column,
                        ty: ty.clone(),
                        nullable: field.def.null.unwrap_or(false),
                        default: field.default.clone(),
                        unique: field.def.unique.unwrap_or(false),
                        auto: false,
                        unsigned: field.def.unsigned.unwrap_or(false),
                        set_by_database: field.set_by_database,
                        relation: None,
                    });
                }
                Kind::Relation(kind) => {
                    let ir_name = format!("{}_id", field.name);
                    let (kind_word, reverse_kind) = match kind {
                        RelationKind::ForeignKey => ("foreign key", ReverseKind::Collection),
                        RelationKind::OneToOne => ("one_to_one", ReverseKind::One),
                    };
                    let fresh = add_member(self, field.name, format!("{kind_word} `{}`", field.name))
                        & add_member(
                            self,
                            &ir_name,
                            format!("column `{ir_name}` of {kind_word} `{}`", field.name),
                        );
                    let target = self.target(infos, known, model_name, field);
                    let ty = match target {
                        Some((_, t)) => t.pk.as_ref().map(|pk| fk_type(&pk.ty)).unwrap_or(FieldType::BigInt),
                        None => FieldType::BigInt,
                    };
                    let column_entry = Column {
                        ir_name: ir_name.clone(),
                        ty: Some(ty.clone()),
                        many_to_many: false,
                    };
                    columns.insert(field.name.to_string(), column_entry);
                    columns.insert(
                        ir_name.clone(),
                        Column {
                            ir_name: ir_name.clone(),
                            ty: Some(ty.clone()),
                            many_to_many: false,
                        },
                    );
                    let on_delete = self.on_delete(field);
                    let nullable = field.def.null.unwrap_or(false);
                    if on_delete == OnDelete::SetNull && !nullable {
                        let pos = self.p.value_or_up(&join(&field.path, "on_delete"));
                        let message = format!(
                            "`on_delete: set_null` on `{model_name}.{}` requires `null: true`",
                            field.name
                        );
                        self.err("schema::set_null_not_nullable", pos, message, "column is not nullable")
                            .set_help(format!(
                                "add `null: true` to `{}`, or use `on_delete: cascade` or `on_delete: restrict`",
                                field.name
                            ));
                    }
                    let default_related = match kind {
                        RelationKind::ForeignKey => format!("{}_set", info.snake),
                        RelationKind::OneToOne => info.snake.clone(),
                    };
                    let related_name = self.related_name(field, default_related);
                    let column = self.column_name(field, ir_name.clone(), &mut sql_columns, fresh);
                    let target_name = field.def.to.clone().unwrap_or_default();
                    if let Some((target_index, _)) = target {
                        let pos = self.reverse_pos(field);
                        let reverse = Reverse {
                            name: related_name.clone(),
                            source: model_name.to_string(),
                            field: field.name.to_string(),
                            kind: reverse_kind,
                        };
                        reverses.push((target_index, reverse, pos));
                    }
                    fields.push(Field {
                        name: ir_name,
                        column,
                        ty,
                        nullable,
                        default: None,
                        unique: *kind == RelationKind::OneToOne,
                        auto: false,
                        unsigned: false,
                        set_by_database: None,
                        relation: Some(Relation {
                            kind: *kind,
                            name: field.name.to_string(),
                            target: target_name,
                            related_name,
                            on_delete,
                        }),
                    });
                }
                Kind::ManyToMany => {
                    add_member(self, field.name, format!("many_to_many `{}`", field.name));
                    columns.insert(
                        field.name.to_string(),
                        Column {
                            ir_name: field.name.to_string(),
                            ty: None,
                            many_to_many: true,
                        },
                    );
                    let target = self.target(infos, known, model_name, field);
                    let related_name = self.related_name(field, format!("{}_set", info.snake));
                    // A `through:` naming a model: its table and columns are set once every
                    // model is known (see `through_models`).
                    let through_model = field
                        .def
                        .through
                        .clone()
                        .filter(|through| infos.iter().any(|m| m.name == through));
                    let through = match &field.def.through {
                        Some(through) if through_model.is_some() => through.clone(),
                        Some(through) => {
                            let pos = self.p.value_or_up(&join(&field.path, "through"));
                            self.check_sql_name(through, pos, "join table");
                            through.clone()
                        }
                        None => {
                            let through = format!("{}_{}", info.table, field.name);
                            if info.table.len() <= MAX_SQL_IDENTIFIER && field.name.len() <= MAX_NAME_LEN {
                                self.check_derived_length(
                                    &through,
                                    key_pos,
                                    &format!("join table name `{through}` derived from `{model_name}.{}`", field.name),
                                    "set `through:` to a shorter name",
                                );
                            }
                            through
                        }
                    };
                    let through_pos = self.p.value(&join(&field.path, "through")).unwrap_or(key_pos);
                    if through_model.is_none() {
                        self.register_table(
                            &through,
                            through_pos,
                            format!("many_to_many `{model_name}.{}`", field.name),
                        );
                    }
                    let target_name = field.def.to.clone().unwrap_or_default();
                    let target_snake = target
                        .map(|(_, t)| t.snake.clone())
                        .unwrap_or_else(|| target_name.to_snake_case());
                    let (source_column, target_column) = if target_name == model_name {
                        (format!("from_{}_id", info.snake), format!("to_{target_snake}_id"))
                    } else {
                        (format!("{}_id", info.snake), format!("{target_snake}_id"))
                    };
                    let target_ok = target.is_some_and(|(_, t)| t.name.len() <= MAX_NAME_LEN);
                    if target_ok && model_name.len() <= MAX_NAME_LEN {
                        for column in [&source_column, &target_column] {
                            self.check_derived_length(
                                column,
                                key_pos,
                                &format!(
                                    "join table column `{column}` of many_to_many `{model_name}.{}`",
                                    field.name
                                ),
                                "join table columns are named after the models (`<model>_id`): shorten the model name",
                            );
                        }
                    }
                    if let Some((target_index, _)) = target {
                        let pos = self.reverse_pos(field);
                        let reverse = Reverse {
                            name: related_name.clone(),
                            source: model_name.to_string(),
                            field: field.name.to_string(),
                            kind: ReverseKind::ManyToMany,
                        };
                        reverses.push((target_index, reverse, pos));
                    }
                    many_to_many.push(ManyToMany {
                        name: field.name.to_string(),
                        target: target_name,
                        related_name,
                        through,
                        through_model,
                        source_column,
                        target_column,
                    });
                }
            }
        }
        let model = Model {
            name: model_name.to_string(),
            table: info.table.clone(),
            backend: info.backend.clone(),
            ttl_secs: info.ttl,
            near_entries: info.near,
            digest: String::new(),
            retired: Vec::new(),
            primary_key: match info.composite {
                Some(parts) => PrimaryKey::Composite(self.composite_key(info, parts, &columns, &fields)),
                None => PrimaryKey::Column(pk),
            },
            fields,
            unique_together: Vec::new(),
            indexes: Vec::new(),
            ordering: Vec::new(),
            many_to_many,
            reverse: Vec::new(),
        };
        (model, members, columns, reverses)
    }

    /// Checks each many-to-many whose `through:` names a model and points it at that model's
    /// table and foreign-key columns: the through model's composite key is exactly one
    /// foreign key to each side, and its other fields are plain columns an `add_…` insert can
    /// leave out (nullable, defaulted or set by the database; no relation, unique or index).
    fn through_models(&mut self, schema: &mut Schema) {
        let mut used: Vec<String> = Vec::new();
        for index in 0..schema.models.len() {
            for m2m_index in 0..schema.models[index].many_to_many.len() {
                let source = &schema.models[index];
                let m2m = &source.many_to_many[m2m_index];
                let Some(name) = m2m.through_model.clone() else {
                    continue;
                };
                let path = format!("models.{}.fields.{}.through", source.name, m2m.name);
                let pos = self.p.value_or_up(&path);
                let relation = format!("many_to_many `{}.{}`", source.name, m2m.name);
                let Some(through) = schema.models.iter().find(|m| m.name == name) else {
                    continue;
                };
                let foreign_key = |to: &str| {
                    let mut found = through.fields.iter().filter(|f| {
                        f.relation
                            .as_ref()
                            .is_some_and(|r| r.target == to && r.kind == RelationKind::ForeignKey)
                    });
                    match (found.next(), found.next()) {
                        (Some(field), None) => Some(field),
                        _ => None,
                    }
                };
                let sides = (foreign_key(&source.name), foreign_key(&m2m.target));
                let problem = match (&through.primary_key, sides) {
                    _ if source.name == m2m.target => {
                        Some("a many_to_many of a model with itself cannot have a through model".to_string())
                    }
                    _ if used.contains(&name) => {
                        Some(format!("`{name}` is already the through model of another many_to_many"))
                    }
                    (PrimaryKey::Composite(parts), (Some(this), Some(other)))
                        if parts.len() == 2 && parts.contains(&this.name) && parts.contains(&other.name) =>
                    {
                        None
                    }
                    _ => Some(format!(
                        "through model `{name}` of {relation} needs `primary_key: [<its foreign key to `{}`>, <its foreign key to `{}`>]`: exactly one `foreign_key` (not `one_to_one`) to each side, together its key",
                        source.name, m2m.target
                    )),
                };
                if let Some(message) = problem {
                    self.err("schema::invalid_through_model", pos, message, "through model")
                        .set_help("declare the pair's model with exactly one foreign key to each side, and `primary_key:` made of those two");
                    continue;
                }
                used.push(name.clone());
                let (this, other) = (sides.0.map(|f| f.column.clone()), sides.1.map(|f| f.column.clone()));
                let mut problems = Vec::new();
                for field in &through.fields {
                    if field
                        .relation
                        .as_ref()
                        .is_some_and(|r| r.target == source.name || r.target == m2m.target)
                    {
                        continue;
                    }
                    let yaml_name = field.relation.as_ref().map_or(&field.name, |r| &r.name);
                    let plain = field.relation.is_none() && !field.unique;
                    if !plain || !(field.nullable || field.default.is_some() || field.set_by_database.is_some()) {
                        let field_pos = self.p.key_or_up(&format!("models.{name}.fields.{yaml_name}"));
                        problems.push((field_pos, format!(
                            "field `{name}.{yaml_name}` of through model `{name}` ({relation}) must be a plain column (no relation or `unique`) with `null: true`, a `default` or `auto_now`/`auto_now_add`"
                        )));
                    }
                }
                if !through.indexes.is_empty() || !through.unique_together.is_empty() {
                    let model_pos = self.p.key_or_up(&format!("models.{name}"));
                    problems.push((
                        model_pos,
                        format!(
                            "through model `{name}` ({relation}) cannot have `indexes`, `index` or `unique_together`"
                        ),
                    ));
                }
                for (problem_pos, message) in problems {
                    self.err("schema::invalid_through_model", problem_pos, message, "through model column")
                        .add_label(pos, "used as a through model here")
                        .set_help("`add_…` inserts a pair with its two keys only: the other columns need a value the database gives");
                }
                let table = through.table.clone();
                let m2m = &mut schema.models[index].many_to_many[m2m_index];
                m2m.through = table;
                (m2m.source_column, m2m.target_column) = (this.unwrap_or_default(), other.unwrap_or_default());
            }
        }
    }

    /// The fields (IR names) of a composite key `parts`: at least two, each a non-null
    /// column of the model (a field or a foreign key) of a type that keys compare and spell
    /// exactly, none twice, none set by the database.
    fn composite_key(
        &mut self,
        info: &ModelInfo<'_>,
        parts: &[String],
        columns: &HashMap<String, Column>,
        fields: &[Field],
    ) -> Vec<String> {
        let path = join(&info.path, "primary_key");
        if parts.len() < 2 {
            let pos = self.p.value_or_up(&path);
            self.err(
                "schema::invalid_primary_key",
                pos,
                format!(
                    "a composite primary key needs at least two fields; `{}` lists {}",
                    info.name,
                    parts.len()
                ),
                "fewer than two fields",
            )
            .set_help("list two or more fields (`primary_key: [student, course]`), or declare one column as `primary_key: { name: id, type: integer }`");
            return Vec::new();
        }
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (i, part) in parts.iter().enumerate() {
            let pos = self.p.value_or_up(&join(&path, &i.to_string()));
            let Some((ir_name, _)) = self.resolve_column(info, columns, part, pos, "the primary key") else {
                continue;
            };
            if let Some(&first) = seen.get(&ir_name) {
                self.err(
                    "schema::invalid_primary_key",
                    pos,
                    format!("the primary key of `{}` names `{part}` twice", info.name),
                    "repeated",
                )
                .add_label(first, "first here")
                .set_help("each field may appear once in a composite primary key");
                continue;
            }
            seen.insert(ir_name.clone(), pos);
            let Some(field) = fields.iter().find(|f| f.name == ir_name) else {
                continue;
            };
            let problem = if field.nullable {
                Some("is nullable (`null: true`)".to_owned())
            } else if field.set_by_database.is_some() {
                Some("is set by the database".to_owned())
            } else if !matches!(
                field.ty,
                FieldType::SmallInt
                    | FieldType::Int
                    | FieldType::PositiveInt
                    | FieldType::BigInt
                    | FieldType::String { .. }
                    | FieldType::Uuid
                    | FieldType::Date
                    | FieldType::Enum(_)
            ) {
                Some(format!("has type `{}`", type_key(&field.ty)))
            } else {
                None
            };
            if let Some(problem) = problem {
                self.err(
                    "schema::invalid_primary_key",
                    pos,
                    format!("`{}.{part}` cannot be part of the primary key: it {problem}", info.name),
                    "not a key part",
                )
                .set_help("key parts are non-null foreign keys or fields of type integer, small_integer, positive_integer, big_integer, string, uuid, date or enum, that the program sets");
                continue;
            }
            names.push(ir_name);
        }
        names
    }

    /// Where a reverse-name problem is reported: the `related_name`, else `to`, else the field.
    fn reverse_pos(&self, field: &FieldInfo<'_>) -> Pos {
        self.p
            .value(&join(&field.path, "related_name"))
            .or_else(|| self.p.value(&join(&field.path, "to")))
            .unwrap_or_else(|| self.p.key_or_up(&field.path))
    }

    fn column_name(
        &mut self,
        field: &FieldInfo<'_>,
        default: String,
        sql_columns: &mut HashMap<String, (Pos, String)>,
        report: bool,
    ) -> String {
        let (column, pos) = match &field.def.column {
            Some(column) => {
                let pos = self.p.value_or_up(&join(&field.path, "column"));
                self.check_sql_name(column, pos, "column");
                (column.clone(), pos)
            }
            None => {
                let pos = self.p.key_or_up(&field.path);
                if field.name.len() <= MAX_NAME_LEN {
                    self.check_derived_length(
                        &default,
                        pos,
                        &format!("column name `{default}` derived from field `{}`", field.name),
                        "set `column:` to a shorter name",
                    );
                }
                (default, pos)
            }
        };
        let lower = column.to_lowercase();
        match sql_columns.get(&lower) {
            Some((first, what)) if report => {
                let first = *first;
                let message = format!(
                    "column `{column}` of field `{}` is already the column of {what}",
                    field.name
                );
                self.err("schema::duplicate_column", pos, message, "duplicate column")
                    .add_label(first, "first used here")
                    .set_help(
                        "column names must be unique in a table (case-insensitively); set `column:` to another name",
                    );
            }
            Some(_) => {}
            None => {
                sql_columns.insert(lower, (pos, format!("field `{}`", field.name)));
            }
        }
        column
    }

    fn on_delete(&mut self, field: &FieldInfo<'_>) -> OnDelete {
        match field.def.on_delete.as_deref() {
            None | Some("cascade") => OnDelete::Cascade,
            Some("set_null") => OnDelete::SetNull,
            Some("restrict") => OnDelete::Restrict,
            Some(other) => {
                let pos = self.p.value_or_up(&join(&field.path, "on_delete"));
                let help = did_you_mean(other, ON_DELETE_VALUES.iter().copied(), || None);
                let e = self.err(
                    "schema::unknown_on_delete",
                    pos,
                    format!(
                        "unknown `on_delete` value `{other}`; valid values: {}",
                        ON_DELETE_VALUES.join(", ")
                    ),
                    "unknown value",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                OnDelete::Cascade
            }
        }
    }

    /// Resolves a field name used in `ordering` / `unique_together`.
    fn resolve_column(
        &mut self,
        info: &ModelInfo<'_>,
        columns: &HashMap<String, Column>,
        name: &str,
        pos: Pos,
        context: &str,
    ) -> Option<(String, Option<FieldType>)> {
        match columns.get(name) {
            Some(column) if column.many_to_many => {
                self.err(
                    "schema::invalid_field_reference",
                    pos,
                    format!("{context} cannot use many_to_many `{}.{name}`", info.name),
                    "many_to_many",
                )
                .set_help("only columns of the model itself (fields, foreign keys, the primary key) can be used");
                None
            }
            Some(column) => Some((column.ir_name.clone(), column.ty.clone())),
            None => {
                let mut names: Vec<&str> = Vec::new();
                if let Some(pk) = &info.pk {
                    names.push(&pk.name);
                }
                names.extend(
                    info.fields
                        .iter()
                        .filter(|f| !matches!(f.kind, Kind::ManyToMany))
                        .map(|f| f.name),
                );
                let help = match closest(name, names.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? fields of `{}`: {}", info.name, listing(&names)),
                    None => format!("fields of `{}`: {}", info.name, listing(&names)),
                };
                self.err(
                    "schema::unknown_field",
                    pos,
                    format!("{context} names unknown field `{name}` of `{}`", info.name),
                    "unknown field",
                )
                .set_help(help);
                None
            }
        }
    }

    /// The declared ordering, with foreign keys named by their column field (`author_id`).
    /// The primary key is not appended: it is the implicit final tie-breaker (default
    /// ordering: empty = primary key ascending), added by whoever builds `ORDER BY`.
    fn ordering(&mut self, info: &ModelInfo<'_>, columns: &HashMap<String, Column>) -> Vec<(String, bool)> {
        let mut ordering: Vec<(String, bool)> = Vec::new();
        let path = join(&info.path, "ordering");
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (i, entry) in info.def.ordering.iter().flatten().enumerate() {
            let pos = self.p.value_or_up(&join(&path, &i.to_string()));
            let (name, descending) = match entry.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (entry.as_str(), false),
            };
            let Some((ir_name, ty)) = self.resolve_column(info, columns, name, pos, "`ordering`") else {
                continue;
            };
            if ty == Some(FieldType::Json) {
                self.err(
                    "schema::invalid_ordering",
                    pos,
                    format!("`ordering` cannot use json field `{}.{name}`", info.name),
                    "json is not ordered",
                )
                .set_help("json values have no order; order by another field");
                continue;
            }
            if let Some(first) = seen.get(&ir_name) {
                let first = *first;
                self.err(
                    "schema::invalid_ordering",
                    pos,
                    format!("`ordering` names `{name}` twice"),
                    "repeated",
                )
                .add_label(first, "first here")
                .set_help("each field may appear once in `ordering`");
                continue;
            }
            seen.insert(ir_name.clone(), pos);
            ordering.push((ir_name, descending));
        }
        ordering
    }

    fn unique_together(&mut self, info: &ModelInfo<'_>, columns: &HashMap<String, Column>) -> Vec<Vec<String>> {
        let mut groups = Vec::new();
        let path = join(&info.path, "unique_together");
        for (i, group) in info.def.unique_together.iter().flatten().enumerate() {
            let group_path = join(&path, &i.to_string());
            let group_pos = self.p.value_or_up(&group_path);
            if group.len() < 2 {
                self.err(
                    "schema::invalid_unique_together",
                    group_pos,
                    "a `unique_together` group needs at least two fields",
                    "fewer than two fields",
                )
                .set_help("for a single field, use `unique: true` on the field");
                continue;
            }
            let mut names: Vec<String> = Vec::new();
            let mut ok = true;
            for (j, name) in group.iter().enumerate() {
                let pos = self.p.value_or_up(&join(&group_path, &j.to_string()));
                match self.resolve_column(info, columns, name, pos, "`unique_together`") {
                    Some((ir_name, _)) if names.contains(&ir_name) => {
                        self.err(
                            "schema::invalid_unique_together",
                            pos,
                            format!("`unique_together` names `{name}` twice in one group"),
                            "repeated",
                        );
                        ok = false;
                    }
                    Some((ir_name, _)) => names.push(ir_name),
                    None => ok = false,
                }
            }
            if ok {
                groups.push(names);
            }
        }
        groups
    }
}

impl Validator<'_> {
    /// The model's non-unique indexes: a group per field with `index: true`, then the
    /// groups of `indexes:` (one or more fields each, foreign keys by either name). Not on
    /// JSON or bytes (no useful equality), not on a unique field alone, each group once.
    fn indexes(&mut self, info: &ModelInfo<'_>, columns: &HashMap<String, Column>, model: &Model) -> Vec<Vec<String>> {
        let mut groups: Vec<(Vec<String>, Pos)> = Vec::new();
        for field in &info.fields {
            if field.def.index == Some(true) && matches!(field.kind, Kind::Column(_)) {
                let pos = self.p.key_or_up(&join(&field.path, "index"));
                groups.push((vec![field.name.to_string()], pos));
            }
        }
        let path = join(&info.path, "indexes");
        for (i, group) in info.def.indexes.iter().flatten().enumerate() {
            let group_path = join(&path, &i.to_string());
            let group_pos = self.p.value_or_up(&group_path);
            if group.is_empty() {
                self.err(
                    "schema::invalid_index",
                    group_pos,
                    "an `indexes` group needs at least one field",
                    "empty",
                )
                .set_help("list the fields of the index, e.g. `indexes: [[store, last_name]]`");
                continue;
            }
            let mut names: Vec<String> = Vec::new();
            let mut ok = true;
            for (j, name) in group.iter().enumerate() {
                let pos = self.p.value_or_up(&join(&group_path, &j.to_string()));
                match self.resolve_column(info, columns, name, pos, "`indexes`") {
                    Some((ir_name, _)) if names.contains(&ir_name) => {
                        self.err(
                            "schema::invalid_index",
                            pos,
                            format!("`indexes` names `{name}` twice in one group"),
                            "repeated",
                        );
                        ok = false;
                    }
                    Some((ir_name, _)) => names.push(ir_name),
                    None => ok = false,
                }
            }
            if ok {
                groups.push((names, group_pos));
            }
        }
        let mut out: Vec<Vec<String>> = Vec::new();
        for (group, pos) in groups {
            let fields: Vec<&Field> = group.iter().filter_map(|name| model.key_or_field(name)).collect();
            if let Some(field) = fields
                .iter()
                .find(|f| matches!(f.ty, FieldType::Json | FieldType::Bytes))
            {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "`{}.{}` cannot be indexed: {} values have no useful equality",
                        model.name,
                        field.name,
                        type_key(&field.ty)
                    ),
                    "not indexable",
                )
                .set_help("index another field, or reach the rows through a relation");
                continue;
            }
            if let [field] = fields.as_slice()
                && (field.unique || model.key_column().is_some_and(|key| std::ptr::eq(*field, key)))
            {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "`{}.{}` is unique: it is indexed already, and `get_by_{}` reads it",
                        model.name, field.name, field.name
                    ),
                    "unique already",
                )
                .set_help("remove the index; a unique field's lookup returns at most one row");
                continue;
            }
            if out.contains(&group) {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "the index on `{}` of `{}` is declared twice",
                        group.join("`, `"),
                        model.name
                    ),
                    "repeated",
                )
                .set_help("keep one of them (`index: true` on a field is the same as `indexes: [[field]]`)");
                continue;
            }
            out.push(group);
        }
        out
    }
}

/// The primary key column.
fn pk_field(name: &str, ty: FieldType, auto: bool) -> Field {
    Field {
        name: name.to_string(),
        column: name.to_string(),
        ty,
        nullable: false,
        default: None,
        unique: false,
        auto,
        unsigned: false,
        set_by_database: None,
        relation: None,
    }
}

/// The column type of a foreign key to a model whose primary key has type `pk`.
///
/// Every primary key type (`auto` = big_integer, string, uuid, big_integer, integer) can be
/// referenced; the foreign key stores the same type, never auto-generated.
fn fk_type(pk: &FieldType) -> FieldType {
    pk.clone()
}

/// The autocache type for a type name from SQL, Rust or other ORMs, for "did you mean".
fn type_alias(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "int" | "int4" | "i32" | "int32" => "integer",
        "smallint" | "int2" | "i16" | "int16" => "small_integer",
        "bigint" | "int8" | "i64" | "int64" | "long" => "big_integer",
        "uint" | "u32" | "unsigned" | "positive" => "positive_integer",
        "bool" => "boolean",
        "double" | "real" | "f64" | "f32" => "float",
        "numeric" | "money" | "decimalfield" => "decimal",
        "enumeration" | "choice" | "choices" => "enum",
        "character" | "bpchar" => "char",
        "str" | "varchar" | "charfield" => "string",
        "textfield" | "clob" | "longtext" => "text",
        "blob" | "binary" | "bytea" | "vec<u8>" => "bytes",
        "timestamp" | "timestamptz" | "datetimefield" => "datetime",
        "fk" | "foreignkey" | "belongs_to" | "reference" => "foreign_key",
        "o2o" | "onetoone" | "has_one" => "one_to_one",
        "m2m" | "manytomany" | "has_many" => "many_to_many",
        "jsonb" => "json",
        _ => return None,
    })
}

/// Names for a message: all of them when there are few, else the first ones and a count.
fn listing(names: &[&str]) -> String {
    const SHOWN: usize = 20;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..SHOWN].join(", "), names.len())
    }
}

fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
}

fn is_upper_camel_case(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The canonical name of a type, as used in the digest and in messages.
pub fn type_key(ty: &FieldType) -> String {
    match ty {
        FieldType::SmallInt => "small_integer".into(),
        FieldType::Int => "integer".into(),
        FieldType::PositiveInt => "positive_integer".into(),
        FieldType::BigInt => "big_integer".into(),
        FieldType::Bool => "boolean".into(),
        FieldType::Float => "float".into(),
        FieldType::String { max_length } => format!("string({max_length})"),
        FieldType::Text => "text".into(),
        FieldType::Bytes => "bytes".into(),
        FieldType::Uuid => "uuid".into(),
        FieldType::Date => "date".into(),
        FieldType::Time => "time".into(),
        FieldType::DateTime => "datetime".into(),
        FieldType::Json => "json".into(),
        FieldType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        FieldType::Enum(e) => format!(
            "enum({})",
            e.values.iter().map(|v| v.value.as_str()).collect::<Vec<_>>().join("|")
        ),
        FieldType::Char { length } => format!("char({length})"),
    }
}

/// Whether `value` may be an `enum` value: ASCII letters, digits, spaces, `-`, `_` and `.`,
/// with at least one letter or digit, at most [`MAX_ENUM_VALUE_LEN`] characters.
pub(crate) fn valid_enum_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ENUM_VALUE_LEN
        && value.chars().any(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
}

/// The Rust variant name of an enum value: its words in UpperCamelCase (`PG-13` → `Pg13`),
/// prefixed with `V` when it would start with a digit.
fn enum_variant(value: &str) -> String {
    let words: String = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let camel = words.to_upper_camel_case();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{camel}")
    } else {
        camel
    }
}

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

fn describe(value: &Value) -> String {
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

type DefaultError = (String, Option<String>);

/// Checks a `default:` against the column type.
fn check_default(ty: &FieldType, value: &Value) -> Result<DefaultValue, DefaultError> {
    let int_in = |lo: i64, hi: i64, what: &str| -> Result<DefaultValue, DefaultError> {
        match value {
            Value::Number(n) if !n.is_f64() => match n.as_i64() {
                Some(i) if (lo..=hi).contains(&i) => Ok(DefaultValue::Int(i)),
                _ => Err((format!("{n} is out of range for {what} ({lo}..={hi})"), None)),
            },
            _ => Err((format!("expected an integer, found {}", describe(value)), None)),
        }
    };
    let string = |check: &dyn Fn(&str) -> Result<(), DefaultError>| -> Result<DefaultValue, DefaultError> {
        match value {
            Value::String(s) => check(s).map(|()| DefaultValue::Str(s.clone())),
            other => Err((
                format!("expected a string, found {}", describe(other)),
                Some("quote the value to make it a string, e.g. `default: \"1\"`".into()),
            )),
        }
    };
    match ty {
        FieldType::SmallInt => int_in(i16::MIN.into(), i16::MAX.into(), "small_integer"),
        FieldType::Int => int_in(i32::MIN.into(), i32::MAX.into(), "integer"),
        FieldType::PositiveInt => int_in(0, i32::MAX.into(), "positive_integer"),
        FieldType::BigInt => int_in(i64::MIN, i64::MAX, "big_integer"),
        FieldType::Bool => match value {
            Value::Bool(b) => Ok(DefaultValue::Bool(*b)),
            other => Err((format!("expected `true` or `false`, found {}", describe(other)), None)),
        },
        FieldType::Float => match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(DefaultValue::Float(f)),
                _ => Err((format!("{n} is not a finite number"), None)),
            },
            other => Err((format!("expected a number, found {}", describe(other)), None)),
        },
        FieldType::String { max_length } => string(&|s| {
            let n = s.chars().count();
            if n > *max_length as usize {
                Err((
                    format!("the string has {n} characters, more than `max_length` ({max_length})"),
                    None,
                ))
            } else {
                Ok(())
            }
        }),
        FieldType::Text => string(&|_| Ok(())),
        FieldType::Uuid => string(&|s| {
            if is_uuid(s) {
                Ok(())
            } else {
                Err((
                    format!("`{s}` is not a UUID"),
                    Some("write it as 8-4-4-4-12 hex digits".into()),
                ))
            }
        }),
        FieldType::Date => string(&|s| {
            if is_date(s) {
                Ok(())
            } else {
                Err((
                    format!("`{s}` is not a date"),
                    Some("write dates as `YYYY-MM-DD`".into()),
                ))
            }
        }),
        FieldType::Time => string(&|s| {
            if is_time(s) {
                Ok(())
            } else {
                Err((
                    format!("`{s}` is not a time"),
                    Some("write times as `HH:MM:SS` (optionally `.ffffff`)".into()),
                ))
            }
        }),
        FieldType::DateTime if value.as_str() == Some("now") => Ok(DefaultValue::Now),
        FieldType::DateTime => string(&|s| {
            if is_datetime(s) {
                Ok(())
            } else {
                Err((
                    format!("`{s}` is not a date and time"),
                    Some(
                        "write it as RFC 3339, e.g. `2024-01-31T12:00:00Z`, or `now` for the time of the insert".into(),
                    ),
                ))
            }
        }),
        FieldType::Char { length } => string(&|s| {
            let n = s.chars().count();
            if n > *length as usize {
                Err((
                    format!("the string has {n} characters, more than `max_length` ({length})"),
                    None,
                ))
            } else {
                Ok(())
            }
        }),
        FieldType::Enum(e) => string(&|s| {
            if e.values.iter().any(|v| v.value == s) {
                Ok(())
            } else {
                let listed: Vec<&str> = e.values.iter().map(|v| v.value.as_str()).collect();
                Err((
                    format!("`{s}` is not one of the values"),
                    Some(format!("valid values: {}", listed.join(", "))),
                ))
            }
        }),
        FieldType::Decimal { precision, scale } => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                other => return Err((format!("expected a number, found {}", describe(other)), None)),
            };
            match decimal_digits(&text) {
                Some((whole, fraction)) if whole <= precision - scale && fraction <= *scale => {
                    Ok(DefaultValue::Decimal(at_scale(&text, *scale)))
                }
                Some(_) => Err((
                    format!("{text} does not fit `precision: {precision}, scale: {scale}`"),
                    Some(format!(
                        "at most {} digits before the point and {scale} after it",
                        precision - scale
                    )),
                )),
                None => Err((
                    format!("`{text}` is not a decimal number"),
                    Some("write it as digits with an optional sign and point, e.g. `default: 9.99` or `default: \"0.10\"`".into()),
                )),
            }
        }
        FieldType::Bytes | FieldType::Json => Err((
            "defaults are not supported for this type".into(),
            Some("remove `default:`; set the value when inserting".into()),
        )),
    }
}

/// The digits before and after the point of a plain decimal number (`-12.50` → (2, 2)),
/// leading zeros of the whole part not counted; `None` if it is not one.
fn decimal_digits(text: &str) -> Option<(u32, u32)> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    Some((whole.trim_start_matches('0').len() as u32, fraction.len() as u32))
}

/// A plain decimal number written with exactly `scale` digits after the point (`9.9` →
/// `9.90` at scale 2), as the database stores it: SQLite keeps a decimal's text (see
/// `ddl::sql_type`), so a default must be the text generated code binds for that number.
fn at_scale(text: &str, scale: u32) -> String {
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole = if whole.is_empty() { "0" } else { whole };
    if scale == 0 {
        return format!("{sign}{whole}");
    }
    format!("{sign}{whole}.{fraction:0<width$}", width = scale as usize)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    let (Some(year), Some(month), Some(day)) = (digits(y), digits(m), digits(d)) else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !(1..=12).contains(&month) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days).contains(&day)
}

fn is_time(s: &str) -> bool {
    let (main, fraction) = match s.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (s, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || f.len() > 9 || digits(f).is_none()) {
        return false;
    }
    let parts: Vec<&str> = main.split(':').collect();
    let [h, m, sec] = parts.as_slice() else { return false };
    [h, m, sec].iter().all(|p| p.len() == 2)
        && digits(h).is_some_and(|h| h < 24)
        && digits(m).is_some_and(|m| m < 60)
        && digits(sec).is_some_and(|s| s < 60)
}

fn is_datetime(s: &str) -> bool {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return false;
    }
    let (date, rest) = s.split_at(10);
    if !is_date(date) || !matches!(rest.as_bytes()[0], b'T' | b't' | b' ') {
        return false;
    }
    let rest = &rest[1..];
    let (time, zone) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, None)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(&rest[i + 1..]))
    } else {
        (rest, None)
    };
    let zone_ok = zone.is_none_or(|z| {
        let parts: Vec<&str> = z.split(':').collect();
        matches!(parts.as_slice(), [h, m] if h.len() == 2 && m.len() == 2
            && digits(h).is_some_and(|h| h < 24) && digits(m).is_some_and(|m| m < 60))
    });
    zone_ok && is_time(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_snake_case("order_in_series"));
        assert!(is_snake_case("isbn13"));
        assert!(!is_snake_case("Title"));
        assert!(!is_snake_case("a__b"));
        assert!(!is_snake_case("a_"));
        assert!(!is_snake_case("_a"));
        assert!(!is_snake_case(""));
        assert!(is_upper_camel_case("BookReview"));
        assert!(!is_upper_camel_case("book"));
        assert!(!is_upper_camel_case("Book_Review"));
    }

    #[test]
    fn temporal_formats() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(is_time("23:59:59.123456"));
        assert!(!is_time("24:00:00"));
        assert!(is_datetime("2024-01-31T12:00:00Z"));
        assert!(is_datetime("2024-01-31 12:00:00+02:00"));
        assert!(is_datetime("2024-01-31T12:00:00.5"));
        assert!(!is_datetime("2024-01-31"));
        assert!(!is_datetime("2024-01-31Té2:00:00"));
        assert!(is_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"));
        assert!(!is_uuid("67e55044-10b1-426f-9247-bb680e5fe0cz"));
    }

    #[test]
    fn defaults() {
        let v = |s: &str| serde_yaml::from_str::<Value>(s).unwrap();
        assert_eq!(check_default(&FieldType::SmallInt, &v("7")), Ok(DefaultValue::Int(7)));
        assert!(check_default(&FieldType::SmallInt, &v("70000")).is_err());
        assert!(check_default(&FieldType::PositiveInt, &v("-1")).is_err());
        assert_eq!(check_default(&FieldType::Float, &v("1")), Ok(DefaultValue::Float(1.0)));
        assert!(check_default(&FieldType::Float, &v(".inf")).is_err());
        assert!(check_default(&FieldType::Bool, &v("yes")).is_err());
        assert!(check_default(&FieldType::String { max_length: 2 }, &v("abc")).is_err());
        assert_eq!(
            check_default(&FieldType::Text, &v("abc")),
            Ok(DefaultValue::Str("abc".into()))
        );
        assert!(check_default(&FieldType::Text, &v("5")).is_err());
        assert!(check_default(&FieldType::Json, &v("{}")).is_err());
        assert!(check_default(&FieldType::BigInt, &v("1.5")).is_err());
        let money = FieldType::Decimal { precision: 5, scale: 2 };
        assert_eq!(check_default(&money, &v("5")), Ok(DefaultValue::Decimal("5.00".into())));
        assert_eq!(
            check_default(&money, &v("\"+.5\"")),
            Ok(DefaultValue::Decimal("0.50".into()))
        );
        assert_eq!(
            check_default(&money, &v("-9.9")),
            Ok(DefaultValue::Decimal("-9.90".into()))
        );
        assert_eq!(
            check_default(&money, &v("\"-.5\"")),
            Ok(DefaultValue::Decimal("-0.50".into()))
        );
        assert!(check_default(&money, &v("1000")).is_err());
    }
}
