//! `/package/*` and `/search/package` (§A1) over [`Packages`](tessera_conductor::Packages).
//!
//! The original's shapes stay: `{"status":"fail","error":"unauthorized"}` for a bad token
//! at upload, `null` for a bad token on the other mutating routes, `{"success": …}`
//! bodies, JSON-encoded search parameters. Every mutating route checks the owner (403).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use tessera_conductor::datastore::parse_query;
use tessera_conductor::search::{FieldPath, RESULT_FIELDS, SearchQuery};
use tessera_conductor::{Error as DomainError, Publish};

use super::{ApiError, Reply, RestState, param, params, read_body};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/package/upload", web::post().to(upload))
        .route("/package/status", web::get().to(status))
        .route("/package/publish", web::post().to(publish))
        .route("/package/delete", web::post().to(delete))
        .route("/package/update_params", web::post().to(update_params))
        .route("/package/run-hooks", web::post().to(run_hooks))
        .route("/package/stats", web::get().to(stats))
        .route("/search/{kind}", web::get().to(search));
}

fn json_status(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

fn required<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    match param(p, name) {
        "" => Err(ApiError::BadRequest(format!("no {name}"))),
        value => Ok(value),
    }
}

/// The user of a permission token: `Ok(None)` for an invalid one (the routes answer
/// `null` or their failure shape), a 403 when none is sent.
fn token_user(state: &RestState, p: &BTreeMap<String, String>) -> Result<Option<String>, ApiError> {
    let token = param(p, "jwt");
    if token.is_empty() {
        return Err(ApiError::Forbidden("no jwt".into()));
    }
    Ok(state
        .identity
        .verify_permission_token(token)
        .ok()
        .map(|c| c.userid))
}

/// `POST /package/upload` (`jwt`, `datapackage`).
async fn upload(req: HttpRequest, payload: web::Payload, state: web::Data<RestState>) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, Some(&body));
    let url = required(&p, "datapackage")?;
    let Some(userid) = token_user(&state, &p)? else {
        return Ok(HttpResponse::Ok().json(json!({"status": "fail", "error": "unauthorized"})));
    };
    match state.packages.upload(&userid, url).await {
        Ok(job) => {
            state.wake.notify_one();
            Ok(HttpResponse::Ok().json(json!({"progress": job.progress, "status": job.status})))
        }
        Err(e @ DomainError::BadRequest(_)) => Ok(json_status(
            StatusCode::BAD_REQUEST,
            &json!({"status": "fail", "error": e.to_string()}),
        )),
        Err(e @ DomainError::Forbidden(_)) => Ok(json_status(
            StatusCode::FORBIDDEN,
            &json!({"status": "fail", "error": e.to_string()}),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `GET /package/status?datapackage=`.
async fn status(req: HttpRequest, state: web::Data<RestState>) -> Reply {
    let p = params(&req, None);
    let url = required(&p, "datapackage")?;
    match state.packages.status(url).await? {
        Some(job) => Ok(HttpResponse::Ok().json(job.status_json())),
        None => Err(ApiError::NotFound(format!("no load of {url}"))),
    }
}

/// The answer of a mutating route whose package is missing or not the user's.
fn refused(e: DomainError) -> Reply {
    match e {
        DomainError::PackageNotFound(_) => {
            Ok(HttpResponse::Ok().json(json!({"success": false, "error": e.to_string()})))
        }
        DomainError::Forbidden(_) => Ok(json_status(
            StatusCode::FORBIDDEN,
            &json!({"success": false, "error": e.to_string()}),
        )),
        other => Err(other.into()),
    }
}

fn null() -> Reply {
    Ok(HttpResponse::Ok().json(Value::Null))
}

/// `POST /package/publish` (`id`, `jwt`, `publish` = true|false|toggle).
async fn publish(req: HttpRequest, payload: web::Payload, state: web::Data<RestState>) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, Some(&body));
    let id = required(&p, "id")?;
    let how = Publish::parse(param(&p, "publish"))
        .ok_or_else(|| ApiError::BadRequest("publish must be true, false or toggle".into()))?;
    let Some(userid) = token_user(&state, &p)? else {
        return null();
    };
    match state.packages.publish(&userid, id, how).await {
        Ok(published) => {
            Ok(HttpResponse::Ok().json(json!({"success": true, "published": published})))
        }
        Err(e) => refused(e),
    }
}

/// `POST /package/delete` (`id`, `jwt`, `purge`).
async fn delete(req: HttpRequest, payload: web::Payload, state: web::Data<RestState>) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, Some(&body));
    let id = required(&p, "id")?;
    let purge = match param(&p, "purge").to_ascii_lowercase().as_str() {
        "" | "false" => false,
        "true" => true,
        _ => return Err(ApiError::BadRequest("purge must be true or false".into())),
    };
    let Some(userid) = token_user(&state, &p)? else {
        return null();
    };
    match state.packages.delete(&userid, id, purge).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"success": true}))),
        Err(DomainError::PackageNotFound(_)) => {
            Ok(HttpResponse::Ok().json(json!({"success": false})))
        }
        Err(e) => refused(e),
    }
}

