//! GHGA's Work Package Service (WPS), wire-compatible with the original (wps.md). It runs on
//! the embedded default (one SQLite file for documents and events) or on the production
//! path: documents in MongoDB (`mongo_dsn`), events from Kafka (`kafka_servers`). Grants
//! are managed with `wps grants` in the document store unless an access API is configured.
//!
//! A service holds translators, its config and the composition root:
//! - [`config`]: [`WpsConfig`] (`.wps.yaml`, `WPS_*`), validated with the key at fault.
//! - [`prepare`]: the composition root: providers from config (embedded store or MongoDB,
//!   embedded event log or Kafka), the repository, the REST app, the subscriber, the purge
//!   task; [`Overrides`] for tests.
//! - [`migrate`]: `migrate-db`: collections and the database version record.
//! - [`rest`]: the HTTP translator (routes, FastAPI-compatible validation and errors,
//!   OpenAPI).
//! - [`events`]: the event translator (datasets, upload boxes, accession maps).
//! - [`access`]: the access API adapter (reqwest).
//! - [`adapters`]: the crypto ports on tessera-crypt and tessera-auth.
//! - [`service`]: the service as `tessera-service` runs it: its parts (REST API, purge
//!   task, event consumer), `migrate-db`, its configuration in `tessera dev`.
//! - [`run`]: starting parts of a prepared core; [`start_dev`].
//! - [`cli`]: the `wps grants` commands (the shared ones come from `tessera-service`).

pub mod access;
pub mod adapters;
pub mod cli;
pub mod config;
pub mod events;
pub mod migrate;
pub mod prepare;
pub mod rest;
pub mod run;
pub mod service;

pub use config::WpsConfig;
pub use prepare::{Core, Overrides, prepare_core};
pub use run::{Parts, RunningWps, start_dev};
pub use service::DEV_AUTH_KEYS;

/// Errors of the service outside request handling (those are [`rest::ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is unusable; names the key and its environment variable.
    #[error("invalid config key {key:?} (env WPS_{}): {message}", key.to_uppercase())]
    Config {
        /// The key at fault.
        key: &'static str,
        /// Why.
        message: String,
    },
    /// The config could not be loaded (missing key, bad value, unknown key, bad file).
    #[error(transparent)]
    Load(#[from] tessera_config::Error),
    /// MongoDB or Kafka did not answer at start-up; names the key that points at it.
    #[error("cannot connect to {what} at {target} (config key {key}, env WPS_{})", key.to_uppercase())]
    Connect {
        /// `mongodb` or `kafka`.
        what: &'static str,
        /// The key that names the server (`mongo_dsn`, `kafka_servers`).
        key: &'static str,
        /// The servers, without credentials.
        target: String,
        /// What the provider reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Running the process failed (a part crashed or did not stop, the HTTP server, the
    /// embedded store).
    #[error(transparent)]
    Process(tessera_service::Error),
    /// The database is not in a state `migrate-db` can bring to this service's version.
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    /// A collection could not be opened or used.
    #[error("document store failed")]
    Dao(#[from] tessera_kit::dao::Error),
    /// The event bus failed, or an event failed for good without a dead-letter topic.
    #[error("event consumer failed")]
    Events(#[from] tessera_kit::events::Error),
    /// A domain operation failed.
    #[error("work package domain failed")]
    Domain(#[from] tessera_work_orders::Error),
    /// The access API client could not be built.
    #[error("cannot build the access api client: {0}")]
    AccessClient(String),
    /// A command line argument is unusable.
    #[error("{0}")]
    Usage(String),
    /// What a command was asked to act on does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tessera_service::Error> for Error {
    fn from(err: tessera_service::Error) -> Self {
        match err {
            tessera_service::Error::Config { key, message, .. } => Self::Config { key, message },
            tessera_service::Error::Connect {
                what,
                key,
                target,
                source,
                ..
            } => Self::Connect {
                what,
                key,
                target,
                source,
            },
            tessera_service::Error::Load(e) => Self::Load(e),
            tessera_service::Error::Usage(m) => Self::Usage(m),
            other => Self::Process(other),
        }
    }
}

impl From<tessera_http::Error> for Error {
    fn from(err: tessera_http::Error) -> Self {
        Self::Process(tessera_service::Error::Http(err))
    }
}

impl From<tessera_embedded::Error> for Error {
    fn from(err: tessera_embedded::Error) -> Self {
        Self::Process(tessera_service::Error::Embedded(err))
    }
}

impl tessera_service::Failure for Error {
    fn exit_code(&self) -> u8 {
        self.exit_code()
    }
}

impl Error {
    /// The process exit code: 2 for configuration and usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config { .. } | Self::Load(_) | Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Result with the service's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
