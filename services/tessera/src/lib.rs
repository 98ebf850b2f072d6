//! The Tessera operator CLI as a library, so tests drive the same code as the binary.
//!
//! - [`keys`]: `tessera keys generate`: the work-order signing key (P-256 JWK pair) and a
//!   Crypt4GH key pair.
//! - [`events`]: `tessera events publish|tail` against the configured event bus.
//! - [`dev`]: `tessera dev`: every service on its embedded defaults in one process
//!   ([`services`] says which).
//! - [`objects`]: `tessera objects put|get|ls|rm|presign` on the configured object store.
//! - [`token`]: `tessera token mint`: internal user tokens for development.
//! - `tessera config example`: the generated `example-config.yaml`.

pub mod config;
pub mod dev;
pub mod events;
pub mod keys;
pub mod objects;
pub mod services;
pub mod token;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use config::TesseraConfig;

/// Errors of the CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] tessera_config::Error),
    #[error("embedded store")]
    Embedded(#[from] tessera_embedded::Error),
    #[error(transparent)]
    Events(#[from] tessera_kit::events::Error),
    #[error(transparent)]
    Objects(#[from] tessera_kit::objects::Error),
    #[error(transparent)]
    S3(#[from] tessera_s3::Error),
    #[error(transparent)]
    Crypt(#[from] tessera_crypt::Error),
    #[error(transparent)]
    Auth(#[from] tessera_auth::Error),
    #[error("{0}")]
    Usage(String),
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Service(String),
    #[error(transparent)]
    Process(#[from] tessera_service::Error),
}

/// Result with the CLI [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

const ABOUT: &str =
    "Tessera operator CLI: keys, events, and every service on its embedded defaults";

const LONG_ABOUT: &str = "\
Tessera operator CLI.

Tessera re-implements research-data access services (GHGA's Work Package Service, ...) as
independently deployable Rust services over one hexagonal kit. Every service runs on an
embedded default (one SQLite file for documents and events) and, in production, on MongoDB
and Kafka.

Configuration: defaults < TESSERA_CONFIG_YAML (or ./.tessera.yaml, ~/.tessera.yaml) <
environment variables TESSERA_<KEY>. Run `tessera config example` for every key.";

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The embedded store file (overrides TESSERA_EMBEDDED_DB_PATH).
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate keys: the work-order signing key and a Crypt4GH key pair
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Publish events to, or read them from, the configured event bus
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Upload, download, list and delete objects in the configured object store
    #[command(subcommand)]
    Objects(objects::ObjectsCommand),
    /// Run every service on its embedded defaults in one process and print their URLs
    Dev(dev::DevArgs),
    /// Mint internal user tokens for development and tests
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Show configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `tessera config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the example configuration of every service (the content of example-config.yaml)
    Example,
    /// Print the keys of the CLI's own configuration with their env variables and defaults
    Keys,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let mut config: TesseraConfig = tessera_config::load(config::PREFIX)?;
    if let Some(db) = cli.db {
        config.embedded.embedded_db_path = db;
    }
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Events(cmd) => events::run(&config, cmd).await,
        Command::Objects(cmd) => objects::run(&config, cmd).await,
        Command::Dev(args) => dev::run(&config, args).await,
        Command::Token(cmd) => token::run(&config, cmd),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::example()?);
            Ok(())
        }
        Command::Config(ConfigCommand::Keys) => {
            print!(
                "{}",
                tessera_config::help_text::<TesseraConfig>(config::PREFIX)?
            );
            Ok(())
        }
    }
}
