//! The HTTP translator: the original's routes (§A1) over [`Identity`] and [`Datastore`],
//! plus the permission admin API. [`ApiError`] is the one place where errors become
//! statuses; error bodies are JSON `{"detail": …}` (the original answered some with HTML).
//!
//! Parameters come from the query and, on POST routes, a form body (Flask's
//! `request.values`); JSONP (`callback`, validated) on the `/user` routes that had it.

pub mod openapi;
mod packages;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tessera_conductor::datastore::parse_query;
use tessera_conductor::{Datastore, Error as DomainError, Identity, UploadRequest};
use tessera_embedded::LocalObjectStore;

use crate::login::Providers;

/// The JS client, its base URL rewritten at start.
const LIB_JS: &str = include_str!("../../assets/lib.js");
/// The base URL inside [`LIB_JS`].
const LIB_BASE: &str = "https://openspending.org";

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    /// Users, tokens, permissions.
    pub identity: Arc<Identity>,
    /// Upload authorization.
    pub datastore: Arc<Datastore>,
    /// Package loads, records and search.
    pub packages: Arc<tessera_conductor::Packages>,
    /// Wakes the load workers after an upload.
    pub wake: Arc<tokio::sync::Notify>,
    /// The largest search page.
    pub search_max_size: usize,
    /// Where `/package/run-hooks` may post.
    pub pipeline_urls: Arc<Vec<String>>,
    /// The client of `/package/run-hooks`, built on its first call.
    pub hooks: Arc<tessera_oidc::LazyClient>,
    /// The login providers.
    pub providers: Arc<Providers>,
    /// `base_url` without a trailing `/`.
    pub base_url: String,
    /// Origins a login may return to.
    pub redirect_origins: Arc<BTreeSet<String>>,
    /// The largest request body.
    pub max_body_bytes: usize,
}

