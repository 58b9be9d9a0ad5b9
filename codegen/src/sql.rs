//! The SQL statements of each model, written for the schema's dialect.

use crate::ir::{DefaultValue, Dialect, Field, FieldType, Model, SetBy};

/// Every statement the runtime runs for one model.
#[derive(Debug, serde::Serialize)]
pub struct Statements {
    /// Rows by a list of primary keys (`{ids}` is expanded by the runtime).
    pub select_by_ids: String,
    /// Same as `select_by_ids`, locking the rows where the dialect can.
    pub select_for_update: String,
    /// One insert returning every column.
    pub insert: String,
    /// Where the database assigns the key from a sequence the runtime can reserve from
    /// (PostgreSQL's auto keys): the reservation and an insert that binds the key first.
    pub keyed_insert: Option<KeyedInsert>,
    /// One update by primary key, returning every column where the dialect can: on
    /// PostgreSQL the row as it was (locked) and as it is, in two rows.
    pub update: String,
    /// What `update` returns: the variant of `autocache::UpdateReturns`.
    pub update_returns: &'static str,
    /// Delete by primary key (`{ids}`) returning every column.
    pub delete: String,
    /// PostgreSQL, a key of one column: that column's value from the key's text bound as
    /// `$1` (see the runtime's `ModelSql::key_from_text`).
    pub key_from_text: Option<String>,
    /// `SELECT <columns> FROM <table> WHERE ` (bulk writes add their condition).
    pub select_where: String,
    /// ` FOR UPDATE` where the dialect locks selected rows that way, else empty.
    pub lock_rows: String,
    /// `UPDATE <table> SET ` and the `auto_now` columns' assignments (bulk updates add
    /// theirs).
    pub update_set: String,
    /// ` WHERE <primary key> IN ({ids})`.
    pub where_ids: String,
}

/// An insert of a row whose key was reserved beforehand from the key column's sequence, so
/// that the key is known before the statement (see the runtime's `KeyedInsert`).
#[derive(Debug, serde::Serialize)]
pub struct KeyedInsert {
    /// Reserves `$1` keys (bound as text): one row each, the key's text in the first column;
    /// none if the column has no sequence (a key the table's own default computes).
    pub reserve: String,
    /// Inserts one row with its key's text bound first (`$1`), then the insert's other values,
    /// returning every column.
    pub insert: String,
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

/// The columns a row is selected with: the primary key column first (a composite key's
/// parts are fields), then fields in order.
pub fn columns(model: &Model) -> Vec<&Field> {
    model.key_column().into_iter().chain(&model.fields).collect()
}

/// The fields an insert binds: all but an auto-increment primary key and the columns the
/// database sets itself.
pub fn inserted(model: &Model) -> Vec<&Field> {
    columns(model)
        .into_iter()
        .filter(|field| !field.auto && field.set_by_database.is_none())
        .collect()
}

/// The fields an update binds (and a bulk update may change), in order: every field but
/// the parts of a composite key (a row's identity) and those the database sets itself.
pub fn updated(model: &Model) -> Vec<&Field> {
    model
        .fields
        .iter()
        .filter(|field| field.set_by_database.is_none() && !model.is_key(field))
        .collect()
}

/// What a statement compares a row's primary key with: the key column, or a composite
/// key's parts as a row value (`("a", "b")`, compared with `((?, ?), …)`).
fn key_term(dialect: Dialect, model: &Model) -> String {
    let columns: Vec<String> = model.key_fields().iter().map(|f| quote(dialect, &f.column)).collect();
    match columns.as_slice() {
        [column] => column.clone(),
        _ => format!("({})", columns.join(", ")),
    }
}

/// Writes every statement of `model`.
pub fn statements(dialect: Dialect, model: &Model) -> Statements {
    let q = |ident: &str| quote(dialect, ident);
    let table = q(&model.table);
    let pk = key_term(dialect, model);
    let select_list = columns(model)
        .iter()
        .map(|field| q(&field.column))
        .collect::<Vec<_>>()
        .join(", ");
    let select = format!("SELECT {select_list} FROM {table}");
    let returning = format!(" RETURNING {select_list}");
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres | Dialect::Mysql => " FOR UPDATE",
    };

