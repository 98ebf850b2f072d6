//! OIDC access (v0.4) against a real OpenID provider on loopback (the npm `oidc-provider`
//! that `scripts/test-infra up oidc` starts; `TESSERA_TEST_OIDC_ISSUER`). Tokens come from
//! its password grant for the resource `urn:ogdc`, which `scripts/infra/oidc/op.mjs` issues
//! as Keycloak-shaped JWTs (`aud` and `azp` the client id, `ogdc:admin` when asked for).
//!
//!
//! The browser login (`/login` → the provider's pages → `/authorize` → `/refresh`) uses
//! op.mjs's `ogdc-client`, whose requests without `resource` get urn:ogdc JWTs (v0.4
//! clients send none), and `tessera-test-support`'s [`Browser`] at the provider's forms.
//!
//! Without `TESSERA_TEST_OIDC_ISSUER` the tests print `SKIPPED: …` and pass, unless
//! `TESSERA_REQUIRE_INFRA=1`; likewise when the provider issues no such tokens (an older
//! op.mjs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{App, meta, spawn_with};
use ogdc::{OgdcConfig, Overrides};
use serde_json::{Value, json};
use tessera_test_support::browser::Browser;
use tessera_test_support::infra;
use tessera_tokens::Clock;

const CLIENT_ID: &str = "test-client";
const CLIENT_SECRET: &str = "test-secret";
/// op.mjs's client whose requests without `resource` are for urn:ogdc (as v0.4's are).
const OGDC_CLIENT_ID: &str = "ogdc-client";
const OGDC_CLIENT_SECRET: &str = "ogdc-secret";
/// `/authorize`, as op.mjs registers it for the ogdc client (any loopback port).
const CALLBACK: &str = "http://127.0.0.1:9999/authorize";

/// The provider's issuer, when one is configured (one that does not answer is skipped by
/// [`ogdc_token`], which cannot get a token from it).
fn issuer() -> Option<String> {
    infra::server(infra::OIDC_ISSUER).map(|issuer| issuer.trim_end_matches('/').to_owned())
}

/// An access token of `user` from the provider's password grant.
async fn provider_token(
    issuer: &str,
    user: &str,
    scope: &str,
    resource: Option<&str>,
) -> Result<String, String> {
    let body = provider_grant(issuer, CLIENT_ID, user, scope, resource).await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access token: {body}"))
}

