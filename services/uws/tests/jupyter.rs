//! A real JupyterLab job (the `JupyterLabJob` type) on the local-process resource: started
//! with the per-job token uws made, ready once its `connection_details` are recorded; its
//! page, a kernel and the kernel's websocket (`1+1`) reached through the passthrough proxy;
//! the proxy refuses callers without a credential, other users, and jobs that no longer run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::App;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use uws::config::JobType;

/// The app with a `lab` job type of `JupyterLabJob` (`details`: its environment details on
/// the resource, given the app's directory) and a 30 s poll interval. `slurm`: the config names a Slurm resource (jobs
/// on other hosts) while the jobs run here.
async fn lab_app(details: impl FnOnce(&std::path::Path) -> Value, slurm: bool) -> App {
    let dir = tempfile::tempdir().unwrap();
    let details = details(dir.path());
    let mut config = common::config(dir.path());
    config.available_job_types.insert(
        "lab".into(),
        JobType {
            name: "JupyterLab".into(),
            job_type: "JupyterLabJob".into(),
            environment_details: json!({ "local": details }),
        },
    );
    config.server.job_poll_interval_seconds = 30;
    if slurm {
        config.available_resources.get_mut("local").unwrap()["resource_type"] =
            json!("SlurmResource");
    }
    let overrides = uws::Overrides {
        resource: Some(std::sync::Arc::new(uws::local::LocalResource::new())),
        ..uws::Overrides::default()
    };
    App::start(dir, config, overrides).await
}

