//! Deletes in one statement that commits on its own: what a context has learnt of each
//! model's deletes, and how that statement runs at a snapshot in one round trip.
//!
//! A delete whose row has only its instance key as a key of its own, and nothing pointing at
//! it, touches that one key: once the key is locked, the statement needs no transaction of
//! its own (`docs/consistency.md`, "Writes that lock first"). Where rows may point at it, one
//! statement probes them and deletes the row only if it found none, at `REPEATABLE READ`: a
//! row that comes to point at it after the statement's snapshot then makes the database's
//! cascade fail with a serialization error instead of being removed unplanned. sqlx begins a
//! transaction at that level only with a `BEGIN` of its own and sends one statement per
//! round trip; PostgreSQL runs the statements of one simple query as one implicit
//! transaction, which a first `SET TRANSACTION` puts at `REPEATABLE READ`. So the delete is
//! sent as `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; EXECUTE autocache_<digest>(E'<key>')`
//! ([`Dialect::SNAPSHOT_ALONE`]): one round trip, committed when it answers, rolled back whole
//! by an error, after which the connection is idle (not in a failed transaction). The
//! statement is prepared on a connection (`PREPARE … (text) AS`, named after a digest of its
//! text) the first time `EXECUTE` finds it missing there.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::db::Dialect;

/// SQLSTATE of `EXECUTE` naming a statement the connection has not prepared.
const NOT_PREPARED: &str = "26000";

/// What a context learnt of each model's deletes (by model name).
#[derive(Default)]
pub(crate) struct DeleteHints {
    models: Mutex<HashMap<&'static str, Hint>>,
}

/// What [`DeleteHints`] knows of one model.
#[derive(Clone, Copy, Default)]
struct Hint {
    /// Its last delete found rows pointing at the row: the next one goes to a transaction
    /// directly (the one statement would not delete, and would cost a round trip).
    pointed_at: bool,
    /// Its one statement could not be prepared here (a pooler that does not keep prepared
    /// statements, say): its deletes run in transactions.
    unavailable: bool,
}

impl DeleteHints {
    /// Whether a delete of `model` should try the one statement first.
    pub(crate) fn worth_trying(&self, model: &'static str) -> bool {
        let hint = self.hint(model);
        !hint.pointed_at && !hint.unavailable
    }

    /// Records what a delete of `model` found: whether rows pointed at its row.
    pub(crate) fn found(&self, model: &'static str, pointed_at: bool) {
        self.update(model, |hint| hint.pointed_at = pointed_at);
    }

    /// Records that `model`'s one statement cannot run here.
    pub(crate) fn make_unavailable(&self, model: &'static str) {
        self.update(model, |hint| hint.unavailable = true);
    }

    fn hint(&self, model: &'static str) -> Hint {
        let models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        models.get(model).copied().unwrap_or_default()
    }

    fn update(&self, model: &'static str, change: impl FnOnce(&mut Hint)) {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        change(models.entry(model).or_default());
    }
}

/// What [`run_at_snapshot`] did.
pub(crate) enum Ran<R> {
    /// The statement ran and committed: its rows.
    Rows(Vec<R>),
    /// It cannot run here (the dialect has no such query, the key text holds a NUL, or the
    /// statement could not be prepared): nothing was written.
    Unavailable,
}

/// Runs `statement`, whose one parameter `$1` is `key` (as text), alone in a transaction at
/// `REPEATABLE READ` that commits as it answers, in one round trip — two more the first
/// time on a connection, where the statement is found missing and prepared (like sqlx's
/// own preparation of a statement, not counted as a query of its own). An error of the
/// statement itself (a serialization failure, say) rolled it back.
pub(crate) async fn run_at_snapshot<DB: Dialect>(
    conn: &mut DB::Connection,
    statement: &str,
    key: &str,
) -> Result<Ran<DB::Row>, sqlx::Error> {
    let (Some(begin), Some(key)) = (DB::SNAPSHOT_ALONE, literal(key)) else {
        return Ok(Ran::Unavailable);
    };
    let name = statement_name(statement);
    let call = format!("{begin}; EXECUTE {name}({key})");
    match DB::fetch_all_unprepared(conn, call.clone()).await {
        Err(error) if is_not_prepared(&error) => {}
        ran => return ran.map(Ran::Rows),
    }
    if let Err(error) = DB::fetch_all_unprepared(conn, format!("PREPARE {name} (text) AS {statement}")).await {
        tracing::warn!(%error, statement, "a delete's one statement could not be prepared");
        return Ok(Ran::Unavailable);
    }
    match DB::fetch_all_unprepared(conn, call).await {
        // Prepared, yet missing: a pooler sent the two to different server connections.
        Err(error) if is_not_prepared(&error) => Ok(Ran::Unavailable),
        ran => ran.map(Ran::Rows),
    }
}

