//! `/aggregate/<path>` against two in-test commons: allowlist, anonymous and authenticated
//! fan-out, query passthrough, filters, and null for a failing commons.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{call, now, spawn};
use serde_json::json;
use tessera_tokens::ports::MockTokenExchange;
use tessera_tokens::{ExchangeError, RefreshGrant};

/// A commons echoing what it got; `/user/broken` answers 500.
async fn commons() -> (String, actix_web::dev::ServerHandle) {
    async fn echo(req: HttpRequest) -> HttpResponse {
        if req.path() == "/user/broken" {
            return HttpResponse::InternalServerError().finish();
        }
        HttpResponse::Ok().json(json!({
            "path": req.path(),
            "query": req.query_string(),
            "authorization": req.headers().get("authorization").map(|v| v.to_str().unwrap()),
            "host": req.headers().get("host").map(|v| v.to_str().unwrap()),
        }))
    }
    let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("127.0.0.1:{}", addr.port()), handle)
}

#[tokio::test]
async fn aggregate_fans_out_to_every_commons() {
    let (host_a, stop_a) = commons().await;
    let (host_b, stop_b) = commons().await;
    let mut ext_a = MockTokenExchange::new();
    ext_a.expect_refresh().returning(|rt| {
        Ok(RefreshGrant {
            access_token: format!("at-{rt}"),
            refresh_token: None,
        })
    });
    let mut ext_b = MockTokenExchange::new();
    ext_b
        .expect_refresh()
        .returning(|_| Err(ExchangeError::Unreachable("down".into())));
    let (a, b) = (host_a.clone(), host_b.clone());
    let app = spawn(
        move |c| {
            c.fence_base_url = format!("http://{a}/user");
            c.aggregate_endpoint_allowlist = vec!["/user/user".into(), "/user/broken".into()];
            c.external_oidc = vec![serde_json::from_value(json!({
                "base_url": format!("http://{b}"), "oidc_client_id": "c", "oidc_client_secret": "s",
                "login_options": {"ext-b": {"name": "B"}},
            }))
            .unwrap()];
        },
        vec![("default", Arc::new(ext_a)), ("ext-b", Arc::new(ext_b))],
    )
    .await;

    let (status, body) = call(app.get("/aggregate/user/nope")).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "supplied endpoint is not configured in the Workspace Token Service aggregate endpoint allowlist"})
        )
    );
    let (status, body) = call(app.get("/aggregate/user/user").bearer_auth("forged")).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"message": "Authentication Error: signature verification failed"})
        )
    );

    // Anonymous: every commons, no Authorization, the query without filters.
    let (status, body) = call(app.get("/aggregate/user/user?x=1&x=2")).await;
    assert_eq!(status, 200);
    assert_eq!(body[&host_a]["path"], "/user/user");
    assert_eq!(body[&host_a]["query"], "x=1&x=2");
    assert_eq!(body[&host_a]["authorization"], json!(null));
    assert_eq!(body[&host_b]["host"], json!(host_b));

    // With a token: commons A gets alice's access token; B's refresh fails, so anonymous.
    app.store("alice", "default", "rt-a", now() + 3600).await;
    app.store("alice", "ext-b", "rt-b", now() + 3600).await;
    let (_, body) = call(
        app.get("/aggregate/user/user?filters=authorization&filters=missing&y=3")
            .bearer_auth("alice-token"),
    )
    .await;
    assert_eq!(
        body,
        json!({
            host_a.clone(): {"authorization": "Bearer at-rt-a", "missing": null},
            host_b.clone(): {"authorization": null, "missing": null},
        })
    );

    // A failing call is null.
    let (status, body) = call(app.get("/aggregate/user/broken")).await;
    assert_eq!(
        (status, body),
        (200, json!({host_a.clone(): null, host_b.clone(): null}))
    );
    app.stop().await;
    stop_a.stop(false).await;
    stop_b.stop(false).await;
}
