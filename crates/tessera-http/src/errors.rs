//! The JSON error shapes every service shares (FastAPI's, since the originals are FastAPI).

use std::fmt;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// `{"detail": msg}` with the given status.
pub fn detail(status: StatusCode, msg: impl fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "detail": msg.to_string() }))
}

/// The generic 500 body `{"message":"Internal Server Error."}`, after logging the whole cause
/// chain of `err` (the client never sees it).
pub fn internal_error(err: &(dyn std::error::Error + 'static)) -> HttpResponse {
    tracing::error!(error = %error_chain(err), "internal server error");
    HttpResponse::InternalServerError().json(json!({ "message": "Internal Server Error." }))
}

/// `err: cause: cause of cause` on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// One entry of a FastAPI/pydantic validation error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationItem {
    /// Pydantic's error type, e.g. `missing`, `json_invalid`, `uuid_parsing`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "field"]`, `["path", "param"]`, `["query", "param"]`.
    pub loc: Vec<Value>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input.
    pub input: Value,
    /// Extra context, when pydantic gives some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ValidationItem {
    /// An item without context.
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    /// Adds context.
    #[must_use]
    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

/// A 422 response `{"detail": [items]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    /// What failed.
    pub items: Vec<ValidationItem>,
}

impl ValidationError {
    /// One failed item.
    pub fn single(item: ValidationItem) -> Self {
        Self { items: vec![item] }
    }
}

impl From<ValidationItem> for ValidationError {
    fn from(item: ValidationItem) -> Self {
        Self::single(item)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<&str> = self.items.iter().map(|i| i.msg.as_str()).collect();
        write!(f, "validation failed: {}", msgs.join("; "))
    }
}

impl std::error::Error for ValidationError {}

impl ResponseError for ValidationError {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::UnprocessableEntity().json(json!({ "detail": self.items }))
    }
}

/// Parses a path (or query) parameter typed UUID4 like pydantic: any form the `uuid` crate
/// accepts (pydantic-core uses it, so the messages match), version 4 only.
pub fn parse_uuid4(loc: &[&str], raw: &str) -> Result<Uuid, ValidationError> {
    let loc: Vec<Value> = loc.iter().map(|l| json!(l)).collect();
    let id = Uuid::parse_str(raw).map_err(|err| {
        ValidationItem::new(
            "uuid_parsing",
            loc.clone(),
            format!("Input should be a valid UUID, {err}"),
            json!(raw),
        )
        .with_ctx(json!({ "error": err.to_string() }))
    })?;
    if id.get_version_num() != 4 {
        return Err(ValidationItem::new(
            "uuid_version",
            loc,
            "UUID version 4 expected",
            json!(raw),
        )
        .with_ctx(json!({ "expected_version": 4 }))
        .into());
    }
    Ok(id)
}

/// `JsonConfig` whose errors are FastAPI's 422 bodies (413 when the body is too large).
///
/// Approximations, since the handler never sees the body: `loc` of `json_invalid` is the column
/// on the error's line (exact for one-line bodies), `input` of a decode error is `{}` as FastAPI
/// sends it, and `input` of a shape error is null.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().error_handler(|err, _req| json_error(err))
}

/// `PathConfig` whose errors are 422 `{"detail":[{"type":"value_error","loc":["path"],…}]}`.
/// For exact per-parameter errors take the parameter as a string and use [`parse_uuid4`].
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| path_error(err))
}

/// `QueryConfig` whose errors are 422 like [`path_config`], with `loc` `["query"]`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err))
}

fn json_error(err: JsonPayloadError) -> actix_web::Error {
    match err {
        JsonPayloadError::Deserialize(err) => json_deserialize_error(&err).into(),
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            let response = detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            actix_web::error::InternalError::from_response(err, response).into()
        }
        JsonPayloadError::ContentType => ValidationError::single(ValidationItem::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            Value::Null,
        ))
        .into(),
        other => {
            let response = detail(StatusCode::BAD_REQUEST, &other);
            actix_web::error::InternalError::from_response(other, response).into()
        }
    }
}