/// The prepared name of `statement`: `autocache_` and 16 hex digits of its SHA-256.
fn statement_name(statement: &str) -> String {
    let digest = Sha256::digest(statement.as_bytes());
    let hex: String = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("autocache_{hex}")
}

/// `text` as a PostgreSQL escape string literal (`E'…'`, backslashes and quotes doubled),
/// whatever `standard_conforming_strings` says; `None` for text holding a NUL, which no
/// query may contain.
fn literal(text: &str) -> Option<String> {
    if text.contains('\0') {
        return None;
    }
    Some(format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''")))
}

/// Whether the database answered that the named prepared statement does not exist.
fn is_not_prepared(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.code().as_deref() == Some(NOT_PREPARED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes_and_refuse_nul() {
        assert_eq!(literal("42").as_deref(), Some("E'42'"));
        assert_eq!(literal(r"o'k\'); DROP").as_deref(), Some(r"E'o''k\\''); DROP'"));
        assert_eq!(literal("a\0b"), None);
    }

    #[test]
    fn names_follow_the_statement_text() {
        let name = statement_name("DELETE 1");
        assert_eq!(name.len(), "autocache_".len() + 16);
        assert_eq!(name, statement_name("DELETE 1"));
        assert_ne!(name, statement_name("DELETE 2"));
    }

    /// Against the PostgreSQL server of the suite (`AUTOCACHE_TEST_PG`): the statement runs
    /// at `REPEATABLE READ` and commits alone, is prepared on a connection that lacks it
    /// (again after `DEALLOCATE ALL`), passes any key text through intact, and leaves the
    /// connection idle after an error of its own or a statement that cannot be prepared.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn runs_alone_at_a_snapshot_on_postgres() {
        use sqlx::{Connection, PgConnection, Row};

        const LEVEL: &str = "SELECT current_setting('transaction_isolation'), $1";

        async fn texts(conn: &mut PgConnection, statement: &str, key: &str) -> Vec<(String, String)> {
            match run_at_snapshot::<sqlx::Postgres>(conn, statement, key).await.unwrap() {
                Ran::Rows(rows) => rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
                Ran::Unavailable => panic!("{statement} could not run"),
            }
        }

        /// Usable (not in a failed transaction) and outside the snapshot's transaction.
        async fn assert_idle(conn: &mut PgConnection) {
            let row = sqlx::query("SELECT current_setting('transaction_isolation')")
                .fetch_one(conn)
                .await
                .unwrap();
            assert_eq!(row.get::<String, _>(0), "read committed");
        }

        let url =
            std::env::var("AUTOCACHE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = PgConnection::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL at {url} (AUTOCACHE_TEST_PG): {error}"));
        let key = r"o'k\'); SELECT 1; --";
        for _ in 0..2 {
            assert_eq!(
                texts(&mut conn, LEVEL, key).await,
                [("repeatable read".to_owned(), key.to_owned())]
            );
        }
        sqlx::raw_sql("DEALLOCATE ALL").execute(&mut conn).await.unwrap();
        assert_eq!(texts(&mut conn, LEVEL, "7").await.len(), 1);

        let failed =
            run_at_snapshot::<sqlx::Postgres>(&mut conn, "SELECT CAST(1 / (CAST($1 AS INT) - 1) AS TEXT), ''", "1")
                .await;
        assert!(matches!(failed, Err(sqlx::Error::Database(_))));
        assert_idle(&mut conn).await;
        let unpreparable = run_at_snapshot::<sqlx::Postgres>(&mut conn, "SELECT no_such_column, $1", "1").await;
        assert!(matches!(unpreparable, Ok(Ran::Unavailable)));
        assert_idle(&mut conn).await;
        let nul = run_at_snapshot::<sqlx::Postgres>(&mut conn, LEVEL, "a\0b").await;
        assert!(matches!(nul, Ok(Ran::Unavailable)));
    }

    #[test]
    fn a_model_pointed_at_or_unavailable_is_not_tried() {
        let hints = DeleteHints::default();
        assert!(hints.worth_trying("Person"));
        hints.found("Person", true);
        assert!(!hints.worth_trying("Person"));
        hints.found("Person", false);
        assert!(hints.worth_trying("Person"));
        hints.make_unavailable("Book");
        assert!(!hints.worth_trying("Book"));
        hints.found("Book", false);
        assert!(!hints.worth_trying("Book"));
    }
}
