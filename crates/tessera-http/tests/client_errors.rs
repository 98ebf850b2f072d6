//! A malformed request from a client is logged as a WARN, not as actix's ERROR: the real
//! server, a raw TCP client, the global subscriber (alone in its own test binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Captured, correlation_routes, stack};
use serde_json::Value;
use tessera_http::{HttpConfig, LogConfig, subscriber};

#[tokio::test]
async fn malformed_http_is_a_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The server's workers are other threads: the global subscriber.
    tracing::subscriber::set_global_default(
        subscriber(&LogConfig::default(), move || writer.clone()).unwrap(),
    )
    .unwrap();
    let config = HttpConfig {
        port: 0,
        workers: 1,
        ..HttpConfig::default()
    };
    let server = stack(config).serve(correlation_routes).await.unwrap();
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\0: y\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    })
    .await
    .unwrap();
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = captured.lines();
        if lines
            .iter()
            .any(|l| l["target"] == "actix_http::h1::dispatcher")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop(false).await.unwrap();
    let actix: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "actix_http::h1::dispatcher")
        .collect();
    assert!(!actix.is_empty(), "nothing logged: {lines:?}");
    for line in actix {
        assert_eq!(line["level"], "WARN", "{line}");
        assert!(
            line["error"]
                .as_str()
                .unwrap()
                .starts_with("request parse error"),
            "{line}"
        );
    }
    assert!(!lines.iter().any(|l| l["level"] == "ERROR"), "{lines:?}");
}
