//! From a [`Catalog`] to a schema file: tables → models, columns → fields, foreign keys →
//! relations, pure join tables → `many_to_many`, unique indexes → `unique` /
//! `unique_together`, other indexes → `index: true` / `indexes:`. What the schema format cannot say is reported per column as a [`Note`]
//! and left out; the rest is still written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::import::catalog::{Catalog, Column, ForeignKey, Table, quoted_literals};
use crate::ir::Dialect;
use crate::type_names::{self, KEY_PART_TYPES, PRIMARY_KEY_TYPES, spelled};
use crate::validate::{RESERVED_MODEL_NAMES, RUST_KEYWORDS};

/// Tables of autocache itself and of migration tools: never models.
const INTERNAL_TABLES: &[&str] = &["autocache_outbox", "_sqlx_migrations"];

/// Something of the database the schema cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// `<table>.<column>`, or `<table>` for the whole table.
    pub place: String,
    /// What was left out, and why.
    pub message: String,
}

/// The schema file written for a catalog, and what it leaves out.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The text of `schema.yaml`.
    pub yaml: String,
    /// What the schema could not express.
    pub notes: Vec<Note>,
}

/// A model being written.
struct ModelOut {
    name: String,
    table: String,
    /// `primary_key:` as a YAML flow mapping, or a flow sequence of fields for a composite
    /// key, when not the default (`id`, `auto`).
    primary_key: Option<String>,
    /// `(field name, flow mapping)`.
    fields: Vec<(String, String)>,
    unique_together: Vec<Vec<String>>,
    /// Non-unique indexes of several columns, or of a relation with others.
    indexes: Vec<Vec<String>>,
}

/// The schema for `catalog`, read from a `dialect` database.
pub fn infer(catalog: &Catalog, dialect: Dialect) -> Imported {
    let mut notes = Vec::new();
    let tables: Vec<&Table> = catalog
        .tables
        .iter()
        .filter(|t| !INTERNAL_TABLES.contains(&t.name.as_str()))
        .collect();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for table in &tables {
        let mut name = table.name.to_upper_camel_case();
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || RESERVED_MODEL_NAMES.contains(&name.as_str())
        {
            name = format!("T{name}");
        }
        while !used.insert(name.clone()) {
            name.push('2');
        }
        names.insert(table.name.clone(), name);
    }
    let joins: Vec<Join> = tables.iter().filter_map(|t| pure_join(t, catalog, &names)).collect();
    let keyed: Vec<&Table> = tables
        .iter()
        .copied()
        .filter(|table| !joins.iter().any(|join| join.through == table.name))
        .filter(|table| match primary_key_type(table, dialect) {
            Ok(_) => true,
            Err(reason) => {
                notes.push(Note {
                    place: table.name.clone(),
                    message: format!("not imported: {reason}"),
                });
                false
            }
        })
        .collect();
    let model_names: BTreeMap<String, String> = names
        .into_iter()
        .filter(|(table, _)| keyed.iter().any(|t| t.name == *table))
        .collect();
    let mut accessors = Accessors::default();
    // Every name a model's own fields may take, before any reverse accessor is chosen.
    for table in &keyed {
        for column in &table.columns {
            let base = column.name.strip_suffix("_id").unwrap_or(&column.name);
            accessors.claim(&model_names[&table.name], &field_name(&column.name));
            accessors.claim(&model_names[&table.name], &field_name(base));
        }
    }
    let mut models = Vec::new();
    for table in &keyed {
        models.push(model(table, catalog, dialect, &model_names, &mut accessors, &mut notes));
    }
    for join in joins {
        let source = models.iter_mut().find(|m| m.name == join.source);
        let (Some(source), true) = (source, model_names.values().any(|m| *m == join.target)) else {
            notes.push(Note {
                place: join.through.clone(),
                message: "not imported: a join table of a table that is not imported".to_owned(),
            });
            continue;
        };
        let mut name = field_name(&join.name);
        while source.fields.iter().any(|(n, _)| *n == name) || accessors.taken(&source.name, &name) {
            name.push_str("_set");
        }
        accessors.claim(&source.name, &name);
        let related = accessors.related(&join.target, &format!("{}_set", source.name.to_snake_case()), &name);
        let mut flow = format!("type: many_to_many, to: {}, related_name: {related}", join.target);
        if format!("{}_{}", source.table, name) != join.through {
            write!(flow, ", through: {}", join.through).expect("a String");
        }
        source.fields.push((name, format!("{{ {flow} }}")));
    }
    notes.sort_by(|a, b| a.place.cmp(&b.place));
    Imported {
        yaml: render(&models, dialect, &notes),
        notes,
    }
}

