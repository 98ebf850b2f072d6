//! The HTTP translator: the original's routes (§A1, corrected by §A10) over [`Uws`]. The
//! envelope is `{"message","success":true,"data"}` on success and exactly
//! `{"success":false,"message"}` on failure; [`ApiError`] is the one status mapping.
//! `UWS-Authorization` is parsed on every route, anonymous ones included (§A10.3).
//!
//! Layout: here the routes, handlers and [`ApiError`]; [`openapi`] the API description;
//! `passthrough` the reverse proxy to jobs' web servers.

pub mod openapi;
mod passthrough;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tessera_workspaces::{Body, Error as CoreError, Kind, Reply, User, Uws};

use crate::{COMMIT, VERSION};

/// The header the original reads credentials from.
pub const AUTH_HEADER: &str = "UWS-Authorization";

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    /// The core.
    pub uws: Arc<Uws>,
    /// `/status/` dependencies: the names of the configured parts.
    pub status: Arc<Value>,
    /// Unfiltered workspace listings, as sent, per user.
    pub listings: Arc<ListingCache>,
    /// The passthrough proxy's client (no redirects followed, no proxy from the
    /// environment).
    pub upstream: reqwest::Client,
}

/// The unfiltered `GET /workspaces/` body per user, valid for one generation of the
/// records: the portal polls it, and a user with many workspaces costs a serialisation per
/// poll otherwise. Any change to any record empties it.
#[derive(Debug, Default)]
pub struct ListingCache {
    entries: std::sync::Mutex<(u64, std::collections::HashMap<i64, web::Bytes>)>,
}

impl ListingCache {
    fn get(&self, generation: u64, user: i64) -> Option<web::Bytes> {
        let entries = self.entries.lock().ok()?;
        (entries.0 == generation)
            .then(|| entries.1.get(&user).cloned())
            .flatten()
    }

    fn put(&self, generation: u64, user: i64, body: web::Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.0 != generation {
                if generation < entries.0 {
                    return;
                }
                *entries = (generation, std::collections::HashMap::new());
            }
            entries.1.insert(user, body);
        }
    }
}

impl fmt::Debug for RestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestState").finish_non_exhaustive()
    }
}

/// Why a request failed; the service's single status mapping.
#[derive(Debug)]
pub struct ApiError(CoreError);

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            CoreError::Refused { kind, .. } => match kind {
                Kind::BadRequest => StatusCode::BAD_REQUEST,
                Kind::Unauthorized => StatusCode::UNAUTHORIZED,
                Kind::Forbidden => StatusCode::FORBIDDEN,
                Kind::NotFound => StatusCode::NOT_FOUND,
                Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                Kind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match &self.0 {
            CoreError::Refused { message, .. } => message.clone(),
            other => {
                tracing::error!(error = %tessera_http::error_chain(other), "request failed");
                "A server error occurred.".to_owned()
            }
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Token"));
        }
        response.json(json!({ "success": false, "message": message }))
    }
}

type Answer = Result<HttpResponse, ApiError>;

fn envelope_value(reply: Reply) -> Value {
    let mut body = Map::new();
    body.insert("message".into(), Value::String(reply.message));
    body.insert("success".into(), Value::Bool(true));
    if let Some(data) = reply.data {
        body.insert("data".into(), data);
    }
    Value::Object(body)
}

fn envelope(reply: Reply) -> HttpResponse {
    HttpResponse::Ok().json(envelope_value(reply))
}

fn header_value(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(AUTH_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The caller, if any (a malformed or unknown credential is a 401 even where none is needed).
fn caller(state: &RestState, req: &HttpRequest) -> Result<Option<User>, ApiError> {
    Ok(state.uws.authenticate(header_value(req).as_deref())?)
}

/// The caller, who must be there.
fn user(state: &RestState, req: &HttpRequest) -> Result<User, ApiError> {
    Ok(Uws::require(caller(state, req)?)?)
}

fn body(bytes: &[u8]) -> Body {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// A path id: Django routes `<int:…>`, so anything else is not found.
fn id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| CoreError::refused(Kind::NotFound, "Not found.").into())
}

/// The routes.
pub fn routes(state: RestState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let data = web::Data::new(state);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .app_data(web::PayloadConfig::new(256 * 1024 * 1024))
            .service(
                web::resource("/tokens/")
                    .route(web::post().to(login))
                    .route(web::delete().to(logout))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/status/")
                    .route(web::get().to(status))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/workspaces/")
                    .route(web::get().to(list_workspaces))
                    .route(web::post().to(create_workspace))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/workspaces/{id}/")
                    .route(web::get().to(get_workspace))
                    .route(web::put().to(update_workspace))
                    .route(web::delete().to(delete_workspace))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/workspaces/{id}/{put_type}/")
                    .route(web::put().to(put_workspace))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/quota/")
                    .route(web::get().to(quota))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/jobs/")
                    .route(web::get().to(list_jobs))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/jobs/{id}/")
                    .route(web::get().to(get_job))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/jobs/{id}/{put_type}/")
                    .route(web::put().to(put_job))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/shared_workspaces/")
                    .route(web::get().to(list_shares))
                    .route(web::post().to(share))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/shared_workspaces/{id}/")
                    .route(web::get().to(get_share))
                    .route(web::delete().to(delete_share))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/shared_workspaces/{id}/{put_type}/")
                    .route(web::put().to(put_share))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/users/")
                    .route(web::get().to(users))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/job_types/")
                    .route(web::get().to(job_types))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/parameters/")
                    .route(web::get().to(parameters))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/passthrough/{host}/{port}/{tail:.*}").to(passthrough::passthrough),
            );
    }
}

