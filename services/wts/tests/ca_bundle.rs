//! `ca_bundle_file`: the IdPs (a refresh at the default Fence) and the commons
//! (`/aggregate`) behind a private CA are reached when the bundle names it, and refused
//! when it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{call, now, serve_https, spawn};
use serde_json::json;

/// A Fence and commons over HTTPS with a self-signed certificate (written to `ca.crt` in
/// `dir`): the token endpoint answers an access token, any other path its own path.
fn start_https(dir: &Path) -> String {
    serve_https(dir, |target, _| {
        let answer = if target == "/user/oauth2/token" {
            json!({"access_token": "at-over-tls", "token_type": "Bearer"})
        } else {
            json!({ "path": target })
        };
        ("200 OK", answer)
    })
}

async fn token_and_aggregate(with_bundle: bool) -> (u16, serde_json::Value, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let host = start_https(dir.path());
    let ca = dir.path().join("ca.crt");
    let fence = format!("https://{host}/user");
    let app = spawn(
        move |c| {
            c.fence_base_url = fence;
            c.aggregate_endpoint_allowlist = vec!["/user/user".into()];
            if with_bundle {
                c.ca_bundle_file = Some(ca);
            }
        },
        // No fakes: the real OIDC client and aggregator.
        Vec::new(),
    )
    .await;
    app.store("carol", "default", "rt-carol", now() + 3600)
        .await;
    let (status, token) = call(app.get_from_workspace("/token/")).await;
    let (aggregate_status, aggregate) = call(app.get("/aggregate/user/user")).await;
    assert_eq!(aggregate_status, 200);
    app.stop().await;
    (status, token, aggregate[host.as_str()].clone())
}

#[tokio::test]
async fn the_bundle_is_trusted_for_the_idps_and_the_commons() {
    let (status, token, commons) = token_and_aggregate(true).await;
    assert_eq!((status, token), (200, json!({"token": "at-over-tls"})));
    assert_eq!(commons, json!({"path": "/user/user"}));
}

#[tokio::test]
async fn without_the_bundle_the_private_ca_is_refused() {
    let (status, token, commons) = token_and_aggregate(false).await;
    assert_eq!(
        (status, token),
        (
            500,
            json!({"message": "Internal server error: Fail to reach fence"})
        )
    );
    assert_eq!(commons, serde_json::Value::Null);
}

#[test]
fn a_bad_bundle_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.ca_bundle_file = Some(dir.path().join("missing.pem"));
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("ca_bundle_file"), "{err}");
    std::fs::write(dir.path().join("empty.pem"), "not a certificate").unwrap();
    config.ca_bundle_file = Some(dir.path().join("empty.pem"));
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("ca_bundle_file"), "{err}");
}