/// The `type` (and `max_length`) of a table's primary key (`composite` for a key of several
/// columns, which become fields), or why it has none the schema can say.
fn primary_key_type(table: &Table, dialect: Dialect) -> Result<String, String> {
    let [column] = table.primary_key.as_slice() else {
        if table.primary_key.is_empty() {
            return Err("the table has no primary key".to_owned());
        }
        for part in &table.primary_key {
            let column = table.column(part).ok_or("a column of its primary key is missing")?;
            match column_type(table, column, dialect) {
                Ok(ty) if KEY_PART_TYPES.contains(&ty.split('(').next().unwrap_or_default()) => {}
                Ok(ty) => {
                    return Err(format!(
                        "its primary key column `{part}` is of type {ty} (a composite key's parts can be {})",
                        spelled(KEY_PART_TYPES, "or")
                    ));
                }
                Err(reason) => return Err(reason),
            }
        }
        return Ok("composite".to_owned());
    };
    let column = table.column(column).ok_or("its primary key column is missing")?;
    if column.auto {
        return Ok("auto".to_owned());
    }
    match column_type(table, column, dialect) {
        Ok(ty) if type_names::is_column_primary_key(&ty) => Ok(ty),
        Ok(ty) => Err(format!(
            "its primary key is of type {ty} ({} are supported)",
            type_names::spelled(PRIMARY_KEY_TYPES, "or")
        )),
        Err(reason) => Err(reason),
    }
}

/// A join table the schema can declare as a `many_to_many`.
struct Join {
    source: String,
    target: String,
    name: String,
    through: String,
}

/// Whether `table` is a pure join table of two models with the column names `many_to_many`
/// derives (`<model>_id`, `<target>_id`; `from_<model>_id`, `to_<model>_id` to itself).
fn pure_join(table: &Table, catalog: &Catalog, models: &BTreeMap<String, String>) -> Option<Join> {
    let [first, second] = table.columns.as_slice() else {
        return None;
    };
    let key: BTreeSet<&str> = table.primary_key.iter().map(String::as_str).collect();
    if key != BTreeSet::from([first.name.as_str(), second.name.as_str()]) {
        return None;
    }
    let pointing = |column: &Column| {
        table
            .foreign_keys
            .iter()
            .find(|fk| fk.columns == [column.name.clone()] && fk.on_delete == "CASCADE")
    };
    let (from, to) = (pointing(first)?, pointing(second)?);
    let (source, target) = (models.get(&from.target)?, models.get(&to.target)?);
    let targets_key = |fk: &ForeignKey| {
        catalog
            .table(&fk.target)
            .is_some_and(|t| t.primary_key == fk.target_columns)
    };
    if !targets_key(from) || !targets_key(to) {
        return None;
    }
    let (source_snake, target_snake) = (source.to_snake_case(), target.to_snake_case());
    let expected = if source == target {
        (format!("from_{source_snake}_id"), format!("to_{target_snake}_id"))
    } else {
        (format!("{source_snake}_id"), format!("{target_snake}_id"))
    };
    if (first.name.clone(), second.name.clone()) != expected {
        return None;
    }
    let source_table = &from.target;
    let name = table
        .name
        .strip_prefix(&format!("{source_table}_"))
        .unwrap_or(&table.name)
        .to_owned();
    Some(Join {
        source: source.clone(),
        target: target.clone(),
        name,
        through: table.name.clone(),
    })
}

/// Names on each model: fields, accessors and reverse accessors, so related names never clash.
#[derive(Default)]
struct Accessors(BTreeMap<String, BTreeSet<String>>);

impl Accessors {
    fn taken(&self, model: &str, name: &str) -> bool {
        self.0.get(model).is_some_and(|names| names.contains(name))
    }

