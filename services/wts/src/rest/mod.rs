//! The HTTP translator: the original's routes (§B1, with §B9's corrections) as actix
//! routes over [`TokenService`]. [`ApiError`] is the one place where errors become
//! statuses; bodies are the original's `{"message": …}` (and `{"error": …}` for a bad
//! `expires`).
//!
//! Layout: here the routes, handlers, caller extraction and [`ApiError`]; [`aggregate`] the
//! fan-out to the commons; [`openapi`] the API description.

pub mod aggregate;
pub mod openapi;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use tessera_oidc::SessionCodec;
use tessera_tokens::{Callback, Caller, Clock, Error as DomainError, TokenService};

use crate::{COMMIT, VERSION};
use aggregate::Aggregator;

/// The prefix of the original's 403 messages (cdiserrors `AuthError`).
const FORBIDDEN: &str = "You don't have access to this resource: ";
/// The prefix of the original's 401 messages (`AuthNError`).
const UNAUTHENTICATED: &str = "Authentication Error: ";
/// The prefix of the original's 500 messages (`InternalError`).
const INTERNAL: &str = "Internal server error";

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    /// The domain core.
    pub service: Arc<TokenService>,
    /// The login session cookie.
    pub sessions: SessionCodec,
    /// The time of session expiry checks.
    pub clock: Arc<dyn Clock>,
    /// Trusted `X-Forwarded-For` hops.
    pub forwarded_for_hops: usize,
    /// The `/aggregate` fan-out.
    pub aggregator: Arc<Aggregator>,
}

impl fmt::Debug for RestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestState")
            .field("forwarded_for_hops", &self.forwarded_for_hops)
            .finish_non_exhaustive()
    }
}

/// Why a request failed; the service's single status mapping.
#[derive(Debug)]
pub enum ApiError {
    /// What the domain said.
    Domain(DomainError),
    /// `/aggregate/<path>` outside the allowlist.
    NotAllowlisted,
    /// A failure of this service itself.
    Internal(&'static str),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(e) => write!(f, "{e}"),
            Self::NotAllowlisted => f.write_str("endpoint not in the aggregate allowlist"),
            Self::Internal(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Domain(e) => Some(e),
            Self::NotAllowlisted | Self::Internal(_) => None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl ApiError {
    fn status_and_message(&self) -> (StatusCode, String) {
        use DomainError as E;
        let forbidden = |m: &str| (StatusCode::FORBIDDEN, format!("{FORBIDDEN}{m}"));
        let e = match self {
            Self::Domain(e) => e,
            Self::NotAllowlisted => {
                return (
                    StatusCode::NOT_FOUND,
                    "supplied endpoint is not configured in the Workspace Token Service aggregate endpoint allowlist"
                        .to_owned(),
                );
            }
            Self::Internal(_) => return (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL.to_owned()),
        };
        match e {
            E::NotAuthenticated => forbidden("You need to be authenticated to use this resource"),
            E::Unauthenticated(why) => {
                (StatusCode::UNAUTHORIZED, format!("{UNAUTHENTICATED}{why}"))
            }
            E::NotLoggedIn => (
                StatusCode::UNAUTHORIZED,
                format!("{UNAUTHENTICATED}user is not logged in"),
            ),
            E::InvalidExpires => (
                StatusCode::BAD_REQUEST,
                "expires has to be an integer".to_owned(),
            ),
            E::UnknownIdp(idp) => (
                StatusCode::BAD_REQUEST,
                format!("Requested IdP \"{idp}\" is not configured"),
            ),
            E::AbsoluteRedirect => (
                StatusCode::BAD_REQUEST,
                "only support relative redirect".to_owned(),
            ),
            E::NoRefreshToken => forbidden("User doesn't have a refresh token"),
            E::RefreshTokenExpired => {
                forbidden("your refresh token is expired, please login again")
            }
            E::NotConnected => forbidden("user is not connected with token service or expired"),
            E::StateMismatch => {
                forbidden("could not authorize; state did not match across auth requests")
            }
            E::LoginRefused(why) => forbidden(why),
            E::TokenResponse(missing) => forbidden(&format!("error in token response: {missing}")),
            E::IdpUnreachable { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{INTERNAL}: Fail to reach fence"),
            ),
            E::RefreshRefused { body, .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{INTERNAL}: Fail to get a access token from fence: {body}"),
            ),
            E::LogoutFailed(why) => (StatusCode::BAD_REQUEST, format!("could not log out: {why}")),
            E::Exchange { .. } | E::Identity(_) | E::Cipher(_) | E::Storage(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL.to_owned())
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_message().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, message) = self.status_and_message();
        if status.is_server_error() {
            tracing::error!(error = %tessera_http::error_chain(self), "request failed");
        }
        if matches!(self, Self::Domain(DomainError::InvalidExpires)) {
            return HttpResponse::build(status).json(json!({ "error": message }));
        }
        HttpResponse::build(status).json(json!({ "message": message }))
    }
}

/// The query as pairs; an undecodable query counts as empty.
fn query(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// The first value of `name`.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The client address: the `hops`-th `X-Forwarded-For` entry from the right when there are
/// that many (what Werkzeug's `ProxyFix(x_for=hops)` does), else the peer.
pub fn remote_ip(req: &HttpRequest, hops: usize) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if entries.len() < hops {
        return peer;
    }
    entries
        .get(entries.len() - hops)
        .and_then(|ip| ip.parse().ok())
}

/// The caller: the credential of `Authorization` whatever its scheme, and the address.
pub fn caller(req: &HttpRequest, hops: usize) -> Caller {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| match v.trim().split_once(' ') {
            Some((_, credential)) => credential.trim(),
            None => v.trim(),
        })
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Caller {
        token,
        remote_ip: remote_ip(req, hops),
    }
}

/// The routes, to hand to [`tessera_http::HttpStack`].
pub fn routes(state: RestState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    // Said once at start-up: trusting a forwarded header the clients can reach lets them
    // pose as a workspace.
    if state.forwarded_for_hops == 0 {
        tracing::info!(
            forwarded_for_hops = 0,
            "client addresses are the peers' (no X-Forwarded-For hop trusted)"
        );
    } else {
        tracing::info!(
            forwarded_for_hops = state.forwarded_for_hops,
            "client addresses come from X-Forwarded-For (trusted proxy hops)"
        );
    }
    let data = web::Data::new(state);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .route("/_status", web::get().to(status))
            .route("/_version", web::get().to(version))
            .route("/token", web::get().to(add_slash))
            .route("/token/", web::get().to(token))
            .route(
                "/oauth2/authorization_url",
                web::get().to(authorization_url),
            )
            .route("/oauth2/authorize", web::get().to(authorize))
            .route("/oauth2/connected", web::get().to(connected))
            .route("/oauth2/logout", web::get().to(logout))
            // The original answers here itself; only `/token` redirects (§B9.7).
            .route("/external_oidc", web::get().to(external_oidc))
            .route("/external_oidc/", web::get().to(external_oidc))
            .route("/aggregate/{path:.*}", web::get().to(aggregate::aggregate));
    }
}

/// `/token`: 308 to the same path with `/` (Flask's strict slashes).
async fn add_slash(req: HttpRequest) -> HttpResponse {
    let mut location = format!("{}/", req.path());
    if !req.query_string().is_empty() {
        location.push('?');
        location.push_str(req.query_string());
    }
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[utoipa::path(
    get,
    path = "/_status",
    tag = "status",
    responses(
        (status = 200, description = "The storage answers", body = String, example = "Healthy"),
        (status = 500, description = "The storage does not answer", body = String, example = "Unhealthy"),
    )
)]
async fn status(state: web::Data<RestState>) -> HttpResponse {
    match state.service.check_storage().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("Healthy"),
        Err(e) => {
            tracing::error!(error = %tessera_http::error_chain(&e), "status check failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain")
                .body("Unhealthy")
        }
    }
}

#[utoipa::path(
    get,
    path = "/_version",
    tag = "status",
    responses((status = 200, description = "Version and commit", body = openapi::Version))
)]
async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "version": VERSION, "commit": COMMIT }))
}

