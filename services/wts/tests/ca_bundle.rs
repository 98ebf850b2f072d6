//! `ca_bundle_file`: the IdPs (a refresh at the default Fence) and the commons
//! (`/aggregate`) behind a private CA are reached when the bundle names it, and refused
//! when it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use common::{call, now, self_signed, spawn};
use openssl::ssl::{SslAcceptor, SslMethod};
use serde_json::json;

/// A Fence and commons over HTTPS with a self-signed certificate (written to `ca.crt` in
/// `dir`): the token endpoint answers an access token, any other path its own path.
fn start_https(dir: &Path) -> String {
    let (cert, key) = self_signed();
    std::fs::write(dir.join("ca.crt"), cert.to_pem().unwrap()).unwrap();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&cert).unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A client that refuses the certificate aborts the handshake.
            let Ok(mut tls) = acceptor.accept(stream) else {
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n")
                && tls.read(&mut byte).map(|n| n == 1).unwrap_or(false)
            {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = tls.read_exact(&mut body);
            let path = head.split_whitespace().nth(1).unwrap_or_default();
            let answer = if path == "/user/oauth2/token" {
                json!({"access_token": "at-over-tls", "token_type": "Bearer"})
            } else {
                json!({ "path": path })
            };
            let answer = answer.to_string();
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = tls.shutdown();
        }
    });
    host
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
