//! The Kubernetes identity adapter against a tiny fake API server over HTTPS (a self-signed
//! certificate given as the cluster CA), and `/token` through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{call, header_in, now, serve_https, spawn};
use serde_json::json;
use tessera_tokens::ports::MockTokenExchange;
use tessera_tokens::{Caller, IdentityResolver, RefreshGrant};
use wts::config::IdentitySource;
use wts::identity::KubernetesIdentity;

/// The fake API: pods by IP, and the Authorization header of every request.
struct FakeApi {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

fn pods_for(query: &str) -> serde_json::Value {
    let pod = |annotations: serde_json::Value| json!({"metadata": {"name": "p", "annotations": annotations}});
    match query {
        q if q.ends_with("10.1.2.3") => {
            json!({"items": [pod(json!({"hub.jupyter.org/username": "jupyter-alice", "gen3username": "alice"}))]})
        }
        q if q.ends_with("10.1.2.4") => {
            json!({"items": [pod(json!({"other": "x"})), pod(json!({"hub.jupyter.org/username": "bob"}))]})
        }
        _ => json!({"items": []}),
    }
}

/// Serves until the process ends: one request per connection, `valid_token` required.
fn start_api(dir: &Path, valid_token: &'static str) -> FakeApi {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let host = serve_https(dir, move |target, head| {
        let auth = header_in(head, "authorization")
            .unwrap_or_default()
            .to_owned();
        log.lock().unwrap().push((target.to_owned(), auth.clone()));
        if auth != format!("Bearer {valid_token}") {
            ("401 Unauthorized", json!({"kind": "Status", "code": 401}))
        } else if let Some(query) = target.strip_prefix("/api/v1/pods?fieldSelector=") {
            ("200 OK", pods_for(&query.replace("%3D", "=")))
        } else {
            ("404 Not Found", json!({}))
        }
    });
    FakeApi {
        url: format!("https://{host}"),
        seen,
    }
}

fn caller(ip: &str) -> Caller {
    Caller {
        token: None,
        remote_ip: Some(ip.parse::<IpAddr>().unwrap()),
    }
}

#[tokio::test]
async fn pods_name_their_users_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let api = start_api(dir.path(), "sa-token-2");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "sa-token-1\n").unwrap();
    let adapter = KubernetesIdentity::new(
        &api.url,
        &token_file,
        &dir.path().join("ca.crt"),
        Duration::from_secs(5),
    )
    .unwrap();
    // The first token is refused: an error, not "nobody".
    assert!(adapter.resolve(&caller("10.1.2.3")).await.is_err());
    // The token file rotates; the adapter reads it again.
    std::fs::write(&token_file, "sa-token-2").unwrap();
    assert_eq!(
        adapter
            .resolve(&caller("10.1.2.3"))
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        adapter
            .resolve(&caller("10.1.2.4"))
            .await
            .unwrap()
            .as_deref(),
        Some("bob")
    );
    assert_eq!(adapter.resolve(&caller("10.9.9.9")).await.unwrap(), None);
    assert_eq!(adapter.resolve(&Caller::default()).await.unwrap(), None);
    let seen = api.seen.lock().unwrap().clone();
    assert_eq!(
        seen[1],
        (
            "/api/v1/pods?fieldSelector=status.podIP%3D10.1.2.3".to_owned(),
            "Bearer sa-token-2".to_owned()
        )
    );
    assert_eq!(seen.len(), 4, "no call without an address");
}

#[tokio::test]
async fn the_api_certificate_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let api = start_api(dir.path(), "t");
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let untrusting = KubernetesIdentity::new(
        &api.url,
        &dir.path().join("token"),
        &dir.path().join("no-such-ca.crt"),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(untrusting.resolve(&caller("10.1.2.3")).await.is_err());
    assert!(api.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn token_for_the_default_idp_uses_the_pod_identity() {
    let dir = tempfile::tempdir().unwrap();
    let api = start_api(dir.path(), "sa");
    std::fs::write(dir.path().join("token"), "sa").unwrap();
    let mut fence = MockTokenExchange::new();
    fence.expect_refresh().returning(|rt| {
        Ok(RefreshGrant {
            access_token: format!("at-{rt}"),
            refresh_token: None,
        })
    });
    let (url, base) = (api.url.clone(), dir.path().to_owned());
    let app = spawn(
        move |c| {
            c.identity_source = IdentitySource::Kubernetes;
            c.kubernetes_api_url = Some(url);
            c.kubernetes_token_file = base.join("token");
            c.kubernetes_ca_file = base.join("ca.crt");
        },
        vec![("default", Arc::new(fence))],
    )
    .await;
    app.store("alice", "default", "rt-alice", now() + 3600)
        .await;
    let (status, body) = call(app.get("/token/").header("x-forwarded-for", "10.1.2.3")).await;
    assert_eq!((status, body), (200, json!({"token": "at-rt-alice"})));
    let (status, _) = call(app.get("/token/").header("x-forwarded-for", "10.9.9.9")).await;
    assert_eq!(status, 403);
    app.stop().await;
}
