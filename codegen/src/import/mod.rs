//! `import`: a schema from an existing database. A reader per dialect fills a [`Catalog`]
//! (behind the `db` feature, which brings sqlx; the rest of the library stays light), and
//! [`infer`](fn@infer) turns it into a schema file, with a [`Note`] for each column or table the
//! schema cannot express.

pub mod catalog;
pub mod infer;
#[cfg(feature = "db")]
pub mod mysql;
#[cfg(feature = "db")]
pub mod postgres;
#[cfg(feature = "db")]
pub mod sqlite;

pub use catalog::{Catalog, dialect_of};
pub use infer::{Imported, Note, infer};

/// Why a database could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The URL names no supported database.
    #[error("`{0}` is not a database URL: expected postgres://, mysql:// (or mariadb://) or sqlite:")]
    Url(String),
    /// The database could not be read.
    #[cfg(feature = "db")]
    #[error("reading the catalog: {0}")]
    Database(#[from] sqlx::Error),
}

/// Reads the catalog of the database at `url`.
#[cfg(feature = "db")]
pub async fn read(url: &str) -> Result<Catalog, ImportError> {
    let url = url.replacen("mariadb://", "mysql://", 1);
    use sqlx::Connection as _;
    Ok(match dialect_of(&url).ok_or_else(|| ImportError::Url(url.clone()))? {
        crate::ir::Dialect::Postgres => postgres::read(&mut sqlx::PgConnection::connect(&url).await?).await?,
        crate::ir::Dialect::Mysql => mysql::read(&mut sqlx::MySqlConnection::connect(&url).await?).await?,
        crate::ir::Dialect::Sqlite => sqlite::read(&mut sqlx::SqliteConnection::connect(&url).await?).await?,
    })
}

/// The schema of the database at `url` (see [`infer`]).
#[cfg(feature = "db")]
pub async fn import(url: &str) -> Result<Imported, ImportError> {
    let dialect =
        dialect_of(&url.replacen("mariadb://", "mysql://", 1)).ok_or_else(|| ImportError::Url(url.to_owned()))?;
    Ok(infer(&read(url).await?, dialect))
}
