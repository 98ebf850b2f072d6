//! The whole login flow against a real OpenID provider on loopback (the npm
//! `oidc-provider` that `scripts/test-infra up oidc` starts; `TESSERA_TEST_OIDC_ISSUER`):
//! `/user/check` lists the provider's login URL → the provider's login form → the callback
//! creates the user and returns to `next` with a user token → the token works at
//! `/user/check` and `/user/authorize`; a login whose `next` is on another origin is refused.
//!
//! Without the provider the test prints `SKIPPED: …` and passes, unless
//! `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use conductor::config::OidcProvider;
use conductor::{ConductorConfig, Overrides, prepare};
use serde_json::Value;
use tessera_service::Parts;
use tessera_test_support::browser::{Browser, REDIRECT_URI};
use tessera_test_support::infra;

#[tokio::test]
async fn login_creates_the_user_and_returns_only_to_allowed_origins() {
    let test = "login_creates_the_user_and_returns_only_to_allowed_origins";
    let Some(issuer) = infra::server(infra::OIDC_ISSUER) else {
        return;
    };
    let issuer = issuer.trim_end_matches('/').to_owned();
    if reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .is_err()
    {
        infra::skip(test, "the provider does not answer");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConductorConfig {
        base_url: "http://127.0.0.1:9".into(),
        private_key: conductor::keys::generate_private_key().unwrap().into(),
        allowed_redirect_origins: vec!["https://packager.example".into()],
        oidc_providers: vec![OidcProvider {
            name: "test-op".into(),
            issuer: issuer.clone(),
            client_id: "test-client".into(),
            client_secret: "test-secret".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            scope: "openid email profile".into(),
            redirect_uri: REDIRECT_URI.into(),
        }],
        ..ConductorConfig::default()
    };
    config.http.port = 0;
    config.embedded.embedded_db_path = dir.path().join("db.sqlite");
    config.objects.objects_root = dir.path().join("objects");
    let running = tessera_service::start(
        prepare(config, Overrides::default()).await.unwrap(),
        Parts::ALL,
    )
    .await
    .unwrap();
    let url = running.url().unwrap();
    let conductor = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login_url = |next: &'static str| {
        let request = conductor.get(format!("{url}/user/check?next={next}"));
        async move {
            let check: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(check["authenticated"], false);
            check["providers"]["test-op"]["url"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let callback = |location: reqwest::Url| {
        let query: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
        assert!(query.contains_key("code"), "{location}");
        conductor
            .get(format!("{url}/oauth/test-op_callback"))
            .query(&query)
            .send()
    };

    // 1. The login URL, with state, nonce and PKCE.
    let auth_url = login_url("https://packager.example/after%3Fx%3D1").await;
    assert!(
        auth_url.starts_with(&format!("{issuer}/auth?")),
        "{auth_url}"
    );
    for part in [
        "state=",
        "nonce=",
        "code_challenge_method=S256",
        "client_id=test-client",
    ] {
        assert!(auth_url.contains(part), "{part} missing from {auth_url}");
    }
    // 2. The provider's login, 3. the callback: the user is made, the browser goes to next.
    let mut browser = Browser::new();
    let location = browser
        .log_in(&issuer, &auth_url, "alice", "alice-pw")
        .await;
    let r = callback(location).await.unwrap();
    assert_eq!(r.status(), 302);
    let next = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        next.origin().ascii_serialization(),
        "https://packager.example"
    );
    assert_eq!(next.path(), "/after");
    let query: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
    assert_eq!(query["x"], "1");
    let jwt = &query["jwt"];
    // 4. The token works.
    let check: Value = conductor
        .get(format!("{url}/user/check?jwt={jwt}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["authenticated"], true, "{check}");
    assert_eq!(check["profile"]["email"], "alice@example.test");
    assert_eq!(check["profile"]["name"], "Alice");
    assert_eq!(
        check["profile"]["idhash"],
        tessera_conductor::idhash("alice@example.test")
    );
    assert_eq!(check["profile"]["id"], "test-op:alice");
    let grant: Value = conductor
        .get(format!(
            "{url}/user/authorize?jwt={jwt}&service=os.datastore"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        grant["userid"],
        tessera_conductor::idhash("alice@example.test")
    );
    assert!(grant["token"].is_string());

    // 5. A login that would return to another origin is refused at the callback.
    let auth_url = login_url("https://evil.example/steal").await;
    let location = browser
        .log_in(&issuer, &auth_url, "alice", "alice-pw")
        .await;
    let r = callback(location).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not on an allowed origin"),
        "{body}"
    );
    running.stop().await.unwrap();
}
