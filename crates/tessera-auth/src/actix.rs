//! actix-web extractors: [`BearerToken`] and [`AuthContext`], with the original's 401 responses
//! (WPS spec §1 "Bearer parsing" and §10 item 6).
//!
//! `AuthContext` needs a `web::Data<AuthProvider>` in the app data; without it every request is
//! a 500 and an error is logged, because that is a wiring mistake, not a client error.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::{AuthContext, AuthProvider};

/// The credentials of an `Authorization: Bearer <token>` header, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

/// Why an extractor refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No usable bearer credentials: 401 `{"detail":"Not authenticated"}` with
    /// `WWW-Authenticate: Bearer`.
    NotAuthenticated,
    /// The token failed verification or checks: 401
    /// `{"detail":"Invalid authentication credentials"}` without `WWW-Authenticate`.
    InvalidCredentials,
    /// No `AuthProvider` was registered: 500 `{"message":"Internal Server Error."}`.
    MissingProvider,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAuthenticated => "Not authenticated",
            Self::InvalidCredentials => "Invalid authentication credentials",
            Self::MissingProvider => "no AuthProvider registered in the app data",
        })
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotAuthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::MissingProvider => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::NotAuthenticated => response
                .insert_header((WWW_AUTHENTICATE, "Bearer"))
                .json(json!({"detail": self.to_string()})),
            Self::InvalidCredentials => response.json(json!({"detail": self.to_string()})),
            Self::MissingProvider => response.json(json!({"message": "Internal Server Error."})),
        }
    }
}

/// Reads bearer credentials as FastAPI's `HTTPBearer` does: split the header at the first
/// space; the scheme must be `bearer` in any case and both parts non-empty.
fn bearer_credentials(req: &HttpRequest) -> Result<String, Rejection> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(Rejection::NotAuthenticated)?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    if scheme.is_empty() || credentials.is_empty() || !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::NotAuthenticated);
    }
    Ok(credentials.to_owned())
}

impl FromRequest for BearerToken {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(bearer_credentials(req).map(Self))
    }
}

impl FromRequest for AuthContext {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(provider) = req.app_data::<web::Data<AuthProvider>>() else {
            tracing::error!("AuthContext extractor used without web::Data<AuthProvider> app data");
            return ready(Err(Rejection::MissingProvider));
        };
        ready(bearer_credentials(req).and_then(|token| {
            // Signature checks are tens of microseconds, cheap enough for the async worker.
            provider.authenticate(&token).map_err(|err| {
                tracing::info!(error = %err, "rejected internal auth token");
                Rejection::InvalidCredentials
            })
        }))
    }
}
