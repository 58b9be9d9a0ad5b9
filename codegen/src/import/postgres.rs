//! Reads the catalog of the current schema (`search_path`) of a PostgreSQL database.

use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::import::catalog::{Catalog, Column, ForeignKey, Index};

/// The catalog of the current schema of the database on `conn`.
pub async fn read(conn: &mut PgConnection) -> Result<Catalog, sqlx::Error> {
    let tables = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let names = tables
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    let mut catalog = Catalog::of_tables(names);
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text, udt_name::text, character_maximum_length::int4, \
         is_nullable::text, column_default::text, is_identity::text, numeric_precision::int4, numeric_scale::int4 \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in columns {
        let table: String = row.try_get(0)?;
        let default: Option<String> = row.try_get(5)?;
        let serial = default.as_deref().is_some_and(|d| d.starts_with("nextval("));
        let mut sql_type = row.try_get::<String, _>(2)?.to_lowercase();
        if sql_type == "numeric"
            && let (Some(precision), Some(scale)) =
                (row.try_get::<Option<i32>, _>(7)?, row.try_get::<Option<i32>, _>(8)?)
        {
            sql_type = format!("numeric({precision},{scale})");
        }
        let column = Column {
            name: row.try_get(1)?,
            sql_type,
            max_length: row.try_get::<Option<i32>, _>(3)?.and_then(|n| u32::try_from(n).ok()),
            nullable: row.try_get::<String, _>(4)? == "YES",
            auto: row.try_get::<String, _>(6)? == "YES" || serial,
            default: default.filter(|_| !serial),
            updates_to_now: false,
        };
        if let Some(table) = catalog.table_mut(&table) {
            table.columns.push(column);
        }
    }
    let indexes = sqlx::query(
        "SELECT t.relname::text, i.relname::text, ix.indisunique, ix.indisprimary, \
         array_agg(a.attname::text ORDER BY k.ord) \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() \
         GROUP BY t.relname, i.relname, ix.indisunique, ix.indisprimary ORDER BY i.relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in indexes {
        let table: String = row.try_get(0)?;
        let columns: Vec<String> = row.try_get(4)?;
        let Some(table) = catalog.table_mut(&table) else {
            continue;
        };
        if row.try_get::<bool, _>(3)? {
            table.primary_key = columns;
        } else {
            table.indexes.push(Index {
                name: row.try_get(1)?,
                columns,
                unique: row.try_get(2)?,
            });
        }
    }
    let keys = sqlx::query(
        "SELECT t.relname::text, f.relname::text, \
         array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
         array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), \
         c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class f ON f.oid = c.confrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema() ORDER BY c.conname",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in keys {
        let table: String = row.try_get(0)?;
        let on_delete = match row.try_get::<String, _>(4)?.as_str() {
            "c" => "CASCADE",
            "n" => "SET NULL",
            "r" => "RESTRICT",
            "d" => "SET DEFAULT",
            _ => "NO ACTION",
        };
        let key = ForeignKey {
            target: row.try_get(1)?,
            columns: row.try_get(2)?,
            target_columns: row.try_get(3)?,
            on_delete: on_delete.to_owned(),
        };
        if let Some(table) = catalog.table_mut(&table) {
            table.foreign_keys.push(key);
        }
    }
    let checks = sqlx::query(
        "SELECT t.relname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'c' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in checks {
        let table: String = row.try_get(0)?;
        if let Some(table) = catalog.table_mut(&table) {
            table.checks.push(row.try_get(1)?);
        }
    }
    Ok(catalog)
}