/// Starts a `lab` job in a new workspace of `token`'s user: the workspace, the job and the
/// start's reply.
async fn start_lab(app: &App, token: &str) -> (i64, i64, Value) {
    let ws = app
        .create(token, &json!({"name": "lab", "description": "d"}))
        .await;
    let (status, body) = app
        .put_json(
            &format!("/workspaces/{ws}/start/"),
            Some(token),
            &json!({"job_type": "lab", "resource_options": {"num_cpus": 1}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["job"]["id"].as_i64().unwrap();
    (ws, id, body)
}

async fn job(app: &App, token: &str, id: i64) -> Value {
    let (status, body) = app.get(&format!("/jobs/{id}/"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["jobs"][0].clone()
}

/// Waits until `done` holds for job `id`, for at most `seconds`.
async fn wait_job(
    app: &App,
    token: &str,
    id: i64,
    seconds: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let j = job(app, token, id).await;
        if done(&j) {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never got there: {j}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn proxied(app: &App, path: &str, uws_token: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = uws_token {
        req = req.header("UWS-Authorization", format!("Token {t}"));
    }
    req.send().await.unwrap()
}

async fn refused(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"success": false, "message": message}));
}

/// Opens the websocket `path` on uws with `uws_token` in the header; the handshake's error
/// status when it is refused.
async fn socket(
    app: &App,
    path: &str,
    uws_token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let url = app.url(path).replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(t) = uws_token {
        request
            .headers_mut()
            .insert("UWS-Authorization", format!("Token {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("websocket {path}: {e}"),
    }
}

/// Runs `code` on the kernel behind `ws` (Jupyter's JSON websocket protocol) and returns
/// the `text/plain` of its `execute_result`.
async fn execute<S>(ws: &mut S, code: &str) -> String
where
    S: futures::Sink<Message, Error = tungstenite::Error>
        + futures::Stream<Item = Result<Message, tungstenite::Error>>
        + Unpin,
{
    let msg_id = "uws-test-execute-1";
    let request = json!({
        "header": {"msg_id": msg_id, "username": "alice", "session": "uws-test-session",
                   "msg_type": "execute_request", "version": "5.3",
                   "date": "2026-12-05T00:00:00.000Z"},
        "parent_header": {}, "metadata": {},
        "content": {"code": code, "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
        "channel": "shell", "buffers": [],
    });
    ws.send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    let wait = async {
        while let Some(message) = ws.next().await {
            let Message::Text(text) = message.unwrap() else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["parent_header"]["msg_id"] == msg_id
                && message["header"]["msg_type"] == "execute_result"
            {
                return message["content"]["data"]["text/plain"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
        }
        panic!("the kernel's websocket closed before the result");
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("no execute_result within 120 s")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_jupyterlab_is_reached_through_the_passthrough_proxy_by_its_owner_only() {
    let Some(jupyter) = tessera_test_support::interop::jupyter() else {
        return;
    };
    let app = lab_app(|_| json!({ "jupyter": jupyter }), false).await;
    let alice = app.login("alice", "Alice", "A").await;
    let bob = app.login("bob", "Bob", "B").await;
    let (_, id, body) = start_lab(&app, &alice).await;
    // The token is the job's secret until the server is ready.
    assert!(!body.to_string().contains("token"), "{body}");

    let ready = wait_job(&app, &alice, id, 120, |j| {
        j["job_details"]["current_job_details"]["connection_details"].is_object()
            || j["status"] != "running" && j["status"] != "pending"
    })
    .await;
    let current = &ready["job_details"]["current_job_details"];
    assert_eq!(ready["status"], "running", "{ready}");
    assert_eq!(current["message"], "Webserver ready.");
    let port = current["proxy_details"]["port"].as_u64().unwrap();
    let base = format!("/passthrough/127.0.0.1/{port}/");
    assert_eq!(
        current["proxy_details"],
        json!({"hostname": "127.0.0.1", "port": port, "path": base})
    );
    let url_path = current["connection_details"]["url_path"].as_str().unwrap();
    let jupyter_token = url_path
        .strip_prefix(&format!("{base}lab?token="))
        .unwrap_or_else(|| panic!("url_path {url_path}"));
    assert_eq!(jupyter_token.len(), 40);
    assert!(
        ready["job_details"]["metrics"]["time_init"].is_i64(),
        "{ready}"
    );
    // The token is never on a command line, where every local account could read it.
    let cmdlines = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(jupyter_token))
        .count();
    assert_eq!(cmdlines, 0);

    // The page, through the proxy, for its owner.
    let page = proxied(&app, url_path, Some(&alice)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("JupyterLab"), "{html}");

    // Nobody else: no credential, another user's (header or cookie), a job that is not
    // theirs on any other port.
    refused(
        proxied(&app, url_path, None).await,
        401,
        "Authentication credentials were not provided.",
    )
    .await;
    refused(proxied(&app, url_path, Some(&bob)).await, 404, "Not found.").await;
    let as_bob_cookie = app
        .http
        .get(app.url(url_path))
        .header("Cookie", format!("uws_token={bob}"))
        .send()
        .await
        .unwrap();
    refused(as_bob_cookie, 404, "Not found.").await;
    refused(
        proxied(
            &app,
            &format!("/passthrough/127.0.0.1/{}/lab", port ^ 1),
            Some(&alice),
        )
        .await,
        404,
        "Not found.",
    )
    .await;

    // A browser's first load: the credential in the query becomes a path-scoped cookie,
    // which then suffices.
    let first = proxied(&app, &format!("{url_path}&uws_token={alice}"), None).await;
    assert_eq!(first.status(), 200);
    let cookie = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("uws_token="))
        .expect("the credential cookie");
    assert_eq!(
        cookie,
        format!("uws_token={alice}; Path={base}; HttpOnly; SameSite=Strict")
    );
    let by_cookie = app
        .http
        .get(app.url(&format!("{base}api/status")))
        .header("Cookie", format!("uws_token={alice}"))
        .header("Authorization", format!("token {jupyter_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    // A kernel, started through the proxy; `1+1` over its websocket through the proxy.
    let kernel: Value = app
        .http
        .post(app.url(&format!("{base}api/kernels")))
        .header("UWS-Authorization", format!("Token {alice}"))
        .header("Authorization", format!("token {jupyter_token}"))
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kernel_id = kernel["id"].as_str().unwrap_or_else(|| panic!("{kernel}"));
    let channels = format!("{base}api/kernels/{kernel_id}/channels?token={jupyter_token}");
    assert_eq!(socket(&app, &channels, None).await.err(), Some(401));
    assert_eq!(socket(&app, &channels, Some(&bob)).await.err(), Some(404));
    let mut ws_alice = socket(&app, &channels, Some(&alice)).await.unwrap();
    assert_eq!(execute(&mut ws_alice, "1+1").await, "2");
    drop(ws_alice);

    // Stopped: the proxy no longer reaches it.
    let (status, body) = app
        .put_json(&format!("/jobs/{id}/stop/"), Some(&alice), &json!({}))
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (200, json!("Job queued to stop."))
    );
    wait_job(&app, &alice, id, 60, |j| j["status"] == "complete").await;
    refused(
        proxied(&app, url_path, Some(&alice)).await,
        404,
        "Not found.",
    )
    .await;
    app.stop().await;
}

/// A JupyterLab job whose `jupyter` only sleeps: its script still writes `.network_config`,
/// nothing listens.
async fn silent_lab(slurm: bool) -> (App, String, i64, i64) {
    let fake = |dir: &std::path::Path| {
        let fake = dir.join("jupyter");
        std::fs::write(&fake, "#!/bin/bash\nexec sleep 300\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        json!({"jupyter": fake, "host": "127.0.0.1"})
    };
    let app = lab_app(fake, slurm).await;
    let token = app.login("alice", "Alice", "A").await;
    let (ws, id, _) = start_lab(&app, &token).await;
    (app, token, ws, id)
}

/// Waits until job `id` reports the progress `message`.
async fn wait_message(app: &App, token: &str, id: i64, message: &str) -> Value {
    wait_job(app, token, id, 30, |j| {
        j["job_details"]["current_job_details"]["message"] == message
    })
    .await
}

/// Stops job `id`, waits for its end, stops the app.
async fn stop_lab(app: App, token: &str, id: i64) {
    let (status, body) = app
        .put_json(&format!("/jobs/{id}/stop/"), Some(token), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_job(&app, token, id, 30, |j| j["status"] == "complete").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_does_not_answer_is_not_ready_and_not_reachable() {
    let (app, token, ws, id) = silent_lab(false).await;
    let waiting = wait_message(&app, &token, id, "Webserver not ready.").await;
    let current = &waiting["job_details"]["current_job_details"];
    assert_eq!(waiting["status"], "running");
    assert!(current.get("connection_details").is_none(), "{waiting}");
    assert!(current.get("proxy_details").is_none(), "{waiting}");
    // The port it wrote is not open through the proxy while it is not ready.
    let w = app.uws.workspace(ws).unwrap();
    let config = std::fs::read_to_string(
        app.root
            .join(&w.file_path)
            .join(format!(".{id}/.network_config")),
    )
    .unwrap();
    let port = config.split_whitespace().nth(1).unwrap();
    refused(
        proxied(
            &app,
            &format!("/passthrough/127.0.0.1/{port}/lab"),
            Some(&token),
        )
        .await,
        404,
        "Not found.",
    )
    .await;
    stop_lab(app, &token, id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_on_another_host_may_not_point_the_proxy_at_this_hosts_loopback() {
    let (app, token, _, id) = silent_lab(true).await;
    let refused_config = wait_message(&app, &token, id, "Network config not allowed.").await;
    assert!(
        refused_config["job_details"]["current_job_details"]
            .get("proxy_details")
            .is_none()
    );
    stop_lab(app, &token, id).await;
}

#[tokio::test]
async fn job_files_are_read_without_following_links_or_blocking_on_fifos() {
    use tessera_workspaces::Storage;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let config = uws::config::StorageConfig {
        name: "Local".into(),
        storage_type: "LocalFileSystemStorage".into(),
        user_authentication: "local".into(),
        root_dir: root.clone(),
        connection_details: json!({}),
        dataset_roots: Vec::new(),
        account_mapping: uws::config::AccountMapping::Service,
        create_users: false,
        min_uid: 0,
    };
    let storage = uws::storage::LocalStorage::new(&config).unwrap();
    let account = storage.account("alice").await.unwrap();
    storage
        .create("alice/1", &account, Vec::new())
        .await
        .unwrap();
    let read = |job: i64, max: usize| {
        let storage = storage.clone();
        async move {
            storage
                .read_job_file("alice/1", job, ".network_config", max)
                .await
                .unwrap()
        }
    };
    let ws = root.join("alice/1");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "10.0.0.1 8888").unwrap();

    assert_eq!(read(7, 512).await, None);
    std::fs::create_dir(ws.join(".7")).unwrap();
    assert_eq!(read(7, 512).await, None);
    std::fs::write(ws.join(".7/.network_config"), "127.0.0.1 4242\n").unwrap();
    assert_eq!(read(7, 512).await, Some(b"127.0.0.1 4242\n".to_vec()));
    assert_eq!(
        read(7, 4).await,
        Some(b"127.".to_vec()),
        "at most max bytes"
    );
    // A symlink at the file or at the folder is not followed.
    std::fs::remove_file(ws.join(".7/.network_config")).unwrap();
    std::os::unix::fs::symlink(&secret, ws.join(".7/.network_config")).unwrap();
    assert_eq!(read(7, 512).await, None);
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::copy(&secret, dir.path().join("elsewhere/.network_config")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), ws.join(".8")).unwrap();
    assert_eq!(read(8, 512).await, None);
    // A FIFO is not waited on.
    std::fs::remove_file(ws.join(".7/.network_config")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(ws.join(".7/.network_config"))
        .status()
        .unwrap();
    assert!(made.success());
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        storage.read_job_file("alice/1", 7, ".network_config", 512),
    )
    .await
    .expect("a FIFO must not block the read");
    assert_eq!(read.unwrap(), None);
}
