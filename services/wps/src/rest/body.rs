//! Request bodies read and validated the way FastAPI and pydantic do it, so that clients
//! see the original's 422 answers: every field error at once, in field order, then the
//! unknown fields; the cross-field rule only when every field is valid.

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tessera_http::{ValidationItem, parse_uuid4};
use tessera_work_orders::validation::{validate_box_wot_request, validate_creation_request};
use tessera_work_orders::{
    BoxWorkType, BoxWotRequest, TokenCrypto, WorkPackageCreationRequest, WorkPackageType,
};
use uuid::Uuid;

/// A request body as FastAPI hands it to validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body bytes at all.
    Missing,
    /// A JSON body (no content type, `application/json` or `application/*+json`).
    Json(Value),
    /// A body of another content type, which no model accepts.
    Raw(String),
}

/// The fields of `POST /work-packages`, in the original model's order.
const CREATION_FIELDS: [&str; 5] = [
    "type",
    "dataset_id",
    "research_data_upload_box_id",
    "file_ids",
    "user_public_crypt4gh_key",
];

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// Python's message for the most common JSON syntax errors; serde's text otherwise.
fn python_json_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = text
        .rfind(" at line ")
        .map_or(text.as_str(), |i| &text[..i]);
    if err.is_eof() || text.starts_with("expected value") {
        "Expecting value".to_owned()
    } else if text.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes".to_owned()
    } else if text.starts_with("trailing characters") {
        "Extra data".to_owned()
    } else if text.starts_with("expected `,` or") {
        "Expecting ',' delimiter".to_owned()
    } else if text.starts_with("expected `:`") {
        "Expecting ':' delimiter".to_owned()
    } else {
        text.to_owned()
    }
}

/// The character position Python's decoder reports for `err` in `bytes`.
fn python_json_position(bytes: &[u8], err: &serde_json::Error) -> usize {
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(err.line().saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum();
    // serde points at the last byte it read; at the end of input Python points past it.
    let column = if err.is_eof() {
        err.column()
    } else {
        err.column().saturating_sub(1)
    };
    let end = (line_start + column).min(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).chars().count()
}

/// Reads the body as FastAPI does before anything else runs: an unparsable JSON body is a
/// 422 `json_invalid` even before authentication.
pub fn read(req: &HttpRequest, bytes: &[u8]) -> Result<Body, Vec<ValidationItem>> {
    if bytes.is_empty() {
        return Ok(Body::Missing);
    }
    if !is_json_content_type(req) {
        return Ok(Body::Raw(String::from_utf8_lossy(bytes).into_owned()));
    }
    serde_json::from_slice(bytes)
        .map(Body::Json)
        .map_err(|err| {
            vec![
                ValidationItem::new(
                    "json_invalid",
                    vec![json!("body"), json!(python_json_position(bytes, &err))],
                    "JSON decode error",
                    json!({}),
                )
                .with_ctx(json!({ "error": python_json_message(&err) })),
            ]
        })
}

fn loc(field: &str) -> Vec<Value> {
    vec![json!("body"), json!(field)]
}

fn missing(field: &str, input: &Map<String, Value>) -> ValidationItem {
    ValidationItem::new(
        "missing",
        loc(field),
        "Field required",
        Value::Object(input.clone()),
    )
}

fn string_type(loc: Vec<Value>, input: &Value) -> ValidationItem {
    ValidationItem::new(
        "string_type",
        loc,
        "Input should be a valid string",
        input.clone(),
    )
}

/// A pydantic `value_error`: the message gets the `Value error, ` prefix, and the context
/// holds the exception, which FastAPI encodes as `{}`.
pub fn value_error(loc: Vec<Value>, message: &str, input: Value) -> ValidationItem {
    ValidationItem::new("value_error", loc, format!("Value error, {message}"), input)
        .with_ctx(json!({ "error": {} }))
}

fn enum_error(field: &str, expected: &str, input: &Value) -> ValidationItem {
    ValidationItem::new(
        "enum",
        loc(field),
        format!("Input should be {expected}"),
        input.clone(),
    )
    .with_ctx(json!({ "expected": expected }))
}

/// The object a model is validated from, or the one error saying there is none.
fn object(body: &Body) -> Result<&Map<String, Value>, Vec<ValidationItem>> {
    let attributes_type = |input: Value| {
        vec![ValidationItem::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )]
    };
    match body {
        Body::Missing => Err(vec![ValidationItem::new(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null,
        )]),
        Body::Raw(text) => Err(attributes_type(json!(text))),
        Body::Json(Value::Object(map)) => Ok(map),
        Body::Json(other) => Err(attributes_type(other.clone())),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<ValidationItem>,
) -> Option<String> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(string_type(loc(field), other));
            None
        }
    }
}