#[utoipa::path(
    get,
    path = "/token/",
    tag = "token",
    params(
        ("idp" = Option<String>, Query, description = "The IdP (default `default`: the workspace's identity only)"),
        ("expires" = Option<String>, Query, description = "Must be an integer; otherwise ignored"),
    ),
    responses(
        (status = 200, description = "A fresh access token", body = openapi::Token),
        (status = 400, description = "Bad `expires` (`{\"error\"}`) or unknown IdP (`{\"message\"}`)", body = openapi::BadRequest),
        (status = 401, description = "Invalid token", body = openapi::Message),
        (status = 403, description = "No user, no refresh token or an expired one", body = openapi::Message),
        (status = 500, description = "The IdP failed", body = openapi::Message),
    ),
    security((), ("bearer" = []))
)]
async fn token(state: web::Data<RestState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    let token = state
        .service
        .access_token(
            &caller(&req, state.forwarded_for_hops),
            param(&pairs, "idp"),
            param(&pairs, "expires"),
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}

#[utoipa::path(
    get,
    path = "/oauth2/authorization_url",
    tag = "oauth2",
    params(
        ("idp" = Option<String>, Query, description = "The IdP to link (default `default`)"),
        ("redirect" = Option<String>, Query, description = "A local path to return to afterwards"),
    ),
    responses(
        (status = 302, description = "To the IdP; sets the `wts` session cookie"),
        (status = 400, description = "Absolute redirect or unknown IdP", body = openapi::Message),
    )
)]
async fn authorization_url(
    state: web::Data<RestState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    let start = state
        .service
        .start_login(param(&pairs, "idp"), param(&pairs, "redirect"))
        .await?;
    let cookie = state
        .sessions
        .encode(&start.session, state.clock.now())
        .ok_or(ApiError::Internal("cannot encode the login session"))?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, start.url))
        .insert_header((header::SET_COOKIE, state.sessions.set_cookie(&cookie)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish())
}