    // Columns the database sets itself take its clock, not a bound value.
    let now = crate::ddl::literal(dialect, &DefaultValue::Now);
    let (insert_columns, insert_values) = insert_values(dialect, model, 0);

    let mut bound = 0;
    let assignments: Vec<String> = model
        .fields
        .iter()
        .filter(|field| !model.is_key(field))
        .filter_map(|field| match field.set_by_database {
            Some(SetBy::Insert) => None,
            Some(SetBy::EveryWrite) => Some(format!("{} = {now}", q(&field.column))),
            None => {
                bound += 1;
                Some(format!("{} = {}", q(&field.column), placeholder(dialect, bound)))
            }
        })
        .collect();
    let key_columns: Vec<String> = model.key_fields().iter().map(|f| q(&f.column)).collect();
    let assignments = if assignments.is_empty() {
        // Nothing but the primary key: the update changes nothing, and returns the row.
        // (PostgreSQL's update joins the old row, so the column is named with its table.)
        let first = &key_columns[0];
        match dialect {
            Dialect::Postgres => format!("{first} = autocache_row.{first}"),
            Dialect::Sqlite | Dialect::Mysql => format!("{first} = {first}"),
        }
    } else {
        assignments.join(", ")
    };
    // The key's columns, each equal to its bound part.
    let update_pk: String = key_columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = {}", placeholder(dialect, bound + 1 + i)))
        .collect::<Vec<_>>()
        .join(" AND ");
    // PostgreSQL's update: the updated row joined to the old one by every key column.
    let same_row: String = key_columns
        .iter()
        .map(|column| format!("autocache_row.{column} = autocache_old.{column}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let new_list = columns(model)
        .iter()
        .map(|field| format!("autocache_row.{}", q(&field.column)))
        .collect::<Vec<_>>()
        .join(", ");
    // Bulk updates append their assignments to `update_set`.
    let touched: String = model
        .fields
        .iter()
        .filter(|field| field.set_by_database == Some(SetBy::EveryWrite))
        .map(|field| format!("{} = {now}, ", q(&field.column)))
        .collect();

    Statements {
        select_where: format!("{select} WHERE "),
        lock_rows: lock.to_owned(),
        update_set: format!("UPDATE {table} SET {touched}"),
        where_ids: format!(" WHERE {pk} IN ({{ids}})"),
        select_by_ids: format!("{select} WHERE {pk} IN ({{ids}})"),
        select_for_update: format!("{select} WHERE {pk} IN ({{ids}}){lock}"),
        insert: match (insert_columns.is_empty(), dialect) {
            (false, _) => format!("INSERT INTO {table} ({insert_columns}) VALUES ({insert_values}){returning}"),
            (true, Dialect::Mysql) => format!("INSERT INTO {table} () VALUES (){returning}"),
            (true, Dialect::Sqlite | Dialect::Postgres) => format!("INSERT INTO {table} DEFAULT VALUES{returning}"),
        },
        keyed_insert: keyed_insert(dialect, model, &returning),
        update: match dialect {
            Dialect::Mysql => format!("UPDATE {table} SET {assignments} WHERE {update_pk}"),
            Dialect::Sqlite => format!("UPDATE {table} SET {assignments} WHERE {update_pk}{returning}"),
            // The old row is locked and returned by the statement itself (no `SELECT … FOR
            // UPDATE` before it): the first row as it was, the second as it is now.
            Dialect::Postgres => format!(
                "WITH autocache_old AS ({select} WHERE {update_pk}{lock}), \
                 autocache_new AS (UPDATE {table} AS autocache_row SET {assignments} FROM autocache_old \
                 WHERE {same_row} RETURNING {new_list}) \
                 SELECT 1 AS autocache_version, {select_list} FROM autocache_old \
                 UNION ALL SELECT 2, {select_list} FROM autocache_new ORDER BY 1"
            ),
        },
        update_returns: match dialect {
            Dialect::Mysql => "Nothing",
            Dialect::Sqlite => "Row",
            Dialect::Postgres => "OldThenRow",
        },
        delete: format!("DELETE FROM {table} WHERE {pk} IN ({{ids}}){returning}"),
        key_from_text: model
            .key_column()
            .filter(|_| dialect == Dialect::Postgres)
            .map(|key| key_param(dialect, &key.ty)),
    }
}

/// The inserted columns and their values, comma separated: a bound placeholder each, numbered
/// after `before` others (with its default where the field has one), or the database's
/// clock for the columns it sets itself; an auto key is left to the database.
fn insert_values(dialect: Dialect, model: &Model, before: usize) -> (String, String) {
    let now = crate::ddl::literal(dialect, &DefaultValue::Now);
    let mut bound = before;
    let mut next = || {
        bound += 1;
        placeholder(dialect, bound)
    };
    let (columns, values): (Vec<String>, Vec<String>) = columns(model)
        .into_iter()
        .filter(|field| !field.auto)
        .map(|field| {
            let value = match (&field.set_by_database, &field.default) {
                (Some(_), _) => now.clone(),
                (None, Some(default)) => format!("COALESCE({}, {})", next(), crate::ddl::literal(dialect, default)),
                (None, None) => next(),
            };
            (quote(dialect, &field.column), value)
        })
        .unzip();
    (columns.join(", "), values.join(", "))
}

/// PostgreSQL's insert of a row whose auto key was reserved from the column's sequence
/// (`nextval` of `pg_get_serial_sequence`, an identity column's or a `serial`'s), bound
/// first; `OVERRIDING SYSTEM VALUE` lets it into a `GENERATED ALWAYS` column too.
fn keyed_insert(dialect: Dialect, model: &Model, returning: &str) -> Option<KeyedInsert> {
    let key = model.key_column().filter(|key| key.auto)?;
    if dialect != Dialect::Postgres {
        return None;
    }
    let table = quote(dialect, &model.table);
    let text = |s: &str| s.replace('\'', "''");
    let (columns, values) = insert_values(dialect, model, 1);
    let (key_column, separator) = (quote(dialect, &key.column), if columns.is_empty() { "" } else { ", " });
    Some(KeyedInsert {
        reserve: format!(
            "SELECT CAST(nextval(autocache_sequence) AS TEXT) \
             FROM pg_get_serial_sequence('{}', '{}') AS autocache_sequence, generate_series(1, CAST($1 AS BIGINT)) \
             WHERE autocache_sequence IS NOT NULL",
            text(&table),
            text(&key.column)
        ),
        insert: format!(
            "INSERT INTO {table} ({key_column}{separator}{columns}) OVERRIDING SYSTEM VALUE \
             VALUES (CAST($1 AS BIGINT){separator}{values}){returning}"
        ),
    })
}

/// Selects every column of the row whose `fields` hold the bound values (one each, in order).
pub fn select_by_values(dialect: Dialect, model: &Model, fields: &[&Field]) -> String {
    let list = columns(model)
        .iter()
        .map(|f| quote(dialect, &f.column))
        .collect::<Vec<_>>()
        .join(", ");
    let conditions = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = {}", quote(dialect, &f.column), placeholder(dialect, i + 1)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("SELECT {list} FROM {} WHERE {conditions}", quote(dialect, &model.table))
}

/// Selects the rows of `model` whose `fields` hold the bound values, in order: an index
/// lookup's collection.
pub fn members_by_values(dialect: Dialect, model: &Model, fields: &[&Field]) -> String {
    format!(
        "{}{}",
        select_by_values(dialect, model, fields),
        order_by(dialect, model, "")
    )
}

/// `ORDER BY` of a model's collections: its ordering, then the primary key.
pub fn order_by(dialect: Dialect, model: &Model, alias: &str) -> String {
    let mut terms: Vec<String> = model
        .ordering
        .iter()
        .filter_map(|(name, descending)| {
            let field = columns(model)
                .into_iter()
                .find(|f| f.name == *name || f.relation.as_ref().is_some_and(|r| r.name == *name))?;
            let column = format!("{alias}{}", quote(dialect, &field.column));
            // SQLite keeps decimals as text (see `ddl::sql_type`): order them as numbers.
            let term = match (&field.ty, dialect) {
                (FieldType::Decimal { .. }, Dialect::Sqlite) => format!("CAST({column} AS REAL)"),
                _ => column,
            };
            Some(format!("{term} {}", if *descending { "DESC" } else { "ASC" }))
        })
        .collect();
    for key in model.key_fields() {
        let named = |name: &String| *name == key.name || key.relation.as_ref().is_some_and(|r| r.name == *name);
        if !model.ordering.iter().any(|(name, _)| named(name)) {
            terms.push(format!("{alias}{} ASC", quote(dialect, &key.column)));
        }
    }
    format!(" ORDER BY {}", terms.join(", "))
}

/// Selects the rows of `members` whose `column` equals the bound owner key, in order.
pub fn members_by_column(dialect: Dialect, members: &Model, column: &str) -> String {
    let select = rows_where(dialect, members, column, &placeholder(dialect, 1));
    format!("{select}{}", order_by(dialect, members, ""))
}

/// `SELECT <every column of model> FROM <table> WHERE <column> = <value>`.
fn rows_where(dialect: Dialect, model: &Model, column: &str, value: &str) -> String {
    let list = columns(model)
        .iter()
        .map(|f| quote(dialect, &f.column))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {list} FROM {} WHERE {} = {value}",
        quote(dialect, &model.table),
        quote(dialect, column)
    )
}

/// Selects the rows of `members` paired in join table `through` (`member_column` points at
/// them) with the bound owner key in `owner_column`, in order.
pub fn members_through(
    dialect: Dialect,
    members: &Model,
    through: &str,
    member_column: &str,
    owner_column: &str,
) -> String {
    paired_rows(
        dialect,
        members,
        through,
        (member_column, owner_column),
        &placeholder(dialect, 1),
    )
}

/// Like [`members_through`], the owner key bound as text (of primary-key type `owner_ty`),
/// as footprint statements bind it: a writer re-reads the collections a row is in.
pub fn members_through_text(
    dialect: Dialect,
    members: &Model,
    through: &str,
    (member_column, owner_column): (&str, &str),
    owner_ty: &FieldType,
) -> String {
    let owner = key_param(dialect, owner_ty);
    paired_rows(dialect, members, through, (member_column, owner_column), &owner)
}

/// The rows of `members` paired in `through` with `owner` (an SQL expression), in order.
fn paired_rows(
    dialect: Dialect,
    members: &Model,
    through: &str,
    (member_column, owner_column): (&str, &str),
    owner: &str,
) -> String {
    let q = |ident: &str| quote(dialect, ident);
    let list = columns(members)
        .iter()
        .map(|f| format!("m.{}", q(&f.column)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {list} FROM {} m JOIN {} j ON j.{} = m.{} WHERE j.{} = {owner}{}",
        q(&members.table),
        q(through),
        q(member_column),
        q(&members.target_key().column),
        q(owner_column),
        order_by(dialect, members, "m.")
    )
}

/// A column converted to the text its values have in cache keys (their `Display`):
/// footprint statements bind and return keys as text. A uuid stored as bytes (SQLite
/// `BLOB`, MySQL `BINARY(16)`) is spelled out as lowercase hyphenated hex.
pub fn as_text(dialect: Dialect, column: &str, ty: &FieldType) -> String {
    let column = quote(dialect, column);
    match (dialect, ty) {
        (Dialect::Mysql, FieldType::Uuid) => format!("LOWER(CONCAT_WS('-', {}))", uuid_hex_groups(&column).join(", ")),
        (Dialect::Sqlite, FieldType::Uuid) => format!("LOWER({})", uuid_hex_groups(&column).join(" || '-' || ")),
        (Dialect::Mysql, _) => format!("CAST({column} AS CHAR)"),
        (Dialect::Sqlite | Dialect::Postgres, _) => format!("CAST({column} AS TEXT)"),
    }
}

/// The five hex groups (8-4-4-4-12 digits) of a uuid column stored as 16 bytes.
fn uuid_hex_groups(column: &str) -> [String; 5] {
    [(1, 8), (9, 4), (13, 4), (17, 4), (21, 12)].map(|(from, len)| format!("SUBSTR(HEX({column}), {from}, {len})"))
}

/// The first placeholder, holding a key's text, converted to a primary-key type `ty`, so
/// that comparing a column with it can use the column's index (comparing the column
/// converted to text could not).
pub fn key_param(dialect: Dialect, ty: &FieldType) -> String {
    let param = placeholder(dialect, 1);
    match (dialect, ty) {
        (Dialect::Sqlite, FieldType::Uuid) => format!("unhex(replace({param}, '-', ''))"),
        (Dialect::Mysql, FieldType::Uuid) => format!("UNHEX(REPLACE({param}, '-', ''))"),
        (Dialect::Postgres, FieldType::Uuid) => format!("CAST({param} AS UUID)"),
        (Dialect::Postgres, FieldType::SmallInt | FieldType::Int | FieldType::PositiveInt | FieldType::BigInt) => {
            format!("CAST({param} AS BIGINT)")
        }
        // Text compares as is; SQLite and MySQL convert text to an integer column's type.
        _ => param,
    }
}

/// Selects `wanted` as text from `table` where `column` equals the bound key text; each
/// column is given with its type.
pub fn texts_where(dialect: Dialect, table: &str, wanted: (&str, &FieldType), column: (&str, &FieldType)) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} = {}",
        as_text(dialect, wanted.0, wanted.1),
        quote(dialect, table),
        quote(dialect, column.0),
        key_param(dialect, column.1)
    )
}

