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
use tessera_test_support::infra;

/// Registered by the shared op.mjs (any port: a native client).
const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";

/// A browser at the provider: no redirects followed, cookies kept by name.
struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = request.header("cookie", cookie).send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, v) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), v.to_owned());
        }
        response
    }

    /// Logs `login` in through the provider's forms from `auth_url`; returns the redirect
    /// to the client (`REDIRECT_URI?code=…&state=…`).
    async fn log_in(
        &mut self,
        issuer: &str,
        auth_url: &str,
        login: &str,
        password: &str,
    ) -> reqwest::Url {
        let absolute =
            |location: &str| reqwest::Url::parse(issuer).unwrap().join(location).unwrap();
        let mut location = auth_url.to_owned();
        for _ in 0..10 {
            if location.starts_with(REDIRECT_URI) {
                return reqwest::Url::parse(&location).unwrap();
            }
            let response = self.send(self.client.get(absolute(&location))).await;
            if response.status().is_redirection() {
                location = response.headers()["location"].to_str().unwrap().to_owned();
                continue;
            }
            let page = response.text().await.unwrap();
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no form: {page}"))
                .replace("&amp;", "&");
            let form: Vec<(&str, &str)> = if page.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else {
                vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", password),
                ]
            };
            let response = self
                .send(self.client.post(absolute(&action)).form(&form))
                .await;
            assert!(response.status().is_redirection(), "{}", response.status());
            location = response.headers()["location"].to_str().unwrap().to_owned();
        }
        panic!("the login did not come back to {REDIRECT_URI}");
    }
}

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
