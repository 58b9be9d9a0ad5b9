//! CREATE TABLE statements for a schema, per dialect (the `ddl` verb, and the `DDL`
//! constant of generated code that tests and the quickstart create their tables with).

use sha2::{Digest, Sha256};

use crate::ir::{DefaultValue, Dialect, Field, FieldType, Model, OnDelete, Schema};
use crate::sql::quote;

/// Every statement that creates the schema's tables, join tables and indexes, in an
/// order that satisfies foreign keys.
pub fn statements(schema: &Schema) -> Vec<String> {
    let dialect = schema.dialect;
    let mut out = Vec::new();
    for model in creation_order(schema) {
        out.push(create_table(schema, model));
        for field in model
            .fields
            .iter()
            .filter(|field| field.relation.is_some() && !field.unique)
        {
            out.push(format!(
                "CREATE INDEX {} ON {} ({})",
                quote(dialect, &index_name(&model.table, &field.column)),
                quote(dialect, &model.table),
                quote(dialect, &field.column)
            ));
        }
    }
    for model in &schema.models {
        for m2m in &model.many_to_many {
            let target = schema.models.iter().find(|m| m.name == m2m.target).unwrap_or(model);
            let column = |name: &str, of: &Model| {
                format!(
                    "{} {} NOT NULL REFERENCES {} ({}) ON DELETE CASCADE",
                    quote(dialect, name),
                    sql_type(dialect, &of.primary_key.ty, false),
                    quote(dialect, &of.table),
                    quote(dialect, &of.primary_key.column)
                )
            };
            out.push(format!(
                "CREATE TABLE {} ({}, {}, PRIMARY KEY ({}, {}))",
                quote(dialect, &m2m.through),
                column(&m2m.source_column, model),
                column(&m2m.target_column, target),
                quote(dialect, &m2m.source_column),
                quote(dialect, &m2m.target_column)
            ));
            out.push(format!(
                "CREATE INDEX {} ON {} ({})",
                quote(dialect, &index_name(&m2m.through, &m2m.target_column)),
                quote(dialect, &m2m.through),
                quote(dialect, &m2m.target_column)
            ));
        }
    }
    out
}

/// `<table>_<column>_idx`, or, past the 63 characters PostgreSQL and MySQL allow, its first
/// 50 characters and a digest of the whole (so long names stay distinct).
fn index_name(table: &str, column: &str) -> String {
    let name = format!("{table}_{column}_idx");
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let cut = name
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|&i| i <= 50)
        .last()
        .unwrap_or(0);
    format!("{}_{hex}_idx", &name[..cut])
}

/// Models ordered so that every foreign key's target is created first (declaration order
/// where there is no constraint, or a cycle).
fn creation_order(schema: &Schema) -> Vec<&Model> {
    let mut done: Vec<&Model> = Vec::new();
    while done.len() < schema.models.len() {
        let ready = schema.models.iter().find(|model| {
            !done.iter().any(|d| d.name == model.name)
                && model
                    .fields
                    .iter()
                    .filter_map(|f| f.relation.as_ref())
                    .all(|relation| relation.target == model.name || done.iter().any(|d| d.name == relation.target))
        });
        let next = ready.unwrap_or_else(|| {
            schema
                .models
                .iter()
                .find(|model| !done.iter().any(|d| d.name == model.name))
                .expect("a model is left")
        });
        done.push(next);
    }
    done
}

fn create_table(schema: &Schema, model: &Model) -> String {
    let dialect = schema.dialect;
    let mut lines: Vec<String> = std::iter::once(column(schema, &model.primary_key, true))
        .chain(model.fields.iter().map(|field| column(schema, field, false)))
        .collect();
    for group in &model.unique_together {
        let cols: Vec<String> = group
            .iter()
            .filter_map(|name| {
                model
                    .fields
                    .iter()
                    .find(|f| f.name == *name || f.relation.as_ref().is_some_and(|r| r.name == *name))
            })
            .map(|field| quote(dialect, &field.column))
            .collect();
        lines.push(format!("UNIQUE ({})", cols.join(", ")));
    }
    format!("CREATE TABLE {} ({})", quote(dialect, &model.table), lines.join(", "))
}

