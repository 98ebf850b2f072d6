//! [`Identity`]: users, their tokens, usernames, API keys and permission rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use md5::{Digest as _, Md5};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tessera_kit::dao::{self, Dao, Filter};

use crate::model::{PermissionClaims, PermissionGrant, PermissionRow, Profile, SignedIn, User};
use crate::ports::{Clock, TokenCodec, TokenKind};
use crate::{Error, Result};

/// The user id of an email address: md5 of it as the provider wrote it, lower-case hex
/// (the original's `idhash`, so that its user ids stay valid).
pub fn idhash(email: &str) -> String {
    let digest = Md5::digest(email.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of an API key: SHA-256, hex.
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The rules of [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Seconds a user token is valid (the original: 14 days).
    pub user_token_lifetime: i64,
    /// Seconds a permission token is valid (the original's had no expiry).
    pub permission_token_lifetime: i64,
    /// User ids that may manage permissions.
    pub admins: BTreeSet<String>,
    /// API key hash ([`hash_api_key`]) to the user id it acts as.
    pub api_keys: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            user_token_lifetime: 14 * 24 * 3600,
            permission_token_lifetime: 24 * 3600,
            admins: BTreeSet::new(),
            api_keys: BTreeMap::new(),
        }
    }
}

/// Users, tokens and permissions.
pub struct Identity {
    users: Arc<dyn Dao<User>>,
    permissions: Arc<dyn Dao<PermissionRow>>,
    codec: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("codec", &self.codec)
            .field("admins", &self.settings.admins)
            .field("api_keys", &self.settings.api_keys.len())
            .finish_non_exhaustive()
    }
}

fn int_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

fn str_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Checks a user id of a permission row: `*` or 1 to 128 of `[A-Za-z0-9_.:@-]`.
pub fn check_userid(userid: &str) -> Result<()> {
    let ok = userid == "*"
        || (!userid.is_empty()
            && userid.len() <= 128
            && userid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:@-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "userid {userid:?} must be * or 1 to 128 of [A-Za-z0-9_.:@-]"
        )))
    }
}

/// Checks a service name: 1 to 128 of `[A-Za-z0-9_.:-]`.
pub fn check_service(service: &str) -> Result<()> {
    let ok = !service.is_empty()
        && service.len() <= 128
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "service {service:?} must be 1 to 128 of [A-Za-z0-9_.:-]"
        )))
    }
}

/// Checks a username: 2 to 40 of `[a-z0-9_-]`, starting with a letter or digit.
pub fn check_username(username: &str) -> Result<()> {
    let mut chars = username.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if first_ok && rest_ok && (2..=40).contains(&username.len()) {
        Ok(())
    } else {
        Err(Error::UsernameInvalid(
            "2 to 40 of a-z, 0-9, _ and -, starting with a letter or digit".to_owned(),
        ))
    }
}

