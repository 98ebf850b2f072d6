//! The whole account-linking flow against a real OpenID provider on loopback (the npm
//! `oidc-provider` that `scripts/test-infra up oidc` starts; `TESSERA_TEST_OIDC_ISSUER`):
//! authorization URL → the provider's login form → callback to `/oauth2/authorize` →
//! encrypted refresh token in storage → `/token` gives an access token the provider's
//! userinfo accepts → logout revokes it at the provider and deletes the row.
//!
//! The caller's commons identity comes from an in-test Fence (discovery and JWKS on loopback,
//! RS256 tokens), so the flow needs nothing but the shared provider config. A second test
//! validates the provider's own JWT access tokens (it needs the provider to issue them for
//! the resource `urn:gen3`, as `scripts/infra/oidc/op.mjs` configures).
//!
//! Without `TESSERA_TEST_OIDC_ISSUER` the tests print `SKIPPED: …` and pass, unless
//! `TESSERA_REQUIRE_INFRA=1`. The second test also skips (or fails, under that flag) when the
//! provider issues no JWT access tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{call, header, now};
use josekit::jwk::KeyPair as _;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{self, JwsSigner as _};
use serde_json::{Value, json};
use tessera_embedded::EmbeddedStore;
use tessera_oidc::{AccessTokenRules, JwtAccessTokenValidator, KeyStore, http_client};
use tessera_test_support::browser::{Browser, REDIRECT_URI};
use tessera_test_support::infra;
use tessera_tokens::{AccessTokenValidator, Cipher, Fernet, SystemClock};
use wts::config::IdentitySource;
use wts::{Overrides, WtsConfig, prepare, start};

const CLIENT_ID: &str = "test-client";
const CLIENT_SECRET: &str = "test-secret";

/// The provider's issuer, when one is configured and answers.
async fn issuer(test: &str) -> Option<String> {
    let issuer = infra::server(infra::OIDC_ISSUER)?;
    let issuer = issuer.trim_end_matches('/').to_owned();
    let url = format!("{issuer}/.well-known/openid-configuration");
    match reqwest::get(&url).await {
        Ok(r) if r.status().is_success() => Some(issuer),
        Ok(r) => {
            infra::skip(test, &format!("{url} answered {}", r.status()));
            None
        }
        Err(e) => {
            infra::skip(test, &format!("{url}: {e}"));
            None
        }
    }
}

/// A Fence on loopback: discovery and JWKS for `<url>/user`, and RS256 user tokens.
struct FakeFence {
    issuer: String,
    signer: jws::alg::rsassa::RsassaJwsSigner,
    handle: actix_web::dev::ServerHandle,
}

