//! The actix scope that serves the presigned URLs of a [`LocalObjectStore`] (feature
//! `http`): any service mounts [`objects_scope`] at the path of `objects_public_url`.
//!
//! - `PUT /<key>?expires=…&signature=…` with the bound `Content-MD5`, `Content-Type` and
//!   `Content-Length`: the body streams into the store, which checks length and MD5 while
//!   writing and keeps nothing of a refused or broken upload. 200 with the `ETag`; 400 for
//!   a body that does not match (`BadDigest`, `IncompleteBody`) or a bad key; 403 for a
//!   missing or wrong signature or an expired URL.
//! - `GET /<key>?expires=…&signature=…`: the object, streamed; 404 when there is none.
//!
//! Error bodies are S3-like XML (`<Error><Code>…</Code><Message>…</Message></Error>`), so
//! that S3 clients print something sensible.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use tessera_kit::objects::{self, ContentMd5, ObjectKey, ObjectStore, PutRequest};

use crate::objects::{BoundHeaders, LocalObjectStore, PresignQuery, Refusal};

/// The scope at `path` (e.g. `/objects`) serving `store`'s presigned URLs.
pub fn objects_scope(path: &str, store: LocalObjectStore) -> actix_web::Scope {
    web::scope(path)
        .app_data(web::Data::new(store))
        .route("/{key:.+}", web::put().to(put))
        .route("/{key:.+}", web::get().to(get))
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    HttpResponse::build(status)
        .content_type("application/xml")
        .body(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{}</Message></Error>",
            escape(message)
        ))
}

fn refused(refusal: Refusal) -> HttpResponse {
    let code = match refusal {
        Refusal::Expired => "AccessDenied",
        Refusal::Unsigned | Refusal::BadSignature => "SignatureDoesNotMatch",
    };
    error(StatusCode::FORBIDDEN, code, &refusal.to_string())
}

fn store_error(err: &objects::Error) -> HttpResponse {
    match err {
        objects::Error::NotFound { .. } => {
            error(StatusCode::NOT_FOUND, "NoSuchKey", &err.to_string())
        }
        objects::Error::PreconditionFailed { .. } => {
            error(StatusCode::BAD_REQUEST, "BadDigest", &err.to_string())
        }
        objects::Error::InvalidKey { .. } | objects::Error::InvalidRequest(_) => {
            error(StatusCode::BAD_REQUEST, "InvalidArgument", &err.to_string())
        }
        objects::Error::Body(_) => {
            error(StatusCode::BAD_REQUEST, "IncompleteBody", &err.to_string())
        }
        objects::Error::InvalidRange { .. } | objects::Error::Backend(_) => {
            tracing::error!(error = ?err, "local object store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error",
            )
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

async fn put(
    request: HttpRequest,
    key: web::Path<String>,
    query: web::Query<PresignQuery>,
    store: web::Data<LocalObjectStore>,
    mut payload: web::Payload,
) -> HttpResponse {
    let headers = request.headers();
    let bound = BoundHeaders {
        content_md5: header_str(headers, header::HeaderName::from_static("content-md5")),
        content_type: header_str(headers, header::CONTENT_TYPE),
        content_length: header_str(headers, header::CONTENT_LENGTH),
    };
    if let Err(refusal) = store.verify("PUT", &key, &query, &bound) {
        return refused(refusal);
    }
    let key = match ObjectKey::parse(key.into_inner()) {
        Ok(key) => key,
        Err(err) => return store_error(&err),
    };
    // The signature covered these values, so they parse unless the signer was given junk.
    let (Ok(length), Ok(md5)) = (
        bound.content_length.parse::<u64>(),
        ContentMd5::from_base64(&bound.content_md5),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Content-Length and Content-MD5 must be valid",
        );
    };
    let put_request = PutRequest::new(length)
        .md5(md5)
        .content_type(bound.content_type.clone());

    // actix's payload is not Send: pump it through a small channel into the store's
    // (Send) body stream, both on this task.
    let (mut tx, rx) = futures::channel::mpsc::channel::<objects::Result<bytes::Bytes>>(2);
    let pump = async move {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| objects::Error::Body(err.to_string().into()));
            let failed = chunk.is_err();
            if futures::SinkExt::send(&mut tx, chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let put = store.put(&key, rx.boxed(), put_request);
    futures::pin_mut!(put, pump);
    // A put that ends early (a refused length) must not wait for a stalled client.
    let result = match futures::future::select(put, pump).await {
        futures::future::Either::Left((result, _pump)) => result,
        futures::future::Either::Right(((), put)) => put.await,
    };
    match result {
        Ok(meta) => {
            let mut response = HttpResponse::Ok();
            if let Some(etag) = meta.etag {
                response.insert_header((header::ETAG, format!("\"{etag}\"")));
            }
            response.finish()
        }
        Err(err) => store_error(&err),
    }
}

async fn get(
    key: web::Path<String>,
    query: web::Query<PresignQuery>,
    store: web::Data<LocalObjectStore>,
) -> HttpResponse {
    if let Err(refusal) = store.verify("GET", &key, &query, &BoundHeaders::default()) {
        return refused(refusal);
    }
    let key = match ObjectKey::parse(key.into_inner()) {
        Ok(key) => key,
        Err(err) => return store_error(&err),
    };
    match store.get(&key, None).await {
        Ok(object) => {
            let mut response = HttpResponse::Ok();
            response
                .content_type("application/octet-stream")
                .no_chunking(object.meta.size);
            if let Some(etag) = &object.meta.etag {
                response.insert_header((header::ETAG, format!("\"{etag}\"")));
            }
            response.streaming(object.body)
        }
        Err(err) => store_error(&err),
    }
}