#[utoipa::path(
    get,
    path = "/oauth2/authorize",
    tag = "oauth2",
    params(
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state of the login"),
        ("iss" = Option<String>, Query, description = "The IdP's issuer (RFC 9207)"),
    ),
    responses(
        (status = 200, description = "Linked; no redirect was asked for", body = openapi::Success),
        (status = 302, description = "Linked; back to the login's redirect"),
        (status = 401, description = "No valid commons token", body = openapi::Message),
        (status = 403, description = "State mismatch (checked before the token) or the IdP refused", body = openapi::Message),
        (status = 500, description = "The IdP failed", body = openapi::Message),
    ),
    security((), ("bearer" = []))
)]
async fn authorize(
    state: web::Data<RestState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    let now = state.clock.now();
    let session = state.sessions.read(
        req.headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok()),
        now,
    );
    let callback = Callback::from_params(|name| param(&pairs, name).map(str::to_owned));
    let clear = state.sessions.clear_cookie();
    let done = match state
        .service
        .finish_login(
            &caller(&req, state.forwarded_for_hops),
            session.as_ref(),
            &callback,
        )
        .await
    {
        Ok(done) => done,
        // A stray callback must not end the login this browser has under way.
        Err(e @ DomainError::StateMismatch) => return Err(e.into()),
        Err(e) => {
            let mut response = ApiError::from(e).error_response();
            if let Ok(value) = HeaderValue::from_str(&clear) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return Ok(response);
        }
    };
    let mut response = match done.redirect {
        Some(redirect) => HttpResponse::Found()
            .insert_header((header::LOCATION, redirect))
            .finish(),
        None => HttpResponse::Ok().json(json!({ "success": "connected with fence" })),
    };
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/oauth2/connected",
    tag = "oauth2",
    params(("idp" = Option<String>, Query, description = "The IdP (default `default`); any IdP works")),
    responses(
        (status = 200, description = "An unexpired refresh token is stored"),
        (status = 400, description = "Unknown IdP", body = openapi::Message),
        (status = 401, description = "No valid commons token", body = openapi::Message),
        (status = 403, description = "Not connected or expired", body = openapi::Message),
    ),
    security(("bearer" = []))
)]
async fn connected(
    state: web::Data<RestState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    state
        .service
        .connected(
            &caller(&req, state.forwarded_for_hops),
            param(&pairs, "idp"),
        )
        .await?;
    Ok(HttpResponse::Ok().finish())
}

#[utoipa::path(
    get,
    path = "/oauth2/logout",
    tag = "oauth2",
    params(("idp" = Option<String>, Query, description = "Only this IdP (default: every IdP)")),
    responses(
        (status = 204, description = "Revoked at the IdPs and deleted"),
        (status = 400, description = "Unknown IdP, or a revocation failed (the tokens were deleted all the same)", body = openapi::Message),
        (status = 401, description = "No user", body = openapi::Message),
    ),
    security((), ("bearer" = []))
)]
async fn logout(state: web::Data<RestState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    state
        .service
        .logout(
            &caller(&req, state.forwarded_for_hops),
            param(&pairs, "idp"),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/external_oidc/",
    tag = "external_oidc",
    params(("unexpired" = Option<String>, Query, description = "`true`: only IdPs with an unexpired refresh token")),
    responses((status = 200, description = "The external IdPs", body = openapi::Providers)),
    security((), ("bearer" = []))
)]
async fn external_oidc(
    state: web::Data<RestState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = query(&req);
    let unexpired = param(&pairs, "unexpired").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let providers = state
        .service
        .providers(&caller(&req, state.forwarded_for_hops), unexpired)
        .await?;
    let providers: Vec<_> = providers
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "idp": p.idp,
                "base_url": p.base_url,
                "urls": [{"name": p.name, "url": p.login_url}],
                "refresh_token_expiration": p.refresh_token_expiration,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "providers": providers })))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_client_address_trusts_the_configured_hops() {
        let peer = "192.0.2.1:5000".parse().unwrap();
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.0.0.5"))
            .to_http_request();
        assert_eq!(remote_ip(&req, 1), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(remote_ip(&req, 2), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(
            remote_ip(&req, 3),
            Some(peer.ip()),
            "too few entries: the peer"
        );
        assert_eq!(remote_ip(&req, 0), Some(peer.ip()));
        let bad = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "not-an-ip"))
            .to_http_request();
        assert_eq!(remote_ip(&bad, 1), None);
    }

    #[test]
    fn any_authorization_scheme_is_a_token() {
        for (header, want) in [
            ("Bearer abc", Some("abc")),
            ("Token  xyz ", Some("xyz")),
            ("plain", Some("plain")),
            ("   ", None),
        ] {
            let req = TestRequest::default()
                .insert_header(("authorization", header))
                .to_http_request();
            assert_eq!(caller(&req, 0).token.as_deref(), want, "{header:?}");
        }
        assert_eq!(
            caller(&TestRequest::default().to_http_request(), 0).token,
            None
        );
    }
}