/// `POST /package/update_params?id=&jwt=` with a JSON body holding a string `params`.
async fn update_params(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RestState>,
) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, None);
    let id = required(&p, "id")?;
    let bad = || ApiError::BadRequest("No 'params' key or bad params value.".into());
    let body: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| bad())?;
    let Some(userid) = token_user(&state, &p)? else {
        return null();
    };
    match state.packages.update_params(&userid, id, body).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"success": true}))),
        Err(e @ DomainError::BadRequest(_)) => Err(e.into()),
        Err(e) => refused(e),
    }
}

/// The URL a pipeline reads a package from: the original datapackage, not `final/`.
fn hook_url(origin: &str) -> String {
    origin.strip_suffix("/final/datapackage.json").map_or_else(
        || origin.to_owned(),
        |base| format!("{base}/datapackage.json"),
    )
}

/// `POST /package/run-hooks` (`id`, `jwt`, `pipeline`): posts the package's URL to a
/// configured pipeline.
async fn run_hooks(req: HttpRequest, payload: web::Payload, state: web::Data<RestState>) -> Reply {
    let body = read_body(payload, state.max_body_bytes).await?;
    let p = params(&req, Some(&body));
    let id = required(&p, "id")?;
    let pipeline = required(&p, "pipeline")?;
    if !state.pipeline_urls.iter().any(|u| u == pipeline) {
        return Err(ApiError::BadRequest(format!(
            "pipeline {pipeline:?} is not a configured pipeline URL"
        )));
    }
    let Some(userid) = token_user(&state, &p)? else {
        return null();
    };
    let record = match state.packages.get_owned(&userid, id).await {
        Ok(r) => r,
        Err(e @ DomainError::PackageNotFound(_)) => return Err(ApiError::NotFound(e.to_string())),
        Err(e) => return refused(e),
    };
    let payload = json!({"@context": {"@vocab": "http://schema.org/", "url": {"@type": "@id"}},
                         "url": hook_url(&record.origin_url)});
    let part = reqwest::multipart::Part::text(payload.to_string())
        .file_name("package-url.jsonld")
        .mime_str("application/json")
        .map_err(|e| ApiError::Upstream(e.to_string()))?;
    let form = reqwest::multipart::Form::new().part("input", part);
    let response = state
        .hooks
        .get()
        .map_err(|e| ApiError::Upstream(e.to_string()))?
        .post(pipeline)
        .multipart(form)
        .send()
        .await
        .map_err(|e| ApiError::Upstream(format!("the pipeline did not answer: {e}")))?;
    let text = response
        .text()
        .await
        .map_err(|e| ApiError::Upstream(format!("reading the pipeline's answer: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({"success": true, "response": text, "payload": payload})))
}

/// `GET /package/stats`.
async fn stats(state: web::Data<RestState>) -> Reply {
    Ok(HttpResponse::Ok().json(state.packages.stats().await?))
}

/// A JSON-encoded parameter.
fn decode(name: &str, raw: &str) -> Result<Value, ApiError> {
    serde_json::from_str(raw)
        .map_err(|_| ApiError::BadRequest(format!("parameter {name} must be JSON-encoded")))
}

/// `GET /search/package`: `q` and filters JSON-encoded, `size`, `from`, `jwt` (a user
/// token: its user also sees their private packages).
async fn search(req: HttpRequest, kind: web::Path<String>, state: web::Data<RestState>) -> Reply {
    if kind.as_str() != "package" {
        return Err(ApiError::BadRequest(format!(
            "unknown kind {:?}",
            kind.as_str()
        )));
    }
    let all = parse_query(req.query_string());
    let first = |name: &str| all.get(name).and_then(|v| v.first()).map(String::as_str);
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match first(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::BadRequest(format!("{name} must be a non-negative integer"))
            }),
        }
    };
    let size = number("size", 100)?.min(state.search_max_size);
    let from = number("from", 0)?.min(1_000_000);
    let userid = first("jwt")
        .filter(|t| !t.is_empty())
        .and_then(|t| state.identity.user_of_token(t).ok());
    let q = match first("q") {
        None | Some("") => None,
        Some(raw) => match decode("q", raw)? {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        },
    };
    let mut filters = Vec::new();
    for (name, values) in &all {
        let head = name.split('.').next().unwrap_or("");
        if !RESULT_FIELDS.contains(&head) {
            continue;
        }
        let path = FieldPath::parse(name)
            .ok_or_else(|| ApiError::BadRequest(format!("bad filter name {name:?}")))?;
        let values = values
            .iter()
            .map(|v| decode(name, v))
            .collect::<Result<Vec<_>, _>>()?;
        filters.push((path, values));
    }
    let query = SearchQuery {
        q,
        filters,
        userid,
        from,
        size,
    };
    Ok(HttpResponse::Ok().json(state.packages.search(&query).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_read_the_original_descriptor() {
        assert_eq!(
            hook_url("http://s/a/b/final/datapackage.json"),
            "http://s/a/b/datapackage.json"
        );
        assert_eq!(
            hook_url("http://s/a/b/datapackage.json"),
            "http://s/a/b/datapackage.json"
        );
    }
}
