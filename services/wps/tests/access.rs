//! The access API adapter against a tiny in-test server on port 0 serving canned answers
//! for every rule of wps.md §5.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tessera_work_orders::AccessCheck;
use tessera_work_orders::datetime::parse_rfc3339;
use uuid::Uuid;
use wps::access::HttpAccessCheck;

const USER: &str = "5f0c4b5e-2b3e-4a6f-9c1d-7e8f9a0b1c2d";
const EMPTY_USER: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";
const BAD_USER: &str = "11111111-2222-4333-8444-555555555555";
const BOX: &str = "b0a1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";

type Seen = Arc<Mutex<Vec<(String, bool)>>>;

fn json(body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_owned())
}

async fn answer(req: HttpRequest, seen: web::Data<Seen>) -> HttpResponse {
    let path = req.path().to_owned();
    seen.lock()
        .unwrap()
        .push((path.clone(), req.headers().contains_key("authorization")));
    let Some(rest) = path.strip_prefix("/api") else {
        return HttpResponse::NotFound().finish();
    };
    let single = |id: &str| match id {
        "DATE" => json(r#""2026-06-01T00:00:00Z""#),
        "OFFSET" => json(r#""2026-06-01T02:00:00.5+02:00""#),
        "NULL" => json("null"),
        "FALSE" => json("false"),
        "EMPTY" => json(r#""""#),
        "TRUE" => json("true"),
        "NUMBER" => json("3"),
        "NAIVE" => json(r#""2026-06-01T00:00:00""#),
        "BADDATE" => json(r#""yesterday""#),
        "BADJSON" => json("{bad"),
        "E500" => HttpResponse::InternalServerError().finish(),
        "E422" => HttpResponse::UnprocessableEntity().json(serde_json::json!({"detail": []})),
        _ => HttpResponse::NotFound().finish(),
    };
    if let Some(id) = rest.strip_prefix(&format!("/download-access/users/{USER}/datasets/")) {
        if id == "SLOW" {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        return single(id);
    }
    if let Some(id) = rest.strip_prefix(&format!("/upload-access/users/{USER}/boxes/")) {
        return single(if id == BOX { "DATE" } else { id });
    }
    match rest {
        r if r == format!("/download-access/users/{USER}/datasets") => {
            json(r#"{"GHGAD2": "2026-06-02T00:00:00Z", "GHGAD1": "2026-06-01T00:00:00+00:00"}"#)
        }
        r if r == format!("/upload-access/users/{USER}/boxes") => json(&format!(
            r#"{{"{}": "2026-06-01T00:00:00Z"}}"#,
            BOX.to_uppercase()
        )),
        r if r == format!("/download-access/users/{BAD_USER}/datasets") => json(r#"["GHGAD1"]"#),
        r if r == format!("/upload-access/users/{BAD_USER}/boxes") => {
            json(r#"{"not-a-uuid": "2026-06-01T00:00:00Z"}"#)
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

struct Server {
    url: String,
    seen: Seen,
    handle: actix_web::dev::ServerHandle,
}

/// Runs `app` on 127.0.0.1 port 0; returns its address and stop handle.
fn run<F, A>(app: F) -> (std::net::SocketAddr, actix_web::dev::ServerHandle)
where
    F: Fn() -> App<A> + Send + Clone + 'static,
    A: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
{
    let server = HttpServer::new(app)
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (addr, handle)
}

async fn spawn() -> Server {
    let seen: Seen = Arc::default();
    let data = web::Data::new(seen.clone());
    let (addr, handle) = run(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(answer))
    });
    Server {
        url: format!("http://{addr}/api/"),
        seen,
        handle,
    }
}

fn user() -> Uuid {
    Uuid::parse_str(USER).unwrap()
}

#[actix_web::test]
async fn single_checks_follow_every_rule() {
    let server = spawn().await;
    let client = HttpAccessCheck::new(&server.url, Duration::from_secs(5)).unwrap();
    assert!(!client.base_url().ends_with('/'));
    let check = |id: &'static str| {
        let client = client.clone();
        async move { client.check_download_access(user(), id).await }
    };
    assert_eq!(
        check("DATE").await.unwrap(),
        Some(parse_rfc3339("2026-06-01T00:00:00Z").unwrap())
    );
    assert_eq!(
        check("OFFSET").await.unwrap(),
        Some(parse_rfc3339("2026-06-01T00:00:00.5Z").unwrap())
    );
    for none in ["NULL", "FALSE", "EMPTY", "MISSING"] {
        assert_eq!(check(none).await.unwrap(), None, "{none}");
    }
    for error in [
        "TRUE", "NUMBER", "NAIVE", "BADDATE", "BADJSON", "E500", "E422",
    ] {
        assert!(check(error).await.is_err(), "{error} must be an error");
    }
    // Upload checks use the same rules on their own path.
    let boxed = Uuid::parse_str(BOX).unwrap();
    assert_eq!(
        client.check_upload_access(user(), boxed).await.unwrap(),
        Some(parse_rfc3339("2026-06-01T00:00:00Z").unwrap())
    );
    assert_eq!(
        client
            .check_upload_access(user(), Uuid::new_v4())
            .await
            .unwrap(),
        None
    );
    // An id that would leave its path segment is escaped.
    assert_eq!(check("a/../DATE").await.unwrap(), None);
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, auth)| !auth), "no auth header is sent");
    assert!(
        seen.iter()
            .any(|(p, _)| p.ends_with("/datasets/a%2F..%2FDATE")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(p, _)| *p == format!("/api/upload-access/users/{USER}/boxes/{BOX}"))
    );
    server.handle.stop(false).await;
}

#[actix_web::test]
async fn lists_keep_the_api_order_and_refuse_bad_answers() {
    let server = spawn().await;
    let client = HttpAccessCheck::new(&server.url, Duration::from_secs(5)).unwrap();
    let listed = client.list_download_access(user()).await.unwrap();
    assert_eq!(
        listed,
        vec![
            (
                "GHGAD2".to_owned(),
                parse_rfc3339("2026-06-02T00:00:00Z").unwrap()
            ),
            (
                "GHGAD1".to_owned(),
                parse_rfc3339("2026-06-01T00:00:00Z").unwrap()
            ),
        ]
    );
    let boxes = client.list_upload_access(user()).await.unwrap();
    assert_eq!(boxes.len(), 1);
    assert_eq!(
        boxes[0].0.to_string(),
        BOX,
        "upper-case keys are normalised"
    );
    let empty = Uuid::parse_str(EMPTY_USER).unwrap();
    assert!(client.list_download_access(empty).await.unwrap().is_empty());
    assert!(client.list_upload_access(empty).await.unwrap().is_empty());
    let bad = Uuid::parse_str(BAD_USER).unwrap();
    assert!(client.list_download_access(bad).await.is_err());
    assert!(client.list_upload_access(bad).await.is_err());
    server.handle.stop(false).await;
}

#[actix_web::test]
async fn bad_list_values_and_unreachable_servers_are_errors() {
    // A server that answers lists with non-string values and bad dates.
    async fn lists(req: HttpRequest) -> HttpResponse {
        if req.path().contains("download") {
            json(r#"{"GHGAD1": 5}"#)
        } else {
            json(&format!(r#"{{"{BOX}": "soon"}}"#))
        }
    }
    let (addr, handle) = run(|| App::new().default_service(web::to(lists)));
    let client = HttpAccessCheck::new(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
    assert!(client.list_download_access(user()).await.is_err());
    assert!(client.list_upload_access(user()).await.is_err());
    handle.stop(false).await;

    // Nothing listens there any more.
    assert!(client.check_download_access(user(), "DATE").await.is_err());
}

#[actix_web::test]
async fn a_slow_answer_times_out_as_an_error() {
    let server = spawn().await;
    let client = HttpAccessCheck::new(&server.url, Duration::from_millis(200)).unwrap();
    assert!(client.check_download_access(user(), "SLOW").await.is_err());
    server.handle.stop(false).await;
}
