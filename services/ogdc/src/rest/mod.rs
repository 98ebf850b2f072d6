//! The HTTP translator: v0.3.0's routes (§B1, §B2, §B10.1, §B10.5) and the additions
//! (`/runs`, `/admin/runs`, cancel, logs), over [`Runner`], with the caller from
//! [`Access`]. [`ApiError`] is the one status mapping.

pub mod openapi;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_embedded::LocalObjectStore;
use tessera_http::{ValidationError, ValidationItem};
use tessera_recipes::{Error as DomainError, Run, Runner};
use tessera_tokens::Callback;

use crate::auth::Access;
use crate::login::{Login, LoginError};

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    /// The use cases.
    pub runner: Runner,
    /// How callers are authenticated.
    pub access: Access,
    /// The browser login (OIDC mode): its routes exist only then.
    pub login: Option<Arc<Login>>,
    /// The S3 endpoint as the service reaches it.
    pub internal_s3: String,
    /// The S3 endpoint as users reach it.
    pub public_s3: String,
}

impl fmt::Debug for RestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestState").finish_non_exhaustive()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No usable `Authorization: Bearer` header.
    NotAuthenticated,
    /// A bad or expired token, or its user is gone.
    BadCredentials,
    /// Wrong username or password.
    BadLogin,
    /// A valid OIDC token without the scope the route needs (403).
    MissingScope(String),
    /// `ACCESS_MODE=read_only` refuses what would change runs (403); names the action.
    ReadOnly(&'static str),
    /// A route of another access mode (`/token`, `/create_user` without passwords).
    NotFound,
    /// What the domain said.
    Domain(DomainError),
    /// A form or body field problem.
    Validation(ValidationError),
    /// A step of the browser login failed.
    Login(LoginError),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthenticated => f.write_str("Not authenticated"),
            Self::BadCredentials => f.write_str("Could not validate credentials."),
            Self::BadLogin => f.write_str("Incorrect username or password."),
            Self::MissingScope(scope) => {
                write!(f, "The access token lacks the required scope {scope}.")
            }
            Self::ReadOnly(what) => write!(
                f,
                "The service is read-only (ACCESS_MODE=read_only): {what} is not allowed."
            ),
            Self::NotFound => f.write_str("Not Found"),
            Self::Domain(e) => write!(f, "{e}"),
            Self::Validation(e) => write!(f, "{e}"),
            Self::Login(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Domain(e) => Some(e),
            Self::Login(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// `"Failed to submit recipe with error: {e}."`, `..` included when `e` ends in a period
/// (§B10.4).
fn submit_failure(e: &impl fmt::Display) -> String {
    format!("Failed to submit recipe with error: {e}.")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.error_response().status()
    }

    fn error_response(&self) -> HttpResponse {
        let bearer = |msg: &str| {
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(json!({ "detail": msg }))
        };
        match self {
            Self::NotAuthenticated => bearer("Not authenticated"),
            Self::BadCredentials => bearer("Could not validate credentials."),
            Self::BadLogin => {
                tessera_http::detail(StatusCode::UNAUTHORIZED, "Incorrect username or password.")
            }
            Self::MissingScope(_) | Self::ReadOnly(_) => {
                tessera_http::detail(StatusCode::FORBIDDEN, self)
            }
            Self::NotFound => tessera_http::detail(StatusCode::NOT_FOUND, self),
            Self::Validation(e) => e.error_response(),
            Self::Login(e) => {
                let status = match e {
                    LoginError::InvalidGrant => StatusCode::UNAUTHORIZED,
                    LoginError::Provider(cause) => {
                        tracing::warn!(error = %cause, "the identity provider failed");
                        StatusCode::BAD_GATEWAY
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                tessera_http::detail(status, e)
            }
            Self::Domain(e) => match e {
                DomainError::NotAdmin => tessera_http::detail(StatusCode::UNAUTHORIZED, e),
                DomainError::UserExists(_) => tessera_http::detail(StatusCode::CONFLICT, e),
                DomainError::Recipe(r) => {
                    tessera_http::detail(StatusCode::BAD_REQUEST, submit_failure(r))
                }
                DomainError::RunNotFound(name) => tessera_http::detail(
                    StatusCode::NOT_FOUND,
                    format!("Workflow {name} not found."),
                ),
                DomainError::NoOutput(_) => tessera_http::detail(StatusCode::NOT_FOUND, e),
                _ => tessera_http::internal_error(e),
            },
        }
    }
}

/// The routes (the login's only in OIDC mode), and the local object store's signed URLs at
/// `/objects` when outputs are stored locally.
pub fn routes(state: RestState, local: Option<LocalObjectStore>, cfg: &mut web::ServiceConfig) {
    let login = state.login.clone();
    cfg.app_data(web::Data::new(state))
        .app_data(tessera_http::json_config())
        .route("/version", web::get().to(version))
        .route("/token", web::post().to(token))
        .route("/user", web::get().to(user))
        .route("/create_user", web::post().to(create_user))
        .route("/submit", web::post().to(submit))
        .route("/status/{name}", web::get().to(status))
        .route("/output/{name}", web::get().to(output))
        .route("/runs", web::get().to(list_runs))
        .route("/admin/runs", web::get().to(list_all_runs))
        .route("/runs/{name}/cancel", web::post().to(cancel))
        .route("/runs/{name}/logs", web::get().to(logs));
    if let Some(login) = login {
        cfg.app_data(web::Data::from(login))
            .route("/login", web::get().to(start_login))
            .route("/authorize", web::get().to(authorize))
            .route("/refresh", web::post().to(refresh));
    }
    if let Some(local) = local {
        cfg.service(tessera_embedded::objects_http::objects_scope(
            "/objects", local,
        ));
    }
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ogdc_runner_version": crate::ORIGINAL_VERSION }))
}

/// Decodes an `application/x-www-form-urlencoded` body; other bodies count as empty forms
/// (FastAPI then reports every field missing).
fn form(req: &HttpRequest, body: &[u8]) -> BTreeMap<String, String> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    let mut out = BTreeMap::new();
    if !is_form {
        return out;
    }
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let key = decode(it.next().unwrap_or_default());
        let value = decode(it.next().unwrap_or_default());
        out.entry(key).or_insert(value);
    }
    out
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The required, non-empty form fields; 422 naming every missing one.
fn required<'a>(
    form: &'a BTreeMap<String, String>,
    fields: &[&str],
) -> Result<Vec<&'a str>, ApiError> {
    let mut items = Vec::new();
    let mut values = Vec::new();
    for field in fields {
        match form.get(*field).filter(|v| !v.is_empty()) {
            Some(v) => values.push(v.as_str()),
            None => items.push(ValidationItem::new(
                "missing",
                vec![json!("body"), json!(field)],
                "Field required",
                Value::Null,
            )),
        }
    }
    if items.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::Validation(ValidationError { items }))
    }
}

