//! The SQL statements of each model, written for the schema's dialect.

use crate::ir::{Dialect, Field, Model};

/// Every statement the runtime runs for one model.
#[derive(Debug, serde::Serialize)]
pub struct Statements {
    /// Rows by a list of primary keys (`{ids}` is expanded by the runtime).
    pub select_by_ids: String,
    /// Same as `select_by_ids`, locking the rows where the dialect can.
    pub select_for_update: String,
    /// One insert returning every column.
    pub insert: String,
    /// One update by primary key returning every column.
    pub update: String,
    /// Delete by primary key (`{ids}`) returning every column.
    pub delete: String,
    /// Per unique field: `(field name, select of the row holding a value)`.
    pub select_by_unique: Vec<(String, String)>,
}

/// Quotes an identifier for `dialect`.
pub fn quote(dialect: Dialect, ident: &str) -> String {
    match dialect {
        Dialect::Mysql => format!("`{ident}`"),
        Dialect::Sqlite | Dialect::Postgres => format!("\"{ident}\""),
    }
}

/// The `n`-th (1-based) bind placeholder.
fn placeholder(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Postgres => format!("${n}"),
        Dialect::Sqlite | Dialect::Mysql => "?".to_owned(),
    }
}

/// The columns a row is selected with: primary key first, then fields in order.
pub fn columns(model: &Model) -> Vec<&Field> {
    std::iter::once(&model.primary_key).chain(&model.fields).collect()
}

/// The fields an insert binds (all but an auto-increment primary key).
pub fn inserted(model: &Model) -> Vec<&Field> {
    columns(model).into_iter().filter(|field| !field.auto).collect()
}

/// Writes every statement of `model`.
pub fn statements(dialect: Dialect, model: &Model) -> Statements {
    let q = |ident: &str| quote(dialect, ident);
    let table = q(&model.table);
    let pk = q(&model.primary_key.column);
    let select_list = columns(model).iter().map(|field| q(&field.column)).collect::<Vec<_>>().join(", ");
    let select = format!("SELECT {select_list} FROM {table}");
    let returning = format!(" RETURNING {select_list}");
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres | Dialect::Mysql => " FOR UPDATE",
    };

    let inserted = inserted(model);
    let insert_columns = inserted.iter().map(|field| q(&field.column)).collect::<Vec<_>>().join(", ");
    let insert_values = inserted
        .iter()
        .enumerate()
        .map(|(i, field)| match &field.default {
            Some(default) => format!("COALESCE({}, {})", placeholder(dialect, i + 1), crate::ddl::literal(default)),
            None => placeholder(dialect, i + 1),
        })
        .collect::<Vec<_>>()
        .join(", ");

    let assignments = model
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| format!("{} = {}", q(&field.column), placeholder(dialect, i + 1)))
        .collect::<Vec<_>>()
        .join(", ");
    let update_pk = placeholder(dialect, model.fields.len() + 1);

    Statements {
        select_by_ids: format!("{select} WHERE {pk} IN ({{ids}})"),
        select_for_update: format!("{select} WHERE {pk} IN ({{ids}}){lock}"),
        insert: format!("INSERT INTO {table} ({insert_columns}) VALUES ({insert_values}){returning}"),
        update: format!("UPDATE {table} SET {assignments} WHERE {pk} = {update_pk}{returning}"),
        delete: format!("DELETE FROM {table} WHERE {pk} IN ({{ids}}){returning}"),
        select_by_unique: model
            .fields
            .iter()
            .filter(|field| field.unique)
            .map(|field| {
                let sql = format!("{select} WHERE {} = {}", q(&field.column), placeholder(dialect, 1));
                (field.name.clone(), sql)
            })
            .collect(),
    }
}
