//! The crate's error type and its mapping into the kit's DAO errors.

use std::time::Duration;

use tessera_kit::dao;

/// A driver error, boxed so that no driver type shows in this crate's API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of connecting to and talking with MongoDB.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `mongo_dsn` is not a usable connection string.
    #[error("invalid mongo_dsn")]
    Dsn(#[source] BoxError),
    /// `db_name` is empty.
    #[error("db_name must not be empty")]
    EmptyDbName,
    /// `mongo_timeout` is zero, which would fail every call.
    #[error("mongo_timeout must be at least one second")]
    ZeroTimeout,
    /// The server did not answer the initial ping.
    #[error("cannot reach mongodb")]
    Unreachable(#[source] BoxError),
    /// A call took longer than `mongo_timeout`.
    #[error("mongodb did not answer within {0:?}")]
    Timeout(Duration),
    /// The driver or the server reported an error.
    #[error("mongodb failed")]
    Driver(#[source] BoxError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn driver(err: mongodb::error::Error) -> Self {
        Self::Driver(Box::new(err))
    }
}

impl From<Error> for dao::Error {
    fn from(err: Error) -> Self {
        dao::Error::backend(err)
    }
}