impl fmt::Debug for RestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestState")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Why a request failed; the service's single status mapping.
#[derive(Debug)]
pub enum ApiError {
    /// What the identity core said.
    Domain(DomainError),
    /// A datastore call: every authorization failure is the original's 401.
    Datastore(DomainError),
    /// The body is larger than `max_body_bytes`.
    TooLarge(usize),
    /// A bad request of this layer (callback name, next, parameters).
    BadRequest(String),
    /// No credentials where the route needs them (403, as the original's package routes).
    Forbidden(String),
    /// Nothing there.
    NotFound(String),
    /// A pipeline `/package/run-hooks` posted to failed.
    Upstream(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(e) | Self::Datastore(e) => write!(f, "{e}"),
            Self::TooLarge(limit) => write!(f, "the request body is larger than {limit} bytes"),
            Self::BadRequest(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::Upstream(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Domain(e) | Self::Datastore(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        use DomainError as E;
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Datastore(E::Forbidden(_)) => StatusCode::UNAUTHORIZED,
            Self::Domain(e) | Self::Datastore(e) => match e {
                E::NoToken | E::NotAuthenticated(_) | E::UnknownUser => StatusCode::UNAUTHORIZED,
                E::Forbidden(_) => StatusCode::FORBIDDEN,
                E::BadRequest(_) | E::UsernameInvalid(_) => StatusCode::BAD_REQUEST,
                E::PackageNotFound(_) => StatusCode::NOT_FOUND,
                E::UsernameAlreadySet | E::UsernameTaken => StatusCode::CONFLICT,
                E::NoSuchRow { .. } => StatusCode::NOT_FOUND,
                E::Signing(_) | E::Storage(_) | E::Objects(_) | E::Index(_) | E::Events(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return tessera_http::internal_error(self);
        }
        tessera_http::detail(status, self)
    }
}

pub(crate) type Reply = Result<HttpResponse, ApiError>;

/// The routes, and the local store's presign scope at `objects` when given.
pub fn routes(
    state: RestState,
    objects: Option<(String, LocalObjectStore)>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let lib = LIB_JS.replace(LIB_BASE, &state.base_url);
    let data = web::Data::new(state);
    move |cfg: &mut web::ServiceConfig| {
        let lib = lib.clone();
        cfg.app_data(data.clone())
            .route("/user/check", web::get().to(check))
            .route("/user/authorize", web::get().to(authorize))
            .route("/user/update", web::post().to(update))
            .route("/user/public-key", web::get().to(public_key))
            .route(
                "/user/lib",
                web::get().to(move || {
                    let lib = lib.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/javascript; charset=utf-8")
                            .body(lib)
                    }
                }),
            )
            .route("/oauth/{provider}_callback", web::get().to(callback))
            .route("/datastore/authorize", web::post().to(datastore_authorize))
            .route("/datastore/", web::post().to(datastore_authorize))
            .route("/datastore/info", web::get().to(datastore_info))
            .route("/admin/permissions", web::get().to(list_permissions))
            .route("/admin/permissions", web::post().to(grant_permissions))
            .route("/admin/permissions", web::delete().to(revoke_permissions))
            .configure(packages::routes);
        if let Some((path, store)) = &objects {
            cfg.service(tessera_embedded::objects_http::objects_scope(
                path,
                store.clone(),
            ));
        }
    }
}

/// Query parameters, then form fields of `body` (the first value of each name wins).
pub(crate) fn params(req: &HttpRequest, body: Option<&[u8]>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |query: &str| {
        for (name, values) in parse_query(query) {
            if let Some(first) = values.into_iter().next() {
                out.entry(name).or_insert(first);
            }
        }
    };
    add(req.query_string());
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if let (true, Some(body)) = (is_form, body) {
        add(&String::from_utf8_lossy(body));
    }
    out
}

/// The body, refused past `limit` bytes (413) before it is all read.
pub(crate) async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A JavaScript identifier path: what a JSONP `callback` may be.
fn valid_callback(name: &str) -> bool {
    let ident = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    name.len() <= 128 && name.split('.').all(ident)
}

/// JSON, or JSONP when `callback` is given.
fn reply(params: &BTreeMap<String, String>, value: &Value) -> Reply {
    match params.get("callback") {
        None => Ok(HttpResponse::Ok().json(value)),
        Some(callback) if valid_callback(callback) => Ok(HttpResponse::Ok()
            .content_type("application/javascript")
            .body(format!("{callback}({value});"))),
        Some(_) => Err(ApiError::BadRequest(
            "callback must be a JavaScript identifier path".into(),
        )),
    }
}

pub(crate) fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// `GET /user/check?jwt=&next=`: the profile, or every provider's login URL.
async fn check(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    let p = params(&req, None);
    if let Some(profile) = state.identity.check(param(&p, "jwt")).await? {
        return reply(&p, &json!({"authenticated": true, "profile": profile}));
    }
    let next = match param(&p, "next") {
        "" => format!("{}/", state.base_url),
        next => next.to_owned(),
    };
    let mut providers = Map::new();
    for name in state.providers.names() {
        match state
            .providers
            .login_url(&state.identity, &name, &next)
            .await
        {
            Ok(url) => {
                providers.insert(name, json!({"url": url}));
            }
            Err(e) => tracing::warn!(provider = %name, error = %e, "login provider unavailable"),
        }
    }
    reply(&p, &json!({"authenticated": false, "providers": providers}))
}

/// `GET /user/authorize?jwt=&service=` (or `api_key=`): the permission token; always 200.
async fn authorize(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    let p = params(&req, None);
    let service = param(&p, "service");
    let userid = match state.identity.user_of_token(param(&p, "jwt")) {
        Ok(userid) => Some(userid),
        Err(_) => state.identity.user_of_api_key(param(&p, "api_key")),
    };
    let answer = match userid {
        Some(userid) if !service.is_empty() => {
            serde_json::to_value(state.identity.authorize(&userid, service).await?)
                .unwrap_or_default()
        }
        _ => json!({"permissions": {}}),
    };
    reply(&p, &answer)
}

/// `POST /user/update` (`jwt`, `username`): always 200 `{"success": bool[, "error"]}`.
async fn update(req: HttpRequest, payload: web::Payload, state: web::Data<RestState>) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, Some(&body));
    let token = param(&p, "jwt");
    let outcome = if token.is_empty() {
        Err("No token".to_owned())
    } else {
        match state
            .identity
            .update_username(token, param(&p, "username"))
            .await
        {
            Ok(()) => Ok(()),
            Err(DomainError::NoToken) => Err("No token".to_owned()),
            Err(DomainError::NotAuthenticated(_)) => Err("Not authenticated".to_owned()),
            Err(DomainError::UnknownUser) => Err("Unknown User".to_owned()),
            Err(
                e @ (DomainError::UsernameAlreadySet
                | DomainError::UsernameTaken
                | DomainError::UsernameInvalid(_)),
            ) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    };
    let answer = match outcome {
        Ok(()) => json!({"success": true}),
        Err(error) => json!({"success": false, "error": error}),
    };
    reply(&p, &answer)
}

/// `GET /user/public-key`: the PEM that verifies permission tokens.
async fn public_key(state: web::Data<RestState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(state.identity.codec().public_key_pem())
}

/// `next` as an absolute URL when it is a path on this service or on an allowed origin.
fn allowed_next(state: &RestState, next: &str) -> Result<reqwest::Url, ApiError> {
    let refused = || ApiError::BadRequest(format!("next {next:?} is not on an allowed origin"));
    let absolute = if next.starts_with('/') && !next.starts_with("//") {
        format!("{}{next}", state.base_url)
    } else {
        next.to_owned()
    };
    let url = reqwest::Url::parse(&absolute).map_err(|_| refused())?;
    if !matches!(url.scheme(), "http" | "https")
        || !state
            .redirect_origins
            .contains(&url.origin().ascii_serialization())
    {
        return Err(refused());
    }
    Ok(url)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn redirect(url: &reqwest::Url) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.as_str()))
        .finish()
}

