//! [`TokenService`]: the rules of the original's routes (§B1, corrected by §B9) over the
//! ports, plus what the original lacks (§B8): rotated refresh tokens are kept, logout
//! revokes and deletes the stored tokens, `/connected` works for every IdP, expired rows are
//! purged.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::json;
use sha2::{Digest, Sha256};
use tessera_kit::dao::{Dao, Filter};
use uuid::Uuid;

use crate::human::time_left;
use crate::model::{
    AuthorizationRequest, Callback, CallbackRefusal, Caller, CodeExchangeRequest, DEFAULT_IDP,
    Identity, IssuedRefreshToken, LoginSession, LoginStart, ProviderStatus, RefreshTokenRecord,
};
use crate::ports::{
    AccessTokenValidator, Cipher, Clock, ExchangeError, IdentityResolver, TokenExchange,
};
use crate::{Error, Result};

/// Length of the random part of `state` (the original's 30 alphanumerics).
const STATE_LEN: usize = 30;
/// Length of the PKCE verifier (RFC 7636 allows 43 to 128).
const VERIFIER_LEN: usize = 64;
const NONCE_LEN: usize = 32;

/// One configured IdP.
#[derive(Clone)]
pub struct Idp {
    /// The name used in `idp=` (`default` or a login option's key).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The configured `base_url` (the default IdP: `fence_base_url`).
    pub base_url: String,
    /// `host[:port]` of `base_url`: the commons `/aggregate` calls.
    pub commons_host: String,
    /// Where a login starts, for the listing.
    pub login_url: String,
    /// `<WTS host label>` when the IdP's redirect URI is shared by several WTS instances:
    /// `state` becomes `<prefix>-<random>`.
    pub state_prefix: Option<String>,
    /// The IdP's authorization server.
    pub exchange: Arc<dyn TokenExchange>,
}

impl fmt::Debug for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idp")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("commons_host", &self.commons_host)
            .finish_non_exhaustive()
    }
}

/// Tunables of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lifetime assumed for a refresh token whose expiry the IdP does not tell (an opaque
    /// token without `refresh_expires_in`), in seconds.
    pub opaque_refresh_token_lifetime: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            opaque_refresh_token_lifetime: 30 * 24 * 3600,
        }
    }
}

