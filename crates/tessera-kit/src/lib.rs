//! Tessera's protocols: the service-agnostic ports every provider implements.
//!
//! - [`dao`]: typed document access per collection ([`dao::Dao`], [`dao::DaoFactory`]).
//! - [`events`]: events, the publisher and bus ports, and the handler port services
//!   implement.
//! - [`objects`]: object storage (streamed put and get, list, copy, presigned URLs).
//! - [`subscriber`]: the consumer loop with retries, dead-letter topic and retry topic.
//! - `testsuite` (feature `testsuite`): the contract suites every provider runs against
//!   itself, so that all providers behave the same.

pub mod dao;
pub mod events;
pub mod objects;
pub mod subscriber;
#[cfg(feature = "testsuite")]
pub mod testsuite;
