//! CREATE TABLE statements for a schema, per dialect (the `ddl` verb, and the `DDL`
//! constant of generated code that tests and the quickstart create their tables with).

use sha2::{Digest, Sha256};

use crate::ir::{DefaultValue, Dialect, EnumType, Field, FieldType, Model, OnDelete, Schema, SetBy};
use crate::sql::quote;

/// Every statement that creates the schema's tables, join tables and indexes, in an
/// order that satisfies foreign keys: tables in dependency order; a foreign key that closes
/// a cycle (its target is created later) is added by `ALTER TABLE … ADD CONSTRAINT` once
/// every table exists, `DEFERRABLE INITIALLY DEFERRED` on PostgreSQL (MySQL has no
/// deferred constraints; SQLite accepts the forward reference in `CREATE TABLE` and checks
/// it only when rows are written).
pub fn statements(schema: &Schema) -> Vec<String> {
    let dialect = schema.dialect;
    let mut out = Vec::new();
    let mut later = Vec::new();
    let order = creation_order(schema);
    for (position, model) in order.iter().enumerate() {
        let created = |target: &str| order[..=position].iter().any(|m| m.name == target);
        let forward =
            |field: &Field| dialect != Dialect::Sqlite && field.relation.as_ref().is_some_and(|r| !created(&r.target));
        out.push(create_table(schema, model, &forward));
        later.extend(
            model
                .fields
                .iter()
                .filter(|field| forward(field))
                .filter_map(|field| add_foreign_key(schema, model, field)),
        );
        out.extend(
            index_groups(model)
                .iter()
                .map(|columns| create_index(dialect, &model.table, columns)),
        );
    }
    for model in &schema.models {
        // A through model's own table is the join table.
        for m2m in model.many_to_many.iter().filter(|m2m| m2m.through_model.is_none()) {
            let target = schema.models.iter().find(|m| m.name == m2m.target).unwrap_or(model);
            let column = |name: &str, of: &Model| {
                format!(
                    "{} {} NOT NULL REFERENCES {} ({}) ON DELETE CASCADE",
                    quote(dialect, name),
                    sql_type(dialect, &of.target_key().ty, false),
                    quote(dialect, &of.table),
                    quote(dialect, &of.target_key().column)
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
            out.push(create_index(
                dialect,
                &m2m.through,
                std::slice::from_ref(&m2m.target_column),
            ));
        }
    }
    out.extend(later);
    out
}

/// The columns of each non-unique index of a model: its foreign keys' (but a one-to-one's,
/// which is unique), then its declared `indexes` (but one that is a foreign key's own).
pub(crate) fn index_groups(model: &Model) -> Vec<Vec<String>> {
    let foreign_keys = model
        .fields
        .iter()
        .filter(|field| field.relation.is_some() && !field.unique)
        .map(|field| vec![field.column.clone()]);
    let declared = model.indexes.iter().map(|group| {
        group
            .iter()
            .filter_map(|name| model.key_or_field(name))
            .map(|field| field.column.clone())
            .collect::<Vec<String>>()
    });
    let mut groups: Vec<Vec<String>> = Vec::new();
    for columns in foreign_keys.chain(declared) {
        if !groups.contains(&columns) {
            groups.push(columns);
        }
    }
    groups
}

/// `CREATE INDEX <table>_<columns>_idx ON <table> (<columns>)` (see [`index_name`]).
pub(crate) fn create_index(dialect: Dialect, table: &str, columns: &[String]) -> String {
    format!(
        "CREATE INDEX {} ON {} ({})",
        quote(dialect, &index_name(table, &columns.join("_"))),
        quote(dialect, table),
        columns.iter().map(|c| quote(dialect, c)).collect::<Vec<_>>().join(", ")
    )
}

/// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY`, for a foreign key whose target table is
/// created after its own (a cycle); deferrable where the dialect has it.
fn add_foreign_key(schema: &Schema, model: &Model, field: &Field) -> Option<String> {
    let dialect = schema.dialect;
    let references = references(schema, field)?;
    let deferrable = match dialect {
        Dialect::Postgres => " DEFERRABLE INITIALLY DEFERRED",
        Dialect::Sqlite | Dialect::Mysql => "",
    };
    Some(format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}){references}{deferrable}",
        quote(dialect, &model.table),
        quote(dialect, &short_name(&model.table, &field.column, "fkey")),
        quote(dialect, &field.column)
    ))
}

/// ` REFERENCES <target> (<primary key>) ON DELETE <action>` of a relation column.
pub(crate) fn references(schema: &Schema, field: &Field) -> Option<String> {
    let relation = field.relation.as_ref()?;
    let target = schema.models.iter().find(|m| m.name == relation.target)?;
    let action = match relation.on_delete {
        OnDelete::Cascade => "CASCADE",
        OnDelete::SetNull => "SET NULL",
        OnDelete::Restrict => "RESTRICT",
    };
    Some(format!(
        " REFERENCES {} ({}) ON DELETE {action}",
        quote(schema.dialect, &target.table),
        quote(schema.dialect, &target.target_key().column)
    ))
}

/// `<table>_<column>_idx`, or, past the 63 characters PostgreSQL and MySQL allow, its first
/// 50 characters and a digest of the whole (so long names stay distinct).
pub(crate) fn index_name(table: &str, column: &str) -> String {
    short_name(table, column, "idx")
}