impl Identity {
    /// The identity core over its collections and ports.
    pub fn new(
        users: Arc<dyn Dao<User>>,
        permissions: Arc<dyn Dao<PermissionRow>>,
        codec: Arc<dyn TokenCodec>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            users,
            permissions,
            codec,
            clock,
            settings,
        }
    }

    /// The token codec.
    pub fn codec(&self) -> &Arc<dyn TokenCodec> {
        &self.codec
    }

    /// The clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The claims of a valid, unexpired token of `kind`. An `exp` is required; `nbf`, when
    /// present, is honoured.
    pub fn verify(&self, kind: TokenKind, token: &str) -> Result<Map<String, Value>> {
        if token.is_empty() {
            return Err(Error::NoToken);
        }
        let claims = self
            .codec
            .verify(kind, token)
            .map_err(|e| Error::NotAuthenticated(e.0))?;
        let now = self.clock.now();
        let exp = int_claim(&claims, "exp")
            .ok_or_else(|| Error::NotAuthenticated("no integer exp".to_owned()))?;
        if exp <= now {
            return Err(Error::NotAuthenticated("expired".to_owned()));
        }
        if let Some(nbf) = claims.get("nbf") {
            match nbf.as_i64() {
                Some(nbf) if nbf <= now => {}
                _ => return Err(Error::NotAuthenticated("not valid yet".to_owned())),
            }
        }
        Ok(claims)
    }

    /// Signs claims as `kind`, adding `exp` = now + `lifetime`.
    pub fn sign(
        &self,
        kind: TokenKind,
        mut claims: Map<String, Value>,
        lifetime: i64,
    ) -> Result<String> {
        let now = self.clock.now();
        claims.insert("exp".into(), json!(now.saturating_add(lifetime)));
        self.codec
            .sign(kind, &claims)
            .map_err(|e| Error::Signing(e.0))
    }

    /// The user id of a valid user token.
    pub fn user_of_token(&self, token: &str) -> Result<String> {
        let claims = self.verify(TokenKind::User, token)?;
        str_claim(&claims, "userid")
            .ok_or_else(|| Error::NotAuthenticated("no userid claim".to_owned()))
    }

    /// The user id an API key acts as.
    pub fn user_of_api_key(&self, key: &str) -> Option<String> {
        if key.is_empty() {
            return None;
        }
        self.settings.api_keys.get(&hash_api_key(key)).cloned()
    }

    /// The stored user of a valid user token.
    pub async fn user(&self, token: &str) -> Result<User> {
        let userid = self.user_of_token(token)?;
        match self.users.get_by_id(&userid).await {
            Ok(user) => Ok(user),
            Err(dao::Error::NotFound { .. }) => Err(Error::UnknownUser),
            Err(e) => Err(e.into()),
        }
    }

    /// `/user/check`: the profile of the token's user, `None` when the token is missing,
    /// invalid or of an unknown user.
    pub async fn check(&self, token: &str) -> Result<Option<Profile>> {
        match self.user(token).await {
            Ok(user) => Ok(Some(user.profile())),
            Err(Error::NoToken | Error::NotAuthenticated(_) | Error::UnknownUser) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A user signed in at a provider: creates the user on first sign-in (keeping the
    /// first sign-in's `id` and `join_date` afterwards) and mints a user token.
    pub async fn sign_in(&self, signed_in: &SignedIn) -> Result<(User, String)> {
        let userid = idhash(&signed_in.email);
        let user = match self.users.get_by_id(&userid).await {
            Ok(user) => user,
            Err(dao::Error::NotFound { .. }) => {
                let now = chrono::DateTime::from_timestamp(self.clock.now(), 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let user = User {
                    idhash: userid.clone(),
                    id: format!("{}:{}", signed_in.provider, signed_in.subject),
                    name: signed_in
                        .name
                        .clone()
                        .unwrap_or_else(|| signed_in.email.clone()),
                    email: signed_in.email.clone(),
                    avatar_url: signed_in.picture.clone(),
                    username: None,
                    join_date: now,
                };
                match self.users.insert(&user).await {
                    Ok(()) => user,
                    // Two first sign-ins at once: the other one made the user.
                    Err(dao::Error::AlreadyExists { .. }) => self.users.get_by_id(&userid).await?,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let token = self.user_token(&user.idhash)?;
        Ok((user, token))
    }

    /// A user token of `userid`, valid for the configured lifetime.
    pub fn user_token(&self, userid: &str) -> Result<String> {
        let mut claims = Map::new();
        claims.insert("userid".into(), json!(userid));
        self.sign(TokenKind::User, claims, self.settings.user_token_lifetime)
    }

    /// The effective permissions of `userid` on `service`: the `*` row overlaid by the
    /// user's row.
    pub async fn permissions_of(&self, userid: &str, service: &str) -> Result<Map<String, Value>> {
        let mut permissions = Map::new();
        for who in ["*", userid] {
            match self
                .permissions
                .get_by_id(&PermissionRow::key_of(who, service))
                .await
            {
                Ok(row) => permissions.extend(row.permissions),
                Err(dao::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(permissions)
    }

    /// `/user/authorize`: the permission token of `userid` for `service`.
    pub async fn authorize(&self, userid: &str, service: &str) -> Result<PermissionGrant> {
        if service.is_empty() {
            return Err(Error::BadRequest("no service".to_owned()));
        }
        let permissions = self.permissions_of(userid, service).await?;
        let mut claims = Map::new();
        claims.insert("userid".into(), json!(userid));
        claims.insert("permissions".into(), Value::Object(permissions.clone()));
        claims.insert("service".into(), json!(service));
        claims.insert("iat".into(), json!(self.clock.now()));
        let token = self.sign(
            TokenKind::Permission,
            claims,
            self.settings.permission_token_lifetime,
        )?;
        Ok(PermissionGrant {
            userid: userid.to_owned(),
            permissions,
            service: service.to_owned(),
            token,
        })
    }

    /// The claims of a valid permission token.
    pub fn verify_permission_token(&self, token: &str) -> Result<PermissionClaims> {
        let claims = self.verify(TokenKind::Permission, token)?;
        let bad = |what: &str| Error::NotAuthenticated(format!("no {what} claim"));
        Ok(PermissionClaims {
            userid: str_claim(&claims, "userid").ok_or_else(|| bad("userid"))?,
            service: str_claim(&claims, "service").ok_or_else(|| bad("service"))?,
            permissions: claims
                .get("permissions")
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| bad("permissions"))?,
            exp: int_claim(&claims, "exp").ok_or_else(|| bad("exp"))?,
        })
    }

    /// `/user/update`: sets the username of the token's user, once. MUST return
    /// `UsernameAlreadySet` when it is set, `UsernameInvalid` when it breaks
    /// [`check_username`], `UsernameTaken` when another user has it.
    pub async fn update_username(&self, token: &str, username: &str) -> Result<()> {
        let mut user = self.user(token).await?;
        if user.username.is_some() {
            return Err(Error::UsernameAlreadySet);
        }
        check_username(username)?;
        let mut filter = Filter::new();
        filter.insert("username".into(), json!(username));
        if self.users.find_one(&filter).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        user.username = Some(username.to_owned());
        match self.users.update(&user).await {
            Ok(()) => Ok(()),
            Err(dao::Error::AlreadyExists { .. }) => Err(Error::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `userid` may manage permissions.
    pub fn is_admin(&self, userid: &str) -> bool {
        self.settings.admins.contains(userid)
    }

    /// Permission rows, optionally only those of one user and/or service, by key.
    pub async fn list_permissions(
        &self,
        userid: Option<&str>,
        service: Option<&str>,
    ) -> Result<Vec<PermissionRow>> {
        let mut filter = Filter::new();
        if let Some(userid) = userid {
            filter.insert("userid".into(), json!(userid));
        }
        if let Some(service) = service {
            filter.insert("service".into(), json!(service));
        }
        Ok(self.permissions.find_all(&filter).await?)
    }

    /// Adds (or replaces) `permissions` in the row of `userid` on `service`, creating it.
    pub async fn grant(
        &self,
        userid: &str,
        service: &str,
        permissions: Map<String, Value>,
    ) -> Result<PermissionRow> {
        check_userid(userid)?;
        check_service(service)?;
        if permissions.is_empty() {
            return Err(Error::BadRequest("no permissions to grant".to_owned()));
        }
        let key = PermissionRow::key_of(userid, service);
        let mut row = match self.permissions.get_by_id(&key).await {
            Ok(row) => row,
            Err(dao::Error::NotFound { .. }) => PermissionRow {
                key,
                userid: userid.to_owned(),
                service: service.to_owned(),
                permissions: Map::new(),
            },
            Err(e) => return Err(e.into()),
        };
        row.permissions.extend(permissions);
        self.permissions.upsert(&row).await?;
        Ok(row)
    }

    /// Removes the `names` permissions from the row of `userid` on `service` (all of them
    /// when `names` is empty); a row left empty is deleted (`None`). MUST return
    /// `NoSuchRow` when there is no row.
    pub async fn revoke(
        &self,
        userid: &str,
        service: &str,
        names: &[String],
    ) -> Result<Option<PermissionRow>> {
        let key = PermissionRow::key_of(userid, service);
        let no_row = || Error::NoSuchRow {
            userid: userid.to_owned(),
            service: service.to_owned(),
        };
        let mut row = match self.permissions.get_by_id(&key).await {
            Ok(row) => row,
            Err(dao::Error::NotFound { .. }) => return Err(no_row()),
            Err(e) => return Err(e.into()),
        };
        if names.is_empty() {
            row.permissions.clear();
        } else {
            for name in names {
                row.permissions.remove(name);
            }
        }
        if row.permissions.is_empty() {
            match self.permissions.delete(&key).await {
                Ok(()) | Err(dao::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        } else {
            self.permissions.update(&row).await?;
            Ok(Some(row))
        }
    }

    /// Creates the default rows when missing: `*` may upload to the datastore (the
    /// original's seed).
    pub async fn seed(&self) -> Result<()> {
        let key = PermissionRow::key_of("*", crate::DATASTORE_SERVICE);
        match self.permissions.get_by_id(&key).await {
            Ok(_) => Ok(()),
            Err(dao::Error::NotFound { .. }) => {
                let mut permissions = Map::new();
                permissions.insert(crate::UPLOAD_PERMISSION.into(), json!(true));
                let row = PermissionRow {
                    key,
                    userid: "*".into(),
                    service: crate::DATASTORE_SERVICE.into(),
                    permissions,
                };
                match self.permissions.insert(&row).await {
                    Ok(()) | Err(dao::Error::AlreadyExists { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idhash_is_md5_of_the_normalised_email() {
        // Python: hashlib.md5(b'alice@example.test').hexdigest()
        assert_eq!(
            idhash("alice@example.test"),
            "2960a687c8031d3d105b67802b5e130e"
        );
        // md5("") is well known.
        assert_eq!(idhash(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn names_are_checked() {
        for ok in ["ab", "a-b_c9", "0x"] {
            check_username(ok).unwrap();
        }
        for bad in ["", "a", "-ab", "Ab", "a b", &"a".repeat(41)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        check_userid("*").unwrap();
        check_userid("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert!(check_userid("a b").is_err());
        assert!(check_userid("").is_err());
        check_service("os.datastore").unwrap();
        assert!(check_service("a/b").is_err());
    }
}