    fn claim(&mut self, model: &str, name: &str) {
        self.0.entry(model.to_owned()).or_default().insert(name.to_owned());
    }

    /// A reverse accessor on `target`: `preferred`, or with the field's name, or numbered.
    fn related(&mut self, target: &str, preferred: &str, field: &str) -> String {
        let mut candidates = vec![preferred.to_owned(), format!("{preferred}_{field}")];
        candidates.extend((2..).take(100).map(|n| format!("{preferred}_{n}")));
        let name = candidates
            .into_iter()
            .find(|c| !self.taken(target, c))
            .expect("a free name among a hundred");
        self.claim(target, &name);
        name
    }
}

/// A field or accessor name for a column: snake_case, not a Rust keyword.
fn field_name(column: &str) -> String {
    let mut name = column.to_snake_case();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name = format!("f_{name}");
    }
    if RUST_KEYWORDS.contains(&name.as_str()) {
        name.push_str("_field");
    }
    name
}

/// One model from its table.
fn model(
    table: &Table,
    catalog: &Catalog,
    dialect: Dialect,
    models: &BTreeMap<String, String>,
    accessors: &mut Accessors,
    notes: &mut Vec<Note>,
) -> ModelOut {
    let name = models[&table.name].clone();
    let pk_type = primary_key_type(table, dialect).expect("only keyed tables are models");
    let composite = pk_type == "composite";
    // A composite key has no column of its own: its columns are fields.
    let pk_column = if composite { "" } else { table.primary_key[0].as_str() };
    let pk_name = field_name(pk_column);
    let mut primary_key = None;
    if !composite && (pk_name != "id" || pk_type != "auto" || pk_name != *pk_column) {
        let ty = type_flow(&pk_type, &[]);
        let ty = ty.strip_prefix("type: ").unwrap_or(&ty);
        if pk_name != *pk_column {
            notes.push(Note {
                place: format!("{}.{pk_column}", table.name),
                message: format!("the primary key column cannot be renamed in the schema; imported as `{pk_name}`"),
            });
        }
        primary_key = Some(format!("{{ name: {pk_name}, type: {ty} }}"));
    }
    if !composite {
        accessors.claim(&name, &pk_name);
    }
    let unique_columns: BTreeSet<&str> = table
        .indexes
        .iter()
        .filter(|index| index.unique && index.columns.len() == 1)
        .map(|index| index.columns[0].as_str())
        .collect();
    // A non-unique index of one plain column is the field's `index: true`.
    let implied = |index: &crate::import::catalog::Index| {
        !index.unique && index.columns.len() == 1 && table.foreign_keys.iter().any(|fk| fk.columns == index.columns)
    };
    let indexed_alone: BTreeSet<&str> = table
        .indexes
        .iter()
        .filter(|index| !index.unique && index.columns.len() == 1 && !implied(index))
        .map(|index| index.columns[0].as_str())
        .collect();
    let mut field_names: BTreeMap<&str, String> = BTreeMap::new();
    let mut fields = Vec::new();
    for column in table.columns.iter().filter(|c| c.name != pk_column) {
        let place = format!("{}.{}", table.name, column.name);
        let unique = unique_columns.contains(column.name.as_str());
        let relation = table
            .foreign_keys
            .iter()
            .find(|fk| fk.columns == [column.name.clone()])
            .filter(|fk| {
                catalog
                    .table(&fk.target)
                    .is_some_and(|t| t.primary_key == fk.target_columns)
            })
            .and_then(|fk| models.get(&fk.target).map(|target| (fk, target)));
        let mut flow;
        let field;
        if let Some((fk, target)) = relation {
            let base = column
                .name
                .strip_suffix("_id")
                .filter(|b| !b.is_empty())
                .unwrap_or(&column.name);
            let mut candidate = field_name(base);
            while table.columns.iter().any(|c| c.name == candidate) && candidate != column.name
                || fields.iter().any(|(n, _)| *n == candidate)
            {
                candidate.push_str("_rel");
            }
            field = candidate;
            let kind = if unique { "one_to_one" } else { "foreign_key" };
            let on_delete = match fk.on_delete.as_str() {
                "CASCADE" => "cascade",
                "SET NULL" => "set_null",
                "RESTRICT" | "NO ACTION" => "restrict",
                other => {
                    notes.push(Note {
                        place: place.clone(),
                        message: format!("ON DELETE {other} is not expressible; imported as restrict"),
                    });
                    "restrict"
                }
            };
            let preferred = match kind {
                "one_to_one" => name.to_snake_case(),
                _ => format!("{}_set", name.to_snake_case()),
            };
            let related = accessors.related(target, &preferred, &field);
            flow = format!("type: {kind}, to: {target}, related_name: {related}, on_delete: {on_delete}");
            if format!("{field}_id") != column.name {
                write!(flow, ", column: {}", column.name).expect("a String");
            }
            if column.default.is_some() {
                notes.push(Note {
                    place: place.clone(),
                    message: "a relation column's default is not expressible; left out".to_owned(),
                });
            }
        } else {
            if let Some(fk) = table.foreign_keys.iter().find(|fk| fk.columns.contains(&column.name)) {
                notes.push(Note {
                    place: place.clone(),
                    message: format!(
                        "its foreign key to `{}` ({}) is not expressible (several columns, or not the target's primary key); imported as a plain field",
                        fk.target,
                        fk.target_columns.join(", ")
                    ),
                });
            }
            let ty = match column_type(table, column, dialect) {
                Ok(ty) => ty,
                Err(reason) => {
                    notes.push(Note {
                        place,
                        message: format!("left out: {reason}"),
                    });
                    continue;
                }
            };
            field = field_name(&column.name);
            let values = match ty.as_str() {
                "enum" => enum_values(table, column),
                _ => Vec::new(),
            };
            flow = type_flow(&ty, &values);
            if field != column.name {
                write!(flow, ", column: {}", column.name).expect("a String");
            }
            if unique {
                flow.push_str(", unique: true");
            }
            if indexed_alone.contains(column.name.as_str()) {
                flow.push_str(", index: true");
            }
            if ["small_integer", "big_integer"].contains(&ty.as_str()) && table.checks_non_negative(&column.name) {
                flow.push_str(", unsigned: true");
            }
            match (&column.default, column.updates_to_now) {
                (Some(default), true) if default_literal(default, &ty).as_deref() == Some("now") => {
                    flow.push_str(", auto_now: true");
                }
                (_, true) => notes.push(Note {
                    place: place.clone(),
                    message:
                        "ON UPDATE CURRENT_TIMESTAMP without a DEFAULT CURRENT_TIMESTAMP is not expressible; left out"
                            .to_owned(),
                }),
                (Some(default), false) => match default_literal(default, &ty) {
                    Some(literal) => write!(flow, ", default: {literal}").expect("a String"),
                    None => notes.push(Note {
                        place: place.clone(),
                        message: format!("default `{default}` is not expressible; left out"),
                    }),
                },
                (None, false) => {}
            }
        }
        if column.nullable {
            flow.push_str(", null: true");
        }
        accessors.claim(&name, &field);
        field_names.insert(column.name.as_str(), field.clone());
        fields.push((field, format!("{{ {flow} }}")));
    }
    if composite {
        let parts: Option<Vec<String>> = table
            .primary_key
            .iter()
            .map(|column| field_names.get(column.as_str()).cloned())
            .collect();
        primary_key = parts.map(|parts| format!("[{}]", parts.join(", ")));
    }
    let mut unique_together = Vec::new();
    let mut indexes = Vec::new();
    for index in &table.indexes {
        if implied(index)
            || index.columns.len() == 1 && (index.unique || field_names.contains_key(index.columns[0].as_str()))
        {
            continue;
        }
        let named: Option<Vec<String>> = index
            .columns
            .iter()
            .map(|c| field_names.get(c.as_str()).cloned())
            .collect();
        match (index.unique, named) {
            (true, Some(named)) => unique_together.push(named),
            (false, Some(named)) => indexes.push(named),
            _ => {
                for column in &index.columns {
                    notes.push(Note {
                        place: format!("{}.{column}", table.name),
                        message: format!(
                            "{} `{}` on ({}) is not expressible in the schema; left out",
                            if index.unique { "unique index" } else { "index" },
                            index.name,
                            index.columns.join(", ")
                        ),
                    });
                }
            }
        }
    }
    ModelOut {
        table: table.name.clone(),
        name,
        primary_key,
        fields,
        unique_together,
        indexes,
    }
}

