//! Tessera provider: the kit's event-bus protocol ([`EventPublisher`], [`EventBus`],
//! [`EventSource`]) on Apache Kafka, through rdkafka and its vendored librdkafka.
//!
//! Semantics follow GHGA hexkit: an idempotent producer that waits for all in-sync replicas,
//! JSON values, the event type and ids in headers; one consumer group per service, starting
//! at the earliest offset, committing by hand after each event.
//!
//! Layout:
//! - [`config`]: [`KafkaConfig`], the `kafka_*` keys services flatten into their config,
//!   and its translation into librdkafka properties.
//! - `codec`: events to Kafka records and back (a broken record becomes `Err(reason)`).
//! - [`bus`]: [`KafkaBus`], the publisher that also opens consumers and creates topics.
//! - [`source`]: [`KafkaSource`], one group member, driven on its own thread so that
//!   librdkafka's blocking calls (poll, synchronous commit, leaving the group) never run on
//!   an async worker.
//!
//! [`EventPublisher`]: tessera_kit::events::EventPublisher
//! [`EventBus`]: tessera_kit::events::EventBus
//! [`EventSource`]: tessera_kit::events::EventSource

pub mod bus;
mod codec;
pub mod config;
pub mod source;

pub use bus::{KafkaBus, TopicLayout};
pub use config::{CompressionType, KafkaConfig, SecurityProtocol};
pub use source::KafkaSource;

/// Errors of this provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config key has a value this provider cannot use.
    #[error("invalid config key {key}: {message}")]
    Config {
        /// The key, as written in the config file.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// librdkafka refused a client or a call.
    #[error("kafka client failed")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// No broker answered in time when connecting.
    #[error("no kafka broker of {servers} answered within {seconds} s")]
    Unreachable {
        /// The bootstrap servers, comma-separated.
        servers: String,
        /// How long we waited.
        seconds: u64,
        /// What librdkafka reported.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A background thread could not be started or went away.
    #[error("kafka {0} thread failed")]
    Thread(&'static str, #[source] Option<std::io::Error>),
}

/// Result with the provider [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tessera_kit::events::Error {
    fn from(err: Error) -> Self {
        Self::backend(err)
    }
}
