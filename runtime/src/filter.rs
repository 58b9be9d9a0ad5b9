//! Bulk-write filters as data: a generated `<Model>Filter` says, per variant, which
//! [`Test`] it is (a column, a comparison, the values); this module turns tests into the SQL
//! condition and its bound values, so generated code holds no SQL assembly.

use sqlx::{Encode, Type};

use crate::db::{Dialect, SqlQuery, next_placeholder};

/// A condition on a model's rows, for bulk writes (generated as `<Model>Filter`).
pub trait Filter<DB: Dialect>: Send + Sync + Sized {
    /// What this filter tests.
    fn test(&self) -> Test<'_, DB, Self>;
}

/// One test of a [`Filter`]. Columns are quoted for the dialect by the generator.
#[non_exhaustive]
pub enum Test<'a, DB: Dialect, F> {
    /// `<column> <op> <value>` (NULL never matches).
    Compare(&'static str, Op, Arg<'a, DB>),
    /// `<column> IN (<values>)`; no values: matches nothing.
    In(&'static str, Vec<Arg<'a, DB>>),
    /// `<column> IS NULL`.
    IsNull(&'static str),
    /// `<column> IS NOT NULL`.
    NotNull(&'static str),
    /// Every filter holds (none: matches every row).
    All(&'a [F]),
    /// At least one filter holds (none: matches nothing).
    Any(&'a [F]),
}

/// A comparison of [`Test::Compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The SQL operator.
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A value a test binds, with how its placeholder reads.
pub struct Arg<'a, DB: Dialect> {
    value: Box<dyn Bind<DB> + 'a>,
    /// The placeholder is compared as a number (`CAST(? AS REAL)`: SQLite's text decimals).
    real: bool,
}

/// Binds `value` as it is.
pub fn arg<'a, DB: Dialect, T: Bind<DB> + 'a>(value: T) -> Arg<'a, DB> {
    Arg {
        value: Box::new(value),
        real: false,
    }
}

/// Binds `value` (a number held as text) and compares it as a number, for a column the
/// generator wrote as `CAST(<column> AS REAL)`.
pub fn real<'a, DB: Dialect, T: Bind<DB> + 'a>(value: T) -> Arg<'a, DB> {
    Arg {
        value: Box::new(value),
        real: true,
    }
}

/// A value that binds to a statement: anything sqlx encodes for the database.
pub trait Bind<DB: Dialect>: Send + Sync {
    /// Binds the value as the statement's next argument.
    fn bind_to(&self, query: SqlQuery<DB>) -> SqlQuery<DB>;
}

impl<DB: Dialect, T> Bind<DB> for T
where
    T: for<'q> Encode<'q, DB> + Type<DB> + Send + Sync,
{
    fn bind_to(&self, query: SqlQuery<DB>) -> SqlQuery<DB> {
        query.bind(self)
    }
}

/// The SQL condition of `filter`, its placeholders numbered from `*next` on (and counted).
pub(crate) fn condition<DB: Dialect, F: Filter<DB>>(filter: &F, next: &mut usize) -> String {
    let mut placeholder = |arg: &Arg<'_, DB>| {
        let placeholder = next_placeholder::<DB>(next);
        if arg.real {
            format!("CAST({placeholder} AS REAL)")
        } else {
            placeholder
        }
    };
    match filter.test() {
        Test::Compare(column, op, value) => format!("{column} {} {}", op.sql(), placeholder(&value)),
        Test::In(_, values) if values.is_empty() => "1 = 0".to_owned(),
        Test::In(column, values) => {
            let list: Vec<String> = values.iter().map(placeholder).collect();
            format!("{column} IN ({})", list.join(", "))
        }
        Test::IsNull(column) => format!("{column} IS NULL"),
        Test::NotNull(column) => format!("{column} IS NOT NULL"),
        Test::All(filters) => combine(filters, next, " AND ", "1 = 1"),
        Test::Any(filters) => combine(filters, next, " OR ", "1 = 0"),
    }
}

/// `filters`' conditions joined by `joiner`, each in parentheses; `empty` for none.
fn combine<DB: Dialect, F: Filter<DB>>(filters: &[F], next: &mut usize, joiner: &str, empty: &str) -> String {
    if filters.is_empty() {
        return empty.to_owned();
    }
    let parts: Vec<String> = filters
        .iter()
        .map(|filter| format!("({})", condition(filter, next)))
        .collect();
    parts.join(joiner)
}

/// Binds the values of `filter`'s condition, in order.
pub(crate) fn bind<DB: Dialect, F: Filter<DB>>(filter: &F, query: SqlQuery<DB>) -> SqlQuery<DB> {
    match filter.test() {
        Test::Compare(_, _, value) => value.value.bind_to(query),
        Test::In(_, values) => values.iter().fold(query, |query, value| value.value.bind_to(query)),
        Test::IsNull(_) | Test::NotNull(_) => query,
        Test::All(filters) | Test::Any(filters) => filters.iter().fold(query, |query, filter| bind(filter, query)),
    }
}
