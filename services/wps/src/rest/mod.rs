//! The HTTP translator: the original's seven routes (wps.md §1) plus listing and deleting
//! one's own work packages, as actix routes over [`WorkPackageRepository`].
//!
//! Every handler runs its checks in the original's order: an unparsable JSON body (422),
//! then the credentials (401), then path and body validation (one 422 listing every error,
//! path first), then the repository's 403s. [`ApiError`] is the one place where errors
//! become statuses.
//!
//! Layout: here the routes, handlers and [`ApiError`]; [`body`] reads and validates request
//! bodies like pydantic; [`openapi`] describes the API.

pub mod body;
pub mod openapi;

use std::fmt;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LINK};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use tessera_auth::actix::{BearerToken, Rejection};
use tessera_auth::{AuthContext, AuthProvider};
use tessera_http::{ValidationError, ValidationItem, detail, internal_error, parse_uuid4};
use tessera_work_orders::{TokenCrypto, UserContext, WorkPackageRepository};
use uuid::Uuid;

/// Why a request failed; the service's single status mapping.
#[derive(Debug)]
pub enum ApiError {
    /// Missing or invalid credentials: 401 (see [`Rejection`]).
    Rejected(Rejection),
    /// Schema, path or cross-field validation failed: 422 `{"detail":[…]}`.
    Invalid(Vec<ValidationItem>),
    /// What the repository said: 403 with the exact detail for refusals, 422 for request
    /// rules, 500 with a generic body for everything else.
    Domain(tessera_work_orders::Error),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => write!(f, "rejected: {r}"),
            Self::Invalid(items) => write!(
                f,
                "{}",
                ValidationError {
                    items: items.clone()
                }
            ),
            Self::Domain(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Domain(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

impl From<Vec<ValidationItem>> for ApiError {
    fn from(items: Vec<ValidationItem>) -> Self {
        Self::Invalid(items)
    }
}

impl From<tessera_work_orders::Error> for ApiError {
    fn from(e: tessera_work_orders::Error) -> Self {
        Self::Domain(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use tessera_work_orders::Error as E;
        match self {
            Self::Rejected(r) => r.status_code(),
            Self::Invalid(_) | Self::Domain(E::Validation(_) | E::Key(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Domain(E::Access(_)) => StatusCode::FORBIDDEN,
            Self::Domain(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use tessera_work_orders::Error as E;
        match self {
            Self::Rejected(r) => r.error_response(),
            Self::Invalid(items) => ValidationError {
                items: items.clone(),
            }
            .error_response(),
            Self::Domain(E::Access(message)) => detail(StatusCode::FORBIDDEN, message),
            // The handlers validate first, so these only show if the domain's rules grow.
            Self::Domain(E::Validation(message)) => ValidationError::single(body::value_error(
                vec![json!("body")],
                message,
                serde_json::Value::Null,
            ))
            .error_response(),
            Self::Domain(E::Key(e)) => ValidationError::single(body::value_error(
                vec![json!("body"), json!("user_public_crypt4gh_key")],
                &e.to_string(),
                serde_json::Value::Null,
            ))
            .error_response(),
            Self::Domain(e) => internal_error(e),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    /// The domain core.
    pub repository: Arc<WorkPackageRepository>,
    /// Key validation for request bodies (the same port the repository uses).
    pub crypto: Arc<dyn TokenCrypto>,
    /// Authenticates internal tokens; also what the [`AuthContext`] extractor looks up.
    pub auth: web::Data<AuthProvider>,
    /// `max-age` of the `Cache-Control` header on work order tokens: their lifetime.
    pub wot_max_age: u32,
}

impl fmt::Debug for RestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestState")
            .field("repository", &self.repository)
            .field("wot_max_age", &self.wot_max_age)
            .finish_non_exhaustive()
    }
}

/// The routes, for [`tessera_http::HttpStack`] (which adds `/health`, OpenAPI, docs,
/// middleware and the error shapes). `web::resource` keeps actix's 405 with `Allow`.
pub fn routes(state: RestState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state.clone()))
            .app_data(state.auth.clone())
            .service(web::resource("/work-packages").route(web::post().to(create_work_package)))
            .service(
                web::resource("/work-packages/{work_package_id}")
                    .route(web::get().to(get_work_package))
                    .route(web::delete().to(delete_work_package)),
            )
            .service(
                web::resource(
                    "/work-packages/{work_package_id}/files/{accession}/work-order-tokens",
                )
                .route(web::post().to(create_download_wot)),
            )
            .service(
                web::resource("/work-packages/{work_package_id}/boxes/{box_id}/work-order-tokens")
                    .route(web::post().to(create_upload_wot)),
            )
            .service(web::resource("/users/{user_id}/datasets").route(web::get().to(get_datasets)))
            .service(web::resource("/users/{user_id}/boxes").route(web::get().to(get_boxes)))
            .service(
                web::resource("/users/{user_id}/work-packages")
                    .route(web::get().to(list_work_packages)),
            );
    }
}

/// The internal auth token's user: 401 "Not authenticated" or "Invalid authentication
/// credentials".
async fn authenticate(req: &HttpRequest) -> Result<UserContext, ApiError> {
    let auth = AuthContext::from_request(req, &mut Payload::None).await?;
    Ok(UserContext {
        id: auth.id,
        name: auth.name,
        email: auth.email,
        title: auth.title,
    })
}

/// The work package access token: only checked for presence here (401 "Not
/// authenticated"); the repository checks it against the stored hash.
async fn access_token(req: &HttpRequest) -> Result<String, ApiError> {
    Ok(BearerToken::from_request(req, &mut Payload::None).await?.0)
}

/// A path parameter typed UUID4, collecting its error.
fn path_uuid4(req: &HttpRequest, name: &str, errors: &mut Vec<ValidationItem>) -> Option<Uuid> {
    let raw = req.match_info().get(name).unwrap_or_default();
    match parse_uuid4(&["path", name], raw) {
        Ok(id) => Some(id),
        Err(e) => {
            errors.extend(e.items);
            None
        }
    }
}

/// One path UUID4, or the 422.
fn one_path_uuid4(req: &HttpRequest, name: &str) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    path_uuid4(req, name, &mut errors).ok_or(ApiError::Invalid(errors))
}

/// 201 with the token as a bare JSON string, cacheable by the client only for as long as
/// the token lives.
fn wot_response(token: &str, max_age: u32) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((CACHE_CONTROL, format!("max-age={max_age}, private")))
        .json(token)
}

/// Create a work package
///
/// Checks access to the dataset or upload box and returns the package id with an access
/// token sealed for the user's Crypt4GH key.
#[utoipa::path(
    post,
    path = "/work-packages",
    tag = "WorkPackages",
    operation_id = "create_work_package",
    request_body = openapi::WorkPackageCreationRequest,
    responses(
        (status = 201, description = "Work package was successfully created", body = openapi::WorkPackageCreationResponse),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to create a work package", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted data", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn create_work_package(
    req: HttpRequest,
    bytes: web::Bytes,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read(&req, &bytes)?;
    let user = authenticate(&req).await?;
    let request = body::creation_request(&body, state.crypto.as_ref())?;
    let created = state.repository.create(request, &user).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Get a work package
///
/// The package's type, files, box ids and validity, for the holder of its access token.
#[utoipa::path(
    get,
    path = "/work-packages/{work_package_id}",
    tag = "WorkPackages",
    operation_id = "get_work_package",
    params(("work_package_id" = Uuid, Path, description = "The ID of the work package (UUID4)")),
    responses(
        (status = 200, description = "Work package has been found", body = openapi::WorkPackageDetails),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get the work package", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted ID", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn get_work_package(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let token = access_token(&req).await?;
    let id = one_path_uuid4(&req, "work_package_id")?;
    let details = state.repository.details(id, &token).await?;
    Ok(HttpResponse::Ok().json(details))
}

/// Delete a work package
///
/// With the owner's internal auth token (a JWS), or with the package's own access token.
/// Someone else's package looks like a missing one. Expired packages can be deleted.
#[utoipa::path(
    delete,
    path = "/work-packages/{work_package_id}",
    tag = "WorkPackages",
    operation_id = "delete_work_package",
    params(("work_package_id" = Uuid, Path, description = "The ID of the work package (UUID4)")),
    responses(
        (status = 204, description = "Work package was deleted"),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Work package not found or not yours", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted ID", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn delete_work_package(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let token = access_token(&req).await?;
    // Access tokens are alphanumeric; a dot makes it a JWS, the owner's internal token.
    if token.contains('.') {
        let user = authenticate(&req).await?;
        let id = one_path_uuid4(&req, "work_package_id")?;
        state.repository.delete_package_as_user(id, &user).await?;
    } else {
        let id = one_path_uuid4(&req, "work_package_id")?;
        state.repository.delete_package(id, &token).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Get a download work order token
///
/// A work order token for one file of a download package, sealed for the package's key.
#[utoipa::path(
    post,
    path = "/work-packages/{work_package_id}/files/{accession}/work-order-tokens",
    tag = "WorkPackages",
    operation_id = "create_download_wot",
    params(
        ("work_package_id" = Uuid, Path, description = "The ID of the work package (UUID4)"),
        ("accession" = String, Path, description = "The accession of the file"),
    ),
    responses(
        (status = 201, description = "Work order token was created", body = String,
            headers(("Cache-Control" = String, description = "max-age=<token lifetime>, private"))),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get a work order token", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted IDs", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn create_download_wot(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let token = access_token(&req).await?;
    let id = one_path_uuid4(&req, "work_package_id")?;
    let accession = req.match_info().get("accession").unwrap_or_default();
    let wot = state.repository.download_wot(id, accession, &token).await?;
    Ok(wot_response(&wot, state.wot_max_age))
}

/// Get an upload work order token
///
/// A work order token for the upload box of an upload package, sealed for the package's key.
/// The token names the file upload box, not the research data upload box of the URL.
#[utoipa::path(
    post,
    path = "/work-packages/{work_package_id}/boxes/{box_id}/work-order-tokens",
    tag = "WorkPackages",
    operation_id = "create_upload_wot",
    params(
        ("work_package_id" = Uuid, Path, description = "The ID of the work package (UUID4)"),
        ("box_id" = Uuid, Path, description = "The ID of the research data upload box (UUID4)"),
    ),
    request_body = openapi::WorkOrderTokenRequest,
    responses(
        (status = 201, description = "Work order token was created", body = String,
            headers(("Cache-Control" = String, description = "max-age=<token lifetime>, private"))),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get a work order token", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted data", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn create_upload_wot(
    req: HttpRequest,
    bytes: web::Bytes,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read(&req, &bytes)?;
    let token = access_token(&req).await?;
    let mut errors = Vec::new();
    let id = path_uuid4(&req, "work_package_id", &mut errors);
    let box_id = path_uuid4(&req, "box_id", &mut errors);
    let request = match body::box_request(&body) {
        Ok(request) => Some(request),
        Err(items) => {
            errors.extend(items);
            None
        }
    };
    let (Some(id), Some(box_id), Some(request)) = (id, box_id, request) else {
        return Err(ApiError::Invalid(errors));
    };
    let wot = state
        .repository
        .upload_wot(id, box_id, &request, &token)
        .await?;
    Ok(wot_response(&wot, state.wot_max_age))
}

/// Get the user's datasets
///
/// The datasets the user may download, with the expiry of that access.
#[utoipa::path(
    get,
    path = "/users/{user_id}/datasets",
    tag = "Datasets",
    operation_id = "get_datasets",
    params(("user_id" = Uuid, Path, description = "The internal ID of the user (UUID4)")),
    responses(
        (status = 200, description = "Datasets have been fetched", body = Vec<openapi::DatasetWithExpiration>),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get datasets", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted user ID", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn get_datasets(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req).await?;
    let user_id = one_path_uuid4(&req, "user_id")?;
    let datasets = state.repository.user_datasets(user_id, &user).await?;
    Ok(HttpResponse::Ok().json(datasets))
}

/// Get the user's upload boxes
///
/// The research data upload boxes the user may upload to, with the expiry of that access.
#[utoipa::path(
    get,
    path = "/users/{user_id}/boxes",
    tag = "UploadBoxes",
    operation_id = "get_upload_boxes",
    params(("user_id" = Uuid, Path, description = "The internal ID of the user (UUID4)")),
    responses(
        (status = 200, description = "Upload boxes have been fetched", body = Vec<openapi::BoxWithExpiration>),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get upload boxes", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted user ID", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn get_boxes(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req).await?;
    let user_id = one_path_uuid4(&req, "user_id")?;
    let boxes = state.repository.user_boxes(user_id, &user).await?;
    Ok(HttpResponse::Ok().json(boxes))
}

/// List the user's work packages
///
/// The caller's own work packages, expired ones included, oldest first; never their
/// access token hashes, keys or personal data. Paged: at most `limit` (default 100) per
/// response; when more follow, a `Link: <…?limit=…&after=<last id>>; rel="next"` header
/// names the next page.
#[utoipa::path(
    get,
    path = "/users/{user_id}/work-packages",
    tag = "WorkPackages",
    operation_id = "list_work_packages",
    params(
        ("user_id" = Uuid, Path, description = "The internal ID of the user (UUID4)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Packages per page (default 100, at most 1000)"),
        ("after" = Option<Uuid>, Query, description = "The id of the last package of the previous page (UUID4)"),
    ),
    responses(
        (status = 200, description = "Work packages have been fetched (one page)", body = Vec<openapi::WorkPackageSummary>,
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more packages follow"))),
        (status = 401, description = "Not authenticated", body = openapi::HttpError),
        (status = 403, description = "Not authorized to get work packages", body = openapi::HttpError),
        (status = 422, description = "Validation error in submitted user ID", body = openapi::HttpValidationError),
    ),
    security(("HTTPBearer" = []))
)]
pub async fn list_work_packages(
    req: HttpRequest,
    state: web::Data<RestState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req).await?;
    let mut errors = Vec::new();
    let user_id = path_uuid4(&req, "user_id", &mut errors);
    let page = PageQuery::parse(&req, &mut errors);
    let (Some(user_id), Some(page)) = (user_id, page) else {
        return Err(ApiError::Invalid(errors));
    };
    let packages = state.repository.list_user_packages(user_id, &user).await?;
    let start = match page.after {
        None => 0,
        Some(after) => match packages.iter().position(|p| p.id == after) {
            Some(at) => at + 1,
            None => {
                return Err(ApiError::Invalid(vec![ValidationItem::new(
                    "value_error",
                    vec![json!("query"), json!("after")],
                    "Value error, not one of the user's work packages",
                    json!(after.to_string()),
                )]));
            }
        },
    };
    let end = packages.len().min(start + page.limit);
    let items = packages.get(start..end).unwrap_or_default();
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (end < packages.len(), items.last()) {
        response.insert_header((
            LINK,
            format!(
                "<{}?limit={}&after={}>; rel=\"next\"",
                req.path(),
                page.limit,
                last.id
            ),
        ));
    }
    Ok(response.json(items))
}

/// Packages per page of `GET /users/{id}/work-packages` unless `limit` says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest `limit`.
pub const MAX_PAGE_SIZE: usize = 1000;

/// `limit` and `after`, validated like FastAPI's `Query(ge=1, le=1000)` and `UUID4`.
struct PageQuery {
    limit: usize,
    after: Option<Uuid>,
}

impl PageQuery {
    fn parse(req: &HttpRequest, errors: &mut Vec<ValidationItem>) -> Option<Self> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
        let last = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let before = errors.len();
        let loc = || vec![json!("query"), json!("limit")];
        let limit = match last("limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.trim().parse::<i64>() {
                Err(_) => {
                    errors.push(ValidationItem::new(
                        "int_parsing",
                        loc(),
                        "Input should be a valid integer, unable to parse string as an integer",
                        json!(raw),
                    ));
                    0
                }
                Ok(n) if n < 1 => {
                    errors.push(
                        ValidationItem::new(
                            "greater_than_equal",
                            loc(),
                            "Input should be greater than or equal to 1",
                            json!(raw),
                        )
                        .with_ctx(json!({"ge": 1})),
                    );
                    0
                }
                Ok(n) if n > MAX_PAGE_SIZE as i64 => {
                    errors.push(
                        ValidationItem::new(
                            "less_than_equal",
                            loc(),
                            format!("Input should be less than or equal to {MAX_PAGE_SIZE}"),
                            json!(raw),
                        )
                        .with_ctx(json!({"le": MAX_PAGE_SIZE})),
                    );
                    0
                }
                Ok(n) => usize::try_from(n).unwrap_or(DEFAULT_PAGE_SIZE),
            },
        };
        let after = match last("after") {
            None => None,
            Some(raw) => match parse_uuid4(&["query", "after"], raw) {
                Ok(id) => Some(id),
                Err(e) => {
                    errors.extend(e.items);
                    None
                }
            },
        };
        (errors.len() == before).then_some(Self { limit, after })
    }
}
