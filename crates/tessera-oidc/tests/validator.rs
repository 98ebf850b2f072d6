//! The access-token rules against an in-test IdP serving discovery and keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{DiscoveryMode, FakeIdp, FixedClock, NOW, TestKey, access_claims, forge};
use serde_json::{Value, json};
use tessera_oidc::{AccessTokenRules, JwtAccessTokenValidator, KeyStore, http_client};
use tessera_tokens::{AccessTokenValidator, Identity};

struct Setup {
    idp: FakeIdp,
    key: TestKey,
    keys: Arc<KeyStore>,
    validator: JwtAccessTokenValidator,
}

async fn setup_with(min_refresh: Duration, rules: impl FnOnce(&mut AccessTokenRules)) -> Setup {
    let idp = FakeIdp::start().await;
    let key = TestKey::rsa("key-1");
    idp.set_jwks(vec![key.public_jwk.clone()]);
    let keys = Arc::new(KeyStore::new(
        http_client(Duration::from_secs(5)).unwrap(),
        min_refresh,
    ));
    let mut r = AccessTokenRules {
        allowed_issuers: vec![idp.issuer()],
        ..AccessTokenRules::default()
    };
    rules(&mut r);
    let validator = JwtAccessTokenValidator::new(r, keys.clone(), Arc::new(FixedClock(NOW)));
    Setup {
        idp,
        key,
        keys,
        validator,
    }
}

async fn setup() -> Setup {
    setup_with(Duration::ZERO, |_| {}).await
}

fn with(mut claims: serde_json::Map<String, Value>, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.remove(k);
        } else {
            claims.insert(k.clone(), v.clone());
        }
    }
    Value::Object(claims)
}

async fn refusal(s: &Setup, token: &str) -> String {
    match s.validator.validate(token).await {
        Ok(identity) => panic!("accepted: {identity:?}"),
        Err(e) => e.0,
    }
}

#[tokio::test]
async fn a_valid_token_gives_the_identity() {
    let s = setup().await;
    let token = s.key.sign(&Value::Object(access_claims(&s.idp.issuer())));
    let identity = s.validator.validate(&token).await.unwrap();
    assert_eq!(
        identity,
        Identity {
            subject: "42".into(),
            username: "alice@example.org".into()
        }
    );
    // A string scope and a string audience work too; the keys are cached.
    let token = s.key.sign(&with(
        access_claims(&s.idp.issuer()),
        json!({"scope": "user openid", "aud": "gen3"}),
    ));
    s.validator.validate(&token).await.unwrap();
    assert_eq!(s.keys.fetch_count(), 1);
    s.idp.stop().await;
}

#[tokio::test]
async fn a_foreign_issuer_is_refused_before_any_key_is_fetched() {
    let s = setup().await;
    for iss in [
        json!("https://evil.example/user"),
        json!(format!("{}/other", s.idp.url)),
        // Compared exactly, as authutils does: a trailing slash is another issuer.
        json!(format!("{}/", s.idp.issuer())),
        Value::Null,
        json!(5),
    ] {
        let token = s
            .key
            .sign(&with(access_claims(&s.idp.issuer()), json!({ "iss": iss })));
        let why = refusal(&s, &token).await;
        assert!(why.contains("issuer"), "{iss}: {why}");
    }
    assert_eq!(s.idp.key_fetches(), 0);
    assert_eq!(s.keys.fetch_count(), 0);
    s.idp.stop().await;
}

#[tokio::test]
async fn only_allowed_algorithms_and_fitting_keys_pass() {
    let s = setup().await;
    let ec = TestKey::es256("ec-1");
    s.idp
        .set_jwks(vec![s.key.public_jwk.clone(), ec.public_jwk.clone()]);
    let claims = Value::Object(access_claims(&s.idp.issuer()));
    let why = refusal(&s, &ec.sign(&claims)).await;
    assert!(why.contains("algorithm ES256 is not allowed"), "{why}");
    for alg in ["HS256", "none"] {
        let token = forge(json!({"alg": alg, "kid": "key-1"}), &claims, b"sig");
        let why = refusal(&s, &token).await;
        assert!(why.contains("not allowed"), "{alg}: {why}");
    }
    // An RS256 header over the EC key's kid: the key does not fit the algorithm.
    let confused = s
        .key
        .sign_with_header(json!({"alg": "RS256", "kid": "ec-1"}), &claims);
    let why = refusal(&s, &confused).await;
    assert!(why.contains("does not fit"), "{why}");
    // ES256 may be allowed explicitly.
    let es = setup_with(Duration::ZERO, |r| {
        r.algorithms = vec!["RS256".into(), "ES256".into()]
    })
    .await;
    es.idp.set_jwks(vec![ec.public_jwk.clone()]);
    es.validator
        .validate(&ec.sign(&Value::Object(access_claims(&es.idp.issuer()))))
        .await
        .unwrap();
    s.idp.stop().await;
    es.idp.stop().await;
}