/// The answer of the provider's password grant to `client_id` for `user`.
async fn provider_grant(
    issuer: &str,
    client_id: &str,
    user: &str,
    scope: &str,
    resource: Option<&str>,
) -> Result<Value, String> {
    let secret = if client_id == OGDC_CLIENT_ID {
        OGDC_CLIENT_SECRET
    } else {
        CLIENT_SECRET
    };
    let mut form = vec![
        ("grant_type", "password"),
        ("username", user),
        (
            "password",
            if user == "alice" {
                "alice-pw"
            } else {
                "bob-pw"
            },
        ),
        ("scope", scope),
    ];
    if let Some(resource) = resource {
        form.push(("resource", resource));
    }
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// An ogdc token of `user` (with the admin scope when `admin`), or `None` (skipped) when the
/// provider issues no Keycloak-shaped JWTs for `urn:ogdc`.
async fn ogdc_token(test: &str, issuer: &str, user: &str, admin: bool) -> Option<String> {
    let scope = if admin { "openid ogdc:admin" } else { "openid" };
    match provider_token(issuer, user, scope, Some("urn:ogdc")).await {
        Ok(token) if claims(&token)["azp"] == json!(CLIENT_ID) => Some(token),
        Ok(token) => {
            infra::skip(
                test,
                &format!("the provider's urn:ogdc token is not a JWT with azp: {token}"),
            );
            None
        }
        Err(e) => {
            infra::skip(test, &format!("no urn:ogdc token: {e}"));
            None
        }
    }
}

fn secrets(dir: &Path, issuer: &str, client_id: &str) -> String {
    let path = dir.join("client_secrets.json");
    std::fs::write(
        &path,
        json!({
            "server_metadata_url": format!("{issuer}/.well-known/openid-configuration"),
            "client_id": client_id,
            "client_secret": if client_id == OGDC_CLIENT_ID { OGDC_CLIENT_SECRET } else { CLIENT_SECRET },
            "redirect_uris": [CALLBACK],
        })
        .to_string(),
    )
    .unwrap();
    path.display().to_string()
}

/// The app in OIDC mode for `client_id`, without any password secret.
async fn oidc_app(issuer: &str, client_id: &str, overrides: Overrides) -> App {
    oidc_app_keyed(issuer, client_id, "", overrides).await
}

/// [`oidc_app`] whose login cookies are signed with `secret_key` (random when empty).
async fn oidc_app_keyed(
    issuer: &str,
    client_id: &str,
    secret_key: &str,
    overrides: Overrides,
) -> App {
    let issuer = issuer.to_owned();
    let client_id = client_id.to_owned();
    let secret_key = secret_key.to_owned();
    spawn_with(
        move |c: &mut OgdcConfig, dir: &Path| {
            c.oidc_client_secrets_file = secrets(dir, &issuer, &client_id);
            c.jwt_secret_key = "".into();
            c.admin_password = "".into();
            c.secret_key = secret_key.into();
        },
        overrides,
    )
    .await
}

async fn call(app: &App, method: &str, path: &str, token: Option<&str>) -> (u16, Value, String) {
    let url = format!("{}{path}", app.url);
    let mut request = match method {
        "POST" => app.client.post(url).json(&json!({"recipe_path": "x"})),
        _ => app.client.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.json().await.unwrap_or(Value::Null), www)
}

fn unauthorized(detail: &str) -> (u16, Value, String) {
    (401, json!({ "detail": detail }), "Bearer".to_owned())
}

#[tokio::test]
async fn provider_tokens_authenticate_users_and_the_admin_scope_makes_admins() {
    let test = "provider_tokens_authenticate_users_and_the_admin_scope_makes_admins";
    let Some(issuer) = issuer() else {
        return;
    };
    let Some(alice) = ogdc_token(test, &issuer, "alice", false).await else {
        return;
    };
    let bob = ogdc_token(test, &issuer, "bob", false).await.unwrap();
    let bob_admin = ogdc_token(test, &issuer, "bob", true).await.unwrap();
    let app = oidc_app(&issuer, CLIENT_ID, Overrides::default()).await;

    // The owner is the token's sub.
    assert_eq!(
        app.get("/user", &alice).await,
        (200, json!({"current_user": "alice"}))
    );
    let input = common::input_server("ice.csv", "x\n").await;
    app.recipe(
        "ice",
        &meta("Ice", &input, "temporary"),
        "cp /input_dir/ice.csv /output_dir/\n",
    );
    let (status, body) = app.submit(&alice, "ice").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&alice, &name).await, "Succeeded");
    let (status, body) = app.get(&format!("/output/{name}"), &alice).await;
    assert_eq!(status, 200, "{body}");
    let (status, runs) = app.get("/runs", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(runs[0]["owner"], json!("alice"));

    // Another user neither sees alice's run nor may use the admin route: a valid token
    // without the scope is 403, not 401.
    assert_eq!(app.get("/runs", &bob).await, (200, json!([])));
    assert_eq!(
        app.get(&format!("/status/{name}"), &bob).await,
        (
            404,
            json!({"detail": format!("Workflow {name} not found.")})
        )
    );
    for token in [&alice, &bob] {
        assert_eq!(
            app.get("/admin/runs", token).await,
            (
                403,
                json!({"detail": "The access token lacks the required scope ogdc:admin."})
            )
        );
    }
    // The admin scope: every run, and another's run's status.
    let (status, runs) = app.get("/admin/runs", &bob_admin).await;
    assert_eq!(status, 200);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["recipe_workflow_name"], json!(name));
    let (status, body) = app.get(&format!("/status/{name}"), &bob_admin).await;
    assert_eq!((status, &body["status"]), (200, &json!("Succeeded")));
    // A provider account named "admin" would not be the password-mode admin either: being
    // an admin is the scope, never the name (unit-tested in tessera-recipes).

    // No password login and no user table.
    for path in ["/token", "/create_user"] {
        let response = app
            .client
            .post(format!("{}{path}", app.url))
            .bearer_auth(&bob_admin)
            .form(&[("username", "eve"), ("password", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "Not Found"})
        );
    }
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn missing_garbage_foreign_and_expired_tokens_are_401() {
    let test = "missing_garbage_foreign_and_expired_tokens_are_401";
    let Some(issuer) = issuer() else {
        return;
    };
    let Some(alice) = ogdc_token(test, &issuer, "alice", true).await else {
        return;
    };
    let app = oidc_app(&issuer, CLIENT_ID, Overrides::default()).await;
    let routes = [
        ("GET", "/user"),
        ("POST", "/submit"),
        ("GET", "/runs"),
        ("GET", "/admin/runs"),
    ];
    for (method, path) in routes {
        assert_eq!(
            call(&app, method, path, None).await,
            unauthorized("Not authenticated"),
            "{path}"
        );
    }
    // The provider's other tokens: a JWT for another audience (urn:gen3, aud gen3, no azp)
    // and an opaque one.
    let gen3 = provider_token(&issuer, "alice", "openid", Some("urn:gen3"))
        .await
        .unwrap();
    let opaque = provider_token(&issuer, "alice", "openid", None)
        .await
        .unwrap();
    // A token claiming another issuer (refused before any key is fetched), and one with a
    // broken signature.
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let mut foreign_claims = claims(&alice);
    foreign_claims["iss"] = json!("https://idp.example/realms/ogdc");
    let foreign = format!(
        "{}.{}.c2ln",
        part(json!({"alg": "RS256", "kid": "k"})),
        part(foreign_claims)
    );
    let (head, rest) = alice.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut tampered_claims = claims(&alice);
    tampered_claims["sub"] = json!("bob");
    let tampered = format!("{head}.{}.{signature}", part(tampered_claims));
    for token in [
        "garbage",
        "a.b.c",
        gen3.as_str(),
        opaque.as_str(),
        foreign.as_str(),
        tampered.as_str(),
    ] {
        for (method, path) in routes {
            assert_eq!(
                call(&app, method, path, Some(token)).await,
                unauthorized("Could not validate credentials."),
                "{path} {token}"
            );
        }
    }
    // The same valid token passes here…
    assert_eq!(call(&app, "GET", "/user", Some(&alice)).await.0, 200);
    app.running.stop().await.unwrap();

    // …but not for another client (aud and azp name test-client)…
    let other = oidc_app(&issuer, "other-client", Overrides::default()).await;
    assert_eq!(
        call(&other, "GET", "/user", Some(&alice)).await,
        unauthorized("Could not validate credentials.")
    );
    other.running.stop().await.unwrap();

    // …nor once it has expired (the provider's tokens live 10 minutes).
    #[derive(Debug)]
    struct InAnHour;
    impl Clock for InAnHour {
        fn now(&self) -> i64 {
            tessera_tokens::SystemClock.now() + 3600
        }
    }
    let later = oidc_app(
        &issuer,
        CLIENT_ID,
        Overrides {
            clock: Some(Arc::new(InAnHour)),
            ..Overrides::default()
        },
    )
    .await;
    assert_eq!(
        call(&later, "GET", "/user", Some(&alice)).await,
        unauthorized("Could not validate credentials.")
    );
    later.running.stop().await.unwrap();
}

