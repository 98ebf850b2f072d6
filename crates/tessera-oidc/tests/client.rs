//! The IdP client against an in-test authorization server: what it sends, and how it treats
//! each kind of answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{DiscoveryMode, FakeIdp, FixedClock, NOW, TestKey};
use serde_json::{Value, json};
use tessera_oidc::{ClientSettings, IdpKind, KeyStore, OidcClient, http_client};
use tessera_tokens::{AuthorizationRequest, CodeExchangeRequest, ExchangeError, TokenExchange};

const SECRET: &str = "s3cret:with/odd chars";

struct Setup {
    idp: FakeIdp,
    key: TestKey,
    client: OidcClient,
}

fn settings(kind: IdpKind) -> ClientSettings {
    ClientSettings {
        idp: "test".into(),
        kind,
        client_id: "wts-client".into(),
        client_secret: SECRET.into(),
        redirect_uri: "https://wts.example/oauth2/authorize".into(),
        scope: "openid user".into(),
        extra_params: vec![("idp".into(), "google".into())],
        username_field: "context.user.name".into(),
        user_agent: "Gen3WTS/9.9.9".into(),
    }
}

async fn setup_kind(fence: bool, timeout: Duration) -> Setup {
    let idp = FakeIdp::start().await;
    let key = TestKey::rsa("idp-key");
    idp.set_jwks(vec![key.public_jwk.clone()]);
    let kind = if fence {
        IdpKind::Fence {
            base_url: format!("{}/user/", idp.url),
        }
    } else {
        IdpKind::Generic {
            authorization_endpoint: format!("{}/user/oauth2/authorize", idp.url),
            token_endpoint: format!("{}/user/oauth2/token", idp.url),
            issuer: None,
            base_url: format!("{}/user/", idp.url),
        }
    };
    let http = http_client(timeout).unwrap();
    let keys = Arc::new(KeyStore::new(http.clone(), Duration::ZERO));
    let client = OidcClient::new(settings(kind), http, keys, Arc::new(FixedClock(NOW))).unwrap();
    Setup { idp, key, client }
}

async fn setup() -> Setup {
    setup_kind(true, Duration::from_secs(5)).await
}

