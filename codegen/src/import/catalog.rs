//! What `import` reads from a database's catalog, the same for every dialect: tables with
//! their columns, primary key, foreign keys, indexes and CHECK constraints.

use crate::ir::Dialect;

/// The tables of one database (one PostgreSQL schema, one MySQL database, one SQLite file).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// The tables, by name.
    pub tables: Vec<Table>,
}

/// One table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<Column>,
    /// The columns of its primary key, in order.
    pub primary_key: Vec<String>,
    /// Its foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Its indexes other than the primary key's (unique constraints included).
    pub indexes: Vec<Index>,
    /// The text of its CHECK constraints.
    pub checks: Vec<String>,
}

/// One column.
#[derive(Clone, Debug, Default)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type as the catalog names it, lower-cased but for the values of a MySQL `enum(…)`
    /// (`varchar`, `int4`, `tinyint(1)`, `numeric(7,2)`, `enum('G','PG')`).
    pub sql_type: String,
    /// The length of a character type.
    pub max_length: Option<u32>,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default, as SQL text.
    pub default: Option<String>,
    /// Whether the database assigns its values (identity, auto-increment, rowid).
    pub auto: bool,
    /// Whether every update sets it to the current time (MySQL's `ON UPDATE CURRENT_TIMESTAMP`).
    pub updates_to_now: bool,
}

/// A foreign key.
#[derive(Clone, Debug, Default)]
pub struct ForeignKey {
    /// Its columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub target: String,
    /// The referenced columns.
    pub target_columns: Vec<String>,
    /// `ON DELETE`, upper-cased (`CASCADE`, `SET NULL`, `RESTRICT`, `NO ACTION`, `SET DEFAULT`).
    pub on_delete: String,
}

/// An index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// Whether it is unique.
    pub unique: bool,
}

impl Catalog {
    /// A catalog of these tables, each still without columns.
    pub fn of_tables(names: impl IntoIterator<Item = String>) -> Catalog {
        Catalog {
            tables: names
                .into_iter()
                .map(|name| Table {
                    name,
                    ..Table::default()
                })
                .collect(),
        }
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The table named `name`, to fill in.
    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables.iter_mut().find(|t| t.name == name)
    }
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a CHECK constraint says `column >= 0` (a `positive_integer`).
    pub fn checks_non_negative(&self, column: &str) -> bool {
        self.checks_mention(&format!("{column}>=0"))
    }

    /// Whether a CHECK constraint says `json_valid(column)` (MariaDB's JSON).
    pub fn checks_json(&self, column: &str) -> bool {
        self.checks_mention(&format!("json_valid({column})"))
    }

    /// The values of a CHECK constraint `column IN ('a', 'b')` (PostgreSQL prints it as
    /// `column::text = ANY (ARRAY['a'::character varying, …])`): an `enum` stored as text.
    pub fn checks_values(&self, column: &str) -> Option<Vec<String>> {
        self.checks.iter().find_map(|check| {
            let bare = bare(check);
            let bare = bare.strip_prefix("check").unwrap_or(&bare);
            let listed = bare.starts_with(&format!("{column}in'"))
                || bare.starts_with(&format!("{column}::")) && bare.contains("=anyarray['");
            listed
                .then(|| quoted_literals(check))
                .filter(|values| !values.is_empty())
        })
    }

    /// Whether a CHECK constraint contains `wanted`, ignoring quotes, spaces, case and
    /// parentheses (catalogs print the same constraint differently).
    fn checks_mention(&self, wanted: &str) -> bool {
        let wanted = wanted.replace(['(', ')'], "");
        self.checks.iter().any(|check| bare(check).contains(&wanted))
    }
}

/// A CHECK constraint without quotes of names, spaces, parentheses or case.
fn bare(check: &str) -> String {
    check
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '"' | '`' | '(' | ')'))
        .collect::<String>()
        .to_lowercase()
}

/// The SQL string literals in `text`, in order (`''` is a quote inside one).
pub fn quoted_literals(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => break,
                c => value.push(c),
            }
        }
        values.push(value);
    }
    values
}

/// The dialect of a database URL (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`,
/// `sqlite:`).
pub fn dialect_of(url: &str) -> Option<Dialect> {
    let scheme = url.split(':').next()?;
    match scheme {
        "postgres" | "postgresql" => Some(Dialect::Postgres),
        "mysql" | "mariadb" => Some(Dialect::Mysql),
        "sqlite" => Some(Dialect::Sqlite),
        _ => None,
    }
}
