//! Every route of the real app (port 0, fresh embedded store) with mocked IdPs: status codes,
//! bodies and headers, error cases first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{App, call, header, json, now, spawn};
use serde_json::{Value, json};
use tessera_tokens::ports::MockTokenExchange;
use tessera_tokens::{
    Cipher, CodeGrant, ExchangeError, IssuedRefreshToken, RefreshGrant, TokenExchange,
};

const DAY: i64 = 86_400;
const FORBIDDEN: &str = "You don't have access to this resource: ";

fn refreshing() -> Arc<dyn TokenExchange> {
    let mut x = MockTokenExchange::new();
    x.expect_refresh().returning(|rt| {
        Ok(RefreshGrant {
            access_token: format!("at-for-{rt}"),
            refresh_token: None,
        })
    });
    x.expect_revoke().returning(|_| Ok(()));
    Arc::new(x)
}

fn external(ids: &[&str]) -> Vec<wts::config::ExternalOidc> {
    let options: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| {
            (
                (*id).to_owned(),
                json!({"name": format!("{id} name"), "params": {"idp": id}}),
            )
        })
        .collect();
    vec![
        serde_json::from_value(json!({
            "base_url": "https://ext.org", "oidc_client_id": "c", "oidc_client_secret": "s",
            "login_options": options,
        }))
        .unwrap(),
    ]
}

async fn app() -> App {
    spawn(
        |c| c.external_oidc = external(&["ext"]),
        vec![("default", refreshing()), ("ext", refreshing())],
    )
    .await
}

/// The app with one external IdP, `ext`, served by `exchange`.
async fn with_ext(exchange: MockTokenExchange) -> App {
    spawn(
        |c| c.external_oidc = external(&["ext"]),
        vec![("ext", Arc::new(exchange))],
    )
    .await
}

