//! OpenSpending's os-conductor (spec `conductor_ogdc.md` §A, part 1): login through any
//! number of OpenID Connect providers, user and permission tokens, permission management,
//! and datastore uploads through presigned URLs on S3 or the local object store.
//!
//! Layout:
//! - [`config`]: [`ConductorConfig`] (the original's `OS_*` variables plus the additions).
//! - [`keys`]: the signing keys and the josekit [`TokenCodec`](tessera_conductor::TokenCodec).
//! - [`login`]: the OIDC providers and the signed login state.
//! - [`rest`]: the HTTP translator (`/user`, `/oauth`, `/datastore`, `/admin`), JSONP, the
//!   one error mapping, the OpenAPI document and the JS client at `/user/lib`.
//! - [`prepare`]: the composition root; [`prepare::Overrides`] for tests.
//! - [`service`]: the service as `tessera-service` runs it.
//! - [`cli`]: `conductor permissions grant|revoke|list` and `conductor generate-key`.

pub mod cli;
pub mod config;
pub mod keys;
pub mod login;
pub mod prepare;
pub mod rest;
pub mod search;
pub mod service;

pub use config::ConductorConfig;
pub use prepare::{Core, Overrides, prepare};

/// The service version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors of setting up and running the service (request errors are [`rest::ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is unusable.
    #[error("invalid config key {key:?} (env OS_{}): {message}", key.to_uppercase())]
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
    /// The domain failed.
    #[error(transparent)]
    Domain(#[from] tessera_conductor::Error),
    /// A usage error of a command.
    #[error("{0}")]
    Usage(String),
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
            Self::Config { .. } | Self::Load(_) | Self::Usage(_) => 2,
            Self::Process(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