/// Selects every column of `model`'s rows whose `column` equals the bound key text.
pub fn rows_where_text(dialect: Dialect, model: &Model, column: (&str, &FieldType)) -> String {
    rows_where(dialect, model, column.0, &key_param(dialect, column.1))
}

/// The statements of one side of a join table: insert a pair (ignoring an existing one),
/// delete a pair, select the other side's keys of one key of this side.
pub fn join_side(dialect: Dialect, through: &str, this_column: &str, other_column: &str) -> [String; 3] {
    let q = |ident: &str| quote(dialect, ident);
    let (p1, p2) = (placeholder(dialect, 1), placeholder(dialect, 2));
    let pair = format!(
        "{} ({}, {}) VALUES ({p1}, {p2})",
        q(through),
        q(this_column),
        q(other_column)
    );
    let insert = match dialect {
        Dialect::Sqlite => format!("INSERT OR IGNORE INTO {pair}"),
        Dialect::Postgres => format!("INSERT INTO {pair} ON CONFLICT DO NOTHING"),
        Dialect::Mysql => format!("INSERT IGNORE INTO {pair}"),
    };
    let delete = format!(
        "DELETE FROM {} WHERE {} = {p1} AND {} = {p2}",
        q(through),
        q(this_column),
        q(other_column)
    );
    let select = format!(
        "SELECT {} FROM {} WHERE {} = {p1}",
        q(other_column),
        q(through),
        q(this_column)
    );
    [insert, delete, select]
}