fn optional_uuid4(
    obj: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<ValidationItem>,
) -> Option<Uuid> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_uuid4(&["body", field], s) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.extend(e.items);
                None
            }
        },
        Some(other) => {
            errors.push(ValidationItem::new(
                "uuid_type",
                loc(field),
                "UUID input should be a string, bytes or UUID object",
                other.clone(),
            ));
            None
        }
    }
}

fn optional_string_list(
    obj: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<ValidationItem>,
) -> Option<Vec<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => errors.push(string_type(
                        vec![json!("body"), json!(field), json!(i)],
                        other,
                    )),
                }
            }
            Some(out)
        }
        Some(other) => {
            errors.push(ValidationItem::new(
                "list_type",
                loc(field),
                "Input should be a valid list",
                other.clone(),
            ));
            None
        }
    }
}

/// `POST /work-packages`: the body as the domain's request (key still raw), or every
/// validation error. The key is checked here (it is a field validator in the original),
/// unknown fields are refused, and the cross-field rule runs last.
pub fn creation_request(
    body: &Body,
    crypto: &dyn TokenCrypto,
) -> Result<WorkPackageCreationRequest, Vec<ValidationItem>> {
    let obj = object(body)?;
    let mut errors = Vec::new();
    let package_type = match obj.get("type") {
        None => {
            errors.push(missing("type", obj));
            None
        }
        Some(Value::String(s)) if s == "download" => Some(WorkPackageType::Download),
        Some(Value::String(s)) if s == "upload" => Some(WorkPackageType::Upload),
        Some(other) => {
            errors.push(enum_error("type", "'download' or 'upload'", other));
            None
        }
    };
    let dataset_id = optional_string(obj, "dataset_id", &mut errors);
    let box_id = optional_uuid4(obj, "research_data_upload_box_id", &mut errors);
    let file_ids = optional_string_list(obj, "file_ids", &mut errors);
    const KEY: &str = "user_public_crypt4gh_key";
    let key = match obj.get(KEY) {
        None => {
            errors.push(missing(KEY, obj));
            None
        }
        Some(Value::String(raw)) => match crypto.normalise_key(raw) {
            Ok(_) => Some(raw.clone()),
            Err(e) => {
                errors.push(value_error(loc(KEY), &e.to_string(), json!(raw)));
                None
            }
        },
        Some(other) => {
            errors.push(string_type(loc(KEY), other));
            None
        }
    };
    for (field, value) in obj {
        if !CREATION_FIELDS.contains(&field.as_str()) {
            errors.push(ValidationItem::new(
                "extra_forbidden",
                loc(field),
                "Extra inputs are not permitted",
                value.clone(),
            ));
        }
    }
    let (Some(package_type), Some(key), true) = (package_type, key, errors.is_empty()) else {
        return Err(errors);
    };
    let request = WorkPackageCreationRequest {
        package_type,
        dataset_id,
        research_data_upload_box_id: box_id,
        file_ids,
        user_public_crypt4gh_key: key,
    };
    match validate_creation_request(&request) {
        Ok(()) => Ok(request),
        Err(e) => Err(vec![value_error(
            vec![json!("body")],
            &e.to_string(),
            Value::Object(obj.clone()),
        )]),
    }
}

