//! Schemathesis against the real app and its own OpenAPI document, with a valid token:
//! no 5xx, and every response as the document describes it (status, headers, body).
//! About two minutes (`TESSERA_SCHEMATHESIS_SECONDS`); SKIPPED without schemathesis
//! unless `TESSERA_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeDelta, Utc};
use common::{Answer, DATASET, TestApp};
use tessera_test_support::schemathesis::Run;
use uuid::Uuid;

#[actix_web::test]
async fn the_api_keeps_to_its_openapi_document() {
    if !Run::available("the_api_keeps_to_its_openapi_document") {
        return;
    }
    let app = TestApp::spawn().await;
    app.seed_dataset().await;
    let user = Uuid::new_v4();
    app.access.set_download(
        user,
        DATASET,
        Some(Answer::Until(Utc::now() + TimeDelta::days(5))),
    );
    let run = Run::new(format!("{}/openapi.json", app.url)).header(
        "Authorization",
        &format!("Bearer {}", app.keys.token(&user.to_string())),
    );
    tokio::task::spawn_blocking(move || run.assert_passes())
        .await
        .unwrap();
    app.running.stop().await.unwrap();
}
