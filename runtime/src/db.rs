//! The database side: one [`Dialect`] per sqlx driver (enabled by cargo features), through
//! which every statement runs, so the runtime counts queries itself (sqlx has no hook).

use futures::future::BoxFuture;
use sqlx::Database;

/// A statement with its arguments bound, ready to run.
pub type SqlQuery<DB> = sqlx::query::Query<'static, DB, <DB as Database>::Arguments>;

/// What the runtime needs from a database driver; implemented for each enabled sqlx driver.
pub trait Dialect: Database {
    /// The statement that begins a write transaction (SQLite: `BEGIN IMMEDIATE`, so that a
    /// transaction that reads before it writes waits for other writers instead of failing;
    /// MySQL: at `READ COMMITTED`, PostgreSQL's default, so that a statement run after a
    /// row lock was waited for sees what the lock's holder committed — a delete's footprint,
    /// selected after the row's lock, even in a transaction that read before).
    const BEGIN_WRITE: &'static str;

    /// The statement that begins a transaction at `REPEATABLE READ`, where a delete can
    /// probe and delete a row in one statement without locking it first (PostgreSQL: a row
    /// that comes to point at it after the statement's snapshot makes the database's
    /// cascade fail with a serialization error, instead of being removed unplanned);
    /// `None` where the runtime does not use it.
    const BEGIN_SNAPSHOT: Option<&'static str>;

    /// Sent first in one query of several statements, which the database runs as one
    /// implicit transaction, it begins that transaction at `REPEATABLE READ`: a delete at a
    /// snapshot that commits on its own, in one round trip (the runtime's `one_shot`); `None`
    /// where the runtime does not use it.
    const SNAPSHOT_ALONE: Option<&'static str>;

    /// Creates the fence outbox if it is missing (see `docs/consistency.md`, "Faults").
    const CREATE_OUTBOX: &'static str;

    /// Whether a `DELETE` may run inside a `WITH` of a query (PostgreSQL), so a delete's
    /// footprint probe and the delete itself go in one statement.
    const DELETES_IN_WITH: bool;

    /// Decodes a row of the fence outbox: its id, scope and cache key.
    fn outbox_entry(row: &Self::Row) -> Result<(i64, String, String), sqlx::Error>;