/// `POST …/boxes/{box_id}/work-order-tokens`: the body as the domain's request, or every
/// validation error. Unknown fields are ignored; the work type rule runs last.
pub fn box_request(body: &Body) -> Result<BoxWotRequest, Vec<ValidationItem>> {
    let obj = object(body)?;
    let mut errors = Vec::new();
    const EXPECTED: &str = "'create', 'upload', 'close', 'delete' or 'view'";
    let work_type = match obj.get("work_type") {
        None => {
            errors.push(missing("work_type", obj));
            None
        }
        Some(Value::String(s)) => match s.as_str() {
            "create" => Some(BoxWorkType::Create),
            "upload" => Some(BoxWorkType::Upload),
            "close" => Some(BoxWorkType::Close),
            "delete" => Some(BoxWorkType::Delete),
            "view" => Some(BoxWorkType::View),
            _ => {
                errors.push(enum_error("work_type", EXPECTED, &json!(s)));
                None
            }
        },
        Some(other) => {
            errors.push(enum_error("work_type", EXPECTED, other));
            None
        }
    };
    let alias = optional_string(obj, "alias", &mut errors);
    let file_id = optional_uuid4(obj, "file_id", &mut errors);
    let (Some(work_type), true) = (work_type, errors.is_empty()) else {
        return Err(errors);
    };
    let request = BoxWotRequest {
        work_type,
        alias,
        file_id,
    };
    match validate_box_wot_request(&request) {
        Ok(()) => Ok(request),
        Err(e) => Err(vec![value_error(
            vec![json!("body")],
            &e.to_string(),
            Value::Object(obj.clone()),
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn json_body(text: &str) -> Result<Body, Vec<ValidationItem>> {
        let req = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json"))
            .to_http_request();
        read(&req, text.as_bytes())
    }

    #[test]
    fn json_errors_carry_pythons_position_and_message() {
        let items = json_body(r#"{"a":"#).unwrap_err();
        assert_eq!(items[0].kind, "json_invalid");
        assert_eq!(items[0].loc, vec![json!("body"), json!(5)]);
        assert_eq!(items[0].ctx, Some(json!({"error": "Expecting value"})));
        let items = json_body("{bad").unwrap_err();
        assert_eq!(items[0].loc, vec![json!("body"), json!(1)]);
        assert_eq!(
            items[0].ctx,
            Some(json!({"error": "Expecting property name enclosed in double quotes"}))
        );
        let items = json_body("{}\n {}").unwrap_err();
        assert_eq!(items[0].loc, vec![json!("body"), json!(4)]);
        assert_eq!(items[0].ctx, Some(json!({"error": "Extra data"})));
    }

    #[test]
    fn content_types_decide_whether_the_body_is_json() {
        let plain = TestRequest::default()
            .insert_header((CONTENT_TYPE, "text/plain"))
            .to_http_request();
        assert_eq!(read(&plain, b"{bad").unwrap(), Body::Raw("{bad".into()));
        let vendor = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/vnd.x+json; charset=utf-8"))
            .to_http_request();
        assert_eq!(read(&vendor, b"{}").unwrap(), Body::Json(json!({})));
        let none = TestRequest::default().to_http_request();
        assert_eq!(read(&none, b"[1]").unwrap(), Body::Json(json!([1])));
        assert_eq!(read(&none, b"").unwrap(), Body::Missing);
    }

    #[test]
    fn box_requests_report_fields_then_the_rule() {
        let errors =
            box_request(&Body::Json(json!({"work_type": "download", "file_id": 3}))).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].kind, "enum");
        assert_eq!(errors[1].kind, "uuid_type");
        let errors =
            box_request(&Body::Json(json!({"work_type": "create", "alias": ""}))).unwrap_err();
        assert_eq!(
            errors[0].msg,
            "Value error, File alias is required for CREATE work type"
        );
        let ok = box_request(&Body::Json(json!({"work_type": "view", "extra": 1}))).unwrap();
        assert_eq!(ok.work_type, BoxWorkType::View);
    }
}