/// The `type:` (and its length, digits or values) of a field, from its [`column_type`].
fn type_flow(ty: &str, values: &[String]) -> String {
    let inner = |prefix: &str| ty.strip_prefix(prefix).map(|rest| rest.trim_end_matches(')'));
    if let Some(length) = inner("string(") {
        format!("type: string, max_length: {length}")
    } else if let Some(length) = inner("char(") {
        format!("type: char, max_length: {length}")
    } else if let Some((precision, scale)) = inner("decimal(").and_then(|digits| digits.split_once(',')) {
        format!("type: decimal, precision: {precision}, scale: {scale}")
    } else if ty == "enum" {
        let values: Vec<String> = values
            .iter()
            .map(|v| serde_json::to_string(v).expect("a string serializes"))
            .collect();
        format!("type: enum, values: [{}]", values.join(", "))
    } else {
        format!("type: {ty}")
    }
}

/// The values of an `enum` column: MySQL's `enum('a','b')` type, or a text column's
/// `CHECK (column IN ('a', 'b'))`.
fn enum_values(table: &Table, column: &Column) -> Vec<String> {
    match column.sql_type.strip_prefix("enum(") {
        Some(list) => quoted_literals(list),
        None => table.checks_values(&column.name).unwrap_or_default(),
    }
}

