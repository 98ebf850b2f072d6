//! API tests: the real app on a free port with a fresh embedded store and local object
//! store; every route and its error cases, asserting status and body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use conductor::{ConductorConfig, Overrides, prepare};
use serde_json::{Value, json};
use tessera_conductor::TokenKind;
use tessera_service::{Parts, Running};

struct App {
    url: String,
    core_identity: std::sync::Arc<tessera_conductor::Identity>,
    http: reqwest::Client,
    _running: Running<conductor::Core>,
    _dir: tempfile::TempDir,
}

const ADMIN_EMAIL: &str = "admin@example.test";

async fn spawn() -> App {
    spawn_with(|_| {}).await
}

async fn spawn_with(tweak: impl FnOnce(&mut ConductorConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), common::free_port());
    config.admin_userids = vec![tessera_conductor::idhash(ADMIN_EMAIL)];
    config.client_api_keys = format!(
        "{}:an-api-key-of-16-chars",
        tessera_conductor::idhash("bot@example.test")
    )
    .into();
    config.max_body_bytes = 4096;
    tweak(&mut config);
    let core = prepare(config, Overrides::default()).await.unwrap();
    let identity = core.identity.clone();
    let running = tessera_service::start(core, Parts::ALL).await.unwrap();
    App {
        url: running.url().unwrap(),
        core_identity: identity,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _running: running,
        _dir: dir,
    }
}

impl App {
    async fn user(&self, email: &str) -> String {
        common::sign_in(&self.core_identity, email).await.1
    }

    async fn get(&self, path: &str) -> (u16, String, Option<String>) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), r.text().await.unwrap(), ct)
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body, _) = self.get(path).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    async fn permission_token(&self, user_token: &str, service: &str) -> String {
        let (status, body) = self
            .get_json(&format!(
                "/user/authorize?jwt={user_token}&service={service}"
            ))
            .await;
        assert_eq!(status, 200);
        body["token"].as_str().unwrap().to_owned()
    }

    async fn authorize(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/datastore/authorize", self.url))
            .body(body);
        if let Some(token) = token {
            request = request.header("Auth-Token", token);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn package(owner: &str, files: Value) -> String {
    json!({"metadata": {"owner": owner, "name": "budget"}, "filedata": files}).to_string()
}

#[tokio::test]
async fn check_without_token_lists_providers_and_with_token_the_profile() {
    let app = spawn().await;
    let (status, body) = app.get_json("/user/check").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"authenticated": false, "providers": {}}));
    let token = app.user("alice@example.test").await;
    let (status, body) = app.get_json(&format!("/user/check?jwt={token}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["authenticated"], true);
    let profile = &body["profile"];
    assert_eq!(profile["idhash"], "2960a687c8031d3d105b67802b5e130e");
    assert_eq!(profile["email"], "alice@example.test");
    assert_eq!(profile["username"], Value::Null);
    assert_eq!(profile["id"], "test:alice@example.test");
    // Bad and expired tokens, and a permission token, are not logged in.
    for bad in ["garbage", "a.b.c"] {
        let (_, body) = app.get_json(&format!("/user/check?jwt={bad}")).await;
        assert_eq!(body["authenticated"], false);
    }
    let permission = app.permission_token(&token, "os.datastore").await;
    let (_, body) = app.get_json(&format!("/user/check?jwt={permission}")).await;
    assert_eq!(
        body["authenticated"], false,
        "a permission token is no user token"
    );
    let mut claims = serde_json::Map::new();
    claims.insert("userid".into(), json!("2960a687c8031d3d105b67802b5e130e"));
    let expired = app
        .core_identity
        .sign(TokenKind::User, claims, -10)
        .unwrap();
    let (_, body) = app.get_json(&format!("/user/check?jwt={expired}")).await;
    assert_eq!(body["authenticated"], false, "expired");
    // JSONP, and a bad callback name.
    let (status, body, ct) = app.get("/user/check?callback=cb.f").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("cb.f({") && body.ends_with(");"), "{body}");
    assert_eq!(ct.as_deref(), Some("application/javascript"));
    let (status, body) = app.get_json("/user/check?callback=alert(1)").await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("callback"));
}

