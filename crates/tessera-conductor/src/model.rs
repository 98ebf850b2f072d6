//! The stored models and the token claims.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_kit::dao::CollectionSpec;

/// A user, stored under `idhash` = md5(email) (the original's identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// md5(lower-cased email), hex: the user id everywhere.
    pub idhash: String,
    /// `<provider>:<subject>` of the first sign-in.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// The picture URL, when the provider gave one.
    pub avatar_url: Option<String>,
    /// The username, settable once; absent until set (so the unique index ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// When the user first signed in (ISO 8601, UTC).
    pub join_date: String,
}

impl User {
    /// The collection of users.
    pub fn spec(name: &str) -> CollectionSpec {
        CollectionSpec::new(name, "idhash").unique("username")
    }

    /// The public profile, as `/user/check` answers it.
    pub fn profile(&self) -> Profile {
        Profile {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            avatar_url: self.avatar_url.clone(),
            idhash: self.idhash.clone(),
            username: self.username.clone(),
            join_date: self.join_date.clone(),
        }
    }
}

/// A user's profile on the wire (`username` is `null` until set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// `<provider>:<subject>`.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// The picture URL.
    pub avatar_url: Option<String>,
    /// md5(email).
    pub idhash: String,
    /// The username or null.
    pub username: Option<String>,
    /// When the user joined.
    pub join_date: String,
}

/// What a provider told about a user who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The provider's name in the config.
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// The (verified) email address.
    pub email: String,
    /// The display name.
    pub name: Option<String>,
    /// The picture URL.
    pub picture: Option<String>,
}

/// The permissions of one user (or `*`, everybody) on one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionRow {
    /// `<userid> <service>`.
    pub key: String,
    /// A user id or `*`.
    pub userid: String,
    /// The service, e.g. `os.datastore`.
    pub service: String,
    /// Permission name to value (a `true` flag, or any JSON the service reads).
    pub permissions: Map<String, Value>,
}

impl PermissionRow {
    /// The collection of permission rows.
    pub fn spec(name: &str) -> CollectionSpec {
        CollectionSpec::new(name, "key")
    }

    /// The id of the row of `userid` on `service`.
    pub fn key_of(userid: &str, service: &str) -> String {
        format!("{userid} {service}")
    }
}

/// The claims of a verified permission token.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionClaims {
    /// The user.
    pub userid: String,
    /// The permissions on `service`.
    pub permissions: Map<String, Value>,
    /// The service the token is for.
    pub service: String,
    /// The expiry (Unix seconds).
    pub exp: i64,
}

/// `/user/authorize`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PermissionGrant {
    /// The user.
    pub userid: String,
    /// The effective permissions (`*` row overlaid by the user's).
    pub permissions: Map<String, Value>,
    /// The service.
    pub service: String,
    /// The RS256 permission token.
    pub token: String,
}