/// The schema type of a plain column (`string(64)`, `char(2)`, `decimal(7,2)`, `enum`), or
/// why there is none.
fn column_type(table: &Table, column: &Column, dialect: Dialect) -> Result<String, String> {
    let sql = column.sql_type.as_str();
    let base = sql.split('(').next().unwrap_or(sql).trim();
    let string = || match column.max_length {
        Some(length) if length > 0 && length <= 65535 => Ok(format!("string({length})")),
        _ => Err(format!("`{sql}` without a length the schema accepts")),
    };
    let integer = |ty: &str| {
        if table.checks_non_negative(&column.name) && ty == "integer" {
            "positive_integer".to_owned()
        } else {
            ty.to_owned()
        }
    };
    let digits = || {
        let inner = sql.split_once('(').map(|(_, rest)| rest.trim_end_matches(')'));
        match inner.and_then(|digits| digits.split_once(',')) {
            Some((precision, scale)) => match (precision.trim().parse::<u32>(), scale.trim().parse::<u32>()) {
                (Ok(precision), Ok(scale)) => Ok(format!("decimal({precision},{scale})")),
                _ => Err(format!("`{sql}` without a precision and scale")),
            },
            None => Err(format!("`{sql}` without a precision and scale")),
        }
    };
    let values = enum_values(table, column);
    if let Some(value) = values.iter().find(|v| !crate::validate::valid_enum_value(v)) {
        return Err(format!(
            "enum value `{value}` is not one the schema accepts (ASCII letters, digits, spaces, `-`, `_` and `.`)"
        ));
    }
    let ty = match (dialect, base) {
        (_, "varchar" | "character varying") if !values.is_empty() => "enum".to_owned(),
        (Dialect::Mysql, "enum") if !values.is_empty() => "enum".to_owned(),
        (_, "smallint" | "int2") => "small_integer".to_owned(),
        // SQLite integers are 64-bit whatever the declared type.
        (Dialect::Sqlite, "integer") if !table.checks_non_negative(&column.name) => "big_integer".to_owned(),
        (_, "integer" | "int" | "int4") => integer("integer"),
        (_, "bigint" | "int8") => "big_integer".to_owned(),
        (Dialect::Mysql, "tinyint") if sql.starts_with("tinyint(1)") => "boolean".to_owned(),
        (_, "boolean" | "bool") => "boolean".to_owned(),
        (_, "double precision" | "float8" | "double" | "real") => "float".to_owned(),
        (_, "varchar" | "character varying") => string()?,
        (_, "char" | "bpchar" | "character") => match column.max_length {
            Some(length) if length > 0 && length <= 255 => format!("char({length})"),
            _ => return Err(format!("`{sql}` without a length the schema accepts")),
        },
        (_, "numeric" | "decimal") => digits()?,
        (Dialect::Mysql, "longtext") if table.checks_json(&column.name) => "json".to_owned(),
        (_, "text" | "longtext" | "mediumtext") => "text".to_owned(),
        (_, "bytea" | "blob" | "longblob") => "bytes".to_owned(),
        (Dialect::Mysql, "binary") if column.max_length == Some(16) || sql == "binary(16)" => "uuid".to_owned(),
        (_, "uuid") => "uuid".to_owned(),
        (_, "date") => "date".to_owned(),
        (_, "time" | "time without time zone") => "time".to_owned(),
        (Dialect::Postgres, "timestamptz" | "timestamp with time zone") => "datetime".to_owned(),
        (Dialect::Mysql | Dialect::Sqlite, "datetime") => "datetime".to_owned(),
        (_, "jsonb" | "json") => "json".to_owned(),
        _ => return Err(format!("type `{sql}` has no schema type")),
    };
    Ok(ty)
}

