//! The OpenAPI document (documentation only; the API tests check the real bodies).

#![allow(dead_code)]

use tessera_http::BearerScheme;
use utoipa::{OpenApi, ToSchema};

/// `POST /token`.
#[derive(Debug, ToSchema)]
pub struct Token {
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// `2026-11-22T06:01:00.495642Z`.
    utc_expiration: String,
}

/// `POST /submit` body.
#[derive(Debug, ToSchema)]
pub struct Submit {
    /// An https URL of a recipe directory, or a path under the local root.
    recipe_path: String,
    /// Replace published data.
    overwrite: bool,
}

/// `GET /status/{name}`.
#[derive(Debug, ToSchema)]
pub struct Status {
    recipe_workflow_name: String,
    /// Pending, Running, Succeeded, Failed, Error.
    status: Option<String>,
    /// Local time, no zone.
    timestamp: String,
}

/// An error.
#[derive(Debug, ToSchema)]
pub struct Detail {
    detail: String,
}

/// The provider's tokens.
#[derive(Debug, ToSchema)]
pub struct ProviderTokens {
    access_token: String,
    refresh_token: Option<String>,
}

/// `GET /authorize` (`Login successful`) and `POST /refresh` (`Token refreshed`).
#[derive(Debug, ToSchema)]
pub struct LoggedIn {
    message: String,
    token: ProviderTokens,
}

/// `POST /refresh` body.
#[derive(Debug, ToSchema)]
pub struct Refresh {
    refresh_token: String,
    /// A subset of the granted scope.
    scope: Option<String>,
}

#[utoipa::path(post, path = "/token", responses((status = 200, body = Token), (status = 401, body = Detail)))]
fn token() {}
#[utoipa::path(get, path = "/version", responses((status = 200, description = "`{\"ogdc_runner_version\":\"0.3.0\"}`")))]
fn version() {}
#[utoipa::path(get, path = "/user", security(("bearer" = [])), responses((status = 200, description = "`{\"current_user\":name}`")))]
fn user() {}
#[utoipa::path(post, path = "/create_user", security(("bearer" = [])), responses((status = 200), (status = 401, body = Detail), (status = 409, body = Detail)))]
fn create_user() {}
#[utoipa::path(post, path = "/submit", request_body = Submit, security(("bearer" = [])), responses((status = 200), (status = 400, body = Detail), (status = 403, body = Detail)))]
fn submit() {}
#[utoipa::path(get, path = "/status/{name}", security(("bearer" = [])), responses((status = 200, body = Status), (status = 404, body = Detail)))]
fn status() {}
#[utoipa::path(get, path = "/output/{name}", security(("bearer" = [])), responses((status = 200, description = "`{\"data_url\":…}`"), (status = 404, body = Detail)))]
fn output() {}
#[utoipa::path(get, path = "/runs", security(("bearer" = [])), responses((status = 200, description = "the caller's runs (all for admin)")))]
fn runs() {}
#[utoipa::path(get, path = "/admin/runs", security(("bearer" = [])), responses((status = 200, description = "every run of every owner (admin only)"), (status = 401, body = Detail), (status = 403, body = Detail)))]
fn admin_runs() {}
#[utoipa::path(post, path = "/runs/{name}/cancel", security(("bearer" = [])), responses((status = 200), (status = 403, body = Detail), (status = 404, body = Detail)))]
fn cancel() {}
#[utoipa::path(get, path = "/runs/{name}/logs", security(("bearer" = [])), responses((status = 200, description = "text/plain"), (status = 404, body = Detail)))]
fn logs() {}

#[utoipa::path(get, path = "/login", responses((status = 302, description = "OIDC mode only: to the provider's authorization endpoint; sets the `ogdc_login` session cookie (10 min)"), (status = 502, body = Detail)))]
fn login() {}
#[utoipa::path(get, path = "/authorize", params(("code" = Option<String>, Query,), ("state" = Option<String>, Query,), ("iss" = Option<String>, Query,), ("error" = Option<String>, Query,), ("error_description" = Option<String>, Query,)), responses((status = 200, body = LoggedIn), (status = 400, body = Detail, description = "no session cookie, another state, the provider's error, no code or a refused code"), (status = 502, body = Detail)))]
fn authorize() {}
#[utoipa::path(post, path = "/refresh", request_body = Refresh, responses((status = 200, body = LoggedIn), (status = 400, body = Detail), (status = 401, body = Detail, description = "the provider refused the refresh token (invalid_grant)"), (status = 502, body = Detail)))]
fn refresh() {}

const BEARER: BearerScheme = BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "OGDC runner", description = "ogdc-runner 0.3.0, re-implemented"),
    paths(token, version, user, create_user, submit, status, output, runs, admin_runs, cancel, logs, login, authorize, refresh),
    components(schemas(Token, Submit, Status, Detail, ProviderTokens, LoggedIn, Refresh)),
    modifiers(&BEARER)
)]
struct Doc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
