//! Tokens for Tessera services: verifying the internal auth JWT, turning its claims into a user
//! context, signing work order tokens, and actix extractors for bearer tokens.
//!
//! Follows the GHGA service-commons `JWTAuthContextProvider` (WPS spec §2.4, §2.5, §10).
//!
//! Layout:
//! - [`verifier`]: [`JwtVerifier`], signature and algorithm checks of compact JWS tokens against
//!   one public JWK.
//! - [`claims`]: [`ClaimRules`], required claims, claim renaming, integer and expiry checks.
//! - [`context`]: [`AuthContext`], the validated user context.
//! - [`provider`]: [`AuthProvider`], verifier plus rules: token in, [`AuthContext`] out.
//! - [`signer`]: [`JwtSigner`] (ES256, header exactly `{"alg":"ES256"}`) and
//!   [`generate_es256_jwk_pair`].
//! - [`actix`]: the [`BearerToken`](actix::BearerToken) and [`AuthContext`] extractors.
//!
//! josekit is an implementation detail: no josekit type appears in a public signature.

pub mod actix;
pub mod claims;
pub mod context;
pub mod provider;
pub mod signer;
pub mod verifier;

pub use claims::ClaimRules;
pub use context::AuthContext;
pub use provider::AuthProvider;
pub use signer::{JwtSigner, generate_es256_jwk_pair};
pub use verifier::JwtVerifier;

/// Errors of this crate. Token errors all become a 401 at the HTTP edge; the variants exist for
/// logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A JWK could not be parsed or does not fit its purpose.
    #[error("invalid jwk: {0}")]
    InvalidJwk(String),
    /// The verification key has a private (or symmetric) part.
    #[error("the auth key must be a public jwk, but it contains private key material")]
    PrivateKeyGiven,
    /// The signing key has no private part. Exact text of the original service (§2.4).
    #[error("No private work order signing key found.")]
    NoPrivateKey,
    /// An allowed algorithm name is not one this crate verifies (e.g. `none`, `HS256`).
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// None of the allowed algorithms fits the key type.
    #[error("none of the allowed algorithms {0:?} fits the key")]
    NoUsableAlgorithm(Vec<String>),
    /// Generating or using a key failed inside the crypto library.
    #[error("key operation failed: {0}")]
    Crypto(String),
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// The token's `alg` is not allowed or does not match the key.
    #[error("algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The signature did not verify (or josekit rejected the token while verifying).
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// A required claim is absent.
    #[error("missing claim {0:?}")]
    MissingClaim(String),
    /// A required claim has a value other than the expected one.
    #[error("claim {0:?} has an unexpected value")]
    UnexpectedClaimValue(String),
    /// `iat`, `exp` or `nbf` is not convertible to an integer.
    #[error("claim {0:?} is not an integer")]
    NotAnInteger(String),
    /// `exp` lies further in the past than the leeway allows.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's expiry, seconds since the epoch.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `nbf` lies further in the future than the leeway allows.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's not-before time, seconds since the epoch.
        nbf: i64,
        /// The time of the check.
        now: i64,
    },
    /// The claims do not form a valid user context.
    #[error("invalid user context: {0}")]
    InvalidContext(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