/// A default as a YAML scalar for a field of type `ty`, if the schema can say it.
fn default_literal(sql: &str, ty: &str) -> Option<String> {
    let mut text = sql.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    // PostgreSQL prints casts: `'abc'::character varying`, `'-1'::integer`.
    if let Some(at) = text.rfind("::")
        && !text[at..].contains('\'')
    {
        text = text[..at].trim();
    }
    let unquoted = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .map(|t| t.replace("''", "'"));
    let bare = unquoted.clone().unwrap_or_else(|| text.to_owned());
    match ty {
        "small_integer" | "integer" | "positive_integer" | "big_integer" => {
            bare.parse::<i64>().ok().map(|n| n.to_string())
        }
        "float" => bare.parse::<f64>().ok().map(|x| format!("{x:?}")),
        "boolean" => match bare.to_lowercase().as_str() {
            "true" | "1" => Some("true".to_owned()),
            "false" | "0" => Some("false".to_owned()),
            _ => None,
        },
        // Quoted, so that YAML keeps its digits.
        t if t.starts_with("decimal(") => bare
            .parse::<f64>()
            .is_ok()
            .then(|| serde_json::to_string(&bare).expect("a string serializes")),
        "datetime" if is_now(text) => Some("now".to_owned()),
        t if t.starts_with("string") || t.starts_with("char(") || t == "text" || t == "enum" => {
            let value = match unquoted {
                Some(value) => value,
                // MySQL prints string defaults unquoted; anything else (a function call) is not a value.
                None if !text.contains('(') && !text.eq_ignore_ascii_case("null") => text.to_owned(),
                None => return None,
            };
            Some(serde_json::to_string(&value).expect("a string serializes"))
        }
        _ => None,
    }
}

/// Whether a default is the database's current time, as `ddl` writes it (`default: now`,
/// `auto_now_add`, `auto_now`) or as people do.
fn is_now(sql: &str) -> bool {
    let sql = sql.to_lowercase();
    sql == "current_timestamp"
        || sql == "now()"
        || sql
            .strip_prefix("current_timestamp(")
            .is_some_and(|digits| digits.trim_end_matches(')').parse::<u8>().is_ok())
        || sql == "strftime('%y-%m-%dt%h:%m:%f+00:00', 'now')"
}

