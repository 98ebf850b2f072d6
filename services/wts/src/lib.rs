//! Gen3's Workspace Token Service (spec `uws_wts.md` §B), wire-compatible: refresh tokens
//! stored per user and IdP (Fernet, byte-compatible with the original's rows), access tokens
//! on demand for workspaces, account linking through the IdPs' login, and `/aggregate` over
//! every commons.
//!
//! Layout:
//! - [`config`]: [`WtsConfig`] (the original's keys plus the additions) and the IdP list.
//! - [`identity`]: the workspace identity adapters (Kubernetes pod lookup, static map).
//! - [`rest`]: the HTTP translator, the `/aggregate` fan-out and the OpenAPI document.
//! - [`prepare`]: the composition root; [`prepare::Overrides`] for tests.
//! - [`service`]: the service as `tessera-service` runs it (parts, commands, `tessera dev`).
//! - [`run`]: starting a prepared core; [`start_dev`].
//! - [`cli`]: `wts purge` and `wts generate-key` (the shared commands come from
//!   `tessera-service`).

pub mod cli;
pub mod config;
pub mod identity;
pub mod prepare;
pub mod rest;
pub mod run;
pub mod service;

pub use config::WtsConfig;
pub use prepare::{Core, Overrides, prepare};
pub use run::{RunningWts, run, start, start_dev};

/// The service version (`/_version`, the `Gen3WTS/<version>` User-Agent).
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
    #[error("invalid config key {key:?} (env WTS_{}): {message}", key.to_uppercase())]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Loading the config failed.
    #[error(transparent)]
    Load(#[from] tessera_config::Error),
    /// Opening the store, running the parts or the command line failed.
    #[error(transparent)]
    Process(tessera_service::Error),
    /// The storage failed.
    #[error("storage")]
    Storage(#[from] tessera_kit::dao::Error),
    /// An IdP client could not be built.
    #[error(transparent)]
    Oidc(#[from] tessera_oidc::Error),
    /// The token service failed.
    #[error(transparent)]
    Tokens(#[from] tessera_tokens::Error),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<tessera_service::Error> for Error {
    fn from(err: tessera_service::Error) -> Self {
        match err {
            tessera_service::Error::Config { key, message, .. } => Self::Config { key, message },
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