/// The Workspace Token Service's rules.
pub struct TokenService {
    dao: Arc<dyn Dao<RefreshTokenRecord>>,
    cipher: Arc<dyn Cipher>,
    clock: Arc<dyn Clock>,
    validator: Arc<dyn AccessTokenValidator>,
    resolver: Arc<dyn IdentityResolver>,
    idps: Vec<Idp>,
    settings: Settings,
    /// One lock per row being refreshed.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("idps", &self.idps)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// The service over its ports; `idps` in the order `/external_oidc` lists them.
    pub fn new(
        dao: Arc<dyn Dao<RefreshTokenRecord>>,
        cipher: Arc<dyn Cipher>,
        clock: Arc<dyn Clock>,
        validator: Arc<dyn AccessTokenValidator>,
        resolver: Arc<dyn IdentityResolver>,
        idps: Vec<Idp>,
        settings: Settings,
    ) -> Self {
        Self {
            dao,
            cipher,
            clock,
            validator,
            resolver,
            idps,
            settings,
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    /// The configured IdPs.
    pub fn idps(&self) -> &[Idp] {
        &self.idps
    }

    fn idp(&self, id: &str) -> Result<&Idp> {
        self.idps
            .iter()
            .find(|idp| idp.id == id)
            .ok_or_else(|| Error::UnknownIdp(id.to_owned()))
    }

    /// `GET /token/`: an access token for the caller at `idp` (default `default`).
    ///
    /// Order of the original (§B9.7): identify the caller (idp `default`: the workspace only;
    /// otherwise a token if one is given, else the workspace), then `expires` (which must be
    /// an integer and is otherwise ignored), then the IdP. The newest row by `expires` is
    /// refreshed; a rotated refresh token replaces it.
    pub async fn access_token(
        &self,
        caller: &Caller,
        idp: Option<&str>,
        expires: Option<&str>,
    ) -> Result<String> {
        let idp_id = idp.unwrap_or(DEFAULT_IDP);
        let username = if idp_id == DEFAULT_IDP {
            self.workspace_user(caller).await?
        } else {
            match &caller.token {
                Some(token) => Some(self.validate(token).await?.username),
                None => self.workspace_user(caller).await?,
            }
        }
        .ok_or(Error::NotAuthenticated)?;
        // An empty `expires=` counts as absent (the original reads it with a default).
        if let Some(expires) = expires.filter(|e| !e.is_empty()) {
            expires
                .trim()
                .parse::<i64>()
                .map_err(|_| Error::InvalidExpires)?;
        }
        let idp = self.idp(idp_id)?;
        let row = self
            .newest(&username, &idp.id)
            .await?
            .ok_or(Error::NoRefreshToken)?;
        if row.expires <= self.clock.now() {
            return Err(Error::RefreshTokenExpired);
        }
        self.refresh_row(idp, row).await
    }

    /// Refreshes `row` at `idp`, storing a rotated refresh token in its place.
    async fn refresh_row(&self, idp: &Idp, row: RefreshTokenRecord) -> Result<String> {
        // IdPs that rotate refresh tokens refuse (and may revoke the grant on) a second use
        // of the old one, so concurrent refreshes of one row take turns, each with the
        // token the previous one stored.
        let lock = self.row_lock(&row.id);
        let turn = lock.lock().await;
        let row = match self.dao.get_by_id(&row.id).await {
            Ok(current) => current,
            Err(tessera_kit::dao::Error::NotFound { .. }) => return Err(Error::NoRefreshToken),
            Err(e) => return Err(e.into()),
        };
        let result = self.refresh_locked(idp, row).await;
        drop(turn);
        self.release_row_lock(&lock);
        result
    }

    fn row_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn release_row_lock(&self, lock: &Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map and this caller hold it: nobody waits, so the entry can go.
        locks.retain(|_, l| !(Arc::ptr_eq(l, lock) && Arc::strong_count(l) <= 2));
    }

    async fn refresh_locked(&self, idp: &Idp, row: RefreshTokenRecord) -> Result<String> {
        let refresh_token = self
            .cipher
            .decrypt(&row.token_ciphertext)
            .map_err(Error::Cipher)?;
        let grant = idp
            .exchange
            .refresh(&refresh_token)
            .await
            .map_err(|e| match e {
                ExchangeError::Rejected { status, body } => Error::RefreshRefused {
                    idp: idp.id.clone(),
                    status,
                    body,
                },
                e @ ExchangeError::Unreachable(_) => Error::IdpUnreachable {
                    idp: idp.id.clone(),
                    source: e,
                },
                e => Error::Exchange {
                    idp: idp.id.clone(),
                    source: e,
                },
            })?;
        if let Some(rotated) = grant.refresh_token.filter(|t| t.token != refresh_token) {
            // The old token is already spent at the IdP: losing the new one would log the
            // user out, but the access token in hand is still good, so only log.
            let expires = rotated.expires.unwrap_or(row.expires);
            if let Err(e) = self.replace_token(row, &rotated, expires).await {
                tracing::error!(idp = %idp.id, error = %e, "storing a rotated refresh token failed");
            }
        }
        Ok(grant.access_token)
    }

    async fn replace_token(
        &self,
        row: RefreshTokenRecord,
        token: &IssuedRefreshToken,
        expires: i64,
    ) -> Result<()> {
        let updated = RefreshTokenRecord {
            token_ciphertext: self.cipher.encrypt(&token.token).map_err(Error::Cipher)?,
            jti: token.jti.clone().unwrap_or_else(new_id),
            expires,
            ..row
        };
        self.dao.update(&updated).await?;
        tracing::info!(idp = %updated.idp, username = %updated.username, "rotated refresh token stored");
        Ok(())
    }

    /// `GET /oauth2/authorization_url`: checks the redirect (a local path: `/x`, not `//x`)
    /// and the IdP, and makes the state, PKCE verifier and nonce of a new login.
    pub async fn start_login(
        &self,
        idp: Option<&str>,
        redirect: Option<&str>,
    ) -> Result<LoginStart> {
        let redirect = redirect.filter(|r| !r.is_empty());
        if let Some(redirect) = redirect
            && !is_local_path(redirect)
        {
            return Err(Error::AbsoluteRedirect);
        }
        let idp = self.idp(idp.unwrap_or(DEFAULT_IDP))?;
        let session = LoginSession::generate(&idp.id, redirect, idp.state_prefix.as_deref());
        let url = idp
            .exchange
            .authorization_url(&session.authorization_request())
            .await
            .map_err(|e| Error::Exchange {
                idp: idp.id.clone(),
                source: e,
            })?;
        Ok(LoginStart { url, session })
    }

    /// `GET /oauth2/authorize`: the login callback. Checks the state against the browser's
    /// session, identifies the caller by their commons token (before the code is spent),
    /// exchanges the code, and stores the refresh token for (caller, IdP) after deleting the
    /// rows of the same IdP account, whoever linked it before (§B9.8). Returns the session
    /// for its redirect.
    pub async fn finish_login(
        &self,
        caller: &Caller,
        session: Option<&LoginSession>,
        callback: &Callback,
    ) -> Result<LoginSession> {
        let session = session
            .filter(|s| callback.state.as_deref() == Some(s.state.as_str()))
            .ok_or(Error::StateMismatch)?;
        let idp = self.idp(&session.idp)?;
        let code = callback.code().map_err(|refusal| match refusal {
            CallbackRefusal::Refused(why) => Error::LoginRefused(why),
            CallbackRefusal::NoCode => Error::LoginRefused("no authorization code".to_owned()),
        })?;
        let token = caller
            .token
            .as_deref()
            .ok_or_else(|| Error::Unauthenticated("no authorization token".to_owned()))?;
        let user = self.validate(token).await?;
        let request = CodeExchangeRequest {
            code: code.to_owned(),
            code_verifier: session.code_verifier.clone(),
            nonce: session.nonce.clone(),
            iss: callback.iss.clone(),
        };
        let grant = idp
            .exchange
            .exchange_code(&request)
            .await
            .map_err(|e| match e {
                ExchangeError::InvalidResponse(missing) => Error::TokenResponse(missing),
                e @ ExchangeError::Unreachable(_) => Error::IdpUnreachable {
                    idp: idp.id.clone(),
                    source: e,
                },
                e => Error::LoginRefused(e.to_string()),
            })?;
        self.link(
            &user.username,
            &idp.id,
            &grant.subject,
            &grant.refresh_token,
        )
        .await?;
        tracing::info!(
            idp = %idp.id,
            username = %user.username,
            idp_username = grant.idp_username.as_deref().unwrap_or_default(),
            "account linked"
        );
        Ok(session.clone())
    }

    /// Stores `token` for (`username`, `idp`), replacing every row of the IdP account
    /// `subject`.
    async fn link(
        &self,
        username: &str,
        idp: &str,
        subject: &str,
        token: &IssuedRefreshToken,
    ) -> Result<()> {
        for old in self
            .dao
            .find_all(&filter([("userid", subject), ("idp", idp)]))
            .await?
        {
            if old.username != username {
                tracing::info!(idp, from = %old.username, to = username, "linked account moves to another user");
            }
            self.delete_row(&old.id).await?;
        }
        let expires = token
            .expires
            .unwrap_or_else(|| self.clock.now() + self.settings.opaque_refresh_token_lifetime);
        let record = RefreshTokenRecord {
            id: new_id(),
            token_ciphertext: self.cipher.encrypt(&token.token).map_err(Error::Cipher)?,
            jti: token.jti.clone().unwrap_or_else(new_id),
            username: username.to_owned(),
            userid: subject.to_owned(),
            idp: idp.to_owned(),
            expires,
        };
        self.dao.insert(&record).await?;
        Ok(())
    }

    /// `GET /oauth2/connected`: `Ok` when the user of the commons token has an unexpired
    /// refresh token for `idp` (default `default`).
    pub async fn connected(&self, caller: &Caller, idp: Option<&str>) -> Result<()> {
        let token = caller.token.as_deref().ok_or(Error::NotLoggedIn)?;
        let user = self
            .validator
            .validate(token)
            .await
            .map_err(|_| Error::NotLoggedIn)?;
        let idp = self.idp(idp.unwrap_or(DEFAULT_IDP))?;
        match self.newest(&user.username, &idp.id).await? {
            Some(row) if row.expires > self.clock.now() => Ok(()),
            _ => Err(Error::NotConnected),
        }
    }

    /// `GET /oauth2/logout`: revokes the caller's stored refresh tokens (of `idp`, or of every
    /// IdP) at their IdP and deletes them. Rows are deleted even when revocation fails, and
    /// the failure is then reported; an IdP without a revocation endpoint is not a failure.
    pub async fn logout(&self, caller: &Caller, idp: Option<&str>) -> Result<usize> {
        let username = match &caller.token {
            Some(token) => {
                self.validator
                    .validate(token)
                    .await
                    .map_err(|_| Error::NotLoggedIn)?
                    .username
            }
            None => self
                .workspace_user(caller)
                .await?
                .ok_or(Error::NotLoggedIn)?,
        };
        let idps: Vec<&Idp> = match idp {
            Some(id) => vec![self.idp(id)?],
            None => self.idps.iter().collect(),
        };
        let mut failed = Vec::new();
        let mut removed = 0;
        for idp in idps {
            for row in self
                .dao
                .find_all(&filter([("username", username.as_str()), ("idp", &idp.id)]))
                .await?
            {
                let revoked = match self.cipher.decrypt(&row.token_ciphertext) {
                    Ok(token) => idp.exchange.revoke(&token).await,
                    Err(e) => Err(ExchangeError::InvalidResponse(e.to_string())),
                };
                match revoked {
                    Ok(()) => {}
                    Err(ExchangeError::Unsupported(why)) => {
                        tracing::warn!(idp = %idp.id, %why, "refresh token not revoked");
                    }
                    Err(e) => {
                        tracing::warn!(idp = %idp.id, error = %e, "revoking a refresh token failed");
                        failed.push(idp.id.clone());
                    }
                }
                self.delete_row(&row.id).await?;
                removed += 1;
            }
        }
        if failed.is_empty() {
            Ok(removed)
        } else {
            failed.dedup();
            Err(Error::LogoutFailed(format!(
                "revoking the refresh token failed at {}; it was deleted here",
                failed.join(", ")
            )))
        }
    }

    /// `GET /external_oidc/`: every IdP but `default`, with the time left on the newest
    /// refresh token of the caller (identified by a commons token; an invalid one counts as
    /// anonymous). `unexpired` keeps only IdPs with time left.
    pub async fn providers(&self, caller: &Caller, unexpired: bool) -> Result<Vec<ProviderStatus>> {
        let username = match &caller.token {
            Some(token) => match self.validator.validate(token).await {
                Ok(user) => Some(user.username),
                Err(e) => {
                    tracing::debug!(error = %e, "invalid token on the provider listing; anonymous");
                    None
                }
            },
            None => None,
        };
        let now = self.clock.now();
        let mut listing = Vec::new();
        for idp in self.idps.iter().filter(|idp| idp.id != DEFAULT_IDP) {
            let expiration = match &username {
                Some(username) => self
                    .newest(username, &idp.id)
                    .await?
                    .and_then(|row| time_left(row.expires - now)),
                None => None,
            };
            if unexpired && expiration.is_none() {
                continue;
            }
            listing.push(ProviderStatus {
                idp: idp.id.clone(),
                name: idp.name.clone(),
                base_url: idp.base_url.clone(),
                login_url: idp.login_url.clone(),
                refresh_token_expiration: expiration,
            });
        }
        Ok(listing)
    }

    /// `/aggregate`: per distinct commons host (in IdP order), an access token from the
    /// caller's newest unexpired refresh token among that commons' IdPs, or `None` (no
    /// token given, none stored, or the refresh failed: the call goes out anonymously).
    /// A token that is given but invalid is an error.
    pub async fn commons_tokens(&self, caller: &Caller) -> Result<Vec<(String, Option<String>)>> {
        let mut hosts: Vec<&str> = Vec::new();
        for idp in &self.idps {
            if !hosts.contains(&idp.commons_host.as_str()) {
                hosts.push(&idp.commons_host);
            }
        }
        let Some(token) = &caller.token else {
            return Ok(hosts.into_iter().map(|h| (h.to_owned(), None)).collect());
        };
        let user = self.validate(token).await?;
        let now = self.clock.now();
        let mut out = Vec::with_capacity(hosts.len());
        for host in hosts {
            let mut best: Option<(&Idp, RefreshTokenRecord)> = None;
            for idp in self.idps.iter().filter(|idp| idp.commons_host == host) {
                if let Some(row) = self.newest(&user.username, &idp.id).await?
                    && row.expires > now
                    && best.as_ref().is_none_or(|(_, b)| row.expires > b.expires)
                {
                    best = Some((idp, row));
                }
            }
            let access = match best {
                Some((idp, row)) => match self.refresh_row(idp, row).await {
                    Ok(token) => Some(token),
                    Err(e) => {
                        tracing::warn!(host, error = %e, "no access token for the commons; calling anonymously");
                        None
                    }
                },
                None => None,
            };
            out.push((host.to_owned(), access));
        }
        Ok(out)
    }

    /// Deletes every row whose refresh token has expired; returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut purged = 0;
        for row in self.dao.find_all(&Filter::new()).await? {
            if row.expires <= now {
                self.delete_row(&row.id).await?;
                purged += 1;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "expired refresh tokens purged");
        }
        Ok(purged)
    }

    /// `GET /_status`: the storage answers.
    pub async fn check_storage(&self) -> Result<()> {
        self.dao
            .find_one(&filter([("id", Uuid::nil().to_string().as_str())]))
            .await?;
        Ok(())
    }

    /// The newest row of (`username`, `idp`) by `expires`.
    async fn newest(&self, username: &str, idp: &str) -> Result<Option<RefreshTokenRecord>> {
        Ok(self
            .dao
            .find_all(&filter([("username", username), ("idp", idp)]))
            .await?
            .into_iter()
            .max_by_key(|row| row.expires))
    }

    async fn delete_row(&self, id: &str) -> Result<()> {
        match self.dao.delete(id).await {
            // Deleted concurrently (another logout or purge): the goal is reached.
            Ok(()) | Err(tessera_kit::dao::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn validate(&self, token: &str) -> Result<Identity> {
        self.validator
            .validate(token)
            .await
            .map_err(|e| Error::Unauthenticated(e.0))
    }

    async fn workspace_user(&self, caller: &Caller) -> Result<Option<String>> {
        self.resolver.resolve(caller).await.map_err(Error::Identity)
    }
}

fn filter<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Filter {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect()
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

impl LoginSession {
    /// A new login of `idp`: a random `state` (after `<state_prefix>-` when given), PKCE
    /// verifier and nonce; `redirect` is kept as given.
    pub fn generate(idp: &str, redirect: Option<&str>, state_prefix: Option<&str>) -> Self {
        let random = random_text(STATE_LEN);
        Self {
            state: match state_prefix {
                Some(prefix) => format!("{prefix}-{random}"),
                None => random,
            },
            idp: idp.to_owned(),
            redirect: redirect.map(str::to_owned),
            code_verifier: random_text(VERIFIER_LEN),
            nonce: random_text(NONCE_LEN),
        }
    }

    /// What the authorization URL of this login carries: its state, nonce and the S256
    /// challenge of its verifier.
    pub fn authorization_request(&self) -> AuthorizationRequest {
        AuthorizationRequest {
            state: self.state.clone(),
            nonce: self.nonce.clone(),
            code_challenge: pkce_challenge(&self.code_verifier),
        }
    }
}

fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The PKCE S256 challenge: base64url (no padding) of SHA-256 of the verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests;

/// Whether `redirect` is a path on this site: one `/` followed by neither `/` nor `\`, no
/// backslash or control character anywhere, also once or twice percent-decoded. Browsers
/// drop tabs and newlines from URLs and read `\` as `/`, so `/\t/host` or `/\\host`
/// would leave the site (protocol-relative), and a newline breaks the `Location` header.
fn is_local_path(redirect: &str) -> bool {
    fn plain(path: &[u8]) -> bool {
        path.first() == Some(&b'/')
            && !matches!(path.get(1), Some(b'/' | b'\\'))
            && !path.iter().any(|&b| b == b'\\' || b.is_ascii_control())
    }
    let mut path = redirect.as_bytes().to_vec();
    for _ in 0..3 {
        if !plain(&path) {
            return false;
        }
        let decoded = percent_decode(&path);
        if decoded == path {
            return true;
        }
        path = decoded;
    }
    // Encoded three times over: nobody needs that.
    false
}

/// `%XX` sequences decoded; others left as they are.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%'
            && let (Some(h), Some(l)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}
