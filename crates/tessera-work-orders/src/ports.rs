//! Outbound ports the service wires in: the access API, key handling and sealing, the
//! work order signer and the clock.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a user's public Crypt4GH key was refused (wps.md §2.3). The messages are the exact
/// texts clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The value is empty.
    #[error("Key must be a non-empty string")]
    Empty,
    /// A line looks like a private-key armour.
    #[error("Do not pass a private key")]
    PrivateKey,
    /// The decoded key is not exactly 32 bytes.
    #[error("Invalid key")]
    Invalid,
    /// The key is a low-order point: anyone could open what is sealed to it.
    #[error("Invalid key: a low-order point, unusable for encryption")]
    LowOrder,
    /// The base64 body does not decode; the text is the decoder's message.
    #[error("{0}")]
    Base64(String),
}

/// Sealing or signing failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CryptoError {
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl CryptoError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The access API could not answer (transport failure, unexpected status, bad body). Its
/// text is logged, never shown: the repository answers with its own 403 detail.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AccessCheckError {
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl AccessCheckError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The access API of wps.md §5: who may download which dataset and upload to which box,
/// and until when. Implemented by the HTTP adapter and by [`crate::grants::GrantStore`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AccessCheck: Send + Sync {
    /// Until when `user_id` may download `dataset_id`. MUST return `Ok(None)` when the user
    /// has no valid access (or is unknown), and `Err` only when the answer is unknown.
    async fn check_download_access(
        &self,
        user_id: Uuid,
        dataset_id: &str,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError>;

    /// Every dataset `user_id` may download, with its expiry, in the API's order. MUST return
    /// an empty list for an unknown user.
    async fn list_download_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, AccessCheckError>;

    /// Until when `user_id` may upload to the research data upload box `box_id`. Same rules
    /// as [`AccessCheck::check_download_access`].
    async fn check_upload_access(
        &self,
        user_id: Uuid,
        box_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError>;

    /// Every research data upload box `user_id` may upload to, with its expiry, in the API's
    /// order. MUST return `Err` when the API names a box by something other than a UUID.
    async fn list_upload_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, AccessCheckError>;
}

/// Key handling and encryption for the user (wps.md §2.2, §2.3).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait TokenCrypto: Send + Sync {
    /// Validates a raw or armoured Crypt4GH public key and returns the standard base64 of its
    /// 32 bytes. MUST fail with the [`KeyError`] whose message §2.3 prescribes.
    fn normalise_key(&self, raw: &str) -> Result<String, KeyError>;

    /// Seals `plaintext` (UTF-8) for the key `key_b64` (as returned by
    /// [`TokenCrypto::normalise_key`]) in a NaCl sealed box and returns it as padded standard
    /// base64.
    fn seal(&self, key_b64: &str, plaintext: &str) -> Result<String, CryptoError>;
}

/// Signs work order tokens (wps.md §2.4).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait WorkOrderSigner: Send + Sync {
    /// Returns the compact JWS of `claims`, signed with ES256 under the header
    /// `{"alg":"ES256"}` only. MUST keep the claims as given (integer `iat`/`exp`).
    fn sign(&self, claims: &Map<String, Value>) -> Result<String, CryptoError>;
}

/// The time source; injected so tests control time.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Debug for `Arc<dyn Port>` fields, which carry no printable state.
pub(crate) struct Opaque(pub &'static str);

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}
