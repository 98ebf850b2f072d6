//! What the stack's test binaries share: the stack on a minimal OpenAPI document, and the
//! routes that show the correlation id and a hidden 500.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::AsHeaderName;
use actix_web::{HttpResponse, web};
use tessera_http::{CorrelationId, HttpConfig, HttpStack, internal_error};
use utoipa::openapi::{Info, OpenApi, Paths};

pub fn openapi() -> OpenApi {
    OpenApi::new(Info::new("test service", "1.0.0"), Paths::new())
}

/// The stack for `config` (which must be valid) around [`openapi`].
pub fn stack(config: HttpConfig) -> HttpStack {
    HttpStack::new(config, openapi()).unwrap()
}

/// Answers the request's correlation id, logging a `handler-ran` marker inside its span.
async fn whoami(id: CorrelationId) -> HttpResponse {
    tracing::info!(marker = "handler-ran", "handling whoami");
    HttpResponse::Ok().body(id.to_string())
}

/// A 500 whose cause must not reach the client.
async fn boom() -> HttpResponse {
    internal_error(&std::io::Error::other("database unreachable"))
}

/// `GET /whoami` and `GET /boom`.
pub fn correlation_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami))
        .route("/boom", web::get().to(boom));
}

/// A response header as text, when present.
pub fn header_value(
    res: &ServiceResponse<impl MessageBody>,
    name: impl AsHeaderName,
) -> Option<&str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}
