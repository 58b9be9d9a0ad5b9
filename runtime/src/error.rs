//! The error type of repository calls. Cache faults never appear here: they cost speed
//! (the read goes to the database), not availability.

/// What a repository call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database rejected or could not run a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A model names a cache backend that the context was not given.
    #[error(
        "model `{model}` uses cache backend `{backend}`, which this context does not configure (configured: {configured})"
    )]
    UnknownBackend {
        /// The model's name.
        model: &'static str,
        /// The backend name from the schema.
        backend: &'static str,
        /// The names the context does configure.
        configured: String,
    },
    /// A backend URL or other configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::backend::CacheError),
}

impl Error {
    /// Whether the database refused a statement of a transaction at `REPEATABLE READ`
    /// because a row it touches changed after the transaction's snapshot (SQLSTATE
    /// `40001`): the transaction can be run again.
    pub(crate) fn is_serialization_failure(&self) -> bool {
        match self {
            Error::Database(sqlx::Error::Database(error)) => error.code().as_deref() == Some("40001"),
            _ => false,
        }
    }
}

/// Result of a repository call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
