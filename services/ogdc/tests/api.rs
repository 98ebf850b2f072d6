//! API tests: the real app on a free port with a fresh embedded store and the local
//! executor, asserting status, body and headers of every route and error case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use common::{App, meta, spawn};
use serde_json::{Value, json};

async fn post_form(
    app: &App,
    path: &str,
    token: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.post(format!("{}{path}", app.url)).form(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn version_and_login() {
    let app = spawn(|_, _| {}).await;
    let (status, body) = app.get("/version", "").await;
    assert_eq!(
        (status, body),
        (200, json!({"ogdc_runner_version": "0.3.0"}))
    );

    let response = post_form(
        &app,
        "/token",
        None,
        &[("username", "admin"), ("password", common::ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let expiration = body["utc_expiration"].as_str().unwrap();
    // `2026-11-22T06:01:00.495642Z`
    assert_eq!(expiration.len(), 27, "{expiration}");
    assert!(expiration.ends_with('Z'));
    let expires = chrono::DateTime::parse_from_rfc3339(expiration).unwrap();
    let minutes = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((1790..=1800).contains(&minutes), "{minutes}");

    for (user, password) in [("admin", "wrong"), ("nobody", "x")] {
        let response = post_form(
            &app,
            "/token",
            None,
            &[("username", user), ("password", password)],
        )
        .await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("www-authenticate").is_none());
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "Incorrect username or password."})
        );
    }

    let missing = |field: &str| json!({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": null});
    let response = post_form(
        &app,
        "/token",
        None,
        &[("username", "admin"), ("password", "")],
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": [missing("password")]})
    );
    let response = app
        .client
        .post(format!("{}/token", app.url))
        .json(&json!({"username": "admin", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": [missing("username"), missing("password")]})
    );
    let response = post_form(
        &app,
        "/token",
        None,
        &[
            ("username", "admin"),
            ("password", "x"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["type"], "string_pattern_mismatch");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "grant_type"]));
    let response = post_form(
        &app,
        "/token",
        None,
        &[
            ("username", "admin"),
            ("password", common::ADMIN_PASSWORD),
            ("grant_type", "password"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn bearer_rules() {
    let app = spawn(|_, _| {}).await;
    let admin = app.admin().await;
    let get = |header: Option<String>| {
        let mut request = app.client.get(format!("{}/user", app.url));
        if let Some(h) = header {
            request = request.header("authorization", h);
        }
        request.send()
    };
    let response = get(Some(format!("bEaReR {admin}"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"current_user": "admin"})
    );
    for (header, detail) in [
        (None, "Not authenticated"),
        (Some(format!("Basic {admin}")), "Not authenticated"),
        (Some("Bearer".to_owned()), "Could not validate credentials."),
        (
            Some("Bearer ".to_owned()),
            "Could not validate credentials.",
        ),
        (
            Some("Bearer nonsense".to_owned()),
            "Could not validate credentials.",
        ),
        (
            Some(format!("Bearer {admin}x")),
            "Could not validate credentials.",
        ),
    ] {
        let response = get(header.clone()).await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": detail}),
            "{header:?}"
        );
    }
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn create_user_rules() {
    let app = spawn(|_, _| {}).await;
    let response = app.create_user("alice", "pw").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "User with username \"alice\" created."})
    );
    let alice = app.token("alice", "pw").await;
    let (status, body) = app.get("/user", &alice).await;
    assert_eq!((status, body), (200, json!({"current_user": "alice"})));

    let response = post_form(
        &app,
        "/create_user",
        Some(&alice),
        &[("username", "bob"), ("password", "pw")],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Access token must belong to admin."})
    );
    let response = post_form(
        &app,
        "/create_user",
        None,
        &[("username", "bob"), ("password", "pw")],
    )
    .await;
    assert_eq!(response.status(), 401);
    let response = app.create_user("alice", "other").await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "User with username alice already exists."})
    );
    let admin = app.admin().await;
    let response = post_form(&app, "/create_user", Some(&admin), &[("username", "bob")]).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>().await.unwrap()["detail"][0]["loc"],
        json!(["body", "password"])
    );

    // The same name created concurrently: exactly one success.
    let results = futures::future::join_all((0..8).map(|i| {
        let password = format!("pw{i}");
        let (client, url, admin) = (app.client.clone(), app.url.clone(), admin.clone());
        async move {
            client
                .post(format!("{url}/create_user"))
                .bearer_auth(admin)
                .form(&[("username", "carol"), ("password", password.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|s| **s == 409).count(),
        7,
        "{results:?}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn submit_errors() {
    let app = spawn(|_, _| {}).await;
    let admin = app.admin().await;
    let response = app
        .client
        .post(format!("{}/submit", app.url))
        .json(&json!({"recipe_path": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .post(format!("{}/submit", app.url))
        .bearer_auth(&admin)
        .json(&json!({"overwrite": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    for (path, detail) in [
        (
            "file:///etc",
            "Failed to submit recipe with error: Recipe path not allowed: file:///etc: only https URLs and local directories under the configured root.",
        ),
        (
            "github://org:repo@main/r",
            "Failed to submit recipe with error: Recipe path not allowed: github://org:repo@main/r: only https URLs and local directories under the configured root.",
        ),
        (
            "../..",
            "Failed to submit recipe with error: Recipe path not allowed: ../.. is neither an https URL nor a directory under the configured local root.",
        ),
        (
            "missing",
            "Failed to submit recipe with error: Recipe directory not found or without meta.yml: missing.",
        ),
    ] {
        let (status, body) = app.submit(&admin, path).await;
        assert_eq!((status, body), (400, json!({"detail": detail})), "{path}");
    }
    app.recipe(
        "bad",
        "name: bad\nworkflow:\n  type: shell\ninput:\n  params: []\n",
        "ls\n",
    );
    let (status, body) = app.submit(&admin, "bad").await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("At least one input parameter is required"),
        "{body}"
    );
    for path in ["/status/nope", "/output/nope", "/runs/nope/logs"] {
        let (status, body) = app.get(path, &admin).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Workflow nope not found."})),
            "{path}"
        );
    }
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_temporary_recipe_runs_and_its_zip_downloads() {
    let app = spawn(|_, _| {}).await;
    let input = common::input_server("seals.csv", "a,b\n1,2\n").await;
    app.recipe(
        "seals",
        &meta("Seal Tags", &input, "temporary"),
        "# copy, then count\ncp /input_dir/seals.csv /output_dir/copy.csv\nwc -l /input_dir/copy.csv > /output_dir/lines.txt && cp /input_dir/copy.csv /output_dir/\n",
    );
    app.create_user("alice", "pw").await;
    app.create_user("bob", "pw").await;
    let alice = app.token("alice", "pw").await;
    let bob = app.token("bob", "pw").await;
    let (status, body) = app.submit(&alice, "seals").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with("seal-tags-shell-") && name.len() == "seal-tags-shell-".len() + 5,
        "{name}"
    );
    assert_eq!(
        body["message"],
        format!("Successfully submitted recipe with recipe_workflow_name='{name}'")
    );

    let (status, _) = app.get(&format!("/status/{name}"), &bob).await;
    assert_eq!(status, 404, "another user's run is not found");
    assert_eq!(app.wait(&alice, &name).await, "Succeeded");
    let (status, body) = app
        .get(&format!("/status/{name}"), &app.admin().await)
        .await;
    assert_eq!((status, &body["status"]), (200, &json!("Succeeded")));
    assert_eq!(body["timestamp"].as_str().unwrap().len(), 26, "{body}");

    let (status, body) = app.get(&format!("/output/{name}"), &alice).await;
    assert_eq!(status, 200, "{body}");
    let url = body["data_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/objects/{name}/seal-tags.zip?", app.url)),
        "{url}"
    );
    let zip = app.client.get(url).send().await.unwrap();
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["copy.csv", "lines.txt"]);
    let mut lines = String::new();
    archive
        .by_name("lines.txt")
        .unwrap()
        .read_to_string(&mut lines)
        .unwrap();
    assert!(lines.starts_with("2 "), "{lines}");

    let (status, logs) = {
        let r = app
            .client
            .get(format!("{}/runs/{name}/logs", app.url))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert!(
        logs.contains("step-1 (run-cmd-1)") && logs.contains("publish-data"),
        "{logs}"
    );

    let (status, runs) = app.get("/runs", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["owner"], "alice");
    let (_, runs) = app.get("/runs", &bob).await;
    assert_eq!(runs, json!([]));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn pvc_outputs_publish_once_and_failures_are_terminal() {
    let app = spawn(|_, _| {}).await;
    let input = common::input_server("a.txt", "hello").await;
    app.recipe(
        "p",
        &meta("pvc one", &input, "pvc"),
        "cp /input_dir/a.txt /output_dir/b.txt\n",
    );
    let admin = app.admin().await;
    let (_, body) = app.submit(&admin, "p").await;
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    let published = app.dir.path().join("data/volume/pvc-one/b.txt");
    assert_eq!(std::fs::read_to_string(published).unwrap(), "hello");
    let (status, body) = app.get(&format!("/output/{name}"), &admin).await;
    assert_eq!(status, 404);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("The requested output for {name} was not found: ")),
        "{body}"
    );

    let (_, body) = app.submit(&admin, "p").await;
    let again = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &again).await, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe_workflow_name"] == again.as_str())
        .unwrap();
    assert_eq!(
        run["message"],
        "Data for recipe pvc-one have already been published."
    );

    app.recipe("f", &meta("fails", &input, "temporary"), "exit 3\n");
    let (_, body) = app.submit(&admin, "f").await;
    let failing = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &failing).await, "Failed");

    app.recipe("s", &meta("slow", &input, "temporary"), "sleep 30\n");
    let (_, body) = app.submit(&admin, "s").await;
    let slow = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let response = app
        .client
        .post(format!("{}/runs/{slow}/cancel", app.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "Failed");
    assert_eq!(body["message"], "cancelled by admin");
    let response = app
        .client
        .post(format!("{}/runs/nope/cancel", app.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // An input on a missing path fails the run, and the run stays Failed.
    app.recipe(
        "m",
        &meta("missing input", &format!("{}-nope", input), "temporary"),
        "ls\n",
    );
    let (_, body) = app.submit(&admin, "m").await;
    let missing = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &missing).await, "Failed");
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_service_refuses_to_start_without_its_secrets() {
    use tessera_service::load_config_from;
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let err = load_config_from::<ogdc::Core>(env(&[("OGDC_ADMIN_PASSWORD", "x")])).unwrap_err();
    assert!(err.to_string().contains("OGDC_JWT_SECRET_KEY"), "{err}");
    let err = load_config_from::<ogdc::Core>(env(&[("OGDC_JWT_SECRET_KEY", "x")])).unwrap_err();
    assert!(err.to_string().contains("OGDC_ADMIN_PASSWORD"), "{err}");
    let config = load_config_from::<ogdc::Core>(env(&[
        ("OGDC_JWT_SECRET_KEY", "k"),
        ("OGDC_ADMIN_PASSWORD", "p"),
        ("ARGO_NAMESPACE", "other"),
        ("API_ROOT_PATH", "/ogdc/api"),
        ("INTERNAL_S3_ENDPOINT_URL", "http://minio:9000"),
        ("OGDC_PORT", "9001"),
        ("OGDC_DATA_DIR", "/tmp/x"),
        (
            "OGDC_ALLOWED_INPUT_PVCS",
            r#"["dem", {"claimName": "tiles-2"}]"#,
        ),
    ]))
    .unwrap();
    let claims: Vec<&str> = config.allowed_input_pvcs.iter().map(|c| c.name()).collect();
    assert_eq!(claims, ["dem", "tiles-2"]);
    let err = load_config_from::<ogdc::Core>(env(&[
        ("OGDC_JWT_SECRET_KEY", "k"),
        ("OGDC_ADMIN_PASSWORD", "p"),
        ("OGDC_ALLOWED_INPUT_PVCS", r#"["../etc"]"#),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("OGDC_ALLOWED_INPUT_PVCS"), "{err}");
    assert_eq!(config.argo_namespace, "other");
    assert_eq!(config.http.api_root_path, "/ogdc/api");
    assert_eq!(config.internal_s3_endpoint_url, "http://minio:9000");
    assert_eq!(config.http.port, 9001);
    assert_eq!(config.data_dir, std::path::PathBuf::from("/tmp/x"));
}

#[tokio::test]
async fn visualization_recipes_end_in_error_on_the_local_executor() {
    let app = spawn(|_, _| {}).await;
    let viz = meta("Tiles", "https://example.org/a.gpkg", "temporary").replace(
        "  type: shell\n  sh_file: recipe.sh\n",
        "  type: visualization\n",
    );
    app.recipe("tiles", &viz, "");
    let admin = app.admin().await;
    let (status, body) = app.submit(&admin, "tiles").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Error");
    let (_, runs) = app.get("/runs", &admin).await;
    assert_eq!(
        runs[0]["message"],
        "the local executor runs shell workflows only"
    );
    app.running.stop().await.unwrap();
}
