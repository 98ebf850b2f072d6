//! The OGDC runner service, wire-compatible with `ogdc-runner` 0.3.0 (spec
//! `conductor_ogdc.md` §B with §B10's corrections): users and HS256 tokens (or v0.4's OIDC
//! access tokens and access modes), recipes
//! submitted as runs to a workflow engine, their status, logs and outputs.
//!
//! Layout:
//! - [`config`]: [`OgdcConfig`], the original's variables under their own names;
//! - [`auth`]: [`auth::Access`], the caller in each access mode (passwords, OIDC, open,
//!   read-only);
//! - [`login`]: [`login::Login`], v0.4's browser login in OIDC mode (`/login`,
//!   `/authorize`, `/refresh`);
//! - [`fetch`]: SSRF-safe HTTP fetching and the recipe loader (https or the local root);
//! - [`engines`]: the workflow engine providers (the local executor);
//! - [`rest`]: the HTTP translator and its one error mapping;
//! - [`prepare`]: the composition root; [`service`]: the service for `tessera-service`;
//! - [`cli`]: `ogdc validate-recipe`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod dataone;
pub mod engines;
pub mod fetch;
pub mod login;
pub mod prepare;
pub mod rest;
pub mod service;

pub use config::OgdcConfig;
pub use prepare::{Core, Overrides, prepare};

/// The version `/version` reports: the original's, which clients may check.
pub const ORIGINAL_VERSION: &str = "0.3.0";

/// Errors of setting up and running the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is unusable.
    #[error("invalid config key {key:?} (env {}): {message}", env_name(key))]
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
    /// The domain failed (storage, hashing).
    #[error(transparent)]
    Domain(#[from] tessera_recipes::Error),
    /// A recipe given to `validate-recipe` is invalid.
    #[error("invalid recipe: {0}")]
    Recipe(#[from] tessera_recipes::recipe::Error),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

fn env_name(key: &str) -> String {
    if config::UNPREFIXED.contains(&key) {
        key.to_uppercase()
    } else {
        format!("OGDC_{}", key.to_uppercase())
    }
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
            Self::Config { .. } | Self::Load(_) | Self::Recipe(_) => 2,
            Self::Process(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
