//! Reads the catalog of a SQLite database.

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::import::catalog::{Catalog, Column, ForeignKey, Index, Table};

/// The catalog of the SQLite database on `conn`.
pub async fn read(conn: &mut SqliteConnection) -> Result<Catalog, sqlx::Error> {
    let mut catalog = Catalog::default();
    let tables = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in tables {
        let name: String = row.try_get(0)?;
        let sql: String = row.try_get(1)?;
        let quoted = name.replace('"', "\"\"");
        let mut table = Table {
            name,
            // SQLite keeps CHECK constraints only in the CREATE TABLE text.
            checks: check_clauses(&sql),
            ..Table::default()
        };
        let pragma = |what: &str| AssertSqlSafe(format!("PRAGMA {what}(\"{quoted}\")"));
        let columns = sqlx::query(pragma("table_info")).fetch_all(&mut *conn).await?;
        let mut key: Vec<(i64, String)> = Vec::new();
        for row in &columns {
            let name: String = row.try_get("name")?;
            let declared: String = row.try_get("type")?;
            let position: i64 = row.try_get("pk")?;
            if position > 0 {
                key.push((position, name.clone()));
            }
            let lower = declared.to_lowercase();
            let max_length = lower
                .split_once('(')
                .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse().ok());
            table.columns.push(Column {
                name,
                sql_type: lower,
                max_length,
                nullable: row.try_get::<i64, _>("notnull")? == 0 && position == 0,
                default: row.try_get("dflt_value")?,
                auto: false,
                updates_to_now: false,
            });
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, name)| name).collect();
        // An INTEGER PRIMARY KEY is the rowid: the database assigns it.
        if let [only] = table.primary_key.as_slice()
            && let Some(column) = table.columns.iter_mut().find(|c| c.name == *only)
            && column.sql_type == "integer"
        {
            column.auto = true;
        }
        let keys = sqlx::query(pragma("foreign_key_list")).fetch_all(&mut *conn).await?;
        let mut by_id: Vec<(i64, ForeignKey)> = Vec::new();
        for row in keys {
            let id: i64 = row.try_get("id")?;
            let (from, to): (String, Option<String>) = (row.try_get("from")?, row.try_get("to")?);
            let target: String = row.try_get("table")?;
            match by_id.iter_mut().find(|(i, _)| *i == id) {
                Some((_, key)) => {
                    key.columns.push(from);
                    key.target_columns.extend(to);
                }
                None => by_id.push((
                    id,
                    ForeignKey {
                        columns: vec![from],
                        target,
                        target_columns: to.into_iter().collect(),
                        on_delete: row.try_get::<String, _>("on_delete")?.to_uppercase(),
                    },
                )),
            }
        }
        table.foreign_keys = by_id.into_iter().map(|(_, key)| key).collect();
        let indexes = sqlx::query(pragma("index_list")).fetch_all(&mut *conn).await?;
        for row in indexes {
            let name: String = row.try_get("name")?;
            if row.try_get::<String, _>("origin")? == "pk" {
                continue;
            }
            let quoted_index = name.replace('"', "\"\"");
            let info = sqlx::query(AssertSqlSafe(format!("PRAGMA index_info(\"{quoted_index}\")")))
                .fetch_all(&mut *conn)
                .await?;
            let columns = info
                .iter()
                .map(|row| row.try_get::<String, _>("name"))
                .collect::<Result<_, _>>()?;
            table.indexes.push(Index {
                name,
                columns,
                unique: row.try_get::<i64, _>("unique")? == 1,
            });
        }
        catalog.tables.push(table);
    }
    // A foreign key naming no column references the target's primary key.
    let keys: Vec<(String, Vec<String>)> = catalog
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.primary_key.clone()))
        .collect();
    for table in &mut catalog.tables {
        for key in &mut table.foreign_keys {
            if key.target_columns.is_empty()
                && let Some((_, primary)) = keys.iter().find(|(name, _)| *name == key.target)
            {
                key.target_columns = primary.clone();
            }
        }
    }
    Ok(catalog)
}

/// The `CHECK (…)` clauses of a CREATE TABLE statement.
fn check_clauses(sql: &str) -> Vec<String> {
    let upper = sql.to_uppercase();
    let mut clauses = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CHECK") {
        let start = from + at + "CHECK".len();
        let mut depth = 0;
        let mut end = start;
        for (offset, c) in sql[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        clauses.push(sql[start..end].trim().to_owned());
        from = end.max(start);
    }
    clauses
}
