//! Introspection mode against the real OpenID Connect provider that `scripts/test-infra up
//! oidc` starts (`TESSERA_TEST_OIDC_ISSUER`): a user logs in with the provider's access
//! token (RFC 7662 introspection, then userinfo for the e-mail address), and the group
//! allowlist fails closed. Without the variable the tests print `SKIPPED: …` and pass, unless
//! `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, assert_refused};
use serde_json::{Value, json};
use tessera_test_support::infra;
use uws::config::{GLOBUS_AUTH, UserAuthentication};

const CLIENT_ID: &str = "test-client";
const CLIENT_SECRET: &str = "test-secret";

async fn access_token(issuer: &str, user: &str, password: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("scope", "openid email profile"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn app(issuer: &str, groups: Vec<String>) -> App {
    let issuer = issuer.to_owned();
    App::spawn_with(move |c| {
        c.api_user_authentication = "globus".into();
        c.available_user_authentication.insert(
            "globus".into(),
            UserAuthentication {
                name: "Globus".into(),
                user_authentication_type: GLOBUS_AUTH.into(),
                connection_details: json!({
                    "introspection_url": format!("{issuer}/token/introspection"),
                    "userinfo_url": format!("{issuer}/me"),
                }),
                client_id: Some(CLIENT_ID.into()),
                client_secret: Some(CLIENT_SECRET.into()),
                authentication_type: Some("token".into()),
                allowed_globus_groups: groups,
            },
        );
    })
    .await
}

#[tokio::test]
async fn a_user_logs_in_with_the_providers_access_token() {
    let Some(issuer) = infra::server(infra::OIDC_ISSUER) else {
        return;
    };
    let app = app(&issuer, vec![]).await;
    assert_refused(
        app.post_json("/tokens/", None, &json!({})).await,
        400,
        "Missing auth_token.",
    );
    assert_refused(
        app.post_json("/tokens/", None, &json!({"auth_token": "not-a-token"}))
            .await,
        401,
        "Incorrect authentication credentials.",
    );
    let token = access_token(&issuer, "alice", "alice-pw").await;
    let (status, body) = app
        .post_json("/tokens/", None, &json!({"auth_token": token}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Successful authentication.");
    let uws_token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(uws_token.len(), 40);
    // The username is the local part of the e-mail address from userinfo.
    let id = app
        .create(&uws_token, &json!({"name": "w", "description": "d"}))
        .await;
    assert!(app.root.join(format!("alice/{id}")).is_dir());
    let bob = access_token(&issuer, "bob", "bob-pw").await;
    let (_, body) = app
        .post_json("/tokens/", None, &json!({"auth_token": bob}))
        .await;
    let bob_token = body["token"].as_str().unwrap().to_owned();
    let (_, users) = app.get("/users/?search=alice", Some(&bob_token)).await;
    let alice = &users["data"]["users"][0];
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.test");
    assert_eq!(alice["first_name"], "Alice");
    // The local mode's fields are not accepted here.
    assert_refused(
        app.post_json("/tokens/", None, &json!({"client_token": app.client_token, "user_info": {"username": "x", "email": "x@y"}})).await,
        400,
        "Missing auth_token.",
    );
    app.stop().await;
}

#[tokio::test]
async fn the_group_allowlist_fails_closed() {
    let Some(issuer) = infra::server(infra::OIDC_ISSUER) else {
        return;
    };
    let app = app(&issuer, vec!["hubmap-workspaces".into()]).await;
    let token = access_token(&issuer, "alice", "alice-pw").await;
    assert_refused(
        app.post_json("/tokens/", None, &json!({"auth_token": token}))
            .await,
        403,
        "User is not a member of the allowed groups.",
    );
    app.stop().await;
}