#[tokio::test]
async fn status_version_and_trailing_slash_redirects() {
    let app = app().await;
    let r = app.get("/_status").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Healthy");
    let (status, body) = call(app.get("/_version")).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], wts::VERSION);
    // The build's commit (build.rs), when built from a git checkout.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    match head {
        Some(head) => assert_eq!(body["commit"], head.as_str()),
        None => assert!(body["commit"].is_string()),
    }
    for (path, location) in [
        ("/token?idp=ext&expires=5", "/token/?idp=ext&expires=5"),
        ("/token", "/token/"),
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), 308, "{path}");
        assert_eq!(header(&r, "location").as_deref(), Some(location));
    }
    // The original answers `/external_oidc` itself, with or without the slash.
    for path in ["/external_oidc", "/external_oidc?unexpired=true"] {
        let (status, body) = call(app.get(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(body["providers"].is_array(), "{path}: {body}");
    }
    let r = app.get("/health").send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn token_errors_in_the_original_order() {
    let app = app().await;
    let carol = |path: &str| app.get_from_workspace(path);
    let cases = [
        (
            app.get("/token/?expires=x&idp=nope"),
            403,
            json!({"message": format!("{FORBIDDEN}You need to be authenticated to use this resource")}),
        ),
        // idp=default ignores tokens: the workspace identity only.
        (
            app.get("/token/").bearer_auth("alice-token"),
            403,
            json!({"message": format!("{FORBIDDEN}You need to be authenticated to use this resource")}),
        ),
        (
            carol("/token/?expires=1.5&idp=nope"),
            400,
            json!({"error": "expires has to be an integer"}),
        ),
        (
            carol("/token/?expires=60&idp=nope"),
            400,
            json!({"message": "Requested IdP \"nope\" is not configured"}),
        ),
        (
            carol("/token/?idp="),
            400,
            json!({"message": "Requested IdP \"\" is not configured"}),
        ),
        (
            app.get("/token/?idp=ext")
                .header("authorization", "Basic Zm9vOmJhcg=="),
            401,
            json!({"message": "Authentication Error: signature verification failed"}),
        ),
        (
            carol("/token/"),
            403,
            json!({"message": format!("{FORBIDDEN}User doesn't have a refresh token")}),
        ),
        (
            app.get("/token/?idp=ext").bearer_auth("alice-token"),
            403,
            json!({"message": format!("{FORBIDDEN}User doesn't have a refresh token")}),
        ),
    ];
    for (request, want_status, want_body) in cases {
        let (status, body) = call(request).await;
        assert_eq!((status, &body), (want_status, &want_body));
    }
    app.store("carol", "default", "rt-old", now() - 10).await;
    let (status, body) = call(carol("/token/")).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"message": format!("{FORBIDDEN}your refresh token is expired, please login again")})
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn token_refreshes_the_newest_row() {
    let app = app().await;
    app.store("carol", "default", "rt-carol-1", now() + DAY)
        .await;
    app.store("carol", "default", "rt-carol-2", now() + 2 * DAY)
        .await;
    app.store("alice", "ext", "rt-alice", now() + DAY).await;
    let (status, body) = call(app.get_from_workspace("/token/?expires=3600")).await;
    assert_eq!((status, body), (200, json!({"token": "at-for-rt-carol-2"})));
    // An empty `expires=` is ignored, as by the original.
    let (status, body) = call(app.get_from_workspace("/token/?expires=")).await;
    assert_eq!((status, body), (200, json!({"token": "at-for-rt-carol-2"})));
    let (status, body) = call(app.get("/token/?idp=ext").bearer_auth("alice-token")).await;
    assert_eq!((status, body), (200, json!({"token": "at-for-rt-alice"})));
    app.stop().await;
}

#[tokio::test]
async fn token_reports_idp_failures_as_the_original() {
    let mut x = MockTokenExchange::new();
    x.expect_refresh()
        .times(1)
        .returning(|_| Err(ExchangeError::Unreachable("timed out".into())));
    x.expect_refresh().times(1).returning(|_| {
        Err(ExchangeError::Rejected {
            status: 400,
            body: r#"{"error":"invalid_grant"}"#.into(),
        })
    });
    let app = spawn(|_| {}, vec![("default", Arc::new(x))]).await;
    app.store("carol", "default", "rt", now() + DAY).await;
    let carol = || app.get_from_workspace("/token/");
    let (status, body) = call(carol()).await;
    assert_eq!(
        (status, body),
        (
            500,
            json!({"message": "Internal server error: Fail to reach fence"})
        )
    );
    let (status, body) = call(carol()).await;
    assert_eq!(
        (status, body),
        (
            500,
            json!({"message": "Internal server error: Fail to get a access token from fence: {\"error\":\"invalid_grant\"}"})
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn authorization_url_checks_and_sets_the_session_cookie() {
    let mut x = MockTokenExchange::new();
    x.expect_authorization_url()
        .returning(|req| Ok(format!("https://idp.example/auth?state={}", req.state)));
    let app = with_ext(x).await;
    for (query, want) in [
        (
            "?idp=ext&redirect=https://evil.org",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=//evil.org",
            json!({"message": "only support relative redirect"}),
        ),
        // Tab, CR, LF, VT and backslashes, as sent, encoded and double-encoded: browsers
        // drop the control characters and read `\\` as `/`.
        (
            "?idp=ext&redirect=/%09/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%0D/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%0A/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%0B/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%5C/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/ok/%5Cevil",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%2509/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%250A/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=ext&redirect=/%255C/evil.example",
            json!({"message": "only support relative redirect"}),
        ),
        (
            "?idp=nope&redirect=/ok",
            json!({"message": "Requested IdP \"nope\" is not configured"}),
        ),
    ] {
        let (status, body) = call(app.get(&format!("/oauth2/authorization_url{query}"))).await;
        assert_eq!((status, body), (400, want), "{query}");
    }
    let r = app
        .get("/oauth2/authorization_url?idp=ext&redirect=/back")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = header(&r, "location").unwrap();
    let state = location
        .strip_prefix("https://idp.example/auth?state=")
        .unwrap();
    assert_eq!(state.len(), 30);
    let cookie = header(&r, "set-cookie").unwrap();
    assert!(cookie.starts_with("wts="), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    app.stop().await;
}

/// Starts a login at `ext` and returns the cookie pair and the state.
async fn start_login(app: &App, redirect: &str) -> (String, String) {
    let r = app
        .get(&format!("/oauth2/authorization_url?idp=ext{redirect}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let state = header(&r, "location")
        .unwrap()
        .rsplit_once("state=")
        .unwrap()
        .1
        .to_owned();
    let cookie = header(&r, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (cookie, state)
}

fn login_exchange() -> MockTokenExchange {
    let mut x = MockTokenExchange::new();
    x.expect_authorization_url()
        .returning(|req| Ok(format!("https://idp.example/auth?state={}", req.state)));
    x
}

#[tokio::test]
async fn authorize_refuses_foreign_states_and_unknown_callers() {
    let mut x = login_exchange();
    x.expect_exchange_code()
        .times(1)
        .returning(|_| Err(ExchangeError::InvalidResponse("missing id_token".into())));
    let app = with_ext(x).await;
    let (cookie, state) = start_login(&app, "").await;
    let state_mismatch = json!({"message": format!(
        "{FORBIDDEN}could not authorize; state did not match across auth requests"
    )});
    // No cookie, another state, a tampered cookie.
    let tampered = format!("{}x", cookie);
    for (cookie, state) in [
        (None, state.as_str()),
        (Some(cookie.as_str()), "other"),
        (Some(tampered.as_str()), state.as_str()),
    ] {
        let mut request = app
            .get(&format!("/oauth2/authorize?code=c&state={state}"))
            .bearer_auth("alice-token");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let r = request.send().await.unwrap();
        assert!(
            header(&r, "set-cookie").is_none(),
            "a stray callback keeps the session"
        );
        assert_eq!(json(r).await, (403, state_mismatch.clone()));
    }
    let r = app
        .get_from_workspace(&format!("/oauth2/authorize?code=c&state={state}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        json(r).await,
        (
            401,
            json!({"message": "Authentication Error: no authorization token"})
        )
    );
    let (status, body) = call(
        app.get(&format!("/oauth2/authorize?code=c&state={state}"))
            .header("cookie", &cookie)
            .bearer_auth("alice-token"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"message": format!("{FORBIDDEN}error in token response: missing id_token")})
        )
    );
    let denied = format!("/oauth2/authorize?error=access_denied&state={state}");
    let (status, body) = call(
        app.get(&denied)
            .header("cookie", &cookie)
            .bearer_auth("alice-token"),
    )
    .await;
    assert_eq!(
        (status, body),
        (403, json!({"message": format!("{FORBIDDEN}access_denied")}))
    );
    assert!(app.rows().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn authorize_links_the_account_and_redirects() {
    let mut x = login_exchange();
    x.expect_exchange_code()
        .withf(|req| req.code == "good-code" && req.code_verifier.len() >= 43)
        .returning(|_| {
            Ok(CodeGrant {
                subject: "ext-sub".into(),
                idp_username: Some("alice@ext".into()),
                refresh_token: IssuedRefreshToken {
                    token: "plain-refresh-token".into(),
                    expires: Some(now() + 30 * DAY),
                    jti: Some("jti-1".into()),
                },
            })
        });
    let app = with_ext(x).await;
    let (cookie, state) = start_login(&app, "&redirect=/back/here").await;
    let r = app
        .get(&format!("/oauth2/authorize?code=good-code&state={state}"))
        .header("cookie", &cookie)
        .bearer_auth("alice-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(header(&r, "location").as_deref(), Some("/back/here"));
    assert!(header(&r, "set-cookie").unwrap().contains("Max-Age=0"));
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].username.as_str(),
            rows[0].userid.as_str(),
            rows[0].idp.as_str()
        ),
        ("alice", "ext-sub", "ext")
    );
    assert!(!rows[0].token_ciphertext.contains("plain-refresh-token"));
    assert_eq!(
        app.fernet.decrypt(&rows[0].token_ciphertext).unwrap(),
        "plain-refresh-token"
    );
    // Without a redirect: the original's success body. bob now takes the account over.
    let (cookie, state) = start_login(&app, "").await;
    let (status, body) = call(
        app.get(&format!("/oauth2/authorize?code=good-code&state={state}"))
            .header("cookie", &cookie)
            .bearer_auth("bob-token"),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"success": "connected with fence"}))
    );
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].username, "bob");
    app.stop().await;
}

#[tokio::test]
async fn connected_answers_for_every_idp() {
    let app = app().await;
    app.store("alice", "ext", "rt", now() + DAY).await;
    let unauthenticated = json!({"message": "Authentication Error: user is not logged in"});
    assert_eq!(
        call(app.get("/oauth2/connected")).await,
        (401, unauthenticated.clone())
    );
    assert_eq!(
        call(app.get("/oauth2/connected").bearer_auth("forged")).await,
        (401, unauthenticated)
    );
    let r = app
        .get("/oauth2/connected?idp=ext")
        .bearer_auth("alice-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(
        call(app.get("/oauth2/connected").bearer_auth("alice-token")).await,
        (
            403,
            json!({"message": format!("{FORBIDDEN}user is not connected with token service or expired")})
        )
    );
    assert_eq!(
        call(
            app.get("/oauth2/connected?idp=nope")
                .bearer_auth("alice-token")
        )
        .await,
        (
            400,
            json!({"message": "Requested IdP \"nope\" is not configured"})
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_and_deletes() {
    let mut failing = MockTokenExchange::new();
    failing.expect_revoke().times(1).returning(|_| {
        Err(ExchangeError::Rejected {
            status: 503,
            body: "down".into(),
        })
    });
    let mut ext = MockTokenExchange::new();
    ext.expect_revoke()
        .times(1)
        .withf(|t| t == "rt-ext")
        .returning(|_| Ok(()));
    let app = spawn(
        |c| c.external_oidc = external(&["ext", "flaky"]),
        vec![("ext", Arc::new(ext)), ("flaky", Arc::new(failing))],
    )
    .await;
    app.store("alice", "ext", "rt-ext", now() + DAY).await;
    app.store("alice", "flaky", "rt-flaky", now() + DAY).await;
    app.store("bob", "ext", "rt-bob", now() + DAY).await;
    assert_eq!(
        call(app.get("/oauth2/logout")).await,
        (
            401,
            json!({"message": "Authentication Error: user is not logged in"})
        )
    );
    let r = app
        .get("/oauth2/logout?idp=ext")
        .bearer_auth("alice-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.rows().await.len(), 2);
    let (status, body) = call(app.get("/oauth2/logout").bearer_auth("alice-token")).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("could not log out: "),
        "{body}"
    );
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1, "deleted even though revocation failed");
    assert_eq!(rows[0].username, "bob");
    app.stop().await;
}

#[tokio::test]
async fn external_oidc_lists_idps_with_the_time_left() {
    let app = spawn(
        |c| {
            c.external_oidc = external(&["b-idp", "a-idp"]);
            c.wts_base_url = "https://wts.commons.org/wts".into();
        },
        vec![],
    )
    .await;
    app.store("alice", "a-idp", "rt", now() + 29 * DAY + 100)
        .await;
    let entry = |id: &str, expiration: Value| {
        json!({
            "name": format!("{id} name"), "idp": id, "base_url": "https://ext.org",
            "urls": [{"name": format!("{id} name"), "url": format!("https://wts.commons.org/wtsoauth2/authorization_url?idp={id}")}],
            "refresh_token_expiration": expiration,
        })
    };
    let (status, body) = call(app.get("/external_oidc/")).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"providers": [entry("a-idp", Value::Null), entry("b-idp", Value::Null)]})
        )
    );
    let (_, body) = call(app.get("/external_oidc/").bearer_auth("alice-token")).await;
    assert_eq!(
        body,
        json!({"providers": [entry("a-idp", json!("29 days")), entry("b-idp", Value::Null)]})
    );
    let (_, body) = call(
        app.get("/external_oidc/?unexpired=true")
            .bearer_auth("alice-token"),
    )
    .await;
    assert_eq!(
        body,
        json!({"providers": [entry("a-idp", json!("29 days"))]})
    );
    // An invalid token is anonymous here.
    let (status, body) = call(
        app.get("/external_oidc/?unexpired=TRUE")
            .bearer_auth("forged"),
    )
    .await;
    assert_eq!((status, body), (200, json!({"providers": []})));
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes() {
    let app = app().await;
    let (status, doc) = call(app.get("/openapi.json")).await;
    assert_eq!(status, 200);
    for path in [
        "/token/",
        "/oauth2/authorize",
        "/external_oidc/",
        "/aggregate/{path}",
        "/_status",
        "/health",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    // What is served: `/aggregate/{path}` declares its parameter, `/token/`'s 400 is
    // `{"error"}` or `{"message"}`, a 405 says what is allowed.
    let aggregate = &doc["paths"]["/aggregate/{path}"]["get"];
    assert_eq!(aggregate["parameters"][0]["name"], "path");
    assert_eq!(aggregate["parameters"][0]["in"], "path");
    assert_eq!(aggregate["parameters"][0]["required"], true);
    let bad = &doc["paths"]["/token/"]["get"]["responses"]["400"]["content"]["application/json"]["schema"];
    let shapes = doc["components"]["schemas"]["BadRequest"]["oneOf"].clone();
    assert_eq!(bad["$ref"], "#/components/schemas/BadRequest", "{bad}");
    assert_eq!(
        shapes,
        json!([
            {"$ref": "#/components/schemas/Message"},
            {"$ref": "#/components/schemas/ErrorBody"}
        ])
    );
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["required"],
        json!(["error"])
    );
    for path in ["/aggregate/user/user", "/token/"] {
        let r = app
            .client
            .request(reqwest::Method::TRACE, format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(header(&r, "allow").as_deref(), Some("GET"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn by_default_no_forwarded_header_is_trusted() {
    // A client reaching wts directly must not pose as a workspace by naming its address.
    let app = spawn(
        |c| c.forwarded_for_hops = wts::WtsConfig::default().forwarded_for_hops,
        vec![("default", refreshing())],
    )
    .await;
    app.store("carol", "default", "rt-carol", now() + DAY).await;
    let (status, body) = call(app.get_from_workspace("/token/")).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"message": format!("{FORBIDDEN}You need to be authenticated to use this resource")})
        )
    );
    app.stop().await;
}