fn column(schema: &Schema, field: &Field, primary_key: bool) -> String {
    let dialect = schema.dialect;
    let name = quote(dialect, &field.column);
    if field.auto {
        return match dialect {
            Dialect::Sqlite => format!("{name} INTEGER PRIMARY KEY AUTOINCREMENT"),
            Dialect::Postgres => format!("{name} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
            Dialect::Mysql => format!("{name} BIGINT AUTO_INCREMENT PRIMARY KEY"),
        };
    }
    let mut sql = format!("{name} {}", sql_type(dialect, &field.ty, field.unique));
    if primary_key {
        sql.push_str(" PRIMARY KEY");
        return sql;
    }
    if !field.nullable {
        sql.push_str(" NOT NULL");
    }
    if field.unique {
        sql.push_str(" UNIQUE");
    }
    if let Some(default) = &field.default {
        sql.push_str(&format!(" DEFAULT {}", literal(default)));
    }
    if field.ty == FieldType::PositiveInt {
        sql.push_str(&format!(" CHECK ({name} >= 0)"));
    }
    if let Some(relation) = &field.relation
        && let Some(target) = schema.models.iter().find(|m| m.name == relation.target)
    {
        let action = match relation.on_delete {
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
            OnDelete::Restrict => "RESTRICT",
        };
        sql.push_str(&format!(
            " REFERENCES {} ({}) ON DELETE {action}",
            quote(dialect, &target.table),
            quote(dialect, &target.primary_key.column)
        ));
    }
    sql
}

/// The column type of `ty` in `dialect` (`indexed`: MySQL needs bounded types for keys).
pub fn sql_type(dialect: Dialect, ty: &FieldType, indexed: bool) -> String {
    use Dialect::{Mysql, Postgres, Sqlite};
    match (ty, dialect) {
        (FieldType::SmallInt, _) => "SMALLINT".into(),
        (FieldType::Int | FieldType::PositiveInt, _) => "INTEGER".into(),
        (FieldType::BigInt, Sqlite) => "INTEGER".into(),
        (FieldType::BigInt, _) => "BIGINT".into(),
        (FieldType::Bool, _) => "BOOLEAN".into(),
        (FieldType::Float, Sqlite) => "REAL".into(),
        (FieldType::Float, Postgres) => "DOUBLE PRECISION".into(),
        (FieldType::Float, Mysql) => "DOUBLE".into(),
        (FieldType::String { max_length }, _) => format!("VARCHAR({max_length})"),
        (FieldType::Text, Mysql) if indexed => "VARCHAR(255)".into(),
        (FieldType::Text, _) => "TEXT".into(),
        (FieldType::Bytes, Sqlite) => "BLOB".into(),
        (FieldType::Bytes, Postgres) => "BYTEA".into(),
        (FieldType::Bytes, Mysql) => "LONGBLOB".into(),
        (FieldType::Uuid, Sqlite) => "BLOB".into(),
        (FieldType::Uuid, Postgres) => "UUID".into(),
        (FieldType::Uuid, Mysql) => "BINARY(16)".into(),
        (FieldType::Date, _) => "DATE".into(),
        (FieldType::Time, _) => "TIME".into(),
        (FieldType::DateTime, Sqlite) => "DATETIME".into(),
        (FieldType::DateTime, Postgres) => "TIMESTAMPTZ".into(),
        (FieldType::DateTime, Mysql) => "DATETIME(6)".into(),
        (FieldType::Json, Postgres) => "JSONB".into(),
        (FieldType::Json, Mysql) => "JSON".into(),
        (FieldType::Json, Sqlite) => "TEXT".into(),
    }
}

/// A default value as a SQL literal.
pub fn literal(value: &DefaultValue) -> String {
    match value {
        DefaultValue::Int(n) => n.to_string(),
        DefaultValue::Float(x) => format!("{x:?}"),
        DefaultValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        DefaultValue::Str(s) => format!("'{}'", s.replace('\'', "''")),
    }
}