/// `<table>_<column>_<suffix>` for an index or constraint, shortened as [`index_name`] says.
pub(crate) fn short_name(table: &str, column: &str, suffix: &str) -> String {
    let name = format!("{table}_{column}_{suffix}");
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
    format!("{}_{hex}_{suffix}", &name[..cut])
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

/// `CREATE TABLE`; the relation columns for which `later` holds get their `REFERENCES`
/// from [`add_foreign_key`] instead.
fn create_table(schema: &Schema, model: &Model, later: &dyn Fn(&Field) -> bool) -> String {
    let dialect = schema.dialect;
    let own_key = model.key_column().map(|key| column(schema, model, key, true));
    let mut lines: Vec<String> = own_key
        .into_iter()
        .chain(model.fields.iter().map(|field| {
            let mut sql = column(schema, model, field, false);
            if !later(field) {
                sql.push_str(&references(schema, field).unwrap_or_default());
            }
            sql
        }))
        .collect();
    if model.key_column().is_none() {
        let parts: Vec<String> = model.key_fields().iter().map(|f| quote(dialect, &f.column)).collect();
        lines.push(format!("PRIMARY KEY ({})", parts.join(", ")));
    }
    for group in &model.unique_together {
        let cols: Vec<String> = group
            .iter()
            .filter_map(|name| model.field_named(name))
            .map(|field| quote(dialect, &field.column))
            .collect();
        lines.push(format!("UNIQUE ({})", cols.join(", ")));
    }
    format!("CREATE TABLE {} ({})", quote(dialect, &model.table), lines.join(", "))
}

/// The definition of one column, as in `CREATE TABLE` (and `ADD COLUMN`), without its
/// `REFERENCES` (see [`references`]).
pub(crate) fn column(schema: &Schema, model: &Model, field: &Field, primary_key: bool) -> String {
    let dialect = schema.dialect;
    let name = quote(dialect, &field.column);
    if field.auto {
        return match dialect {
            Dialect::Sqlite => format!("{name} INTEGER PRIMARY KEY AUTOINCREMENT"),
            Dialect::Postgres => format!("{name} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
            Dialect::Mysql => format!("{name} BIGINT AUTO_INCREMENT PRIMARY KEY"),
        };
    }
    let indexed = field.unique || model.is_key(field) || model.indexes.iter().flatten().any(|name| *name == field.name);
    let mut sql = format!("{name} {}", sql_type(dialect, &field.ty, indexed));
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
        sql.push_str(&format!(" DEFAULT {}", literal(dialect, default)));
    }
    if field.set_by_database == Some(SetBy::EveryWrite) && dialect == Dialect::Mysql {
        // Also for updates other programs make (the generated ones set it themselves).
        sql.push_str(" ON UPDATE CURRENT_TIMESTAMP(6)");
    }
    if let Some(check) = check(dialect, field, &name) {
        sql.push_str(&format!(" CHECK ({check})"));
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
        // SQLite has no exact decimal type: the value's text is stored (sqlx's `Text`).
        (FieldType::Decimal { .. }, Sqlite) => "TEXT".into(),
        (FieldType::Decimal { precision, scale }, Postgres) => format!("NUMERIC({precision}, {scale})"),
        (FieldType::Decimal { precision, scale }, Mysql) => format!("DECIMAL({precision}, {scale})"),
        (FieldType::Enum(e), Mysql) => format!("ENUM({})", value_list(e)),
        (FieldType::Enum(e), Sqlite | Postgres) => {
            let longest = e.values.iter().map(|v| v.value.len()).max().unwrap_or(1);
            format!("VARCHAR({longest})")
        }
        (FieldType::Char { length }, _) => format!("CHAR({length})"),
    }
}

/// The CHECK constraint a column's type or `unsigned` needs, if any (`name` quoted).
fn check(dialect: Dialect, field: &Field, name: &str) -> Option<String> {
    match &field.ty {
        FieldType::PositiveInt => Some(format!("{name} >= 0")),
        _ if field.unsigned => Some(format!("{name} >= 0")),
        // MySQL's ENUM type refuses other values itself.
        FieldType::Enum(e) if dialect != Dialect::Mysql => Some(format!("{name} IN ({})", value_list(e))),
        _ => None,
    }
}

/// The values of an enum as SQL string literals, comma separated.
fn value_list(e: &EnumType) -> String {
    e.values
        .iter()
        .map(|v| text_literal(&v.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SQL string literal.
fn text_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A default value as a SQL literal of `dialect`.
pub fn literal(dialect: Dialect, value: &DefaultValue) -> String {
    match value {
        DefaultValue::Int(n) => n.to_string(),
        DefaultValue::Float(x) => format!("{x:?}"),
        DefaultValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        DefaultValue::Str(s) => text_literal(s),
        // Stored as text on SQLite (see `sql_type`).
        DefaultValue::Decimal(d) if dialect == Dialect::Sqlite => text_literal(d),
        DefaultValue::Decimal(d) => d.clone(),
        // The text sqlx writes for a `DateTime<Utc>` (RFC 3339, UTC), so that values set
        // by the program and by the database compare in time order.
        DefaultValue::Now if dialect == Dialect::Sqlite => "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))".into(),
        DefaultValue::Now if dialect == Dialect::Postgres => "CURRENT_TIMESTAMP".into(),
        DefaultValue::Now => "CURRENT_TIMESTAMP(6)".into(),
    }
}
