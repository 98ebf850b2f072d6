//! The User Workspaces Server's core (spec `uws_wts.md` §A, with the corrections of §A10):
//! users and their expiring 40-hex API tokens, workspaces kept on a [`Storage`] port, shares
//! copied by a background worker, and the record shapes jobs fill in.
//!
//! Layout:
//! - [`model`]: the records (`User`, `Token`, `Workspace`, `Job`, `Share`) and their wire
//!   forms (the original's datetime and nesting quirks);
//! - [`storage`]: the storage port, [`EntryName`] (names that cannot climb out);
//! - [`identity`]: the token-introspection port; [`datasets`]: the dataset-uuid port;
//! - [`state`]: every record in memory, written through to the DAO protocol;
//! - [`service`]: [`Uws`], every rule, message and check order of the routes;
//! - [`jobs`]: start, list, stop, the job monitors; [`resource`]: the resource port;
//!   [`params`]: resource-option validation with the original's messages; [`quota`]: disk
//!   space and core-hour limits, enforced;
//! - [`worker`]: the background queue (scans, deletions, share copies).

pub mod datasets;
pub mod identity;
pub mod jobs;
pub mod model;
pub mod params;
pub mod quota;
pub mod resource;
pub mod service;
pub mod state;
pub mod storage;
pub mod worker;

pub use datasets::DatasetResolver;
pub use identity::{Identity, Introspector};
pub use jobs::{JobEvent, JobKind, JobSettings};
pub use model::{Job, JobStatus, Share, Token, User, Workspace, WorkspaceStatus};
pub use quota::{Quota, Used};
pub use resource::{Launch, Observed, Resource};
pub use service::{Body, LoginMode, Reply, Settings, Uws};
pub use storage::{Account, Entry, EntryName, Scan, Storage};
pub use worker::Task;

/// How a refused request is answered (the translator maps it to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400.
    BadRequest,
    /// 401 (with `WWW-Authenticate: Token`).
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 422.
    Unprocessable,
    /// 500 with a message the client sees.
    Failed,
}

/// Errors of the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal with the original's message.
    #[error("{message}")]
    Refused {
        /// How to answer.
        kind: Kind,
        /// The exact message.
        message: String,
    },
    /// The store failed.
    #[error("store")]
    Store(#[from] tessera_kit::dao::Error),
    /// The storage failed.
    #[error("storage")]
    Storage(#[from] storage::Error),
    /// The login provider failed.
    #[error("login provider")]
    Identity(#[from] identity::Error),
}

impl Error {
    /// A refusal.
    pub fn refused(kind: Kind, message: impl Into<String>) -> Self {
        Self::Refused {
            kind,
            message: message.into(),
        }
    }

    /// A 400.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::refused(Kind::BadRequest, message)
    }
}

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
