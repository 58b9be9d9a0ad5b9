//! P9: the repositories' writes on PostgreSQL against their floors, bare sqlx transactions
//! (`BEGIN`, the plain statement for the row, `COMMIT`) on the same pool.

use std::hint::black_box;
use std::sync::Arc;

use autocache::{Context, Dialect, Model};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{PgPool, Postgres};

use crate::measure::{Plan, Samples, Table, pair, ratio};
use crate::setup::pg::{NewPerson, Person, PersonRepo};

/// The floor of an update: the plain statement an application would send (the repository's
/// own update also returns the old row, locked, on PostgreSQL).
const BARE_UPDATE: &str = "UPDATE person SET name = $1 WHERE id = $2 RETURNING id, name";

/// The three ratios: update, insert and delete over their bare transactions.
pub struct Figures {
    pub update: f64,
    pub insert: f64,
    pub delete: f64,
}

/// Runs the three pairs: `PersonRepo::update` of people `ids` (cyclically), then
/// `PersonRepo::insert` of new people, then `PersonRepo::delete` of the people each side
/// inserted; every repository call is interleaved with its bare transaction.
/// `label` ends the table rows' names.
pub async fn measure(
    ctx: &Context<Postgres>,
    pool: &PgPool,
    ids: &[i64],
    plan: Plan,
    label: &str,
    table: &mut Table,
) -> Figures {
    let people = PersonRepo::new(ctx);
    let sql = Person::SQL;
    let delete_one: Arc<str> = Postgres::expand_id_list(sql.delete, 1, Person::KEY_COLUMNS).0.into();

    let mut bare = Samples::new(format!("bare tx: UPDATE person{label}"));
    let mut repo = Samples::new(format!("PersonRepo::update{label}"));
    pair!(
        plan,
        &mut bare,
        |i| async {
            let id = ids[i % ids.len()];
            let query = sqlx::query_as(BARE_UPDATE).bind(format!("{id}:f{i}")).bind(id);
            let row: Option<(i64, String)> = in_transaction(pool, query).await;
            black_box(row.expect("bare update: a row"));
        },
        &mut repo,
        |i| async {
            let id = ids[i % ids.len()];
            let row = Person {
                id,
                name: format!("{id}:r{i}"),
            };
            black_box(people.update(&row).await.expect("update").expect("update: a row"));
        },
    );
    let update = ratio(&repo, &bare);
    table.add(&bare);
    table.add(&repo);

    let (mut bare_ids, mut repo_ids) = (Vec::new(), Vec::new());
    let mut bare = Samples::new(format!("bare tx: INSERT person{label}"));
    let mut repo = Samples::new(format!("PersonRepo::insert{label}"));
    pair!(
        plan,
        &mut bare,
        |i| async {
            let query = sqlx::query_as(sql.insert).bind(format!("new:f{i}"));
            let row: Option<(i64, String)> = in_transaction(pool, query).await;
            bare_ids.push(row.expect("bare insert: a row").0);
        },
        &mut repo,
        |i| async {
            let new = NewPerson {
                name: format!("new:r{i}"),
            };
            repo_ids.push(people.insert(&new).await.expect("insert").id);
        },
    );
    let insert = ratio(&repo, &bare);
    table.add(&bare);
    table.add(&repo);

    let mut bare = Samples::new(format!("bare tx: DELETE person{label}"));
    let mut repo = Samples::new(format!("PersonRepo::delete{label}"));
    pair!(
        plan,
        &mut bare,
        |i| async {
            let query = sqlx::query_as(sqlx::AssertSqlSafe(delete_one.clone())).bind(bare_ids[i]);
            let row: Option<(i64, String)> = in_transaction(pool, query).await;
            black_box(row.expect("bare delete: a row"));
        },
        &mut repo,
        |i| async {
            assert!(people.delete(repo_ids[i]).await.expect("delete"), "delete: a row");
        },
    );
    table.add(&bare);
    table.add(&repo);
    Figures {
        update,
        insert,
        delete: ratio(&repo, &bare),
    }
}

/// `BEGIN`, `query` (returning at most one row), `COMMIT`: a write's floor.
async fn in_transaction<O>(pool: &PgPool, query: QueryAs<'_, Postgres, O, PgArguments>) -> Option<O>
where
    O: Send + Unpin + for<'r> sqlx::FromRow<'r, PgRow>,
{
    let mut tx = pool.begin().await.expect("begin");
    let row = query.fetch_optional(&mut *tx).await.expect("bare statement");
    tx.commit().await.expect("commit");
    row
}