    /// Runs `query` and returns every row.
    fn fetch_all(
        conn: &mut Self::Connection,
        query: SqlQuery<Self>,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Runs `sql`, statements without arguments sent as one query (unprepared), and returns
    /// the rows of all of them.
    fn fetch_all_unprepared(
        conn: &mut Self::Connection,
        sql: String,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Runs `query` and returns how many rows it changed.
    fn execute(conn: &mut Self::Connection, query: SqlQuery<Self>) -> BoxFuture<'_, Result<u64, sqlx::Error>>;

    /// Decodes column `index` of a row.
    fn column<T>(row: &Self::Row, index: usize) -> Result<T, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, Self> + sqlx::Type<Self>;

    /// Binds a text value (primary keys as text, in footprint statements).
    fn bind_text(query: SqlQuery<Self>, text: String) -> SqlQuery<Self>;

    /// Decodes column `index` of a row as text.
    fn text_column(row: &Self::Row, index: usize) -> Result<String, sqlx::Error>;

    /// The `n`-th (1-based) bind placeholder: `?` or `$n`.
    fn placeholder(n: usize) -> String;

    /// Replaces the `{ids}` marker of a generated statement with the placeholders of
    /// `count` keys of `parts` columns each (see [`key_list`]).
    fn expand_id_list(sql: &'static str, count: usize, parts: usize) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(sql.replace("{ids}", &key_list::<Self>(1, count, parts)))
    }
}

macro_rules! dialect {
    ($feature:literal, $db:ty, $begin:literal, ($snapshot:expr, $alone:expr), $outbox:literal, $deletes_in_with:literal, $placeholder:expr) => {
        #[cfg(feature = $feature)]
        impl Dialect for $db {
            const BEGIN_WRITE: &'static str = $begin;
            const BEGIN_SNAPSHOT: Option<&'static str> = $snapshot;
            const SNAPSHOT_ALONE: Option<&'static str> = $alone;
            const CREATE_OUTBOX: &'static str = $outbox;
            const DELETES_IN_WITH: bool = $deletes_in_with;

            fn outbox_entry(row: &Self::Row) -> Result<(i64, String, String), sqlx::Error> {
                Ok((
                    sqlx::Row::try_get(row, 0)?,
                    sqlx::Row::try_get(row, 1)?,
                    sqlx::Row::try_get(row, 2)?,
                ))
            }

            fn fetch_all(
                conn: &mut Self::Connection,
                query: SqlQuery<Self>,
            ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>> {
                Box::pin(query.fetch_all(conn))
            }

            fn fetch_all_unprepared(
                conn: &mut Self::Connection,
                sql: String,
            ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>> {
                Box::pin(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_all(conn))
            }

            fn execute(conn: &mut Self::Connection, query: SqlQuery<Self>) -> BoxFuture<'_, Result<u64, sqlx::Error>> {
                Box::pin(async move { Ok(query.execute(conn).await?.rows_affected()) })
            }

            fn column<T>(row: &Self::Row, index: usize) -> Result<T, sqlx::Error>
            where
                T: for<'r> sqlx::Decode<'r, Self> + sqlx::Type<Self>,
            {
                sqlx::Row::try_get(row, index)
            }

            fn bind_text(query: SqlQuery<Self>, text: String) -> SqlQuery<Self> {
                query.bind(text)
            }

            fn text_column(row: &Self::Row, index: usize) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(row, index)
            }

            fn placeholder(n: usize) -> String {
                let placeholder: fn(usize) -> String = $placeholder;
                placeholder(n)
            }
        }
    };
}

dialect!(
    "sqlite",
    sqlx::Sqlite,
    "BEGIN IMMEDIATE",
    (None, None),
    "CREATE TABLE IF NOT EXISTS autocache_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, \
     scope TEXT NOT NULL, cache_key TEXT NOT NULL)",
    false,
    |_| "?".to_owned()
);
dialect!(
    "mysql",
    sqlx::MySql,
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN",
    (None, None),
    "CREATE TABLE IF NOT EXISTS autocache_outbox (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
     scope VARCHAR(255) NOT NULL, cache_key VARCHAR(1024) NOT NULL)",
    false,
    |_| "?".to_owned()
);
dialect!(
    "postgres",
    sqlx::Postgres,
    "BEGIN",
    (
        Some("BEGIN ISOLATION LEVEL REPEATABLE READ"),
        Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    ),
    "CREATE TABLE IF NOT EXISTS autocache_outbox (id BIGSERIAL PRIMARY KEY, \
     scope TEXT NOT NULL, cache_key TEXT NOT NULL)",
    true,
    |n| format!("${n}")
);

/// `count` placeholders from the `first`-th on, comma separated.
pub fn placeholders<DB: Dialect>(first: usize, count: usize) -> String {
    (first..first + count)
        .map(DB::placeholder)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placeholders of `count` keys from the `first`-th on: one each for single-column keys
/// (`?, ?`), a row value each for keys of several `parts` (`(?, ?), (?, ?)`, what a
/// generated `(<a>, <b>) IN ({ids})` compares with).
pub fn key_list<DB: Dialect>(first: usize, count: usize, parts: usize) -> String {
    if parts == 1 {
        return placeholders::<DB>(first, count);
    }
    (0..count)
        .map(|i| format!("({})", placeholders::<DB>(first + i * parts, parts)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The next bind placeholder of a statement whose placeholders are numbered from `*next`
/// on (`?`, or `$n`), counting it.
pub(crate) fn next_placeholder<DB: Dialect>(next: &mut usize) -> String {
    let placeholder = DB::placeholder(*next);
    *next += 1;
    placeholder
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn key_lists_are_placeholders_or_row_values() {
        assert_eq!(key_list::<sqlx::Sqlite>(1, 3, 1), "?, ?, ?");
        assert_eq!(key_list::<sqlx::Sqlite>(1, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(key_list::<sqlx::Sqlite>(1, 0, 2), "");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn row_values_number_on_from_the_first() {
        assert_eq!(key_list::<sqlx::Postgres>(3, 2, 2), "($3, $4), ($5, $6)");
    }
}