fn json_deserialize_error(err: &serde_json::Error) -> ValidationError {
    let message = strip_position(&err.to_string());
    if err.is_eof() && err.line() == 1 && err.column() == 0 {
        return ValidationItem::new(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null,
        )
        .into();
    }
    if err.is_syntax() || err.is_eof() {
        let pos = err.column().saturating_sub(1);
        return ValidationItem::new(
            "json_invalid",
            vec![json!("body"), json!(pos)],
            "JSON decode error",
            json!({}),
        )
        .with_ctx(json!({ "error": message }))
        .into();
    }
    if let Some(field) = backticked_after(&message, "missing field `") {
        return ValidationItem::new(
            "missing",
            vec![json!("body"), json!(field)],
            "Field required",
            Value::Null,
        )
        .into();
    }
    if let Some(field) = backticked_after(&message, "unknown field `") {
        return ValidationItem::new(
            "extra_forbidden",
            vec![json!("body"), json!(field)],
            "Extra inputs are not permitted",
            Value::Null,
        )
        .into();
    }
    ValidationItem::new(
        "value_error",
        vec![json!("body")],
        format!("Value error, {message}"),
        Value::Null,
    )
    .into()
}

fn path_error(err: PathError) -> actix_web::Error {
    let message = match &err {
        PathError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    ValidationError::single(ValidationItem::new(
        "value_error",
        vec![json!("path")],
        format!("Value error, {message}"),
        Value::Null,
    ))
    .into()
}

fn query_error(err: QueryPayloadError) -> actix_web::Error {
    let message = match &err {
        QueryPayloadError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    ValidationError::single(ValidationItem::new(
        "value_error",
        vec![json!("query")],
        format!("Value error, {message}"),
        Value::Null,
    ))
    .into()
}

/// serde_json appends ` at line L column C`; FastAPI reports the position separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_owned(),
        None => message.to_owned(),
    }
}

fn backticked_after<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(marker)?;
    rest.split('`').next()
}

/// The default service: 405 `{"detail":"Method Not Allowed"}` when some route has this path
/// (routes declared with method macros hide the method from actix), else 404
/// `{"detail":"Not Found"}`.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.resource_map().has_resource(req.path()) {
        method_not_allowed(crate::middleware::allow_header(&req))
    } else {
        detail(StatusCode::NOT_FOUND, "Not Found")
    }
}

/// 405 `{"detail":"Method Not Allowed"}`, keeping the `Allow` header actix computed.
pub(crate) fn method_not_allowed(allow: Option<header::HeaderValue>) -> HttpResponse {
    let mut response = detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid4_errors_like_pydantic() {
        let err = parse_uuid4(&["path", "work_package_id"], "xyz").unwrap_err();
        let item = &err.items[0];
        assert_eq!(item.kind, "uuid_parsing");
        assert_eq!(item.loc, vec![json!("path"), json!("work_package_id")]);
        assert!(
            item.msg.starts_with("Input should be a valid UUID, "),
            "{}",
            item.msg
        );
        let err = parse_uuid4(&["path", "id"], "3f2504e0-4f89-11d3-9a0c-0305e82c3301").unwrap_err();
        assert_eq!(err.items[0].kind, "uuid_version");
        assert_eq!(err.items[0].ctx, Some(json!({"expected_version": 4})));
        let ok = parse_uuid4(&["path", "id"], "E5F3A7C2B1D84E6F9A0B1C2D3E4F5A6B").unwrap();
        assert_eq!(ok.to_string(), "e5f3a7c2-b1d8-4e6f-9a0b-1c2d3e4f5a6b");
    }

    #[test]
    fn error_chain_joins_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("disk gone"));
        assert_eq!(error_chain(&err), "outer failed: disk gone");
    }

    #[test]
    fn json_errors_map_to_fastapi_items() {
        let err = serde_json::from_str::<Value>("{bad").unwrap_err();
        let v = json_deserialize_error(&err);
        assert_eq!(v.items[0].kind, "json_invalid");
        assert_eq!(v.items[0].loc, vec![json!("body"), json!(1)]);
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            kind: String,
        }
        let err = serde_json::from_str::<Body>("{}").unwrap_err();
        let v = json_deserialize_error(&err);
        assert_eq!(v.items[0].kind, "missing");
        assert_eq!(v.items[0].loc, vec![json!("body"), json!("kind")]);
        let err = serde_json::from_str::<Body>(r#"{"kind":"a","x":1}"#).unwrap_err();
        assert_eq!(
            json_deserialize_error(&err).items[0].kind,
            "extra_forbidden"
        );
        let err = serde_json::from_str::<Body>("").unwrap_err();
        assert_eq!(json_deserialize_error(&err).items[0].kind, "missing");
    }
}
