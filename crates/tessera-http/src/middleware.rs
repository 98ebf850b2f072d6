//! The outermost middleware: correlation id, request span, access log, metrics, JSON 405s.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use serde_json::json;
use tracing::Instrument;
use tracing::field::{Empty, display};
use uuid::Uuid;

use crate::correlation::{self, CorrelationId};
use crate::errors::method_not_allowed;
use crate::metrics::{Metrics, UNMATCHED_ROUTE};

/// What the middleware needs from the stack, as app data.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) generate_correlation_id: bool,
    pub(crate) metrics: Arc<Metrics>,
    /// The OpenAPI document, whose routes give the `Allow` value of 405s.
    pub(crate) documents: Arc<crate::app::Documents>,
}

/// The methods of the route `req`'s path matches, from the OpenAPI document.
pub(crate) fn allow_header(req: &actix_web::HttpRequest) -> Option<HeaderValue> {
    let shared = req.app_data::<web::Data<Shared>>()?;
    let pattern = req
        .match_pattern()
        .or_else(|| req.resource_map().match_pattern(req.path()))?;
    let made = shared.documents.made();
    HeaderValue::from_str(made.allow.get(&without_regexes(&pattern))?).ok()
}

/// An actix pattern as OpenAPI writes it: `/a/{path:.*}` is `/a/{path}`.
fn without_regexes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_regex = false;
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if !in_regex {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            c if !in_regex => out.push(c),
            _ => {}
        }
    }
    out
}

pub(crate) async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let shared = req.app_data::<web::Data<Shared>>().cloned();
    let generate = shared.as_ref().is_none_or(|s| s.generate_correlation_id);
    // Cloning a standard method copies no string.
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        correlation_id = Empty,
        method = %method,
        path = %req.path()
    );
    let raw = req
        .headers()
        .get(correlation::HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

    let (result, id) = match raw.as_deref().and_then(correlation::parse_uuid4) {
        Some(id) => (call(req, next, id, &span).await, Some(id)),
        None if generate => {
            let id = Uuid::new_v4();
            (call(req, next, id, &span).await, Some(id))
        }
        None => {
            let body = json!({
                "exception_id": "invalidCorrelationId",
                "description": "Invalid or missing correlation ID.",
                "data": { "correlation_id": raw.unwrap_or_default() },
            });
            let res = req.into_response(HttpResponse::BadRequest().json(body));
            (Ok(res.map_into_boxed_body()), None)
        }
    };

    let observe = |status: u16, route: &str| {
        let elapsed = started.elapsed();
        if let Some(shared) = &shared {
            shared
                .metrics
                .observe(method.as_str(), route, status, elapsed);
        }
        span.in_scope(|| {
            tracing::info!(
                status,
                route = %route,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request finished"
            );
        });
    };
    let mut res = match result {
        Ok(res) => json_method_not_allowed(res),
        Err(err) => {
            // Handlers' errors are responses already; this is a middleware failing, and actix
            // renders it after us, so the header cannot be added.
            observe(
                err.as_response_error().status_code().as_u16(),
                UNMATCHED_ROUTE,
            );
            return Err(err);
        }
    };
    if let Some(value) = id.and_then(|id| {
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer())).ok()
    }) {
        res.headers_mut()
            .insert(HeaderName::from_static(correlation::HEADER), value);
    }
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    observe(res.status().as_u16(), &route);
    Ok(res)
}

/// Runs the rest of the stack inside the request span.
async fn call(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    id: Uuid,
    span: &tracing::Span,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    span.record("correlation_id", display(id));
    req.extensions_mut().insert(CorrelationId(id));
    let res = next.call(req).instrument(span.clone()).await?;
    Ok(res.map_into_boxed_body())
}

/// actix answers a known path with a wrong method by an empty 405; FastAPI sends a JSON detail.
fn json_method_not_allowed(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let empty = matches!(
        res.response().body().size(),
        BodySize::Sized(0) | BodySize::None
    );
    if res.status() != StatusCode::METHOD_NOT_ALLOWED || !empty {
        return res;
    }
    let (req, old) = res.into_parts();
    let allow = old
        .headers()
        .get(header::ALLOW)
        .cloned()
        .or_else(|| allow_header(&req));
    ServiceResponse::new(req, method_not_allowed(allow))
}

#[cfg(test)]
mod tests {
    use super::without_regexes;

    #[test]
    fn patterns_lose_their_regexes() {
        assert_eq!(without_regexes("/aggregate/{path:.*}"), "/aggregate/{path}");
        assert_eq!(without_regexes("/a/{id}/b/{n:\\d{2}}"), "/a/{id}/b/{n}");
        assert_eq!(without_regexes("/health"), "/health");
    }
}