async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    if !state.access.has_users() {
        return Err(ApiError::NotFound);
    }
    let form = form(&req, &body);
    let mut problems = match required(&form, &["username", "password"]) {
        Ok(_) => Vec::new(),
        Err(ApiError::Validation(v)) => v.items,
        Err(e) => return Err(e),
    };
    if let Some(grant) = form.get("grant_type").filter(|g| !g.is_empty())
        && grant != "password"
    {
        problems.insert(
            0,
            ValidationItem::new(
                "string_pattern_mismatch",
                vec![json!("body"), json!("grant_type")],
                "String should match pattern '^password$'",
                json!(grant),
            )
            .with_ctx(json!({ "pattern": "^password$" })),
        );
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(ValidationError { items: problems }));
    }
    let (username, password) = (&form["username"], &form["password"]);
    match state.runner.login(username, password).await? {
        Some(issued) => Ok(HttpResponse::Ok().json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "utc_expiration": issued.expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        }))),
        None => Err(ApiError::BadLogin),
    }
}

async fn user(req: HttpRequest, state: web::Data<RestState>) -> Result<HttpResponse, ApiError> {
    let caller = state.access.caller(&req, &state.runner).await?;
    Ok(HttpResponse::Ok().json(json!({ "current_user": caller.name })))
}

async fn create_user(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    if !state.access.has_users() {
        return Err(ApiError::NotFound);
    }
    let caller = state.access.caller(&req, &state.runner).await?;
    let form = form(&req, &body);
    let values = required(&form, &["username", "password"])?;
    state
        .runner
        .create_user(&caller, values[0], values[1])
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "message": format!("User with username \"{}\" created.", values[0])
    })))
}

#[derive(Debug, Deserialize)]
struct SubmitBody {
    recipe_path: String,
    #[serde(default)]
    overwrite: bool,
}

async fn submit(
    req: HttpRequest,
    body: web::Json<SubmitBody>,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state
        .access
        .writer(&req, &state.runner, "submitting a recipe")
        .await?;
    let run = state
        .runner
        .submit(&caller, &body.recipe_path, body.overwrite)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "message": format!("Successfully submitted recipe with recipe_workflow_name='{}'", run.name),
        "recipe_workflow_name": run.name,
    })))
}

