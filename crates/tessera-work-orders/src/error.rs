//! The crate's one error type.

use crate::ports::{CryptoError, KeyError};

/// Errors of the work package domain. The service maps each variant to one HTTP status in
/// its single `ResponseError` impl; event handlers turn every variant into a failed event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Access refused. The string is the exact `detail` of the original's 403 answer and
    /// MUST be sent to the client unchanged (wps.md §1.1, §1.2, §1.4–§1.6).
    #[error("{0}")]
    Access(String),
    /// A request breaks a cross-field rule. The string is the exact message (several joined
    /// with `"; "`) and MUST be answered as a 422 validation failure.
    #[error("{0}")]
    Validation(String),
    /// The user's public Crypt4GH key was refused; the message is exact. MUST be answered as
    /// a 422 on `["body", "user_public_crypt4gh_key"]`.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An event payload breaks a domain rule (a file accession without `GHGAF`). The event
    /// handler MUST fail the event so that it goes to the dead-letter topic.
    #[error("invalid event payload: {0}")]
    InvalidEvent(String),
    /// The document store failed, or holds a document that does not decode. MUST be answered
    /// as a 500 with a generic body.
    #[error("document store failed")]
    Storage(#[from] tessera_kit::dao::Error),
    /// Sealing or signing a token failed. MUST be answered as a 500.
    #[error("token cryptography failed")]
    Crypto(#[from] CryptoError),
    /// Any other broken invariant (a stored record of the wrong shape, no randomness).
    /// MUST be answered as a 500.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Access`] with its exact detail.
    pub(crate) fn access(detail: &str) -> Self {
        Self::Access(detail.to_owned())
    }
}
