//! The crate's error type and its mapping into the kit's protocol errors.

use std::path::PathBuf;

use tessera_kit::{dao, events};

/// Errors of the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported an error.
    #[error("sqlite failed")]
    Sqlite(#[from] rusqlite::Error),
    /// The directory that should hold the database file could not be created.
    #[error("cannot create the directory {path:?}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be created or made private.
    #[error("cannot create or restrict the database file {path:?}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer build with a schema this one does not know.
    #[error("the database uses schema version {found}, this build knows up to {supported}")]
    SchemaVersion { found: i64, supported: i64 },
    /// SQLite refused WAL mode (e.g. a file system without shared memory), without which
    /// several processes cannot share the file safely.
    #[error("the database runs in journal mode {0:?} instead of wal")]
    NotWal(String),
    /// A blocking task panicked or was cancelled.
    #[error("a blocking database task failed")]
    Join(#[from] tokio::task::JoinError),
    /// Another member of the consumer group took over its lease, so this member may no
    /// longer commit.
    #[error("another member holds the lease of consumer group {group:?}")]
    LeaseLost { group: String },
    /// A file of the local object store could not be read or written.
    #[error("i/o error on {path:?}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A value could not be encoded as JSON.
    #[error("cannot encode json")]
    Json(#[from] serde_json::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for dao::Error {
    fn from(err: Error) -> Self {
        dao::Error::backend(err)
    }
}

impl From<Error> for events::Error {
    fn from(err: Error) -> Self {
        events::Error::backend(err)
    }
}
