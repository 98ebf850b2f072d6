//! The dataset port: turns the `dataset_uuid` of a symlink request into a path on the
//! storage system. HuBMAP's adapter asks the ingest API (`POST
//! {root_url}/datasets/file-system-abs-path`, §A8.2), which maps each dataset to the data
//! root of its access level; the storage then confines the path to `dataset_roots` like any
//! `source_path`, so an access level whose root is not configured is refused there.

use std::fmt;

use async_trait::async_trait;

/// Errors of the dataset port (the whole lookup failed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API could not be reached (refused, timed out).
    #[error("dataset api unreachable")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The API answered with an error status; `body` is its text.
    #[error("dataset api answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The answer's text.
        body: String,
    },
    /// The API answered something that is not the expected list.
    #[error("dataset api answered garbage: {0}")]
    Garbage(String),
}

/// Result with the dataset [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the API said about one uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The dataset's absolute path.
    Path(String),
    /// The API's error for this uuid (unknown, not permitted, …), verbatim.
    Error(String),
}

/// Resolves dataset uuids to paths.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait DatasetResolver: Send + Sync + fmt::Debug {
    /// Asks for every uuid of `uuids` at once, on behalf of the holder of `groups_token`.
    /// MUST answer one [`Resolved`] per uuid, in the order of `uuids` (a uuid the API left
    /// out is a [`Resolved::Error`]), or an [`Error`] when the lookup as a whole failed.
    async fn resolve(&self, uuids: &[String], groups_token: &str) -> Result<Vec<Resolved>>;
}