async fn status(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.access.caller(&req, &state.runner).await?;
    let run = state.runner.status(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(json!({
        "recipe_workflow_name": run.name,
        "status": run.phase,
        "timestamp": chrono::Local::now().naive_local().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    })))
}

async fn output(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.access.caller(&req, &state.runner).await?;
    match state.runner.output(&caller, &name).await {
        Ok(url) => {
            let url = match url.strip_prefix(state.internal_s3.trim_end_matches('/')) {
                Some(rest) if !state.internal_s3.is_empty() && !state.public_s3.is_empty() => {
                    format!("{}{rest}", state.public_s3.trim_end_matches('/'))
                }
                _ => url,
            };
            Ok(HttpResponse::Ok().json(json!({ "data_url": url })))
        }
        Err(DomainError::NoOutput(why)) => Ok(tessera_http::detail(
            StatusCode::NOT_FOUND,
            format!("The requested output for {name} was not found: {why}."),
        )),
        Err(e) => Err(e.into()),
    }
}

fn run_json(run: &Run) -> Value {
    json!({
        "recipe_workflow_name": run.name,
        "owner": run.owner,
        "recipe_id": run.recipe_id,
        "recipe_path": run.recipe_path,
        "status": run.phase,
        "message": run.message,
        "created": run.created,
        "updated": run.updated,
    })
}

async fn list_runs(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.access.caller(&req, &state.runner).await?;
    let runs = state.runner.list(&caller).await?;
    Ok(HttpResponse::Ok().json(runs.iter().map(run_json).collect::<Vec<_>>()))
}

async fn list_all_runs(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.access.admin(&req, &state.runner).await?;
    let runs = state.runner.list_all(&caller).await?;
    Ok(HttpResponse::Ok().json(runs.iter().map(run_json).collect::<Vec<_>>()))
}

async fn cancel(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state
        .access
        .writer(&req, &state.runner, "cancelling a run")
        .await?;
    let run = state.runner.cancel(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(run_json(&run)))
}

async fn logs(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.access.caller(&req, &state.runner).await?;
    let logs = state.runner.logs(&caller, &name).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(logs))
}

/// `GET /login`: to the provider, with the login's session cookie.
async fn start_login(login: web::Data<Login>) -> Result<HttpResponse, ApiError> {
    let start = login.start().await.map_err(ApiError::Login)?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, start.url))
        .insert_header((header::SET_COOKIE, start.set_cookie))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `GET /authorize`: the provider's callback. The cookie is cleared once the state matched
/// (the login is over, whatever happens next); a stray callback leaves this browser's login
/// alone.
async fn authorize(req: HttpRequest, login: web::Data<Login>) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map_err(|_| ApiError::Login(LoginError::BadRequest("The query string is not valid.")))?;
    let callback = Callback::from_params(|name| query.get(name).cloned());
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok());
    let mut response = match login.finish(cookies, &callback).await {
        Ok(tokens) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "message": "Login successful",
                "token": {
                    "access_token": tokens.access_token,
                    "refresh_token": tokens.refresh_token,
                },
            })),
        Err(e @ (LoginError::NoSession | LoginError::StateMismatch)) => {
            return Err(ApiError::Login(e));
        }
        Err(e) => ApiError::Login(e).error_response(),
    };
    if let Ok(value) = header::HeaderValue::from_str(&login.clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /refresh` with JSON `{"refresh_token", "scope"?}`.
async fn refresh(body: web::Bytes, login: web::Data<Login>) -> Result<HttpResponse, ApiError> {
    let bad = |why| ApiError::Login(LoginError::BadRequest(why));
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| bad("The body must be a JSON object with refresh_token."))?;
    let refresh_token = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("Missing refresh_token."))?;
    let scope = match body.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) => Some(scope.as_str()).filter(|s| !s.is_empty()),
        Some(_) => return Err(bad("scope must be a string.")),
    };
    let grant = login
        .refresh(refresh_token, scope)
        .await
        .map_err(ApiError::Login)?;
    // A provider that does not rotate refresh tokens keeps the one sent.
    let refresh_token = grant
        .refresh_token
        .map_or_else(|| refresh_token.to_owned(), |issued| issued.token);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "message": "Token refreshed",
            "token": {
                "access_token": grant.access_token,
                "refresh_token": refresh_token,
            },
        })))
}