#[tokio::test]
async fn times_are_checked_without_leeway_and_exp_is_required() {
    let s = setup().await;
    let iss = s.idp.issuer();
    for (changes, want) in [
        (json!({"exp": NOW}), "expired"),
        (json!({"exp": NOW - 3600}), "expired"),
        (json!({"exp": null}), "no exp"),
        (json!({"exp": "9999999999"}), "must be a number"),
        (json!({"nbf": NOW + 1}), "not valid before"),
        (json!({"iat": NOW + 1}), "issued in the future"),
    ] {
        let why = refusal(&s, &s.key.sign(&with(access_claims(&iss), changes.clone()))).await;
        assert!(why.contains(want), "{changes}: {why}");
    }
    s.validator
        .validate(&s.key.sign(&with(
            access_claims(&iss),
            json!({"exp": NOW + 1, "nbf": NOW, "iat": NOW}),
        )))
        .await
        .unwrap();
    s.idp.stop().await;
}

#[tokio::test]
async fn scope_purpose_audience_and_identity_claims_are_required() {
    let s = setup().await;
    let iss = s.idp.issuer();
    for (changes, want) in [
        (json!({"scope": ["user", "data"]}), "scope"),
        (json!({"scope": null}), "scope"),
        (json!({"pur": "refresh"}), "purpose"),
        (json!({"pur": null}), "purpose"),
        (json!({"aud": ["other"]}), "audience"),
        (json!({"aud": null}), "audience"),
        (json!({"sub": null}), "sub"),
        (json!({"context": {"user": {}}}), "context.user.name"),
    ] {
        let why = refusal(&s, &s.key.sign(&with(access_claims(&iss), changes.clone()))).await;
        assert!(why.contains(want), "{changes}: {why}");
    }
    let no_aud = setup_with(Duration::ZERO, |r| r.audience = None).await;
    no_aud.idp.set_jwks(vec![s.key.public_jwk.clone()]);
    let token = s.key.sign(&with(
        access_claims(&no_aud.idp.issuer()),
        json!({"aud": null}),
    ));
    no_aud.validator.validate(&token).await.unwrap();
    s.idp.stop().await;
    no_aud.idp.stop().await;
}