/// The YAML text.
fn render(models: &[ModelOut], dialect: Dialect, notes: &[Note]) -> String {
    let database = match dialect {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "mysql",
    };
    let mut out = String::from("# Imported by `autocache-codegen import`.\n");
    if !notes.is_empty() {
        out.push_str("# Not expressible in the schema, left out:\n");
        for note in notes {
            writeln!(out, "#   {}: {}", note.place, note.message).expect("a String");
        }
    }
    writeln!(out, "database: {database}\nmodels:").expect("a String");
    for model in models {
        writeln!(out, "  {}:", model.name).expect("a String");
        if model.table != model.name.to_snake_case() {
            writeln!(out, "    table: {}", model.table).expect("a String");
        }
        if let Some(primary_key) = &model.primary_key {
            writeln!(out, "    primary_key: {primary_key}").expect("a String");
        }
        if model.fields.is_empty() {
            out.push_str("    fields: {}\n");
        } else {
            out.push_str("    fields:\n");
            for (name, flow) in &model.fields {
                writeln!(out, "      {name}: {flow}").expect("a String");
            }
        }
        for (key, groups) in [("unique_together", &model.unique_together), ("indexes", &model.indexes)] {
            if !groups.is_empty() {
                let groups: Vec<String> = groups.iter().map(|group| format!("[{}]", group.join(", "))).collect();
                writeln!(out, "    {key}: [{}]", groups.join(", ")).expect("a String");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DefaultValue;

    fn column(name: &str, sql_type: &str) -> Column {
        Column {
            name: name.to_owned(),
            sql_type: sql_type.to_owned(),
            ..Column::default()
        }
    }

    #[test]
    fn what_cannot_be_said_is_noted_per_column_and_the_rest_written() {
        let mut item = Table {
            name: "item".to_owned(),
            primary_key: vec!["id".to_owned()],
            columns: vec![
                Column {
                    auto: true,
                    ..column("id", "int8")
                },
                column("price", "numeric"),
                Column {
                    default: Some("clock_timestamp()".to_owned()),
                    ..column("seen", "timestamptz")
                },
                Column {
                    max_length: Some(10),
                    ..column("type", "varchar")
                },
                column("a", "int4"),
                column("b", "int4"),
            ],
            ..Table::default()
        };
        item.indexes.push(crate::import::catalog::Index {
            name: "item_a_b".to_owned(),
            columns: vec!["a".to_owned(), "b".to_owned()],
            unique: false,
        });
        let pair = Table {
            name: "pair".to_owned(),
            primary_key: vec!["a".to_owned(), "b".to_owned()],
            columns: vec![column("a", "int4"), column("b", "int4"), column("c", "int4")],
            ..Table::default()
        };
        let measure = Table {
            name: "measure".to_owned(),
            primary_key: vec!["a".to_owned(), "at".to_owned()],
            columns: vec![column("a", "int4"), column("at", "float8")],
            ..Table::default()
        };
        let imported = infer(
            &Catalog {
                tables: vec![item, pair, measure],
            },
            Dialect::Postgres,
        );
        let places: Vec<&str> = imported.notes.iter().map(|n| n.place.as_str()).collect();
        assert_eq!(places, ["item.price", "item.seen", "measure"], "{:?}", imported.notes);
        let schema = crate::validate::load(&imported.yaml, "imported.yaml").expect("the rest is a valid schema");
        let fields: Vec<&str> = schema.models[0].fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(fields, ["seen", "type_field", "a", "b"]);
        assert_eq!(schema.models[0].fields[1].column, "type");
        assert_eq!(schema.models[0].indexes, [["a", "b"]], "a non-unique index is kept");
        assert!(
            matches!(&schema.models[1].primary_key, crate::ir::PrimaryKey::Composite(parts) if parts == &["a", "b"]),
            "a composite key of plain columns is kept"
        );
    }

    /// Every type the validator takes as a part of a composite key is imported as one: an
    /// integer column checked non-negative (a `positive_integer`) among them.
    #[test]
    fn composite_keys_take_every_key_part_type() {
        let table = Table {
            name: "shelf".to_owned(),
            primary_key: vec!["room".to_owned(), "slot".to_owned()],
            columns: vec![column("room", "int4"), column("slot", "int4"), column("label", "text")],
            checks: vec!["CHECK ((slot >= 0))".to_owned()],
            ..Table::default()
        };
        let imported = infer(&Catalog { tables: vec![table] }, Dialect::Postgres);
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let schema = crate::validate::load(&imported.yaml, "imported.yaml").expect("a valid schema");
        let slot = schema.models[0].fields.iter().find(|f| f.name == "slot").expect("slot");
        assert_eq!(crate::type_names::type_key(&slot.ty), "positive_integer");
        assert!(
            matches!(&schema.models[0].primary_key, crate::ir::PrimaryKey::Composite(parts) if parts == &["room", "slot"])
        );
    }

    #[test]
    fn issue_13_types_are_read_back() {
        let table = Table {
            name: "purchase".to_owned(),
            primary_key: vec!["id".to_owned()],
            columns: vec![
                column("id", "int2"),
                Column {
                    max_length: Some(6),
                    default: Some("'open'::character varying".to_owned()),
                    ..column("status", "varchar")
                },
                Column {
                    default: Some("10.00".to_owned()),
                    ..column("total", "numeric(8,2)")
                },
                Column {
                    max_length: Some(4),
                    ..column("code", "bpchar")
                },
                column("number", "int8"),
                Column {
                    default: Some("CURRENT_TIMESTAMP".to_owned()),
                    ..column("placed", "timestamptz")
                },
                Column {
                    max_length: Some(4),
                    ..column("mood", "varchar")
                },
            ],
            checks: vec![
                "CHECK (((status)::text = ANY ((ARRAY['open'::character varying, 'PG-13'::character varying])::text[])))"
                    .to_owned(),
                "CHECK (((mood)::text = ANY ((ARRAY['it''s'::character varying])::text[])))".to_owned(),
                "CHECK ((number >= 0))".to_owned(),
            ],
            indexes: vec![crate::import::catalog::Index {
                name: "purchase_code_idx".to_owned(),
                columns: vec!["code".to_owned()],
                unique: false,
            }],
            ..Table::default()
        };
        let imported = infer(&Catalog { tables: vec![table] }, Dialect::Postgres);
        let notes: Vec<&str> = imported.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(
            notes,
            [
                "left out: enum value `it's` is not one the schema accepts (ASCII letters, digits, spaces, `-`, `_` and `.`)"
            ]
        );
        let schema = crate::validate::load(&imported.yaml, "imported.yaml").expect("a valid schema");
        let model = &schema.models[0];
        assert_eq!(model.target_key().ty, crate::ir::FieldType::SmallInt);
        let types: Vec<String> = model.fields.iter().map(|f| crate::validate::type_key(&f.ty)).collect();
        assert_eq!(
            types,
            ["enum(open|PG-13)", "decimal(8,2)", "char(4)", "big_integer", "datetime"],
            "{}",
            imported.yaml
        );
        let defaults: Vec<Option<DefaultValue>> = model.fields.iter().map(|f| f.default.clone()).collect();
        assert_eq!(
            defaults,
            [
                Some(DefaultValue::Str("open".to_owned())),
                Some(DefaultValue::Decimal("10.00".to_owned())),
                None,
                None,
                Some(DefaultValue::Now)
            ]
        );
        assert!(model.fields[3].unsigned);
        assert_eq!(model.indexes, [["code"]]);
    }

    #[test]
    fn mysql_enums_and_update_times_are_read_back() {
        let table = Table {
            name: "film".to_owned(),
            primary_key: vec!["id".to_owned()],
            columns: vec![
                Column {
                    auto: true,
                    ..column("id", "bigint(20)")
                },
                column("rating", "enum('G','PG-13')"),
                Column {
                    default: Some("current_timestamp(6)".to_owned()),
                    updates_to_now: true,
                    ..column("last_update", "datetime(6)")
                },
            ],
            ..Table::default()
        };
        let imported = infer(&Catalog { tables: vec![table] }, Dialect::Mysql);
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let schema = crate::validate::load(&imported.yaml, "imported.yaml").expect("a valid schema");
        let fields = &schema.models[0].fields;
        assert_eq!(crate::validate::type_key(&fields[0].ty), "enum(G|PG-13)");
        assert_eq!(fields[1].set_by_database, Some(crate::ir::SetBy::EveryWrite));
    }

    #[test]
    fn defaults_lose_casts_and_quotes() {
        assert_eq!(default_literal("'-1'::integer", "integer").as_deref(), Some("-1"));
        assert_eq!(
            default_literal("'it''s'::character varying", "string(5)").as_deref(),
            Some("\"it's\"")
        );
        assert_eq!(default_literal("abc", "text").as_deref(), Some("\"abc\""));
        assert_eq!(default_literal("now()", "text"), None);
        assert_eq!(default_literal("1", "boolean").as_deref(), Some("true"));
        assert_eq!(default_literal("(2.5)", "float").as_deref(), Some("2.5"));
    }
}
