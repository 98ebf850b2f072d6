//! JSON log lines of a request carry its correlation id.
//!
//! Alone in its own test binary: tracing caches per-callsite interest globally, and test
//! threads without a subscriber racing with this one's scoped subscriber can disable the
//! request span for it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use actix_web::http::StatusCode;
use actix_web::test;
use common::{Captured, correlation_routes, stack};
use serde_json::Value;
use tessera_http::{HttpConfig, LogConfig, subscriber};

#[actix_web::test]
async fn json_log_lines_carry_the_correlation_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let log_config = LogConfig::default();
    let sub = subscriber(&log_config, move || writer.clone()).unwrap();
    let _guard = tracing::subscriber::set_default(sub);

    let app = test::init_service(stack(HttpConfig::default()).app(correlation_routes)).await;
    let id = "0b7e0d1c-5a4f-4e3b-9c2d-1f0e9d8c7b6a";
    let req = test::TestRequest::get()
        .uri("/whoami")
        .insert_header(("X-Request-Id", id))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;

    let lines: Vec<Value> = captured.lines();
    let text = format!("{lines:?}");
    let handler = lines
        .iter()
        .find(|l| l["marker"] == "handler-ran")
        .unwrap_or_else(|| panic!("no handler line in {text}"));
    assert_eq!(handler["span"]["correlation_id"], id);
    assert_eq!(handler["span"]["path"], "/whoami");
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished" && l["span"]["correlation_id"] == id)
        .unwrap_or_else(|| panic!("no access line in {text}"));
    assert_eq!(finished["status"], 200);
    assert_eq!(finished["span"]["method"], "GET");
    assert!(finished["duration_ms"].is_number());
    assert_eq!(finished["level"], "INFO");

    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error line in {text}"));
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("database unreachable")
    );
    assert!(error["span"]["correlation_id"].is_string());
}