#[tokio::test]
async fn a_bad_signature_or_malformed_token_is_refused() {
    let s = setup().await;
    let token = s.key.sign(&Value::Object(access_claims(&s.idp.issuer())));
    let (head, _) = token.rsplit_once('.').unwrap();
    let other = TestKey::rsa("key-1").sign(&Value::Object(access_claims(&s.idp.issuer())));
    let (_, foreign_sig) = other.rsplit_once('.').unwrap();
    let why = refusal(&s, &format!("{head}.{foreign_sig}")).await;
    assert!(why.contains("invalid signature"), "{why}");
    for bad in ["", "a.b", "x.y.z", "Bearer abc"] {
        refusal(&s, bad).await;
    }
    s.idp.stop().await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_one_refresh() {
    let s = setup().await;
    let claims = Value::Object(access_claims(&s.idp.issuer()));
    s.validator.validate(&s.key.sign(&claims)).await.unwrap();
    assert_eq!(s.keys.fetch_count(), 1);
    let stranger = TestKey::rsa("key-unknown");
    let why = refusal(&s, &stranger.sign(&claims)).await;
    assert!(why.contains("key-unknown"), "{why}");
    assert_eq!(s.keys.fetch_count(), 2, "exactly one refresh");
    // A rotated key is picked up by that same refresh.
    let rotated = TestKey::rsa("key-2");
    s.idp
        .set_jwks(vec![s.key.public_jwk.clone(), rotated.public_jwk.clone()]);
    s.validator.validate(&rotated.sign(&claims)).await.unwrap();
    assert_eq!(s.keys.fetch_count(), 3);
    s.idp.stop().await;
}

#[tokio::test]
async fn unknown_kids_cannot_force_refreshes_within_the_interval() {
    let s = setup_with(Duration::from_secs(3600), |_| {}).await;
    let claims = Value::Object(access_claims(&s.idp.issuer()));
    s.validator.validate(&s.key.sign(&claims)).await.unwrap();
    let fetches = s.idp.key_fetches();
    for i in 0..5 {
        refusal(
            &s,
            &TestKey::es256(&format!("x{i}"))
                .sign_with_header(json!({"alg": "RS256", "kid": format!("x{i}")}), &claims),
        )
        .await;
    }
    assert_eq!(s.keys.fetch_count(), 1);
    assert_eq!(s.idp.key_fetches(), fetches);
    s.idp.stop().await;
}

#[tokio::test]
async fn fence_key_lists_are_used_when_discovery_fails() {
    let s = setup().await;
    s.idp.set_discovery(DiscoveryMode::Missing);
    *s.idp.state.fence_keys.lock().unwrap() = json!({"keys": [["key-1", s.key.public_pem]]});
    let token = s.key.sign(&Value::Object(access_claims(&s.idp.issuer())));
    s.validator.validate(&token).await.unwrap();
    assert_eq!(
        s.idp
            .state
            .fence_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        s.idp
            .state
            .jwks_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    s.idp.stop().await;
}

#[tokio::test]
async fn a_discovery_document_without_jwks_uri_fails_validation() {
    let s = setup().await;
    s.idp.set_discovery(DiscoveryMode::NoJwksUri);
    *s.idp.state.fence_keys.lock().unwrap() = json!({"keys": [["key-1", s.key.public_pem]]});
    let token = s.key.sign(&Value::Object(access_claims(&s.idp.issuer())));
    let why = refusal(&s, &token).await;
    assert!(why.contains("jwks_uri"), "{why}");
    assert_eq!(
        s.idp
            .state
            .fence_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    s.idp.stop().await;
}

#[tokio::test]
async fn the_authorized_party_is_checked_when_the_rules_name_one() {
    // Keycloak-shaped rules: aud and azp are the client, no Fence purpose, no scope needed.
    let s = setup_with(Duration::ZERO, |r| {
        r.audience = Some("ogdc-client".into());
        r.authorized_party = Some("ogdc-client".into());
        r.purpose = None;
        r.scope = None;
        r.username_claim = "sub".into();
    })
    .await;
    let iss = s.idp.issuer();
    let keycloak = json!({
        "aud": ["ogdc-client", "account"], "azp": "ogdc-client", "pur": null,
        "scope": "email profile", "context": null,
    });
    let verified = s
        .validator
        .verify(&s.key.sign(&with(access_claims(&iss), keycloak.clone())))
        .await
        .unwrap();
    assert_eq!(verified.identity.subject, "42");
    assert_eq!(verified.identity.username, "42");
    assert_eq!(verified.scopes, ["email", "profile"]);
    for (changes, want) in [
        (
            json!({"azp": "other-client"}),
            "authorized party (azp) is not ogdc-client",
        ),
        (
            json!({"azp": null}),
            "authorized party (azp) is not ogdc-client",
        ),
        (json!({"azp": ["ogdc-client"]}), "authorized party"),
        (
            json!({"aud": "account"}),
            "audience does not include ogdc-client",
        ),
    ] {
        let base = with(access_claims(&iss), keycloak.clone());
        let claims = with(base.as_object().unwrap().clone(), changes.clone());
        let why = refusal(&s, &s.key.sign(&claims)).await;
        assert!(why.contains(want), "{changes}: {why}");
    }
    // The default rules ignore azp.
    let default = setup().await;
    let token = default.key.sign(&with(
        access_claims(&default.idp.issuer()),
        json!({"azp": "anyone"}),
    ));
    default.validator.validate(&token).await.unwrap();
    s.idp.stop().await;
    default.idp.stop().await;
}

#[tokio::test]
async fn a_required_scope_is_checked_per_operation_on_a_verified_token() {
    let s = setup_with(Duration::ZERO, |r| r.scope = None).await;
    let iss = s.idp.issuer();
    let admin = s
        .validator
        .verify(&s.key.sign(&with(
            access_claims(&iss),
            json!({"scope": "openid ogdc:admin"}),
        )))
        .await
        .unwrap();
    assert!(admin.require_scope("ogdc:admin").is_ok());
    // Without the scope the token is still valid (no 401), but the operation is refused.
    let plain = s
        .validator
        .verify(
            &s.key
                .sign(&with(access_claims(&iss), json!({"scope": null}))),
        )
        .await
        .unwrap();
    assert!(plain.scopes.is_empty());
    let missing = plain.require_scope("ogdc:admin").unwrap_err();
    assert_eq!(missing.0, "ogdc:admin");
    assert_eq!(
        missing.to_string(),
        "the token's scope does not include ogdc:admin"
    );
    // A prefix of a scope is not the scope.
    let near = s
        .validator
        .verify(
            &s.key
                .sign(&with(access_claims(&iss), json!({"scope": "ogdc:admins"}))),
        )
        .await
        .unwrap();
    assert!(near.require_scope("ogdc:admin").is_err());
    s.idp.stop().await;
}
