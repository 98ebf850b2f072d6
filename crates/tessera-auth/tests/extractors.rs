//! The actix extractors in a real (in-process) app: status, body and headers of every case.

// Helpers outside #[test] functions panic on purpose too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{App, HttpResponse, test, web};
use serde_json::{Map, Value, json};
use tessera_auth::actix::BearerToken;
use tessera_auth::{AuthContext, AuthProvider, ClaimRules, JwtSigner, generate_es256_jwk_pair};

async fn echo_token(token: BearerToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({"token": token.0}))
}

async fn whoami(context: AuthContext) -> HttpResponse {
    HttpResponse::Ok().json(context)
}

fn keys() -> (JwtSigner, AuthProvider) {
    let (private, public) = generate_es256_jwk_pair().unwrap();
    let provider =
        AuthProvider::from_jwk_json(&public, &["ES256".to_owned()], ClaimRules::default()).unwrap();
    (JwtSigner::from_jwk_json(&private).unwrap(), provider)
}

fn claims() -> Map<String, Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    match json!({"id": "u-1", "name": "Jane", "email": "jane@example.org", "iat": now,
                 "exp": now + 600})
    {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Sends GET `path` with an optional Authorization header; returns status, WWW-Authenticate and
/// the JSON body.
async fn call(
    provider: Option<AuthProvider>,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut app = App::new()
        .route("/token", web::get().to(echo_token))
        .route("/me", web::get().to(whoami));
    if let Some(provider) = provider {
        app = app.app_data(web::Data::new(provider));
    }
    let service = test::init_service(app).await;
    let mut request = test::TestRequest::get().uri(path);
    if let Some(value) = authorization {
        request = request.insert_header((AUTHORIZATION, value));
    }
    let response = test::call_service(&service, request.to_request()).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = test::read_body(response).await;
    (status, challenge, serde_json::from_slice(&body).unwrap())
}

fn not_authenticated() -> (StatusCode, Option<String>, Value) {
    (
        StatusCode::UNAUTHORIZED,
        Some("Bearer".to_owned()),
        json!({"detail": "Not authenticated"}),
    )
}

const UNUSABLE_HEADERS: [&str; 9] = [
    "",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    " token",
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "Bearer\tabc",
    "Bearerabc",
];

#[actix_web::test]
async fn bearer_token_is_extracted() {
    for (header, token) in [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("bEaReR abc", "abc"),
        ("Bearer    abc   ", "abc"),
        ("Bearer a b", "a b"),
    ] {
        let (status, challenge, body) = call(None, "/token", Some(header)).await;
        assert_eq!(status, StatusCode::OK, "{header:?}");
        assert_eq!(challenge, None);
        assert_eq!(body, json!({"token": token}), "{header:?}");
    }
}

#[actix_web::test]
async fn bearer_token_missing_or_unusable_is_401_with_challenge() {
    assert_eq!(call(None, "/token", None).await, not_authenticated());
    for header in UNUSABLE_HEADERS {
        assert_eq!(
            call(None, "/token", Some(header)).await,
            not_authenticated(),
            "{header:?}"
        );
    }
}

#[actix_web::test]
async fn auth_context_from_a_valid_token() {
    let (signer, provider) = keys();
    let token = signer.sign(&claims()).unwrap();
    let (status, challenge, body) =
        call(Some(provider), "/me", Some(&format!("Bearer  {token} "))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(challenge, None);
    assert_eq!(body["id"], "u-1");
    assert_eq!(body["email"], "jane@example.org");
    assert_eq!(body["roles"], json!([]));
    assert_eq!(body["title"], Value::Null);
}

#[actix_web::test]
async fn auth_context_without_credentials_is_401_with_challenge() {
    let (_, provider) = keys();
    assert_eq!(
        call(Some(provider.clone()), "/me", None).await,
        not_authenticated()
    );
    for header in UNUSABLE_HEADERS {
        assert_eq!(
            call(Some(provider.clone()), "/me", Some(header)).await,
            not_authenticated(),
            "{header:?}"
        );
    }
}

#[actix_web::test]
async fn auth_context_with_a_bad_token_is_401_without_challenge() {
    let (signer, provider) = keys();
    let (other_signer, _) = keys();
    let mut expired = claims();
    expired.insert("exp".to_owned(), json!(1_000));
    let mut incomplete = claims();
    incomplete.remove("name");
    let tokens = [
        "garbage".to_owned(),
        "a.b.c.d.e".to_owned(),
        other_signer.sign(&claims()).unwrap(),
        signer.sign(&expired).unwrap(),
        signer.sign(&incomplete).unwrap(),
    ];
    for token in tokens {
        let (status, challenge, body) = call(
            Some(provider.clone()),
            "/me",
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(challenge, None, "{token}");
        assert_eq!(
            body,
            json!({"detail": "Invalid authentication credentials"}),
            "{token}"
        );
    }
}

#[actix_web::test]
async fn auth_context_without_a_provider_is_500() {
    let (signer, _) = keys();
    let token = signer.sign(&claims()).unwrap();
    let (status, challenge, body) = call(None, "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(challenge, None);
    assert_eq!(body, json!({"message": "Internal Server Error."}));
}
