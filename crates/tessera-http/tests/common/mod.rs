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
    HttpStack::new(config, openapi).unwrap()
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

/// A `MakeWriter` into a shared buffer: what a subscriber logged.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The JSON lines written so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}