#[tokio::test]
async fn authorize_gives_an_rs256_permission_token_verifiable_with_the_public_key() {
    let app = spawn().await;
    let token = app.user("alice@example.test").await;
    let (status, body) = app
        .get_json(&format!("/user/authorize?jwt={token}&service=os.datastore"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["userid"], "2960a687c8031d3d105b67802b5e130e");
    assert_eq!(body["service"], "os.datastore");
    assert_eq!(body["permissions"], json!({"datapackage-upload": true}));
    let jwt = body["token"].as_str().unwrap();
    let (status, pem, ct) = app.get("/user/public-key").await;
    assert_eq!(status, 200);
    assert!(ct.unwrap().starts_with("text/plain"));
    let verifier = josekit::jws::RS256
        .verifier_from_pem(pem.as_bytes())
        .unwrap();
    let (payload, header) = josekit::jwt::decode_with_verifier(jwt, &verifier).unwrap();
    assert_eq!(header.algorithm(), Some("RS256"));
    let claims = payload.claims_set();
    assert_eq!(claims["userid"], "2960a687c8031d3d105b67802b5e130e");
    assert_eq!(claims["service"], "os.datastore");
    assert_eq!(claims["permissions"], json!({"datapackage-upload": true}));
    let exp = claims["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now + 86_000..=now + 86_500).contains(&exp), "{exp}");
    // No token, a bad token, no service: {"permissions": {}}.
    for query in [
        "service=os.datastore".to_owned(),
        "jwt=bad&service=os.datastore".to_owned(),
        format!("jwt={token}"),
        format!("jwt={jwt}&service=os.datastore"),
    ] {
        let (status, body) = app.get_json(&format!("/user/authorize?{query}")).await;
        assert_eq!((status, body), (200, json!({"permissions": {}})), "{query}");
    }
    // An API key acts as its user.
    let (_, body) = app
        .get_json("/user/authorize?api_key=an-api-key-of-16-chars&service=os.datastore")
        .await;
    assert_eq!(
        body["userid"],
        tessera_conductor::idhash("bot@example.test")
    );
    let (_, body) = app
        .get_json("/user/authorize?api_key=wrong-key-of-16-chars!&service=os.datastore")
        .await;
    assert_eq!(body, json!({"permissions": {}}));
}

#[tokio::test]
async fn update_sets_a_valid_unique_username_once() {
    let app = spawn().await;
    let alice = app.user("alice@example.test").await;
    let bob = app.user("bob@example.test").await;
    let post = |form: Vec<(&'static str, String)>| {
        let request = app
            .http
            .post(format!("{}/user/update", app.url))
            .form(&form);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let cases = [
        (
            vec![("username", "x1".to_owned())],
            json!({"success": false, "error": "No token"}),
        ),
        (
            vec![("jwt", "bad".to_owned()), ("username", "x1".to_owned())],
            json!({"success": false, "error": "Not authenticated"}),
        ),
        (
            vec![("jwt", alice.clone()), ("username", "Not Valid".to_owned())],
            json!({"success": false, "error": "Invalid username: 2 to 40 of a-z, 0-9, _ and -, starting with a letter or digit"}),
        ),
        (
            vec![("jwt", alice.clone()), ("username", "alice".to_owned())],
            json!({"success": true}),
        ),
        (
            vec![("jwt", alice.clone()), ("username", "alice2".to_owned())],
            json!({"success": false, "error": "Cannot modify username, already set"}),
        ),
        (
            vec![("jwt", bob.clone()), ("username", "alice".to_owned())],
            json!({"success": false, "error": "Username already taken"}),
        ),
        (
            vec![("jwt", bob.clone()), ("username", "bob".to_owned())],
            json!({"success": true}),
        ),
    ];
    for (form, want) in cases {
        assert_eq!(post(form.clone()).await, (200, want), "{form:?}");
    }
    let (_, body) = app.get_json(&format!("/user/check?jwt={alice}")).await;
    assert_eq!(body["profile"]["username"], "alice");
    // A token of a user that does not exist.
    let ghost = app
        .core_identity
        .user_token("0123456789abcdef0123456789abcdef")
        .unwrap();
    assert_eq!(
        post(vec![("jwt", ghost), ("username", "ghost".into())]).await,
        (200, json!({"success": false, "error": "Unknown User"}))
    );
}

#[tokio::test]
async fn lib_is_served_with_the_base_url() {
    let app = spawn().await;
    let (status, body, ct) = app.get("/user/lib").await;
    assert_eq!(status, 200);
    assert!(ct.unwrap().starts_with("text/javascript"));
    assert!(
        body.contains(&format!("var BASE = '{}'", app.url)),
        "{}",
        &body[..300]
    );
    assert!(!body.contains("openspending.org'"));
}

#[tokio::test]
async fn datastore_authorize_presigns_every_file_and_refuses_what_it_must() {
    let app = spawn().await;
    let alice = app.user("alice@example.test").await;
    let owner = tessera_conductor::idhash("alice@example.test");
    let token = app.permission_token(&alice, "os.datastore").await;
    let data = b"a,b\n1,2\n";
    let files = json!({
        "data/a.csv": {"length": data.len(), "md5": common::md5_b64(data), "name": "a.csv", "type": "text/csv"},
        "datapackage.json": {"length": 2, "md5": common::md5_b64(b"{}"), "name": "datapackage.json"},
    });
    let (status, body) = app
        .authorize(Some(&token), package(&owner, files.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    let a = &body["filedata"]["data/a.csv"];
    assert_eq!(
        a["upload_url"],
        format!("{}/objects/{owner}/budget/data/a.csv", app.url)
    );
    assert_eq!(a["md5"], common::md5_b64(data));
    assert_eq!(a["type"], "text/csv");
    assert_eq!(a["length"], data.len());
    assert!(a["upload_query"]["signature"][0].is_string(), "{a}");
    assert_eq!(
        body["filedata"]["datapackage.json"]["type"],
        "application/octet-stream"
    );
    // The upload through the service's own URL, with the headers it names.
    let upload = |file: &Value, body: &'static [u8], md5: String, ct: &str| {
        let query: Vec<(String, String)> = file["upload_query"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v[0].as_str().unwrap().to_owned()))
            .collect();
        let url =
            reqwest::Url::parse_with_params(file["upload_url"].as_str().unwrap(), &query).unwrap();
        app.http
            .put(url)
            .header("Content-MD5", md5)
            .header("Content-Type", ct.to_owned())
            .body(body)
            .send()
    };
    assert_eq!(
        upload(
            a,
            b"a,b\n1,2\n",
            common::md5_b64(b"a,b\n1,2\n"),
            "text/plain"
        )
        .await
        .unwrap()
        .status(),
        403,
        "wrong type"
    );
    assert_eq!(
        upload(a, b"a,b\n1,3\n", common::md5_b64(b"a,b\n1,3\n"), "text/csv")
            .await
            .unwrap()
            .status(),
        403,
        "wrong md5 header"
    );
    let wrong_body = upload(a, b"a,b\n1,3\n", common::md5_b64(b"a,b\n1,2\n"), "text/csv")
        .await
        .unwrap()
        .status()
        .as_u16();
    assert!(
        wrong_body == 400 || wrong_body == 403,
        "wrong body: {wrong_body}"
    );
    assert_eq!(
        upload(a, b"a,b\n1,2\n", common::md5_b64(b"a,b\n1,2\n"), "text/csv")
            .await
            .unwrap()
            .status(),
        200
    );

    // `/datastore/` is the same route.
    let r = app
        .http
        .post(format!("{}/datastore/", app.url))
        .header("Auth-Token", &token)
        .body(package(&owner, files.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `jwt` as a parameter.
    let r = app
        .http
        .post(format!("{}/datastore/authorize?jwt={token}", app.url))
        .body(package(&owner, files.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Errors.
    let bob = app.user("bob@example.test").await;
    let bob_token = app.permission_token(&bob, "os.datastore").await;
    let other_service = app.permission_token(&alice, "os.other").await;
    let mut claims = serde_json::Map::new();
    claims.insert("userid".into(), json!(owner));
    claims.insert("service".into(), json!("os.datastore"));
    claims.insert("permissions".into(), json!({"datapackage-upload": true}));
    let expired = app
        .core_identity
        .sign(TokenKind::Permission, claims.clone(), -5)
        .unwrap();
    claims.insert("permissions".into(), json!({}));
    let no_permission = app
        .core_identity
        .sign(TokenKind::Permission, claims, 60)
        .unwrap();
    let good = package(&owner, files.clone());
    for (token, why) in [
        (None, "no token"),
        (Some("garbage"), "not authenticated"),
        (Some("testing-token"), "not authenticated"),
        (Some(alice.as_str()), "not authenticated"),
        (Some(expired.as_str()), "expired"),
        (Some(bob_token.as_str()), "not the package owner"),
        (Some(other_service.as_str()), "os.other"),
        (Some(no_permission.as_str()), "datapackage-upload"),
    ] {
        let (status, body) = app.authorize(token, good.clone()).await;
        assert_eq!(status, 401, "{why}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{why}: {detail}");
    }
    // The back door of the original is gone too for its owner.
    let (status, _) = app
        .authorize(Some("testing-token"), package("__tests", files.clone()))
        .await;
    assert_eq!(status, 401);
    let bad_bodies = [
        ("not json".to_owned(), "invalid JSON"),
        (
            json!({"metadata": {"name": "x"}, "filedata": {}}).to_string(),
            "metadata.owner",
        ),
        (
            json!({"metadata": {"owner": owner}, "filedata": {}}).to_string(),
            "metadata.name",
        ),
        (
            json!({"metadata": {"owner": owner, "name": "x"}}).to_string(),
            "filedata",
        ),
        (
            package(
                &owner,
                json!({"../../etc/passwd": {"length": 1, "md5": common::md5_b64(b"x"), "name": "p"}}),
            ),
            ". or ..",
        ),
        (
            package(
                &owner,
                json!({"/abs": {"length": 1, "md5": common::md5_b64(b"x"), "name": "p"}}),
            ),
            "relative",
        ),
        (
            package(
                &owner,
                json!({"a": {"md5": common::md5_b64(b"x"), "name": "p"}}),
            ),
            "length",
        ),
        (
            package(&owner, json!({"a": {"length": 1, "name": "p"}})),
            "md5",
        ),
        (
            package(
                &owner,
                json!({"a": {"length": 1, "md5": common::md5_b64(b"x")}}),
            ),
            "name",
        ),
        (
            package(
                &owner,
                json!({"a": {"length": 1, "md5": "d41d8cd98f00b204e9800998ecf8427e", "name": "p"}}),
            ),
            "16-byte",
        ),
    ];
    for (body, why) in bad_bodies {
        let (status, answer) = app.authorize(Some(&token), body.clone()).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    let (status, body) = app.authorize(Some(&token), "x".repeat(5000)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("larger than 4096")
    );
}

#[tokio::test]
async fn datastore_info_lists_the_prefixes_of_the_tokens_user() {
    let app = spawn().await;
    let alice = app.user("alice@example.test").await;
    let owner = tessera_conductor::idhash("alice@example.test");
    let token = app.permission_token(&alice, "os.datastore").await;
    let (status, body) = app.get_json(&format!("/datastore/info?jwt={token}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"prefixes": [format!("{}/objects/{owner}", app.url)]})
    );
    let r = app
        .http
        .get(format!("{}/datastore/info", app.url))
        .header("Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for query in ["", "?jwt=bad"] {
        let (status, body) = app.get_json(&format!("/datastore/info{query}")).await;
        assert_eq!(status, 401, "{body}");
    }
    let other = app.permission_token(&alice, "os.other").await;
    let (status, _) = app.get_json(&format!("/datastore/info?jwt={other}")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn datastore_info_on_s3_has_the_originals_eight_prefixes() {
    let app = spawn_with(|c| {
        c.storage_bucket_name = "bucket".into();
        c.access_key_id = "AK".into();
        c.secret_access_key = "SK".into();
    })
    .await;
    let alice = app.user("alice@example.test").await;
    let token = app.permission_token(&alice, "os.datastore").await;
    let (_, body) = app.get_json(&format!("/datastore/info?jwt={token}")).await;
    let u = tessera_conductor::idhash("alice@example.test");
    let want: Vec<String> = [
        "http://s3.amazonaws.com:80/bucket",
        "http://s3.amazonaws.com/bucket",
        "http://bucket:80",
        "http://bucket",
        "https://s3.amazonaws.com:443/bucket",
        "https://s3.amazonaws.com/bucket",
        "https://bucket:443",
        "https://bucket",
    ]
    .iter()
    .map(|p| format!("{p}/{u}"))
    .collect();
    assert_eq!(body["prefixes"], json!(want));
}

#[tokio::test]
async fn admins_grant_list_and_revoke_permissions() {
    let app = spawn().await;
    let admin = app.user(ADMIN_EMAIL).await;
    let alice = app.user("alice@example.test").await;
    let alice_id = tessera_conductor::idhash("alice@example.test");
    let url = format!("{}/admin/permissions", app.url);
    // No token, a non-admin.
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(format!("{url}?jwt={alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "forbidden: only admins manage permissions"
    );
    let r = app
        .http
        .post(&url)
        .header("Auth-Token", &alice)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The default row.
    let r = app
        .http
        .get(format!("{url}?jwt={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"permissions": [{"userid": "*", "service": "os.datastore", "permissions": {"datapackage-upload": true}}]})
    );
    // Grant: bad bodies, then a row for alice that overlays `*`.
    for bad in [
        "nope",
        r#"{"userid": "a b", "service": "s", "permissions": {"x": true}}"#,
        r#"{"userid": "a", "service": "s", "permissions": {}}"#,
    ] {
        let r = app
            .http
            .post(&url)
            .header("Auth-Token", &admin)
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = app.http.post(&url).header("Auth-Token", &admin)
        .body(json!({"userid": alice_id, "service": "os.datastore", "permissions": {"datapackage-upload": false, "admin": true}}).to_string())
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, body) = app
        .get_json(&format!("/user/authorize?jwt={alice}&service=os.datastore"))
        .await;
    assert_eq!(
        body["permissions"],
        json!({"datapackage-upload": false, "admin": true})
    );
    let r = app
        .http
        .get(format!("{url}?jwt={admin}&userid={alice_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["permissions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Revoke one, then the row; a missing row is 404.
    let r = app
        .http
        .delete(format!(
            "{url}?jwt={admin}&userid={alice_id}&service=os.datastore&permission=datapackage-upload"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["permissions"],
        json!({"admin": true})
    );
    let r = app
        .http
        .delete(format!(
            "{url}?jwt={admin}&userid={alice_id}&service=os.datastore"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], true);
    let r = app
        .http
        .delete(format!(
            "{url}?jwt={admin}&userid={alice_id}&service=os.datastore"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .delete(format!("{url}?jwt={admin}&service=os.datastore"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, body) = app
        .get_json(&format!("/user/authorize?jwt={alice}&service=os.datastore"))
        .await;
    assert_eq!(body["permissions"], json!({"datapackage-upload": true}));
}

#[tokio::test]
async fn callback_refuses_bad_states_and_disallowed_origins() {
    let app = spawn_with(|c| {
        c.allowed_redirect_origins = vec!["https://packager.example".into()];
    })
    .await;
    let (status, body) = app
        .get_json("/oauth/google_callback?code=x&state=bad")
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"detail": "invalid or expired login state"}))
    );
    let state = |next: &str, provider: &str, lifetime: i64| {
        let mut claims = serde_json::Map::new();
        claims.insert("next".into(), json!(next));
        claims.insert("provider".into(), json!(provider));
        claims.insert("nonce".into(), json!("n"));
        app.core_identity
            .sign(TokenKind::LoginState, claims, lifetime)
            .unwrap()
    };
    let expired = state("/", "google", -1);
    let (status, _) = app
        .get_json(&format!("/oauth/google_callback?code=x&state={expired}"))
        .await;
    assert_eq!(status, 400);
    let other = state("/", "other", 60);
    let (status, body) = app
        .get_json(&format!("/oauth/google_callback?code=x&state={other}"))
        .await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (400, "the login state is of another provider")
    );
    for next in [
        "https://evil.example/x",
        "//evil.example/x",
        "javascript:alert(1)",
    ] {
        let s = state(next, "google", 60);
        let (status, body) = app
            .get_json(&format!("/oauth/google_callback?error=denied&state={s}"))
            .await;
        assert_eq!(status, 400, "{next}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("not on an allowed origin")
        );
    }
    // A refusal at the provider returns to an allowed `next` without a token.
    let s = state("https://packager.example/app?x=1", "google", 60);
    let r = app
        .http
        .get(format!(
            "{}/oauth/google_callback?error=access_denied&state={s}",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "https://packager.example/app?x=1");
    // A user token is no state.
    let user = app.user("alice@example.test").await;
    let (status, _) = app
        .get_json(&format!("/oauth/google_callback?code=x&state={user}"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refuses_to_start_without_keys_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConductorConfig {
        base_url: "http://127.0.0.1:1".into(),
        ..ConductorConfig::default()
    };
    config.embedded.embedded_db_path = dir.path().join("db.sqlite");
    let err = prepare(config.clone(), Overrides::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("OS_PRIVATE_KEY"), "{err}");
    config.private_key = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----".into();
    let err = prepare(config.clone(), Overrides::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an RSA private key"), "{err}");
    config.private_key = Default::default();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, conductor::keys::generate_private_key().unwrap()).unwrap();
    config.private_key_file = Some(pem);
    config.objects.objects_root = dir.path().join("objects");
    prepare(config, Overrides::default()).await.unwrap();
}

#[test]
fn the_originals_variables_load() {
    let env = [
        ("OS_BASE_URL", "https://openspending.example"),
        ("OS_PRIVATE_KEY_FILE", "/dev/null"),
        ("OS_ACCESS_KEY_ID", "AKIA"),
        ("OS_SECRET_ACCESS_KEY", "secret"),
        ("OS_S3_HOSTNAME", "s3.example"),
        ("OS_S3_PORT", "9000"),
        ("OS_STORAGE_BUCKET_NAME", "datastore"),
        ("OS_CLIENT_API_KEYS", "u1:0123456789abcdef"),
        ("ACCESS_KEY_EXPIRES_IN", "3600"),
        ("USE_FAKE_S3", "1"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = tessera_service::load_config_from::<conductor::Core>(env.clone()).unwrap();
    assert_eq!(config.base_url, "https://openspending.example");
    assert_eq!(config.access_key_expires_in, 3600);
    assert_eq!(config.s3().s3_endpoint_url, "http://s3.example:9000");
    assert_eq!(config.s3().s3_bucket, "datastore");
    assert_eq!(config.api_keys().unwrap().len(), 1);
    let mut both = env.to_vec();
    both.push(("OS_ACCESS_KEY_EXPIRES_IN".into(), "7200".into()));
    let config = tessera_service::load_config_from::<conductor::Core>(both).unwrap();
    assert_eq!(config.access_key_expires_in, 7200, "the OS_ form wins");
}
