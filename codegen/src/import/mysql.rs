//! Reads the catalog of the current database of a MySQL or MariaDB server.

use sqlx::Row;
use sqlx::mysql::MySqlConnection;

use crate::import::catalog::{Catalog, Column, ForeignKey, Index};

/// The catalog of the current database of the server on `conn`.
pub async fn read(conn: &mut MySqlConnection) -> Result<Catalog, sqlx::Error> {
    let tables = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .fetch_all(&mut *conn)
    .await?;
    let names = tables
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    let mut catalog = Catalog::of_tables(names);
    let columns = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
         CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), \
         CAST(EXTRA AS CHAR), CAST(COLUMN_KEY AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in columns {
        let table: String = row.try_get(0)?;
        let nullable = row.try_get::<String, _>(4)? == "YES";
        // MariaDB says `NULL` for "no default" of a nullable column.
        let default = row
            .try_get::<Option<String>, _>(5)?
            .filter(|d| !(nullable && d.eq_ignore_ascii_case("null")));
        let sql_type: String = row.try_get(2)?;
        let extra = row.try_get::<String, _>(6)?.to_lowercase();
        let column = Column {
            name: row.try_get(1)?,
            // An enum's values keep their case.
            sql_type: if sql_type.starts_with("enum(") {
                sql_type
            } else {
                sql_type.to_lowercase()
            },
            max_length: row.try_get::<Option<i64>, _>(3)?.and_then(|n| u32::try_from(n).ok()),
            nullable,
            default,
            auto: extra.contains("auto_increment"),
            updates_to_now: extra.contains("on update current_timestamp"),
        };
        if let Some(table) = catalog.table_mut(&table) {
            table.columns.push(column);
        }
    }
    let indexes = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS SIGNED), \
         CAST(COLUMN_NAME AS CHAR) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in indexes {
        let (table, name): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let column: String = row.try_get(3)?;
        let Some(table) = catalog.table_mut(&table) else {
            continue;
        };
        if name == "PRIMARY" {
            table.primary_key.push(column);
            continue;
        }
        match table.indexes.iter_mut().find(|index| index.name == name) {
            Some(index) => index.columns.push(column),
            None => table.indexes.push(Index {
                name,
                columns: vec![column],
                unique: row.try_get::<i64, _>(2)? == 0,
            }),
        }
    }
    let keys = sqlx::query(
        "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
         CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR), CAST(r.DELETE_RULE AS CHAR) \
         FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
         ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut named: Vec<(String, String, ForeignKey)> = Vec::new();
    for row in keys {
        let (table, name): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let (column, target_column): (String, String) = (row.try_get(2)?, row.try_get(4)?);
        match named.iter_mut().find(|(t, n, _)| *t == table && *n == name) {
            Some((_, _, key)) => {
                key.columns.push(column);
                key.target_columns.push(target_column);
            }
            None => named.push((
                table,
                name,
                ForeignKey {
                    columns: vec![column],
                    target: row.try_get(3)?,
                    target_columns: vec![target_column],
                    on_delete: row.try_get::<String, _>(5)?.to_uppercase(),
                },
            )),
        }
    }
    for (table, _, key) in named {
        if let Some(table) = catalog.table_mut(&table) {
            table.foreign_keys.push(key);
        }
    }
    // MariaDB names the table in CHECK_CONSTRAINTS; MySQL only through TABLE_CONSTRAINTS.
    let checks = match sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(CHECK_CLAUSE AS CHAR) FROM information_schema.CHECK_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = DATABASE()",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(rows) => rows,
        Err(_) => {
            sqlx::query(
                "SELECT CAST(t.TABLE_NAME AS CHAR), CAST(c.CHECK_CLAUSE AS CHAR) \
                 FROM information_schema.TABLE_CONSTRAINTS t JOIN information_schema.CHECK_CONSTRAINTS c \
                 ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME \
                 WHERE t.CONSTRAINT_TYPE = 'CHECK' AND t.TABLE_SCHEMA = DATABASE()",
            )
            .fetch_all(&mut *conn)
            .await?
        }
    };
    for row in checks {
        let table: String = row.try_get(0)?;
        if let Some(table) = catalog.table_mut(&table) {
            table.checks.push(row.try_get(1)?);
        }
    }
    Ok(catalog)
}