/// `GET /oauth/<provider>_callback?code=&state=`: signs the user in and returns to `next`
/// with `jwt`; a failed login returns there without it. A bad or expired state, another
/// provider's state or a `next` outside the allowed origins is a 400.
async fn callback(req: HttpRequest, path: web::Path<String>, state: web::Data<RestState>) -> Reply {
    let query = web::Query::<CallbackQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .into_inner();
    let login = Providers::state(&state.identity, &query.state)
        .map_err(|_| ApiError::BadRequest("invalid or expired login state".into()))?;
    if login.provider != path.as_str() {
        return Err(ApiError::BadRequest(
            "the login state is of another provider".into(),
        ));
    }
    let mut next = allowed_next(&state, &login.next)?;
    if query.error.is_some() || query.code.is_empty() {
        tracing::info!(error = ?query.error, "login refused at the provider");
        return Ok(redirect(&next));
    }
    let signed_in = match state
        .providers
        .sign_in(&login, &query.code, query.iss)
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => {
            tracing::warn!(error = %e, provider = %login.provider, "login failed");
            return Ok(redirect(&next));
        }
    };
    let (user, token) = state.identity.sign_in(&signed_in).await?;
    tracing::info!(userid = %user.idhash, provider = %login.provider, "signed in");
    let kept: Vec<(String, String)> = next
        .query_pairs()
        .filter(|(k, _)| k != "jwt")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("jwt", &token);
    Ok(redirect(&next))
}

