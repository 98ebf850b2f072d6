//! The event protocol: events, the publisher and bus ports providers implement, and the
//! handler port services implement. The subscriber loop that joins them is in
//! [`crate::subscriber`].

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Header that names the event type.
pub const HEADER_TYPE: &str = "type";
/// Header that carries the correlation id across services.
pub const HEADER_CORRELATION_ID: &str = "correlation_id";
/// Header that carries the event's own id.
pub const HEADER_EVENT_ID: &str = "event_id";
/// Dead-letter and retry headers (GHGA hexkit names).
pub const HEADER_EXC_CLASS: &str = "exc_class";
/// The failure message of a dead-lettered event.
pub const HEADER_EXC_MSG: &str = "exc_msg";
/// The topic a dead-lettered or retried event first came from.
pub const HEADER_ORIGINAL_TOPIC: &str = "original_topic";
/// The `event_id` the event had before it was dead-lettered.
pub const HEADER_ORIGINAL_EVENT_ID: &str = "original_event_id";
/// The service that dead-lettered the event.
pub const HEADER_SERVICE: &str = "service";

/// Errors of the event protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topic or event type string breaks the naming rules.
    #[error("invalid {what} {value:?}: {rule}")]
    InvalidName {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    /// An event could not be encoded or decoded.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The broker or log failed.
    #[error("event backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A handler failed after every retry and no dead-letter topic is configured.
    #[error("handling event {event_id} from topic {topic:?} failed: {message}")]
    HandlerFailed {
        topic: String,
        event_id: String,
        message: String,
    },
    /// The consumer was asked to stop.
    #[error("the consumer was closed")]
    Closed,
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// Result with the event [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn check_name(what: &'static str, value: &str) -> Result<()> {
    const RULE: &str = "must be 1 to 249 characters of [A-Za-z0-9._-]";
    let ok = !value.is_empty()
        && value.len() <= 249
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: value.to_owned(),
            rule: RULE,
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                check_name($what, &value)?;
                Ok(Self(value))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(value: &str) -> Result<Self> {
                Self::try_from(value.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Self::try_from(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A topic name (Kafka's rules: `[A-Za-z0-9._-]`, 1 to 249 characters).
    Topic,
    "topic"
);
name_type!(
    /// An event type, carried in the `type` header.
    EventType,
    "event type"
);

/// One event: where it goes, what it is, its key, its JSON payload and its headers.
///
/// The `type` header is kept in `event_type`, never in `headers`; `correlation_id` and
/// `event_id` live in `headers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub topic: Topic,
    pub event_type: EventType,
    pub key: String,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
}

impl Event {
    /// A new event with a fresh `event_id` and the given correlation id.
    pub fn new(
        topic: Topic,
        event_type: EventType,
        key: impl Into<String>,
        payload: Value,
        correlation_id: impl Into<String>,
    ) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert(HEADER_CORRELATION_ID.to_owned(), correlation_id.into());
        headers.insert(HEADER_EVENT_ID.to_owned(), uuid::Uuid::new_v4().to_string());
        Self {
            topic,
            event_type,
            key: key.into(),
            payload,
            headers,
        }
    }

    /// The `correlation_id` header, if present.
    pub fn correlation_id(&self) -> Option<&str> {
        self.headers.get(HEADER_CORRELATION_ID).map(String::as_str)
    }

    /// The `event_id` header, if present.
    pub fn event_id(&self) -> Option<&str> {
        self.headers.get(HEADER_EVENT_ID).map(String::as_str)
    }

    /// Sets the `event_id` header when it is missing, and returns it.
    pub fn ensure_event_id(&mut self) -> String {
        self.headers
            .entry(HEADER_EVENT_ID.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }
}

/// Publishes events; what a provider implements.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync + fmt::Debug {
    /// Publishes `event`. MUST return only once the event is durable (acknowledged by the
    /// broker or committed to the log), and MUST set `event_id` when it is missing.
    async fn publish(&self, event: Event) -> Result<()>;
}

/// An event as a consumer received it, with the position needed to commit it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The topic the record was read from.
    pub topic: Topic,
    /// The partition (0 where the provider has none).
    pub partition: i32,
    /// The position within the partition.
    pub offset: i64,
    /// The decoded event, or why the record is not a valid event (no or a bad `type`
    /// header, a payload that is not JSON): such records are logged and committed.
    pub event: std::result::Result<Event, String>,
}

/// One consumer-group member reading some topics; what a provider implements.
#[async_trait]
pub trait EventSource: Send + fmt::Debug {
    /// The next record after the group's committed position. Waits until one arrives.
    /// A record that is not a valid event MUST still be returned (with `event: Err(..)`),
    /// so that it can be committed and skipped.
    async fn next(&mut self) -> Result<Delivery>;

    /// Commits `delivery` and everything before it in its partition for the group. After a
    /// restart the group MUST resume at the event right after the last commit.
    async fn commit(&mut self, delivery: &Delivery) -> Result<()>;

    /// Leaves the group. MUST NOT block the async runtime for long.
    async fn close(&mut self) -> Result<()>;
}

/// Who is consuming: the consumer group is the service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerIdentity {
    /// The service name; the consumer group.
    pub service_name: String,
    /// The instance id; the client id is `<service_name>.<instance_id>`.
    pub instance_id: String,
}

impl ConsumerIdentity {
    /// The client id: `<service_name>.<instance_id>`.
    pub fn client_id(&self) -> String {
        format!("{}.{}", self.service_name, self.instance_id)
    }
}

/// An event bus: a publisher that can also open consumers.
#[async_trait]
pub trait EventBus: EventPublisher {
    /// Joins the consumer group `identity.service_name` reading `topics`; a new group
    /// starts at the earliest event.
    async fn subscribe(
        &self,
        identity: &ConsumerIdentity,
        topics: &[Topic],
    ) -> Result<Box<dyn EventSource>>;
}

/// Why a handler could not process an event; becomes the `exc_class` and `exc_msg` headers
/// of a dead-lettered event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct HandlerError {
    /// A short, stable name of the failure kind (`ValidationError`, `DaoError`, …).
    pub class: String,
    /// The human-readable message.
    pub message: String,
}

impl HandlerError {
    /// A handler error of `class` with `message`.
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            message: message.into(),
        }
    }
}

/// Which events of one topic a handler takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: Topic,
    pub event_types: Vec<EventType>,
}

/// Turns events into calls on a domain port; what a service implements (a translator).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventHandler: Send + Sync + fmt::Debug {
    /// The topics and event types this handler takes. Events of other types on these
    /// topics are logged and skipped.
    fn subscriptions(&self) -> Vec<Subscription>;

    /// Handles one event. MUST be idempotent: the same event may be delivered again after
    /// a crash or a retry.
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}