/// The provider's issuer when it answers (a login needs its pages), else a skip.
async fn live_issuer(test: &str) -> Option<String> {
    let issuer = issuer()?;
    match reqwest::get(format!("{issuer}/.well-known/openid-configuration")).await {
        Ok(r) if r.status().is_success() => Some(issuer),
        other => {
            infra::skip(test, &format!("the provider does not answer: {other:?}"));
            None
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `GET /login` in `browser`: the provider's authorization URL and its query.
async fn start_login(browser: &mut Browser, app: &App) -> (String, BTreeMap<String, String>) {
    let request = browser.client().get(format!("{}/login", app.url));
    let r = browser.send(request).await;
    assert_eq!(r.status(), 302);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let location = header(&r, "location");
    let query = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    (location, query)
}

/// `GET /authorize?<query>` in `browser`: status and body.
async fn authorize(browser: &mut Browser, app: &App, query: &str) -> (u16, Value) {
    let request = browser
        .client()
        .get(format!("{}/authorize?{query}", app.url));
    let r = browser.send(request).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `POST /refresh` with `body` (raw, JSON or not).
async fn refresh(app: &App, body: &str) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/refresh", app.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn detail(status: u16, detail: &str) -> (u16, Value) {
    (status, json!({ "detail": detail }))
}

#[tokio::test]
async fn the_browser_login_gives_tokens_that_work_and_refresh_them() {
    let test = "the_browser_login_gives_tokens_that_work_and_refresh_them";
    let Some(issuer) = live_issuer(test).await else {
        return;
    };
    let app = oidc_app(&issuer, OGDC_CLIENT_ID, Overrides::default()).await;

    // 1. /login: to the provider, with state, nonce and PKCE, the state in a signed cookie.
    let mut browser = Browser::new();
    let request = browser.client().get(format!("{}/login", app.url));
    let r = browser.send(request).await;
    assert_eq!(r.status(), 302);
    let cookie = header(&r, "set-cookie");
    assert!(cookie.starts_with("ogdc_login="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    let auth_url = header(&r, "location");
    assert!(
        auth_url.starts_with(&format!("{issuer}/auth?")),
        "{auth_url}"
    );
    let query: BTreeMap<String, String> = reqwest::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], OGDC_CLIENT_ID);
    assert_eq!(query["redirect_uri"], CALLBACK);
    assert_eq!(query["scope"], "openid email profile ogdc:admin");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].len() >= 30 && query.contains_key("nonce"));
    assert!(!query.contains_key("resource"), "v0.4 clients send none");

    // 2. The provider's login pages, 3. back to /authorize with the cookie.
    let callback = browser
        .log_in_to(&issuer, &auth_url, "alice", "alice-pw", CALLBACK)
        .await;
    let request = browser.client().get(format!(
        "{}/authorize?{}",
        app.url,
        callback.query().unwrap()
    ));
    let r = browser.send(request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert!(
        header(&r, "set-cookie").starts_with("ogdc_login=; Path=/; Max-Age=0"),
        "the login's cookie is cleared"
    );
    assert_eq!(browser.cookie("ogdc_login"), None);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Login successful", "{body}");
    assert_eq!(
        body["token"].as_object().unwrap().len(),
        2,
        "access and refresh token only: {body}"
    );
    let access = body["token"]["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["token"]["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["aud"], OGDC_CLIENT_ID);

    // 4. The access token works on protected routes; it has the admin scope.
    assert_eq!(
        app.get("/user", &access).await,
        (200, json!({"current_user": "alice"}))
    );
    assert_eq!(app.get("/runs", &access).await, (200, json!([])));
    assert_eq!(app.get("/admin/runs", &access).await, (200, json!([])));

    // The same callback again: its session is gone.
    assert_eq!(
        authorize(&mut browser, &app, callback.query().unwrap()).await,
        detail(
            400,
            "No login in progress: the login session cookie is missing, expired or invalid."
        )
    );

    // 5. /refresh gives a new access token that works; a narrower scope drops the admin.
    let (status, body) = refresh(&app, &json!({"refresh_token": refresh_token}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Token refreshed");
    let renewed = body["token"]["access_token"].as_str().unwrap();
    assert_ne!(renewed, access);
    assert!(body["token"]["refresh_token"].as_str().is_some(), "{body}");
    assert_eq!(
        app.get("/user", renewed).await,
        (200, json!({"current_user": "alice"}))
    );
    assert_eq!(app.get("/admin/runs", renewed).await.0, 200);
    let (status, body) = refresh(
        &app,
        &json!({"refresh_token": refresh_token, "scope": "openid"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let narrow = body["token"]["access_token"].as_str().unwrap();
    assert_eq!(app.get("/runs", narrow).await, (200, json!([])));
    assert_eq!(
        app.get("/admin/runs", narrow).await,
        detail(403, "The access token lacks the required scope ogdc:admin.")
    );
    // A scope the login was not granted.
    assert_eq!(
        refresh(
            &app,
            &json!({"refresh_token": refresh_token, "scope": "openid other:scope"}).to_string()
        )
        .await,
        detail(
            400,
            "The identity provider refused the scope (invalid_scope)."
        )
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn login_callbacks_without_the_session_or_with_another_state_or_code_are_refused() {
    let test = "login_callbacks_without_the_session_or_with_another_state_or_code_are_refused";
    let Some(issuer) = live_issuer(test).await else {
        return;
    };
    const KEY: &str = "a shared login key";
    let app = oidc_app_keyed(&issuer, OGDC_CLIENT_ID, KEY, Overrides::default()).await;
    let no_session = detail(
        400,
        "No login in progress: the login session cookie is missing, expired or invalid.",
    );

    // Without the cookie (another browser), whatever the query.
    let mut stranger = Browser::new();
    assert_eq!(
        authorize(&mut stranger, &app, "code=abc&state=xyz").await,
        no_session
    );
    assert_eq!(authorize(&mut stranger, &app, "").await, no_session);

    // Another state (a stray or forged callback) leaves the login in progress alone.
    let mut browser = Browser::new();
    let (_, query) = start_login(&mut browser, &app).await;
    let state = query["state"].clone();
    for bad in ["code=abc&state=other", "code=abc"] {
        assert_eq!(
            authorize(&mut browser, &app, bad).await,
            detail(400, "The state does not match the login in progress."),
            "{bad}"
        );
    }
    assert!(browser.cookie("ogdc_login").is_some(), "still in progress");

    // The same cookie at a service with another key, or once expired, is no session.
    let cookie = format!("ogdc_login={}", browser.cookie("ogdc_login").unwrap());
    let other_key =
        oidc_app_keyed(&issuer, OGDC_CLIENT_ID, "another key", Overrides::default()).await;
    #[derive(Debug)]
    struct InTenMinutes;
    impl Clock for InTenMinutes {
        fn now(&self) -> i64 {
            tessera_tokens::SystemClock.now() + 601
        }
    }
    let later = oidc_app_keyed(
        &issuer,
        OGDC_CLIENT_ID,
        KEY,
        Overrides {
            clock: Some(Arc::new(InTenMinutes)),
            ..Overrides::default()
        },
    )
    .await;
    for other in [&other_key, &later] {
        let r = other
            .client
            .get(format!("{}/authorize?code=abc&state={state}", other.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), r.json::<Value>().await.unwrap()),
            no_session
        );
    }
    other_key.running.stop().await.unwrap();
    later.running.stop().await.unwrap();

    // The provider's error, no code, a code it refuses: 400, and the login is over.
    let refused = [
        (
            format!("state={state}&error=access_denied&error_description=no+thanks"),
            "The identity provider refused the login: access_denied no thanks.",
        ),
        (
            format!("state={state}"),
            "The callback has no authorization code.",
        ),
        (
            format!("state={state}&code=not-a-code"),
            "The identity provider refused the authorization code (invalid_grant).",
        ),
    ];
    for (query, want) in refused {
        let (_, again) = start_login(&mut browser, &app).await;
        let query = query.replace(&state, &again["state"]);
        assert_eq!(
            authorize(&mut browser, &app, &query).await,
            detail(400, want),
            "{query}"
        );
        assert_eq!(browser.cookie("ogdc_login"), None, "{query}");
    }

    // A real code of a login whose state is not this browser's: refused before it is spent…
    let mut other_browser = Browser::new();
    let (other_url, _) = start_login(&mut other_browser, &app).await;
    let callback = other_browser
        .log_in_to(&issuer, &other_url, "bob", "bob-pw", CALLBACK)
        .await;
    let (_, mine) = start_login(&mut browser, &app).await;
    let code: BTreeMap<String, String> = callback.query_pairs().into_owned().collect();
    let forged = format!("code={}&state={}", code["code"], mine["state"]);
    let (status, body) = authorize(&mut browser, &app, &forged).await;
    // …by PKCE and the nonce: the code was issued for the other browser's challenge.
    assert_eq!(status, 400, "{body}");
    // …so the other browser still finishes its login.
    let (status, body) = authorize(&mut other_browser, &app, callback.query().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.get("/user", body["token"]["access_token"].as_str().unwrap())
            .await,
        (200, json!({"current_user": "bob"}))
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn refresh_needs_a_refresh_token_the_provider_accepts() {
    let test = "refresh_needs_a_refresh_token_the_provider_accepts";
    let Some(issuer) = live_issuer(test).await else {
        return;
    };
    let app = oidc_app(&issuer, OGDC_CLIENT_ID, Overrides::default()).await;
    let missing = detail(400, "Missing refresh_token.");
    for body in [
        "{}",
        r#"{"refresh_token": ""}"#,
        r#"{"refresh_token": null}"#,
        r#"{"refresh_token": 7}"#,
        r#"{"scope": "openid"}"#,
    ] {
        assert_eq!(refresh(&app, body).await, missing, "{body}");
    }
    for body in ["", "refresh_token=x", "[]", "\"x\""] {
        let want = if body == "[]" || body == "\"x\"" {
            missing.clone()
        } else {
            detail(400, "The body must be a JSON object with refresh_token.")
        };
        assert_eq!(refresh(&app, body).await, want, "{body:?}");
    }
    assert_eq!(
        refresh(&app, r#"{"refresh_token": "x", "scope": 5}"#).await,
        detail(400, "scope must be a string.")
    );
    // Garbage, and an access token instead of a refresh token: invalid_grant.
    let ours = provider_grant(&issuer, OGDC_CLIENT_ID, "alice", "openid", None)
        .await
        .unwrap();
    let access = ours["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["aud"], OGDC_CLIENT_ID, "{ours}");
    for token in ["garbage", access] {
        assert_eq!(
            refresh(&app, &json!({"refresh_token": token}).to_string()).await,
            detail(401, "The refresh token is invalid or expired."),
            "{token}"
        );
    }
    // Another client's refresh token is not this client's.
    let theirs = provider_grant(&issuer, CLIENT_ID, "alice", "openid", None)
        .await
        .unwrap();
    assert_eq!(
        refresh(
            &app,
            &json!({"refresh_token": theirs["refresh_token"]}).to_string()
        )
        .await,
        detail(401, "The refresh token is invalid or expired.")
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_provider_that_is_down_is_502_and_a_callback_still_needs_its_session() {
    let test = "a_provider_that_is_down_is_502_and_a_callback_still_needs_its_session";
    let Some(issuer) = live_issuer(test).await else {
        return;
    };
    const KEY: &str = "the key of both";
    // A login started while the provider is up…
    let up = oidc_app_keyed(&issuer, OGDC_CLIENT_ID, KEY, Overrides::default()).await;
    let mut browser = Browser::new();
    let (_, query) = start_login(&mut browser, &up).await;
    up.running.stop().await.unwrap();
    // …finishes at a process (same key) whose provider is down: nothing listens there.
    let down_issuer = format!("http://127.0.0.1:{}", common::free_port());
    let down = spawn_with(
        {
            let down_issuer = down_issuer.clone();
            move |c: &mut OgdcConfig, dir: &Path| {
                c.oidc_client_secrets_file = secrets(dir, &down_issuer, OGDC_CLIENT_ID);
                c.jwt_secret_key = "".into();
                c.admin_password = "".into();
                c.secret_key = KEY.into();
                c.oidc_timeout_seconds = 2;
            }
        },
        Overrides::default(),
    )
    .await;
    let failed = detail(
        502,
        "The identity provider could not be reached or answered wrongly.",
    );
    let request = browser.client().get(format!("{}/login", down.url));
    let r = browser.send(request).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "set-cookie"), "", "no session without a login");
    assert_eq!(r.json::<Value>().await.unwrap(), failed.1);
    // The cookie of the login above is still the browser's (a failed /login sets none).
    let state = &query["state"];
    assert_eq!(
        authorize(&mut browser, &down, &format!("code=abc&state={state}")).await,
        failed
    );
    assert_eq!(refresh(&down, r#"{"refresh_token": "x"}"#).await, failed);
    // Still checked first: a missing session or a wrong state is 400, not 502.
    assert_eq!(
        authorize(&mut Browser::new(), &down, "code=abc&state=x")
            .await
            .0,
        400
    );
    down.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_login_routes_exist_only_in_oidc_mode() {
    for mode in ["authenticated", "open", "read_only"] {
        let app = common::spawn(move |c, _| {
            c.access_mode = mode.into();
        })
        .await;
        for (method, path) in [
            ("GET", "/login"),
            ("GET", "/authorize?code=a&state=b"),
            ("POST", "/refresh"),
        ] {
            let url = format!("{}{path}", app.url);
            let request = match method {
                "POST" => app.client.post(url).json(&json!({"refresh_token": "x"})),
                _ => app.client.get(url),
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 404, "{mode} {path}");
        }
        // The document describes them (for the OIDC mode).
        let doc: Value = app
            .client
            .get(format!("{}/openapi.json", app.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for path in ["/login", "/authorize", "/refresh"] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
        app.running.stop().await.unwrap();
    }
}
