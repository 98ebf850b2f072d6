//! The process-level errors every service shares, and how a service's own error tells the
//! command line its exit code.

/// A boxed error, for causes from any provider.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of opening providers, running parts and the command line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value is unusable; names the key and its environment variable.
    #[error("invalid config key {key:?} (env {env}): {message}")]
    Config {
        /// The key at fault.
        key: &'static str,
        /// Its environment variable, e.g. `WPS_MONGO_DSN`.
        env: String,
        /// Why.
        message: String,
    },
    /// The config could not be loaded (missing key, bad value, unknown key, bad file).
    #[error(transparent)]
    Load(#[from] tessera_config::Error),
    /// A server did not answer at start-up; names the key that points at it.
    #[error("cannot connect to {what} at {target} (config key {key}, env {env})")]
    Connect {
        /// `mongodb` or `kafka`.
        what: &'static str,
        /// The key that names the server (`mongo_dsn`, `kafka_servers`).
        key: &'static str,
        /// Its environment variable.
        env: String,
        /// The servers, without credentials.
        target: String,
        /// What the provider reported.
        #[source]
        source: BoxError,
    },
    /// The embedded store could not be opened.
    #[error("embedded store failed")]
    Embedded(#[from] tessera_embedded::Error),
    /// The HTTP server could not be built, bound or run.
    #[error("http server failed")]
    Http(#[from] tessera_http::Error),
    /// A part panicked or was cancelled.
    #[error("part {part} crashed: {message}")]
    Crashed {
        /// The part.
        part: &'static str,
        /// The panic message.
        message: String,
    },
    /// A part did not stop within the deadline and was aborted.
    #[error("part {part} did not stop within {seconds} s and was aborted")]
    StopTimeout {
        /// The part.
        part: &'static str,
        /// The deadline.
        seconds: u64,
    },
    /// A service inside `tessera dev` failed.
    #[error("service {service} failed")]
    Dev {
        /// The service.
        service: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A command line argument is unusable, or a command this service does not have.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file or the terminal failed.
    #[error("i/o error on {what}")]
    Io {
        /// What was read or written.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Config`] for `key` of the service with environment prefix `prefix`.
    pub fn config(prefix: &str, key: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            key,
            env: env_var(prefix, key),
            message: message.into(),
        }
    }
}

/// The environment variable of `key` under `prefix`: `env_var("wps", "mongo_dsn")` is
/// `WPS_MONGO_DSN`.
pub fn env_var(prefix: &str, key: &str) -> String {
    format!("{}_{}", prefix.to_uppercase(), key.to_uppercase())
}

/// What the command line needs of a service's error.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// The process exit code: 2 for configuration and usage errors, 1 for the rest.
    fn exit_code(&self) -> u8;
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config { .. } | Self::Load(_) | Self::Usage(_) => 2,
            _ => 1,
        }
    }
}
