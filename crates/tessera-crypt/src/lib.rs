//! Crypt4GH keys and libsodium-compatible sealed boxes, on maintained RustCrypto crates.
//!
//! The Work Package Service encrypts every token it hands to a user for that user's Crypt4GH
//! public key (a raw X25519 key) with a NaCl sealed box. This crate holds that cryptography so
//! that domain and service crates see only validated types and byte strings.
//!
//! Layout:
//! - [`b64`]: base64 decoding with the leniency of Python's `base64.b64decode`, so keys are
//!   accepted or rejected exactly as by the original service.
//! - [`public_key`]: [`Crypt4ghPublicKey`], the validated and normalised recipient key.
//! - [`seal`](mod@seal): `crypto_box_seal` for a recipient ([`seal()`], [`seal_base64`]).
//! - [`keypair`]: [`Crypt4ghKeyPair`], generation and the unencrypted Crypt4GH private-key file
//!   format, for the operator CLI and for tests that open sealed boxes.
//!
//! The `crypt4gh` Rust crate is deliberately not used (see `docs/adr/0001-own-crypt4gh-code.md`);
//! the Python `crypt4gh` package and PyNaCl are the test oracle (`tests/interop_python.rs`).

pub mod b64;
pub mod keypair;
pub mod public_key;
pub mod seal;

pub use keypair::Crypt4ghKeyPair;
pub use public_key::Crypt4ghPublicKey;
pub use seal::{seal, seal_base64};

/// Length in bytes of an X25519 key, public or secret.
pub const KEY_LEN: usize = 32;

/// Errors of this crate.
///
/// The first three key messages are the exact texts of the original service (WPS spec §2.3), which
/// clients see in 422 responses, hence their capitalisation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key was empty or only whitespace.
    #[error("Key must be a non-empty string")]
    EmptyKey,
    /// A line of the key looked like a private-key armour.
    #[error("Do not pass a private key")]
    PrivateKeyGiven,
    /// The key body is not decodable base64; the message is the one Python's `binascii` gives.
    #[error("{0}")]
    Base64(String),
    /// The key body decoded to something other than 32 bytes.
    #[error("Invalid key")]
    InvalidKey,
    /// The key is a point of small order (e.g. all zeros): every shared secret with it is
    /// all zeros, so anyone could open what is sealed to it; libsodium refuses it too.
    #[error("Invalid key: a low-order point, unusable for encryption")]
    LowOrderKey,
    /// Sealing failed (only possible for plaintexts beyond the cipher's limits).
    #[error("sealing failed")]
    Seal,
    /// A sealed box could not be opened: wrong key, truncated or tampered with.
    #[error("sealed box could not be opened")]
    Open,
    /// An opened sealed box was expected to hold UTF-8 text.
    #[error("sealed box does not hold utf-8 text")]
    NotUtf8,
    /// A Crypt4GH private-key file is malformed.
    #[error("invalid crypt4gh private key file: {0}")]
    PrivateKeyFormat(String),
    /// A Crypt4GH private-key file is protected by a passphrase, which this crate does not support.
    #[error("encrypted crypt4gh private keys are not supported (kdf {0})")]
    EncryptedPrivateKey(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
