//! HuBMAP's User Workspaces Server (spec `uws_wts.md` §A, corrected by §A10), on
//! `tessera-service`: API tokens that expire and can be revoked, workspaces in a directory
//! per user owned by the user's OS account, sharing by background copy, and the users, job
//! types and parameters listings. Clients (the HuBMAP portal, scripts) keep working: the
//! envelope, messages, status codes and check order are the original's.
//!
//! Layout:
//! - [`config`]: [`UwsConfig`], the original's `config.json` plus a `server` section;
//! - [`storage`]: the local file-system provider of the storage port (`root_dir`
//!   confinement, no symlink following, OS accounts);
//! - [`local`]: the local-process provider of the resource port; [`slurm`]: the Slurm
//!   provider (on `tessera-slurm`);
//! - [`introspect`]: RFC 7662 token introspection (Globus Auth, any OIDC provider);
//! - [`datasets`]: HuBMAP's ingest API, which resolves `dataset_uuid` symlinks;
//! - [`rest`]: the HTTP translator, the envelope and the one status mapping;
//! - [`prepare`]: the composition root; [`prepare::Overrides`] for tests;
//! - [`service`]: the service as `tessera-service` runs it; [`cli`]: `uws api-client`.

pub mod cli;
pub mod config;
pub mod datasets;
pub mod introspect;
pub mod local;
pub mod prepare;
pub mod rest;
pub mod service;
pub mod slurm;
pub mod storage;

pub use config::UwsConfig;
pub use prepare::{Core, Overrides, prepare};

/// The service version (`/status/`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from, when the build sets `TESSERA_GIT_COMMIT`.
pub const COMMIT: &str = match option_env!("TESSERA_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Errors of setting up and running the service (request errors are
/// [`rest::ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is unusable.
    #[error("invalid config key {key:?}: {message}")]
    Config {
        /// The key, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Loading the config failed.
    #[error(transparent)]
    Load(#[from] tessera_config::Error),
    /// Opening the store, running the parts or the command line failed.
    #[error(transparent)]
    Process(tessera_service::Error),
    /// The store failed.
    #[error("store")]
    Store(#[from] tessera_kit::dao::Error),
    /// The core refused or failed.
    #[error(transparent)]
    Core(#[from] tessera_workspaces::Error),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<tessera_service::Error> for Error {
    fn from(err: tessera_service::Error) -> Self {
        match err {
            tessera_service::Error::Config { key, message, .. } => Self::Config {
                key: key.to_owned(),
                message,
            },
            tessera_service::Error::Load(e) => Self::Load(e),
            other => Self::Process(other),
        }
    }
}

impl From<tessera_http::Error> for Error {
    fn from(err: tessera_http::Error) -> Self {
        Self::Process(tessera_service::Error::Http(err))
    }
}

impl tessera_service::Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config { .. } | Self::Load(_) => 2,
            Self::Process(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