/// DRF's 405: `Method "PATCH" not allowed.`
async fn not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(json!({
        "success": false,
        "message": format!("Method \"{}\" not allowed.", req.method()),
    }))
}

async fn login(state: web::Data<RestState>, req: HttpRequest, bytes: web::Bytes) -> Answer {
    caller(&state, &req)?;
    let token = state.uws.login(body(&bytes)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": "Successful authentication.",
        "token": token,
    })))
}

async fn logout(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    Ok(envelope(state.uws.logout(&user).await?))
}

async fn status(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    caller(&state, &req)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "",
        "success": true,
        "version": VERSION,
        "build": COMMIT,
        "dependencies": *state.status,
    })))
}

async fn list_workspaces(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    if !req.query_string().is_empty() {
        return Ok(envelope(state.uws.list_workspaces(
            &user,
            None,
            &query(&req),
        )));
    }
    // Read the generation first: a body computed after it is at least as new.
    let generation = state.uws.records().generation();
    let body = match state.listings.get(generation, user.id) {
        Some(body) => body,
        None => {
            let reply = state.uws.list_workspaces(&user, None, &BTreeMap::new());
            let body = web::Bytes::from(
                serde_json::to_vec(&envelope_value(reply))
                    .map_err(|e| CoreError::refused(Kind::Failed, e.to_string()))?,
            );
            state.listings.put(generation, user.id, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

async fn get_workspace(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let user = user(&state, &req)?;
    // §A10.5: an id that is not the caller's (or not a number) is an empty listing.
    let reply = match path.parse::<i64>() {
        Ok(id) => state.uws.list_workspaces(&user, Some(id), &BTreeMap::new()),
        Err(_) => state.uws.list_workspaces(&user, Some(-1), &BTreeMap::new()),
    };
    Ok(envelope(reply))
}

async fn create_workspace(
    state: web::Data<RestState>,
    req: HttpRequest,
    bytes: web::Bytes,
) -> Answer {
    let user = user(&state, &req)?;
    Ok(envelope(
        state.uws.create_workspace(&user, body(&bytes)).await?,
    ))
}

async fn update_workspace(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Answer {
    let user = user(&state, &req)?;
    let id = id(&path)?;
    Ok(envelope(
        state.uws.update_workspace(&user, id, body(&bytes)).await?,
    ))
}

async fn delete_workspace(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let user = user(&state, &req)?;
    let id = id(&path)?;
    Ok(envelope(state.uws.delete_workspace(&user, id).await?))
}

async fn put_workspace(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Answer {
    let user = user(&state, &req)?;
    let (raw, put_type) = path.into_inner();
    let id = id(&raw)?;
    match put_type.to_lowercase().as_str() {
        "upload" => {
            state.uws.writable(&user, id).await?;
            let files = read_files(Multipart::new(req.headers(), payload)).await?;
            Ok(envelope(state.uws.upload(&user, id, files).await?))
        }
        "start" => {
            let bytes = payload
                .to_bytes_limited(64 * 1024 * 1024)
                .await
                .map_err(|_| CoreError::bad("Invalid JSON: the body is too large."))?
                .map_err(|e| CoreError::bad(format!("Invalid JSON: {e}")))?;
            let order = tessera_workspaces::params::option_order(&bytes);
            Ok(envelope(
                state.uws.start(&user, id, body(&bytes), &order).await?,
            ))
        }
        _ => {
            state.uws.writable(&user, id).await?;
            Err(CoreError::bad("Invalid PUT type passed.").into())
        }
    }
}

async fn quota(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    Ok(envelope(state.uws.quota(user.id)))
}

async fn list_jobs(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    Ok(envelope(state.uws.list_jobs(&user, None, &query(&req))?))
}

async fn get_job(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade {
        return job_socket(&state, &req, &path, payload);
    }
    let user = user(&state, &req)?;
    // §A10.5: an id that is not the caller's (or not a number) is an empty listing.
    let id = path.parse::<i64>().unwrap_or(-1);
    Ok(envelope(state.uws.list_jobs(
        &user,
        Some(id),
        &BTreeMap::new(),
    )?))
}

/// The websocket `/jobs/<id>/` (§A2): the same token as the HTTP API (the
/// `UWS-Authorization` header, or `?token=<key>` for browsers, which cannot set headers on
/// websockets) and only the job's owner; then `{status, current_job_details}` now and after
/// every change. The original had no authentication.
fn job_socket(state: &RestState, req: &HttpRequest, raw: &str, payload: web::Payload) -> Answer {
    let credential = header_value(req).or_else(|| {
        query(req)
            .get("token")
            .map(|token| format!("Token {token}"))
    });
    let user = Uws::require(state.uws.authenticate(credential.as_deref())?)?;
    let id = id(raw)?;
    let job = state.uws.owned_job(user.id, id).ok_or_else(|| {
        CoreError::refused(Kind::NotFound, format!("Job {id} not found for user."))
    })?;
    let mut events = state.uws.subscribe();
    let mut closing = state.uws.closing();
    let (response, mut session, mut incoming) = actix_ws::handle(req, payload)
        .map_err(|e| CoreError::bad(format!("Invalid websocket request: {e}")))?;
    let first = json!({
        "status": job.status,
        "current_job_details": job.job_details["current_job_details"],
    });
    actix_web::rt::spawn(async move {
        if session.text(first.to_string()).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) if event.job_id == id => {
                        if session.text(event.message.to_string()).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = closing.wait_for(|c| *c) => break,
                message = incoming.next() => match message {
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

async fn put_job(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Answer {
    let user = user(&state, &req)?;
    let (raw, put_type) = path.into_inner();
    let id = id(&raw)?;
    Ok(envelope(state.uws.put_job(&user, id, &put_type).await?))
}

/// Every file part of a multipart body (each one, even when a field repeats).
async fn read_files(mut payload: Multipart) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let mut files = Vec::new();
    while let Some(field) = payload.next().await {
        let Ok(mut field) = field else {
            // Not multipart, or malformed: no (more) files.
            break;
        };
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let mut content = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| CoreError::bad(format!("Invalid upload: {e}")))?;
            content.extend_from_slice(&chunk);
        }
        if let Some(filename) = filename {
            files.push((filename, content));
        }
    }
    Ok(files)
}

async fn list_shares(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    let q = query(&req);
    Ok(envelope(state.uws.list_shares(
        &user,
        None,
        q.get("is_accepted").map(String::as_str),
    )?))
}

async fn get_share(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let user = user(&state, &req)?;
    let id = path.parse::<i64>().unwrap_or(-1);
    let q = query(&req);
    Ok(envelope(state.uws.list_shares(
        &user,
        Some(id),
        q.get("is_accepted").map(String::as_str),
    )?))
}

async fn share(state: web::Data<RestState>, req: HttpRequest, bytes: web::Bytes) -> Answer {
    let user = user(&state, &req)?;
    Ok(envelope(state.uws.share(&user, body(&bytes)).await?))
}

async fn put_share(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Answer {
    let user = user(&state, &req)?;
    let (raw, put_type) = path.into_inner();
    let Ok(id) = raw.parse::<i64>() else {
        return Err(CoreError::refused(
            Kind::NotFound,
            format!("Shared workspace {raw} not found."),
        )
        .into());
    };
    if put_type != "accept" {
        // The original looks the share up first.
        if state.uws.list_shares(&user, Some(id), None)?.message != "Successful." {
            return Err(CoreError::refused(
                Kind::NotFound,
                format!("Shared workspace {id} not found."),
            )
            .into());
        }
        return Err(CoreError::refused(
            Kind::NotFound,
            format!("Put type {put_type} not supported."),
        )
        .into());
    }
    Ok(envelope(state.uws.accept_share(&user, id).await?))
}

async fn delete_share(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let user = user(&state, &req)?;
    let Ok(id) = path.parse::<i64>() else {
        return Err(CoreError::refused(
            Kind::NotFound,
            format!("Shared workspace {path} not found."),
        )
        .into());
    };
    Ok(envelope(state.uws.delete_share(&user, id).await?))
}

async fn users(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    let user = user(&state, &req)?;
    let q = query(&req);
    Ok(envelope(
        state.uws.users(&user, q.get("search").map(String::as_str)),
    ))
}

async fn job_types(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    caller(&state, &req)?;
    Ok(envelope(state.uws.job_types()))
}

async fn parameters(state: web::Data<RestState>, req: HttpRequest) -> Answer {
    caller(&state, &req)?;
    Ok(envelope(state.uws.parameters()))
}
