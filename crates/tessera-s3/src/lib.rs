//! Tessera's S3 provider: the kit's object storage protocol
//! ([`ObjectStore`](tessera_kit::objects::ObjectStore)) on one bucket of any S3-compatible
//! server (AWS, MinIO, Ceph, moto, s3s-fs), through the `object_store` crate.
//!
//! ```no_run
//! # fn demo() -> Result<(), tessera_s3::Error> {
//! use std::sync::Arc;
//! use tessera_kit::objects::ObjectStore;
//! use tessera_s3::{S3Config, S3ObjectStore};
//!
//! let config = S3Config {
//!     s3_endpoint_url: "http://127.0.0.1:9000".into(),
//!     s3_bucket: "outbox".into(),
//!     s3_access_key_id: "minio".into(),
//!     s3_secret_access_key: "minio-secret".into(),
//!     ..S3Config::default()
//! };
//! let store: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::new(&config)?);
//! # Ok(()) }
//! ```
//!
//! # Semantics
//! - **put** streams the body: up to [`PART_SIZE`] it is one `PUT`; beyond, a multipart
//!   upload with [`PARTS_IN_FLIGHT`] parts in flight, so memory stays bounded whatever the
//!   size. Length and MD5 are checked while streaming; on a mismatch, a failing body or a
//!   failed part the multipart upload is aborted and nothing becomes visible (S3 publishes
//!   an object only on `CompleteMultipartUpload`).
//! - **presigned URLs** are signed here (module `sigv4`, SigV4 query signing) rather than by
//!   object_store, whose `signed_url` signs only `host`: an upload URL signs `content-md5`,
//!   `content-type` and `content-length` too, so a server that checks signatures refuses
//!   any other upload, and every S3 server refuses a body that does not match its
//!   `Content-MD5`. moto checks no signatures.
//! - **list** filters object_store's segment-wise listing by the plain string prefix;
//!   objects under keys outside [`ObjectKey`](tessera_kit::objects::ObjectKey)'s rules
//!   (written by other tools) are not listed.
//!
//! Layout: `config` ([`S3Config`]), `sigv4` (the presigner), `store` ([`S3ObjectStore`]).

mod config;
mod sigv4;
mod store;

pub use config::{DEFAULT_REGION, S3Config};
pub use store::{PART_SIZE, PARTS_IN_FLIGHT, S3ObjectStore};

/// Any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors building the store (the protocol's own errors are `tessera_kit::objects::Error`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; the message names the key.
    #[error("invalid S3 configuration: {0}")]
    Config(String),
    /// The S3 client could not be built.
    #[error("cannot build the S3 client")]
    Backend(#[source] BoxError),
}

/// Result with the S3 [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