fn id_token(s: &Setup, changes: Value) -> String {
    let mut claims = json!({
        "iss": s.idp.issuer(), "sub": "idp-user-7", "aud": "wts-client", "nonce": "n-1",
        "iat": NOW, "exp": NOW + 300, "context": {"user": {"name": "alice@idp"}},
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    s.key.sign(&claims)
}

fn exchange_request(iss: Option<&str>) -> CodeExchangeRequest {
    CodeExchangeRequest {
        code: "the-code".into(),
        code_verifier: "the-verifier".into(),
        nonce: "n-1".into(),
        iss: iss.map(str::to_owned),
    }
}

fn basic() -> String {
    let encoded = "wts-client:s3cret%3Awith%2Fodd+chars";
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(encoded)
    )
}

#[tokio::test]
async fn the_authorization_url_carries_pkce_nonce_state_and_fence_params() {
    let s = setup().await;
    let url = s
        .client
        .authorization_url(&AuthorizationRequest {
            state: "st".into(),
            nonce: "no".into(),
            code_challenge: "ch".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        url,
        format!(
            "{}/user/oauth2/authorize?response_type=code&client_id=wts-client&redirect_uri=https%3A%2F%2Fwts.example%2Foauth2%2Fauthorize&scope=openid+user&state=st&nonce=no&code_challenge=ch&code_challenge_method=S256&idp=google",
            s.idp.url
        )
    );
    s.idp.stop().await;
}

#[tokio::test]
async fn the_code_exchange_sends_basic_auth_user_agent_and_verifier() {
    let s = setup().await;
    let refresh = s
        .key
        .sign(&json!({"sub": "idp-user-7", "exp": NOW + 86_400, "jti": "rt-jti"}));
    s.idp.answer_token(
        200,
        json!({
            "access_token": "at", "token_type": "Bearer", "refresh_token": refresh,
            "id_token": id_token(&s, json!({})),
        }),
    );
    let grant = s
        .client
        .exchange_code(&exchange_request(Some(&s.idp.issuer())))
        .await
        .unwrap();
    assert_eq!(grant.subject, "idp-user-7");
    assert_eq!(grant.idp_username.as_deref(), Some("alice@idp"));
    assert_eq!(grant.refresh_token.token, refresh);
    assert_eq!(grant.refresh_token.expires, Some(NOW + 86_400));
    assert_eq!(grant.refresh_token.jti.as_deref(), Some("rt-jti"));
    let requests = s.idp.requests();
    let sent = &requests[0];
    assert_eq!(sent.path, "/user/oauth2/token");
    assert_eq!(sent.headers["authorization"], basic());
    assert_eq!(sent.headers["user-agent"], "Gen3WTS/9.9.9");
    assert_eq!(sent.form["grant_type"], "authorization_code");
    assert_eq!(sent.form["code"], "the-code");
    assert_eq!(sent.form["code_verifier"], "the-verifier");
    assert_eq!(
        sent.form["redirect_uri"],
        "https://wts.example/oauth2/authorize"
    );
    assert!(!sent.form.contains_key("client_secret"));
    s.idp.stop().await;
}

#[tokio::test]
async fn id_tokens_are_verified() {
    let s = setup().await;
    let stranger = TestKey::rsa("idp-key");
    for (token, want) in [
        (id_token(&s, json!({"nonce": "other"})), "nonce"),
        (id_token(&s, json!({"nonce": null})), "nonce"),
        (id_token(&s, json!({"aud": "someone-else"})), "audience"),
        (id_token(&s, json!({"iss": "https://evil.example/user"})), "issuer"),
        (id_token(&s, json!({"exp": NOW})), "expired"),
        (id_token(&s, json!({"exp": null})), "no exp"),
        (id_token(&s, json!({"sub": null})), "sub"),
        (stranger.sign(&json!({"iss": s.idp.issuer(), "sub": "x", "aud": "wts-client", "nonce": "n-1", "exp": NOW + 9})), "signature"),
    ] {
        s.idp.answer_token(200, json!({"refresh_token": "rt", "id_token": token}));
        match s.client.exchange_code(&exchange_request(None)).await {
            Err(ExchangeError::InvalidIdToken(why)) => assert!(why.contains(want), "{want}: {why}"),
            other => panic!("{want}: {other:?}"),
        }
    }
    s.idp.stop().await;
}

#[tokio::test]
async fn missing_fields_errors_and_foreign_callbacks() {
    let s = setup().await;
    s.idp
        .answer_token(200, json!({"access_token": "at", "refresh_token": "rt"}));
    assert_eq!(
        s.client.exchange_code(&exchange_request(None)).await,
        Err(ExchangeError::InvalidResponse("missing id_token".into()))
    );
    s.idp.answer_token(200, json!({"access_token": "at"}));
    assert_eq!(
        s.client.exchange_code(&exchange_request(None)).await,
        Err(ExchangeError::InvalidResponse(
            "missing refresh_token, id_token".into()
        ))
    );
    s.idp.answer_token(400, json!({"error": "invalid_grant"}));
    match s.client.exchange_code(&exchange_request(None)).await {
        Err(ExchangeError::Rejected { status: 400, body }) => {
            assert!(body.contains("invalid_grant"))
        }
        other => panic!("{other:?}"),
    }
    let before = s.idp.requests().len();
    let foreign = exchange_request(Some("https://evil.example"));
    assert!(matches!(
        s.client.exchange_code(&foreign).await,
        Err(ExchangeError::InvalidIdToken(_))
    ));
    assert_eq!(
        s.idp.requests().len(),
        before,
        "the code never reaches the token endpoint"
    );
    s.idp.stop().await;
}

#[tokio::test]
async fn refresh_keeps_rotated_tokens_and_sends_no_user_agent() {
    let s = setup().await;
    s.idp.answer_token(
        200,
        json!({"access_token": "at-2", "refresh_token": "opaque-2", "refresh_expires_in": 3600}),
    );
    let grant = s.client.refresh("opaque-1").await.unwrap();
    assert_eq!(grant.access_token, "at-2");
    let rotated = grant.refresh_token.unwrap();
    assert_eq!(
        (rotated.token.as_str(), rotated.expires, rotated.jti),
        ("opaque-2", Some(NOW + 3600), None)
    );
    let sent = &s.idp.requests()[0];
    assert_eq!(sent.form["grant_type"], "refresh_token");
    assert_eq!(sent.form["refresh_token"], "opaque-1");
    assert_eq!(sent.headers["authorization"], basic());
    assert!(
        !sent
            .headers
            .get("user-agent")
            .is_some_and(|ua| ua.contains("Gen3WTS"))
    );
    s.idp.answer_token(200, json!({"access_token": "at-3"}));
    assert_eq!(
        s.client.refresh("opaque-2").await.unwrap().refresh_token,
        None
    );
    s.idp.answer_token(200, json!({"token_type": "Bearer"}));
    assert!(matches!(
        s.client.refresh("x").await,
        Err(ExchangeError::InvalidResponse(_))
    ));
    s.idp.answer_token(401, json!({"error": "invalid_client"}));
    assert!(matches!(
        s.client.refresh("x").await,
        Err(ExchangeError::Rejected { status: 401, .. })
    ));
    s.idp.stop().await;
}

#[tokio::test]
async fn slow_or_absent_idps_are_unreachable() {
    let s = setup_kind(true, Duration::from_millis(300)).await;
    *s.idp.state.token_delay.lock().unwrap() = Duration::from_secs(3);
    s.idp.answer_token(200, json!({"access_token": "late"}));
    assert_eq!(
        s.client.refresh("x").await,
        Err(ExchangeError::Unreachable("timed out".into()))
    );
    let url = s.idp.url.clone();
    s.idp.stop().await;
    let http = http_client(Duration::from_secs(5)).unwrap();
    let keys = Arc::new(KeyStore::new(http.clone(), Duration::ZERO));
    let gone = OidcClient::new(
        settings(IdpKind::Fence {
            base_url: format!("{url}/user/"),
        }),
        http,
        keys,
        Arc::new(FixedClock(NOW)),
    )
    .unwrap();
    assert!(matches!(
        gone.refresh("x").await,
        Err(ExchangeError::Unreachable(_))
    ));
}

/// `tessera dev` points the commons' IdP at a provider that is not a Fence: its endpoints
/// come from its discovery document, and a Fence without one keeps the fixed paths.
#[tokio::test]
async fn a_fence_kind_idp_uses_the_endpoints_its_discovery_names() {
    let request = AuthorizationRequest {
        state: "st".into(),
        nonce: "no".into(),
        code_challenge: "ch".into(),
    };
    let s = setup().await;
    s.idp.set_discovery(DiscoveryMode::Elsewhere);
    let url = s.client.authorization_url(&request).await.unwrap();
    assert!(
        url.starts_with(&format!("{}/idp/authorize?response_type=code&", s.idp.url)),
        "{url}"
    );
    s.idp.answer_token(
        200,
        json!({"refresh_token": "rt", "id_token": id_token(&s, json!({}))}),
    );
    s.client
        .exchange_code(&exchange_request(None))
        .await
        .unwrap();
    s.client.revoke("rt").await.unwrap();
    let paths: Vec<String> = s.idp.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/idp/token", "/idp/revoke"]);
    s.idp.stop().await;

    let s = setup().await;
    s.idp.set_discovery(DiscoveryMode::Missing);
    let url = s.client.authorization_url(&request).await.unwrap();
    assert!(
        url.starts_with(&format!("{}/user/oauth2/authorize?", s.idp.url)),
        "{url}"
    );
    s.client.revoke("rt").await.unwrap();
    assert_eq!(s.idp.requests()[0].path, "/user/oauth2/revoke");
    s.idp.stop().await;
}

#[tokio::test]
async fn fence_revocation_goes_to_user_oauth2_revoke() {
    let s = setup().await;
    assert_eq!(
        s.client.revocation_endpoint().await.unwrap().as_deref(),
        Some(format!("{}/user/oauth2/revoke", s.idp.url).as_str())
    );
    s.client.revoke("rt-1").await.unwrap();
    let sent = &s.idp.requests()[0];
    assert_eq!(sent.path, "/user/oauth2/revoke");
    assert_eq!(sent.form["token"], "rt-1");
    assert_eq!(sent.form["token_type_hint"], "refresh_token");
    assert_eq!(sent.headers["authorization"], basic());
    *s.idp.state.revoke_status.lock().unwrap() = 503;
    assert!(matches!(
        s.client.revoke("rt-1").await,
        Err(ExchangeError::Rejected { status: 503, .. })
    ));
    s.idp.stop().await;
}

#[tokio::test]
async fn generic_idps_revoke_where_discovery_says_or_not_at_all() {
    let s = setup_kind(false, Duration::from_secs(5)).await;
    s.client.revoke("rt-1").await.unwrap();
    assert_eq!(s.idp.requests()[0].path, "/user/oauth2/revoke");
    // The id token's issuer is accepted from the token endpoint's origin.
    s.idp.answer_token(
        200,
        json!({"refresh_token": "opaque", "id_token": id_token(&s, json!({}))}),
    );
    let grant = s
        .client
        .exchange_code(&exchange_request(None))
        .await
        .unwrap();
    assert_eq!(
        (grant.refresh_token.expires, grant.refresh_token.jti),
        (None, None)
    );
    s.idp.stop().await;
    let s = setup_kind(false, Duration::from_secs(5)).await;
    s.idp.set_discovery(DiscoveryMode::NoRevocation);
    assert!(matches!(
        s.client.revoke("rt-1").await,
        Err(ExchangeError::Unsupported(_))
    ));
    assert!(s.idp.requests().is_empty());
    s.idp.stop().await;
}

#[test]
fn endpoints_must_be_http_urls() {
    let http = http_client(Duration::from_secs(1)).unwrap();
    let keys = Arc::new(KeyStore::new(http.clone(), Duration::ZERO));
    for kind in [
        IdpKind::Fence {
            base_url: "not a url".into(),
        },
        IdpKind::Generic {
            authorization_endpoint: "ftp://x/auth".into(),
            token_endpoint: "https://x/token".into(),
            issuer: None,
            base_url: "https://x/".into(),
        },
    ] {
        assert!(
            OidcClient::new(
                settings(kind),
                http.clone(),
                keys.clone(),
                Arc::new(FixedClock(NOW))
            )
            .is_err()
        );
    }
}

#[tokio::test]
async fn sign_in_completes_the_id_token_from_userinfo_of_the_same_subject() {
    let s = setup_kind(false, Duration::from_secs(5)).await;
    // No refresh token needed; the email is only in userinfo; the id token's name wins.
    s.idp.answer_token(
        200,
        json!({"id_token": id_token(&s, json!({"name": "From Id Token"})), "access_token": "at-1"}),
    );
    *s.idp.state.userinfo.lock().unwrap() =
        json!({"sub": "idp-user-7", "email": "alice@example.test", "name": "From Userinfo"});
    let signed = s.client.sign_in(&exchange_request(None)).await.unwrap();
    assert_eq!(signed.subject, "idp-user-7");
    assert_eq!(signed.claims["email"], "alice@example.test");
    assert_eq!(signed.claims["name"], "From Id Token");
    let userinfo = s
        .idp
        .requests()
        .into_iter()
        .find(|r| r.path == "/user/userinfo")
        .unwrap();
    assert_eq!(userinfo.headers["authorization"], "Bearer at-1");

    // Userinfo of another subject is refused.
    *s.idp.state.userinfo.lock().unwrap() = json!({"sub": "someone-else", "email": "x@y"});
    assert!(matches!(
        s.client.sign_in(&exchange_request(None)).await,
        Err(ExchangeError::InvalidResponse(_))
    ));
    // Without an id token there is no sign-in; the code exchange still needs a refresh token.
    s.idp.answer_token(200, json!({"access_token": "at-1"}));
    assert!(matches!(
        s.client.sign_in(&exchange_request(None)).await,
        Err(ExchangeError::InvalidResponse(m)) if m == "missing id_token"
    ));
    s.idp.answer_token(
        200,
        json!({"id_token": id_token(&s, json!({})), "access_token": "at-1"}),
    );
    assert!(matches!(
        s.client.exchange_code(&exchange_request(None)).await,
        Err(ExchangeError::InvalidResponse(m)) if m == "missing refresh_token"
    ));
    s.idp.stop().await;
}