impl FakeFence {
    async fn start() -> Self {
        let pair = RsaKeyPair::generate(2048).unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id("fence-key");
        let jwks = json!({"keys": [Value::Object(public.as_ref().clone())]});
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}/user", listener.local_addr().unwrap());
        let (doc_issuer, doc_jwks) = (issuer.clone(), jwks.clone());
        let server = HttpServer::new(move || {
            let (issuer, jwks) = (doc_issuer.clone(), doc_jwks.clone());
            App::new()
                .route(
                    "/user/.well-known/openid-configuration",
                    web::get().to(move || {
                        let issuer = issuer.clone();
                        async move {
                            HttpResponse::Ok().json(
                                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
                            )
                        }
                    }),
                )
                .route(
                    "/user/jwks",
                    web::get().to(move || {
                        let jwks = jwks.clone();
                        async move { HttpResponse::Ok().json(jwks) }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            issuer,
            signer: jws::RS256
                .signer_from_der(pair.to_der_private_key())
                .unwrap(),
            handle,
        }
    }

    /// A commons access token of `username`.
    fn token(&self, username: &str) -> String {
        let header = json!({"alg": "RS256", "kid": "fence-key", "typ": "JWT"});
        let claims = json!({
            "iss": self.issuer, "sub": "17", "aud": ["gen3"], "scope": ["openid", "user"],
            "pur": "access", "iat": now(), "exp": now() + 600,
            "context": {"user": {"name": username}},
        });
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signer.sign(message.as_bytes()).unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

async fn introspect(issuer: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token/introspection"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn wts_config(issuer: &str, fence: &FakeFence, dir: &std::path::Path) -> WtsConfig {
    let mut config = WtsConfig {
        wts_base_url: "http://127.0.0.1:9999/".into(),
        fence_base_url: fence.issuer.clone(),
        encryption_key: Fernet::generate_key().into(),
        secret_key: "real-provider-test-secret".into(),
        oidc_client_id: "unused".into(),
        oidc_client_secret: "unused".into(),
        identity_source: IdentitySource::None,
        session_cookie_secure: false,
        purge_interval_seconds: 0,
        // oidc-provider's refresh tokens are opaque (op.mjs gives them a day); 25 hours
        // shows as "1 days" for the first hour, however long the test takes.
        opaque_refresh_token_lifetime_seconds: 90_000,
        ..WtsConfig::default()
    };
    config.external_oidc = vec![
        serde_json::from_value(json!({
            "base_url": format!("{issuer}/"),
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
            "login_options": {"test-op": {"name": "Test OP", "params": {
                "auth_url": "auth", "token_url": "token", "scope": "openid email",
            }}},
        }))
        .unwrap(),
    ];
    config.http.port = 0;
    config.embedded.embedded_db_path = dir.join("wts.sqlite");
    config
}

#[tokio::test]
async fn the_whole_linking_flow_against_the_real_provider() {
    let test = "the_whole_linking_flow_against_the_real_provider";
    let Some(issuer) = issuer(test).await else {
        return;
    };
    let fence = FakeFence::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = wts_config(&issuer, &fence, dir.path());
    let fernet = Fernet::new(config.encryption_key.expose()).unwrap();
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let core = prepare(
        config,
        Overrides {
            store: Some(store),
            ..Overrides::default()
        },
    )
    .await
    .unwrap();
    let app = start(core).await.unwrap();
    let wts_url = app.url().unwrap();
    let wts = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let alice = fence.token("alice");

    // 1. The authorization URL, with PKCE, nonce and a prefixed state (shared redirect URI).
    let r = wts
        .get(format!(
            "{wts_url}/oauth2/authorization_url?idp=test-op&redirect=/done"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let auth_url = header(&r, "location").unwrap();
    let session_cookie = header(&r, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let parsed = reqwest::Url::parse(&auth_url).unwrap();
    assert!(
        auth_url.starts_with(&format!("{issuer}/auth?")),
        "{auth_url}"
    );
    let query: BTreeMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert!(query["state"].starts_with("127-"), "{}", query["state"]);
    assert!(query.contains_key("nonce"));

    // 2. The provider's login form.
    let mut browser = Browser::new();
    let callback = browser
        .log_in(&issuer, &auth_url, "alice", "alice-pw")
        .await;
    let params: BTreeMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), query.get("state"), "{callback}");
    assert!(params.contains_key("code"), "{callback}");

    // 3. The callback, as the browser would deliver it (with the commons token the proxy adds).
    let r = wts
        .get(format!(
            "{wts_url}/oauth2/authorize?{}",
            callback.query().unwrap()
        ))
        .header("cookie", &session_cookie)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 302, "{:?}", r.text().await);
    assert_eq!(header(&r, "location").as_deref(), Some("/done"));

    // 4. Stored encrypted.
    let rows = app.core().dao.find_all(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.username.as_str(), row.userid.as_str(), row.idp.as_str()),
        ("alice", "alice", "test-op")
    );
    let refresh_token = fernet.decrypt(&row.token_ciphertext).unwrap();
    assert!(!row.token_ciphertext.contains(&refresh_token));
    assert!(
        URL_SAFE_NO_PAD
            .decode(row.token_ciphertext.trim_end_matches('='))
            .unwrap()[0]
            == 0x80,
        "a fernet token"
    );
    assert_eq!(
        introspect(&issuer, &refresh_token).await["active"],
        json!(true)
    );

    // 5. Access tokens on demand, accepted by the provider (repeatedly: rotation is handled).
    for _ in 0..3 {
        let (status, body) = call(
            wts.get(format!("{wts_url}/token/?idp=test-op"))
                .bearer_auth(&alice),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let access_token = body["token"].as_str().unwrap();
        let userinfo = reqwest::Client::new()
            .get(format!("{issuer}/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 200);
        let claims: Value = userinfo.json().await.unwrap();
        assert_eq!(claims["sub"], "alice");
    }
    let rows = app.core().dao.find_all(&Default::default()).await.unwrap();
    let current = fernet.decrypt(&rows[0].token_ciphertext).unwrap();
    assert_eq!(
        introspect(&issuer, &current).await["active"],
        json!(true),
        "the stored token is the live one"
    );
    let r = wts
        .get(format!("{wts_url}/oauth2/connected?idp=test-op"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, listing) = call(
        wts.get(format!("{wts_url}/external_oidc/"))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(
        listing["providers"][0]["refresh_token_expiration"],
        "1 days"
    );

    // 6. Logout revokes at the provider and deletes the row.
    let r = wts
        .get(format!("{wts_url}/oauth2/logout?idp=test-op"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    assert!(
        app.core()
            .dao
            .find_all(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(introspect(&issuer, &current).await["active"], json!(false));
    let refreshed = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", current.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    let r = wts
        .get(format!("{wts_url}/token/?idp=test-op"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    app.stop().await.unwrap();
    fence.handle.stop(false).await;
}

/// A JWT access token from the provider for `urn:gen3`, or why there is none.
async fn gen3_access_token(issuer: &str) -> Result<String, String> {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
            ("scope", "openid"),
            ("resource", "urn:gen3"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    let token = body["access_token"].as_str().unwrap_or_default();
    if !status.is_success() || token.split('.').count() != 3 {
        return Err(format!(
            "the provider gives no JWT access token for resource urn:gen3 ({status}, error {}); \
             run scripts/infra/oidc/op.mjs (resourceIndicators, extraTokenClaims)",
            body["error"]
        ));
    }
    Ok(token.to_owned())
}

#[tokio::test]
async fn the_providers_jwt_access_tokens_pass_the_validator() {
    let test = "the_providers_jwt_access_tokens_pass_the_validator";
    let Some(issuer) = issuer(test).await else {
        return;
    };
    let token = match gen3_access_token(&issuer).await {
        Ok(token) => token,
        Err(reason) => return infra::skip(test, &reason),
    };
    let keys = Arc::new(KeyStore::new(
        http_client(Duration::from_secs(5)).unwrap(),
        Duration::ZERO,
    ));
    let rules = AccessTokenRules {
        allowed_issuers: vec![issuer.clone()],
        ..AccessTokenRules::default()
    };
    let validator =
        JwtAccessTokenValidator::new(rules.clone(), keys.clone(), Arc::new(SystemClock));
    let identity = validator.validate(&token).await.unwrap();
    assert_eq!(
        (identity.subject.as_str(), identity.username.as_str()),
        ("alice", "alice")
    );
    // Another required audience, or another issuer, refuses the same token.
    let strict = JwtAccessTokenValidator::new(
        AccessTokenRules {
            audience: Some("not-gen3".into()),
            ..rules.clone()
        },
        keys.clone(),
        Arc::new(SystemClock),
    );
    assert!(
        strict
            .validate(&token)
            .await
            .unwrap_err()
            .0
            .contains("audience")
    );
    let fetches = keys.fetch_count();
    let foreign = JwtAccessTokenValidator::new(
        AccessTokenRules {
            allowed_issuers: vec!["https://fence.example/user".into()],
            ..rules
        },
        keys.clone(),
        Arc::new(SystemClock),
    );
    assert!(foreign.validate(&token).await.is_err());
    assert_eq!(
        keys.fetch_count(),
        fetches,
        "no key fetched for a foreign issuer"
    );

    // Through the service: the provider as the commons' own issuer.
    let dir = tempfile::tempdir().unwrap();
    let mut config = WtsConfig {
        wts_base_url: "http://127.0.0.1:9999/".into(),
        fence_base_url: issuer.clone(),
        encryption_key: Fernet::generate_key().into(),
        secret_key: "real-provider-test-secret".into(),
        oidc_client_id: CLIENT_ID.into(),
        oidc_client_secret: CLIENT_SECRET.into(),
        identity_source: IdentitySource::None,
        purge_interval_seconds: 0,
        ..WtsConfig::default()
    };
    config.http.port = 0;
    config.embedded.embedded_db_path = dir.path().join("wts.sqlite");
    let app = start(prepare(config, Overrides::default()).await.unwrap())
        .await
        .unwrap();
    let url = app.url().unwrap();
    let client = reqwest::Client::new();
    let (status, body) = call(
        client
            .get(format!("{url}/oauth2/connected"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 403, "valid token, nothing linked: {body}");
    let (status, body) = call(
        client
            .get(format!("{url}/oauth2/connected"))
            .bearer_auth(format!("{token}x")),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"message": "Authentication Error: user is not logged in"})
        )
    );
    app.stop().await.unwrap();
}

/// `tessera dev` makes the test provider the commons' own IdP (`fence_base_url`, the
/// Fence kind): the browser must be sent to the endpoint the provider's discovery names,
/// not to Fence's fixed `/oauth2/authorize`, and the whole default-IdP login must work.
#[tokio::test]
async fn the_default_idp_of_tessera_dev_logs_in_at_the_real_provider() {
    let test = "the_default_idp_of_tessera_dev_logs_in_at_the_real_provider";
    let Some(issuer) = issuer(test).await else {
        return;
    };
    // The browser's commons token, as the reverse proxy of a commons passes it on.
    let commons_token = match gen3_access_token(&issuer).await {
        Ok(token) => token,
        Err(reason) => {
            infra::skip(test, &reason);
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    // As `wts::Core::dev_config` builds it (op.mjs registers WTS's callback path).
    let mut config = WtsConfig {
        wts_base_url: "http://127.0.0.1:9999/".into(),
        fence_base_url: format!("{issuer}/"),
        encryption_key: Fernet::generate_key().into(),
        secret_key: "real-provider-test-secret".into(),
        oidc_client_id: CLIENT_ID.into(),
        oidc_client_secret: CLIENT_SECRET.into(),
        identity_source: IdentitySource::None,
        session_cookie_secure: false,
        purge_interval_seconds: 0,
        ..WtsConfig::default()
    };
    config.http.port = 0;
    config.embedded.embedded_db_path = dir.path().join("wts.sqlite");
    let app = start(prepare(config, Overrides::default()).await.unwrap())
        .await
        .unwrap();
    let wts_url = app.url().unwrap();
    let wts = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = wts
        .get(format!("{wts_url}/oauth2/authorization_url?redirect=/done"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let auth_url = header(&r, "location").unwrap();
    assert!(
        auth_url.starts_with(&format!("{issuer}/auth?")),
        "the provider's own authorization endpoint: {auth_url}"
    );
    let session_cookie = header(&r, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let callback = Browser::new()
        .log_in_to(
            &issuer,
            &auth_url,
            "alice",
            "alice-pw",
            "http://127.0.0.1:9999/oauth2/authorize",
        )
        .await;
    let r = wts
        .get(format!(
            "{wts_url}/oauth2/authorize?{}",
            callback.query().unwrap()
        ))
        .header("cookie", &session_cookie)
        .bearer_auth(&commons_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 302, "{:?}", r.text().await);
    assert_eq!(header(&r, "location").as_deref(), Some("/done"));
    let rows = app.core().dao.find_all(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].idp.as_str(), rows[0].username.as_str()),
        ("default", "alice")
    );
    // The commons token's user now has the default IdP linked.
    let r = wts
        .get(format!("{wts_url}/oauth2/connected"))
        .bearer_auth(&commons_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await.unwrap();
}
