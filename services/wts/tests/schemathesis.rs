//! Schemathesis against the real app and its own OpenAPI document, with a valid commons
//! token: no 5xx, and every response as the document describes it (status, headers,
//! body). About two minutes (`TESSERA_SCHEMATHESIS_SECONDS`); SKIPPED without
//! schemathesis unless `TESSERA_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{now, spawn};
use serde_json::json;
use tessera_test_support::schemathesis::Run;
use tessera_tokens::ports::MockTokenExchange;
use tessera_tokens::{RefreshGrant, TokenExchange};

fn exchange() -> Arc<dyn TokenExchange> {
    let mut x = MockTokenExchange::new();
    x.expect_refresh().returning(|_| {
        Ok(RefreshGrant {
            access_token: "an-access-token".into(),
            refresh_token: None,
        })
    });
    x.expect_revoke().returning(|_| Ok(()));
    x.expect_authorization_url()
        .returning(|req| Ok(format!("https://idp.example/auth?state={}", req.state)));
    Arc::new(x)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_keeps_to_its_openapi_document() {
    if !Run::available("the_api_keeps_to_its_openapi_document") {
        return;
    }
    let app = spawn(
        |c| {
            c.external_oidc = vec![
                serde_json::from_value(json!({
                    "base_url": "https://ext.org", "oidc_client_id": "c", "oidc_client_secret": "s",
                    "login_options": {"ext": {"name": "Ext", "params": {"idp": "ext"}}},
                }))
                .unwrap(),
            ];
            c.aggregate_endpoint_allowlist = vec!["/user/user".into()];
            c.aggregate_timeout_seconds = 1;
        },
        vec![("default", exchange()), ("ext", exchange())],
    )
    .await;
    app.store("alice", "ext", "rt-alice", now() + 3600).await;
    let run =
        Run::new(format!("{}/openapi.json", app.url)).header("Authorization", "Bearer alice-token");
    tokio::task::spawn_blocking(move || run.assert_passes())
        .await
        .unwrap();
    app.stop().await;
}
