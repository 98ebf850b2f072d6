//! A Tessera service's process, so that a service is only its config struct, its domain
//! crate, its translators (routes, event handlers, workers) and a short `prepare`.
//!
//! A service implements [`Service`] on its prepared core: how to validate its config, how to
//! build its ports ([`Service::prepare`]), which [`Part`]s it has, its `migrate-db` and its
//! own commands, and its configuration inside `tessera dev`. This crate does the rest:
//! - [`backends`]: the document store (embedded or MongoDB) and the event bus (embedded or
//!   Kafka) from the flattened config fragments, with errors that name the key at fault;
//! - [`lifecycle`]: starting the parts a command asks for, one stop signal per part, stopping
//!   them in order within a deadline, the failure of one part stopping the others, and the
//!   parts' states at `/health`;
//! - [`objects`]: the object store (S3 or a local directory) from its config fragments;
//! - [`cli`]: the command line every service shares (`serve`, `run-rest`, `consume-events`,
//!   `run-workers`, `migrate-db`, `config example|check`, `--help` with every key), exit
//!   codes 0/1/2 and the cause chain on failure;
//! - [`dev`]: one [`dev::DevEntry`] per service for `tessera dev` (a shared embedded store,
//!   development secrets kept beside it, a port each).
//!
//! `docs/ARCHITECTURE.md` ("How to add a service") walks through a new service.

pub mod backends;
pub mod cli;
pub mod dev;
mod error;
pub mod lifecycle;
pub mod objects;

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_embedded::EmbeddedStore;
use tessera_http::LogConfig;

pub use backends::{Backends, Documents, KafkaSettings, Storage, Transport};
pub use error::{BoxError, Error, Failure, Result, env_var};
pub use lifecycle::{
    BoxFuture, Part, PartContext, Parts, Role, Running, Shutdown, Started, Stopper, start,
};

/// What the shared command line needs of a service's config struct.
pub trait ServiceConfig:
    Serialize + DeserializeOwned + Default + fmt::Debug + Send + Sync + 'static
{
    /// Environment prefix and YAML file stem: `wps` reads `WPS_*` and `.wps.yaml`.
    const PREFIX: &'static str;

    /// Variables without the prefix that set a key, `(variable, key)`: for originals that
    /// read a few such variables. `<PREFIX>_<KEY>` wins over its alias.
    const ENV_ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Top-level keys also read from their bare variable (`ARGO_NAMESPACE` for
    /// `argo_namespace`), for services that keep an original's variable names.
    const UNPREFIXED: &'static [&'static str] = &[];

    /// The logging settings.
    fn log(&self) -> &LogConfig;
}

/// How the binary describes itself.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// The binary's name, e.g. `wps`.
    pub name: &'static str,
    /// What it re-implements, e.g. `Work Package Service`, for listings.
    pub title: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The long description for `--help` (what the service does, where its data lives).
    pub long_about: &'static str,
    /// The service's version.
    pub version: &'static str,
    /// The roles of its parts: which of `run-rest`, `consume-events`, `run-workers` exist.
    pub roles: &'static [Role],
    /// Whether it has `migrate-db`.
    pub migrations: bool,
}

/// What the runtime may hand to [`Service::prepare`] instead of opening it from the config.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// An open embedded store, used wherever the config picks the embedded store
    /// (`tessera dev` runs every service on one).
    pub store: Option<EmbeddedStore>,
}

