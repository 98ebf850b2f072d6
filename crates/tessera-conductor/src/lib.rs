//! OpenSpending os-conductor's domain (spec `conductor_ogdc.md` §A): users identified by
//! md5(email), user and permission tokens, permission rows per (user, service) with `*`
//! defaults, and the datastore's upload authorization (presigned PUTs under
//! `<owner>/<name>/<path>`).
//!
//! Layout:
//! - [`model`]: [`User`], its public [`Profile`], [`PermissionRow`], the token claims.
//! - [`ports`]: [`TokenCodec`] (signing and verifying the three token kinds) and [`Clock`].
//! - [`identity`]: [`Identity`], sign-in, tokens, usernames, API keys and permissions.
//! - [`datastore`]: [`Datastore`], parsing an upload request and presigning its files.
//! - [`tableschema`]: data package descriptors and Table Schema cell checks.
//! - [`loader`]: the streaming package loader and its [`loader::CsvChecker`].
//! - [`packages`]: [`Packages`], durable load jobs, package records with their outbox,
//!   publish, delete, parameters and the event relay.
//! - [`search`]: the [`PackageIndex`] port, [`SearchQuery`] and (feature `testsuite`) the
//!   contract suite of its providers.
//!
//! Drivers stay out: tokens go through [`TokenCodec`] (josekit lives in the service),
//! storage through the kit's DAO and object storage protocols.

pub mod datastore;
pub mod identity;
pub mod loader;
pub mod model;
pub mod packages;
pub mod ports;
pub mod search;
pub mod tableschema;

pub use datastore::{Datastore, UploadRequest};
pub use identity::{Identity, Settings, hash_api_key, idhash};
pub use model::{PermissionClaims, PermissionGrant, PermissionRow, Profile, SignedIn, User};
pub use packages::{LoadJob, PackageRecord, Packages, PackagesSettings, Publish};
pub use ports::{Clock, SystemClock, TokenCodec, TokenError, TokenKind};
pub use search::{PackageIndex, PackageStats, SearchQuery};

/// The service whose permission tokens the datastore accepts.
pub const DATASTORE_SERVICE: &str = "os.datastore";
/// The permission the datastore requires.
pub const UPLOAD_PERMISSION: &str = "datapackage-upload";

/// What can go wrong; the service maps each case to a status once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token was sent.
    #[error("no token")]
    NoToken,
    /// The token is malformed, badly signed, of another kind or expired.
    #[error("not authenticated: {0}")]
    NotAuthenticated(String),
    /// A valid token of a user who does not exist (any more).
    #[error("unknown user")]
    UnknownUser,
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is malformed (bad JSON, missing or invalid fields).
    #[error("{0}")]
    BadRequest(String),
    /// The username is set already and cannot change.
    #[error("Cannot modify username, already set")]
    UsernameAlreadySet,
    /// Another user has this username.
    #[error("Username already taken")]
    UsernameTaken,
    /// The username breaks the rules.
    #[error("Invalid username: {0}")]
    UsernameInvalid(String),
    /// No such permission row.
    #[error("no permissions for {userid:?} on {service:?}")]
    NoSuchRow {
        /// The user.
        userid: String,
        /// The service.
        service: String,
    },
    /// Signing a token failed.
    #[error("signing a token failed: {0}")]
    Signing(String),
    /// The document store failed.
    #[error("storage failed")]
    Storage(#[from] tessera_kit::dao::Error),
    /// The object store failed.
    #[error("object storage failed")]
    Objects(#[source] tessera_kit::objects::Error),
    /// No package with this id.
    #[error("Failed to locate package {0}")]
    PackageNotFound(String),
    /// The search index failed.
    #[error("search index failed: {0}")]
    Index(String),
    /// Publishing events failed.
    #[error("publishing events failed: {0}")]
    Events(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
