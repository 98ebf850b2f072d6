//! A malformed request from a client is logged as a WARN, not as actix's ERROR: the real
//! server, a raw TCP client, the global subscriber (alone in its own test binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{correlation_routes, stack};
use serde_json::Value;
use tessera_http::{HttpConfig, LogConfig, subscriber};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
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