/// A service: implemented by its prepared core (the ports built from the config).
#[async_trait]
pub trait Service: Sized + Send + Sync + 'static {
    /// The config struct.
    type Config: ServiceConfig;
    /// The service's error; [`Error`] converts into it.
    type Error: Failure + From<Error>;
    /// Commands beyond the shared ones ([`cli::NoCommands`] for none).
    type Commands: clap::Subcommand + fmt::Debug + Send + 'static;

    /// How the binary describes itself.
    const INFO: Info;

    /// Checks every value that loading alone cannot; the error names the key.
    fn validate(config: &Self::Config) -> Result<(), Self::Error>;

    /// Builds the providers and the domain core (the composition root).
    async fn prepare(config: Self::Config, given: Given) -> Result<Self, Self::Error>;

    /// Every part of the service, in start order; the runtime starts those of the roles a
    /// command asks for.
    fn parts(&self) -> Result<Vec<Part<Self::Error>>, Self::Error>;

    /// `migrate-db`: brings the database to this version, printing what it did. Only called
    /// when [`Info::migrations`] is set.
    async fn migrate(config: Self::Config) -> Result<(), Self::Error> {
        let _ = config;
        Err(Error::Usage(format!("{} has no migrate-db", Self::INFO.name)).into())
    }

    /// Runs one of the service's own commands; `config` loads (and validates) the config
    /// for commands that need it.
    async fn command(
        command: Self::Commands,
        config: &(dyn Fn() -> Result<Self::Config, Self::Error> + Sync),
    ) -> Result<(), Self::Error> {
        let _ = config;
        Err(Error::Usage(format!("unknown command {command:?}")).into())
    }

    /// The service's config inside `tessera dev`: its defaults, the development secrets and
    /// the settings of `env`.
    fn dev_config(env: &dev::DevEnv) -> Result<Self::Config, Self::Error>;
}

/// Loads `S`'s config (defaults < YAML < secrets < `.env` < environment, with the service's
/// unprefixed aliases below its prefixed variables) and validates it; what deserves a
/// warning (keys of the original this service ignores, variables with its prefix that name
/// no key) is written to stderr, whatever the log level, before logging starts.
pub fn load_config<S: Service>() -> Result<S::Config, S::Error> {
    let loaded = config_loader::<S::Config>(tessera_config::Loader::from_process(
        <S::Config as ServiceConfig>::PREFIX,
    ))
    .load_with_warnings::<S::Config>()
    .map_err(|e| S::Error::from(Error::Load(e)))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    S::validate(&loaded.config)?;
    Ok(loaded.config)
}

/// Loads `S`'s config with `file` (`--config`) as its YAML file when given, else as
/// [`load_config`] does; and validates it.
pub fn load_config_file<S: Service>(file: Option<&std::path::Path>) -> Result<S::Config, S::Error> {
    let Some(file) = file else {
        return load_config::<S>();
    };
    let config: S::Config =
        tessera_config::Loader::from_process(<S::Config as ServiceConfig>::PREFIX)
            .yaml_file(file)
            .load()
            .map_err(|e| S::Error::from(Error::Load(e)))?;
    S::validate(&config)?;
    Ok(config)
}

/// Loads `S`'s config from the given variables only (and the YAML file they name), and
/// validates it; for tests.
pub fn load_config_from<S: Service>(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<S::Config, S::Error> {
    let config: S::Config = config_loader::<S::Config>(tessera_config::Loader::new(
        <S::Config as ServiceConfig>::PREFIX,
    ))
    .env(env)
    .load()
    .map_err(|e| S::Error::from(Error::Load(e)))?;
    S::validate(&config)?;
    Ok(config)
}

/// `loader` reading `C`'s unprefixed keys too.
pub fn config_loader<C: ServiceConfig>(loader: tessera_config::Loader) -> tessera_config::Loader {
    C::ENV_ALIASES
        .iter()
        .fold(loader.unprefixed(C::UNPREFIXED), |loader, (var, key)| {
            loader.alias(var, key)
        })
}

/// Prepares `S` from `config` and runs the parts of `selection` until a stop signal or a
/// part ending.
pub async fn run<S: Service>(config: S::Config, selection: Parts) -> Result<(), S::Error> {
    let core = S::prepare(config, Given::default()).await?;
    let running = start(core, selection).await?;
    if let Some(url) = running.url() {
        tracing::info!(%url, service = S::INFO.name, "listening");
    }
    running.wait().await
}