/// The datastore token: the `Auth-Token` header, else `jwt`.
fn datastore_token(req: &HttpRequest, params: &BTreeMap<String, String>) -> String {
    req.headers()
        .get("auth-token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map_or_else(|| param(params, "jwt").to_owned(), str::to_owned)
}

/// `POST /datastore/authorize`: presigned uploads of a package's files.
async fn datastore_authorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RestState>,
) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let request = UploadRequest::parse(&body).map_err(ApiError::Datastore)?;
    let p = params(&req, None);
    let claims = state
        .identity
        .verify_permission_token(&datastore_token(&req, &p))
        .map_err(ApiError::Datastore)?;
    let files = state
        .datastore
        .authorize(&claims, &request)
        .await
        .map_err(ApiError::Datastore)?;
    Ok(HttpResponse::Ok().json(json!({"filedata": files})))
}

/// `GET /datastore/info`: where the token's user's objects are.
async fn datastore_info(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    let p = params(&req, None);
    let claims = state
        .identity
        .verify_permission_token(&datastore_token(&req, &p))
        .map_err(ApiError::Datastore)?;
    tessera_conductor::datastore::check_upload(&claims, &claims.userid)
        .map_err(ApiError::Datastore)?;
    Ok(HttpResponse::Ok().json(json!({"prefixes": state.datastore.info(&claims.userid)})))
}

/// The admin behind a request: a user token (`Auth-Token` or `jwt`) or an API key
/// (`api_key`) of a user listed in `admin_userids`.
fn admin(req: &HttpRequest, state: &RestState) -> Result<String, ApiError> {
    let p = params(req, None);
    let token = datastore_token(req, &p);
    let userid = match state.identity.user_of_api_key(param(&p, "api_key")) {
        Some(userid) => userid,
        None => state.identity.user_of_token(&token)?,
    };
    if !state.identity.is_admin(&userid) {
        return Err(DomainError::Forbidden("only admins manage permissions".into()).into());
    }
    Ok(userid)
}

fn row_json(row: &tessera_conductor::PermissionRow) -> Value {
    json!({"userid": row.userid, "service": row.service, "permissions": row.permissions})
}

/// `GET /admin/permissions[?userid=&service=]`.
async fn list_permissions(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    admin(&req, &state)?;
    let p = params(&req, None);
    let rows = state
        .identity
        .list_permissions(
            p.get("userid").map(String::as_str),
            p.get("service").map(String::as_str),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"permissions": rows.iter().map(row_json).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
struct Grant {
    userid: String,
    service: String,
    permissions: Map<String, Value>,
}

/// `POST /admin/permissions` `{"userid", "service", "permissions": {…}}`: adds to the row.
async fn grant_permissions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RestState>,
) -> Reply {
    admin(&req, &state)?;
    let body = read_body(payload, state.max_body_bytes).await?;
    let grant: Grant = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let row = state
        .identity
        .grant(&grant.userid, &grant.service, grant.permissions)
        .await?;
    Ok(HttpResponse::Ok().json(row_json(&row)))
}

/// `DELETE /admin/permissions?userid=&service=[&permission=…]`: removes from the row.
async fn revoke_permissions(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    admin(&req, &state)?;
    let all = parse_query(req.query_string());
    let one = |name: &str| {
        all.get(name)
            .and_then(|v| v.first())
            .cloned()
            .ok_or_else(|| ApiError::BadRequest(format!("no {name}")))
    };
    let (userid, service) = (one("userid")?, one("service")?);
    let names = all.get("permission").cloned().unwrap_or_default();
    let answer = match state.identity.revoke(&userid, &service, &names).await? {
        Some(row) => row_json(&row),
        None => json!({"userid": userid, "service": service, "permissions": {}, "deleted": true}),
    };
    Ok(HttpResponse::Ok().json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_names() {
        for ok in ["f", "jQuery_123", "a.b.c", "$x"] {
            assert!(valid_callback(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a;alert(1)",
            "a.",
            "a b",
            "a(b)",
            &"a".repeat(129),
        ] {
            assert!(!valid_callback(bad), "{bad}");
        }
    }
}
