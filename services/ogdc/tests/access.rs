//! The access modes without a provider: `open`, `read_only`, the admin route with
//! passwords, and the config errors of `ACCESS_MODE` and `OIDC_CLIENT_SECRETS_FILE`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, meta, spawn};
use serde_json::{Value, json};
use tessera_service::load_config_from;

async fn post(app: &App, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.client.post(format!("{}{path}", app.url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_anonymous(app: &App, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn open_mode_lets_anyone_do_everything_as_anonymous_and_read_only_refuses_changes() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let data_dir = shared.path().join("data");
    let dir = data_dir.clone();
    let app = spawn(move |c, _| {
        c.access_mode = "open".into();
        // Not needed without passwords.
        c.jwt_secret_key = "".into();
        c.admin_password = "".into();
        c.data_dir = dir;
    })
    .await;
    assert_eq!(
        get_anonymous(&app, "/user").await,
        (200, json!({"current_user": "anonymous"}))
    );
    // No users, so neither a login nor user creation.
    let response = app
        .client
        .post(format!("{}/token", app.url))
        .form(&[("username", "admin"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let response = app
        .client
        .post(format!("{}/create_user", app.url))
        .form(&[("username", "eve"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // A submission without any token, owned by anonymous; a token is ignored.
    let input = common::input_server("ice.csv", "x\n").await;
    app.recipe(
        "ice",
        &meta("Ice", &input, "temporary"),
        "cp /input_dir/ice.csv /output_dir/\n",
    );
    let (status, body) = post(&app, "/submit", None, json!({"recipe_path": "ice"})).await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait("whatever", &name).await, "Succeeded");
    let (status, runs) = get_anonymous(&app, "/admin/runs").await;
    assert_eq!(status, 200);
    assert_eq!(runs[0]["recipe_workflow_name"], json!(name));
    assert_eq!(runs[0]["owner"], json!("anonymous"));
    let (status, body) = post(&app, &format!("/runs/{name}/cancel"), None, json!({})).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("Succeeded")),
        "{body}"
    );
    app.running.stop().await.unwrap();

    // The same data, read-only: everything readable, nothing changeable.
    let dir = data_dir.clone();
    let app = spawn(move |c, _| {
        c.access_mode = "read_only".into();
        c.data_dir = dir;
    })
    .await;
    assert_eq!(
        get_anonymous(&app, "/user").await,
        (200, json!({"current_user": "anonymous"}))
    );
    let (status, body) = get_anonymous(&app, &format!("/status/{name}")).await;
    assert_eq!((status, &body["status"]), (200, &json!("Succeeded")));
    let (status, body) = get_anonymous(&app, &format!("/output/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data_url"].as_str().unwrap().starts_with("http://"));
    let (status, runs) = get_anonymous(&app, "/runs").await;
    assert_eq!((status, runs.as_array().unwrap().len()), (200, 1));
    let (status, runs) = get_anonymous(&app, "/admin/runs").await;
    assert_eq!((status, runs.as_array().unwrap().len()), (200, 1));
    app.recipe(
        "ice",
        &meta("Ice", &input, "temporary"),
        "cp /input_dir/ice.csv /output_dir/\n",
    );
    for token in [None, Some("anything")] {
        assert_eq!(
            post(&app, "/submit", token, json!({"recipe_path": "ice"})).await,
            (
                403,
                json!({"detail": "The service is read-only (ACCESS_MODE=read_only): submitting a recipe is not allowed."})
            )
        );
        for run in [name.as_str(), "nope"] {
            assert_eq!(
                post(&app, &format!("/runs/{run}/cancel"), token, json!({})).await,
                (
                    403,
                    json!({"detail": "The service is read-only (ACCESS_MODE=read_only): cancelling a run is not allowed."})
                )
            );
        }
    }
    let (status, body) = get_anonymous(&app, "/status/nope").await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Workflow nope not found."}))
    );
    let (_, runs) = get_anonymous(&app, "/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "nothing was submitted");
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn with_passwords_the_admin_route_is_the_admin_users() {
    let app = spawn(|_, _| {}).await;
    app.create_user("alice", "pw").await;
    let alice = app.token("alice", "pw").await;
    let admin = app.admin().await;
    assert_eq!(app.get("/admin/runs", &admin).await, (200, json!([])));
    assert_eq!(
        app.get("/admin/runs", &alice).await,
        (401, json!({"detail": "Access token must belong to admin."}))
    );
    let (status, body) = get_anonymous(&app, "/admin/runs").await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Not authenticated"}))
    );
    app.running.stop().await.unwrap();
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn access_config_errors_name_the_variable() {
    let err = load_config_from::<ogdc::Core>(env(&[("ACCESS_MODE", "public")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config key \"access_mode\" (env ACCESS_MODE): must be authenticated, open or read_only, not \"public\""
    );
    // open and read_only need no password secrets.
    for mode in ["open", "read_only"] {
        let config = load_config_from::<ogdc::Core>(env(&[("ACCESS_MODE", mode)])).unwrap();
        assert_eq!(
            config.auth().unwrap(),
            match mode {
                "open" => ogdc::config::Auth::Open,
                _ => ogdc::config::Auth::ReadOnly,
            }
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let missing = dir.path().join("nope.json").display().to_string();
    let err = load_config_from::<ogdc::Core>(env(&[("OIDC_CLIENT_SECRETS_FILE", &missing)]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "invalid config key \"oidc_client_secrets_file\" (env OIDC_CLIENT_SECRETS_FILE): cannot read {missing}: "
        )),
        "{err}"
    );
    for (text, want) in [
        (
            "{",
            "not JSON of {server_metadata_url, client_id, client_secret, redirect_uris}: EOF",
        ),
        (
            r#"{"client_id": "c"}"#,
            "missing field `server_metadata_url`",
        ),
        (
            r#"{"server_metadata_url": "https://idp/.well-known/openid-configuration", "client_id": "c", "typo": 1}"#,
            "unknown field `typo`",
        ),
        (
            r#"{"server_metadata_url": "https://idp/realms/x", "client_id": "c"}"#,
            "server_metadata_url must be an http(s) URL ending in /.well-known/openid-configuration, not \"https://idp/realms/x\"",
        ),
        (
            r#"{"server_metadata_url": "https://idp/.well-known/openid-configuration", "client_id": ""}"#,
            "client_id must not be empty",
        ),
        (
            r#"{"server_metadata_url": "https://idp/.well-known/openid-configuration", "client_id": "c"}"#,
            "redirect_uris must name this service's /authorize (the login's callback)",
        ),
        (
            r#"{"server_metadata_url": "https://idp/.well-known/openid-configuration", "client_id": "c",
                "redirect_uris": ["ogdc.example/authorize"]}"#,
            "the first of redirect_uris must be an http(s) URL, not \"ogdc.example/authorize\"",
        ),
    ] {
        let path = file("secrets.json", text);
        let err = load_config_from::<ogdc::Core>(env(&[("OIDC_CLIENT_SECRETS_FILE", &path)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "invalid config key \"oidc_client_secrets_file\" (env OIDC_CLIENT_SECRETS_FILE): {path}: "
            )) && err.contains(want),
            "{text}: {err}"
        );
    }
    // A good file: OIDC, and no password secrets needed; the secret is not in Debug.
    let path = file(
        "good.json",
        r#"{"server_metadata_url": "https://idp.example/realms/ogdc/.well-known/openid-configuration",
            "client_id": "ogdc", "client_secret": "s3cr3t", "redirect_uris": ["https://x/authorize"]}"#,
    );
    let config =
        load_config_from::<ogdc::Core>(env(&[("OIDC_CLIENT_SECRETS_FILE", &path)])).unwrap();
    let ogdc::config::Auth::Oidc(secrets) = config.auth().unwrap() else {
        panic!("not oidc");
    };
    assert_eq!(secrets.issuer(), Some("https://idp.example/realms/ogdc"));
    assert!(!format!("{secrets:?}").contains("s3cr3t"));
    let err = load_config_from::<ogdc::Core>(env(&[
        ("OIDC_CLIENT_SECRETS_FILE", &path),
        ("OGDC_SCOPE_ADMIN", " "),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config key \"scope_admin\" (env OGDC_SCOPE_ADMIN): must not be empty"
    );
    // open ignores the secrets file.
    let config = load_config_from::<ogdc::Core>(env(&[
        ("ACCESS_MODE", "open"),
        ("OIDC_CLIENT_SECRETS_FILE", &missing),
    ]))
    .unwrap();
    assert_eq!(config.auth().unwrap(), ogdc::config::Auth::Open);
}

#[tokio::test]
async fn oidc_mode_starts_without_the_provider_and_refuses_tokens_it_cannot_check() {
    // Nothing listens there: nothing is fetched at start-up, and a token whose keys cannot
    // be fetched is refused like any invalid one.
    let issuer = format!("http://127.0.0.1:{}", common::free_port());
    let iss = issuer.clone();
    let app = spawn(move |c, dir| {
        let path = dir.join("secrets.json");
        std::fs::write(
            &path,
            json!({
                "server_metadata_url": format!("{iss}/.well-known/openid-configuration"),
                "client_id": "ogdc",
                "redirect_uris": ["http://127.0.0.1:9999/authorize"],
            })
            .to_string(),
        )
        .unwrap();
        c.oidc_client_secrets_file = path.display().to_string();
        c.oidc_timeout_seconds = 2;
    })
    .await;
    let (status, body) = get_anonymous(&app, "/user").await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Not authenticated"}))
    );
    use base64::Engine as _;
    let part = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.c2ln",
        part(json!({"alg": "RS256", "kid": "k"})),
        part(
            json!({"iss": issuer, "sub": "alice", "aud": "ogdc", "azp": "ogdc", "exp": 4_000_000_000_i64})
        )
    );
    let response = app
        .client
        .get(format!("{}/user", app.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Could not validate credentials."})
    );
    app.running.stop().await.unwrap();
}
