//! Jobs on the local-process resource through the real app: `PUT /workspaces/<id>/start/`,
//! `GET /jobs/`, `PUT /jobs/<id>/stop/` with the original's check order and messages, the
//! monitor (woken by the process exit), core hours, the workspace's status, and monitors
//! resumed after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{App, assert_refused};
use serde_json::{Value, json};
use uws::config::{JobType, UwsConfig};

fn command(name: &str, command: Option<&str>) -> JobType {
    JobType {
        name: name.into(),
        job_type: "CommandJob".into(),
        environment_details: match command {
            Some(c) => json!({"local": {"command": c}}),
            None => json!({}),
        },
    }
}

fn with_jobs(config: &mut UwsConfig) {
    let types = &mut config.available_job_types;
    types.insert(
        "echo".into(),
        command("Echo", Some("echo hello from $USER")),
    );
    types.insert("sleeper".into(), command("Sleeper", Some("sleep 300")));
    types.insert("short".into(), command("Short", Some("sleep 3")));
    types.insert("fails".into(), command("Fails", Some("exit 3")));
    types.insert("broken".into(), command("Broken", None));
    config.server.job_poll_interval_seconds = 30;
}

async fn jobs_app() -> (App, String) {
    let app = App::spawn_with(with_jobs).await;
    let token = app.login("alice", "Alice", "A").await;
    (app, token)
}

async fn job(app: &App, token: &str, id: i64) -> Value {
    let (status, body) = app.get(&format!("/jobs/{id}/"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["jobs"][0].clone()
}

async fn wait_job(app: &App, token: &str, id: i64, status: &str) -> Value {
    for _ in 0..300 {
        let j = job(app, token, id).await;
        if j["status"] == status {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never {status}: {}", job(app, token, id).await);
}

async fn start(app: &App, token: &str, ws: i64, body: &Value) -> (u16, Value) {
    app.put_json(&format!("/workspaces/{ws}/start/"), Some(token), body)
        .await
}

/// Starts a job of `job_type` on one CPU; its id.
async fn started(app: &App, token: &str, ws: i64, job_type: &str) -> i64 {
    let (status, body) = start(
        app,
        token,
        ws,
        &json!({"job_type": job_type, "resource_options": {"num_cpus": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["job"]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn start_checks_come_in_the_originals_order_with_its_messages() {
    let (app, a) = jobs_app().await;
    let b = app.login("bob", "Bob", "B").await;
    let ws = app
        .create(&a, &json!({"name": "w", "description": "d"}))
        .await;
    let path = format!("/workspaces/{ws}/start/");

    let (status, _) = app.put_json(&path, None, &json!({})).await;
    assert_eq!(status, 401);
    assert_refused(
        start(&app, &b, ws, &json!({"job_type": "echo"})).await,
        404,
        &format!("Workspace {ws} not found for user."),
    );
    assert_refused(
        app.put_raw(&path, Some(&a), "{not json").await,
        400,
        "Invalid JSON: key must be a string at line 1 column 2",
    );
    assert_refused(
        start(&app, &a, ws, &json!({})).await,
        400,
        "Missing job_type and no default job type set on workspace.",
    );
    assert_refused(
        start(&app, &a, ws, &json!({"job_type": "nope"})).await,
        400,
        "nope is not in the list of available job types.",
    );
    assert_refused(
        start(
            &app,
            &a,
            ws,
            &json!({"job_type": "echo", "job_details": [1]}),
        )
        .await,
        400,
        "Job details not JSON.",
    );
    assert_refused(
        start(
            &app,
            &a,
            ws,
            &json!({"job_type": "echo", "resource_options": "x"}),
        )
        .await,
        400,
        "Resource options not JSON.",
    );
    assert_refused(
        start(&app, &a, ws, &json!({"job_type": "echo"})).await,
        422,
        "Invalid resource options found: ['Missing required: num_cpus']",
    );
    // Required first, then the request's key order (not sorted), Python forms.
    assert_refused(
        app.put_raw(
            &path,
            Some(&a),
            r#"{"job_type": "echo", "resource_options": {"num_cpus": 9, "zzz": 1}}"#,
        )
        .await,
        422,
        "Invalid resource options found: [\"num_cpus: Value '9' above maximum of 4.\"]",
    );
    assert_refused(
        app.put_raw(
            &path,
            Some(&a),
            r#"{"job_type": "echo", "resource_options": {"num_cpus": true}}"#,
        )
        .await,
        422,
        "Invalid resource options found: [\"num_cpus: Value 'True' of type bool does not \
         match required type int. Skipping further validation of parameter num_cpus.\"]",
    );
    assert_refused(
        start(
            &app,
            &a,
            ws,
            &json!({"job_type": "echo", "resource_options": {"num_cpus": 2.0}}),
        )
        .await,
        422,
        "Invalid resource options found: [\"num_cpus: Value '2.0' of type float does not \
         match required type int. Skipping further validation of parameter num_cpus.\"]",
    );
    // Nothing was recorded by the refusals.
    let (_, jobs) = app.get("/jobs/", Some(&a)).await;
    assert_eq!(
        jobs,
        json!({"message": "Job matching given parameters could not be found.", "success": true,
               "data": {"jobs": []}})
    );

    // §A10.10: a misconfigured job type leaves a pending row that blocks deletion until
    // stopped; stopping an unlaunched job completes it.
    assert_refused(
        start(
            &app,
            &a,
            ws,
            &json!({"job_type": "broken", "resource_options": {"num_cpus": 1}}),
        )
        .await,
        400,
        "Job Type improperly configured. Please contact a system administrator to resolve this.",
    );
    let (_, jobs) = app.get("/jobs/?status=pending", Some(&a)).await;
    let orphan = jobs["data"]["jobs"][0]["id"].as_i64().unwrap();
    assert_eq!(jobs["data"]["jobs"][0]["resource_job_id"], -1);
    assert_refused(
        app.delete(&format!("/workspaces/{ws}/"), Some(&a)).await,
        400,
        "Cannot delete workspace, jobs are running for this workspace.",
    );
    assert_eq!(
        app.put_json(&format!("/jobs/{orphan}/stop/"), Some(&a), &json!({}))
            .await,
        (200, json!({"message": "Successful stop.", "success": true}))
    );
    assert_eq!(job(&app, &a, orphan).await["status"], "complete");
    app.stop().await;
}

#[tokio::test]
async fn a_command_job_runs_in_its_folder_and_completes_with_core_hours() {
    let (app, a) = jobs_app().await;
    let ws = app
        .create(&a, &json!({"name": "w", "description": "d"}))
        .await;
    let (status, body) = start(
        &app,
        &a,
        ws,
        &json!({"job_type": "echo", "job_details": {"k": "v"}, "resource_options": {"num_cpus": 2, "unknown": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Successful start.");
    let started = &body["data"]["job"];
    let id = started["id"].as_i64().unwrap();
    assert_eq!(started["workspace_id"], ws);
    assert_eq!(started["job_type"], "echo");
    assert_eq!(started["status"], "pending");
    assert_eq!(started["core_hours"], 0);
    assert!(started["resource_job_id"].as_i64().unwrap() > 0);
    assert!(!started["datetime_created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        started["job_details"],
        json!({"metrics": {}, "request_job_details": {"k": "v"}, "current_job_details": {}})
    );

    let done = wait_job(&app, &a, id, "complete").await;
    assert!(done["datetime_end"].as_str().unwrap().ends_with('Z'));
    assert!(done["datetime_start"].is_string());
    let hours = done["core_hours"].as_str().unwrap();
    assert_eq!(hours.split('.').nth(1).map(str::len), Some(5), "{hours}");
    // The workspace goes idle just after the job's end is recorded.
    app.wait_for(ws, |w| w.is_some_and(|w| w.status.as_str() == "idle"))
        .await;
    let w = app.uws.workspace(ws).unwrap();
    assert!(w.datetime_last_job_launch.is_some());
    // The options kept are the mapped known ones (parameter_mapping).
    let record = app.uws.records().read().jobs.get(&id).cloned().unwrap();
    assert_eq!(record.resource_options, json!({"num_cpus": 2}));
    // Its script and log are in the workspace's `.<id>/` folder, which the listing skips.
    let folder = app.root.join(&w.file_path).join(format!(".{id}"));
    let log = std::fs::read_to_string(folder.join(format!("echo_{id}_output.log"))).unwrap();
    assert!(log.starts_with("hello from "), "{log}");
    assert!(
        w.workspace_details
            .current_workspace_details
            .files
            .is_empty()
    );

    // Listings: filters, a foreign or missing id is an empty success.
    let (_, listed) = app
        .get(&format!("/jobs/?workspace_id={ws}&job_type=echo"), Some(&a))
        .await;
    assert_eq!(listed["data"]["jobs"].as_array().unwrap().len(), 1);
    let (_, none) = app.get("/jobs/?job_type=sleeper", Some(&a)).await;
    assert_eq!(
        none["message"],
        "Job matching given parameters could not be found."
    );
    assert_refused(
        app.get("/jobs/?workspace_id=x", Some(&a)).await,
        400,
        "workspace_id must be an integer.",
    );
    let b = app.login("bob", "Bob", "B").await;
    let (status, theirs) = app.get(&format!("/jobs/{id}/"), Some(&b)).await;
    assert_eq!((status, theirs["data"]["jobs"].clone()), (200, json!([])));
    let (status, _) = app.get("/jobs/", None).await;
    assert_eq!(status, 401);
    // Stopping an ended job.
    assert_refused(
        app.put_json(&format!("/jobs/{id}/stop/"), Some(&a), &json!({}))
            .await,
        400,
        "This job is not running or pending.",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_failed() {
    let (app, a) = jobs_app().await;
    let ws = app
        .create(&a, &json!({"name": "w", "description": "d"}))
        .await;
    let id = started(&app, &a, ws, "fails").await;
    wait_job(&app, &a, id, "failed").await;
    app.wait_for(ws, |w| w.is_some_and(|w| w.status.as_str() == "idle"))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn stop_kills_the_process_group_and_only_the_owner_may_stop() {
    let (app, a) = jobs_app().await;
    let b = app.login("bob", "Bob", "B").await;
    let ws = app
        .create(
            &a,
            &json!({"name": "w", "description": "d", "default_job_type": "sleeper"}),
        )
        .await;
    let (status, body) = start(&app, &a, ws, &json!({"resource_options": {"num_cpus": 1}})).await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["job"]["id"].as_i64().unwrap();
    let pid = body["data"]["job"]["resource_job_id"].as_i64().unwrap();
    assert_eq!(app.uws.workspace(ws).unwrap().status.as_str(), "active");
    // Running jobs block deletion.
    assert_refused(
        app.delete(&format!("/workspaces/{ws}/"), Some(&a)).await,
        400,
        "Cannot delete workspace, jobs are running for this workspace.",
    );
    assert_refused(
        app.put_json(&format!("/jobs/{id}/stop/"), Some(&b), &json!({}))
            .await,
        404,
        &format!("Job {id} not found for user."),
    );
    assert_refused(
        app.put_json("/jobs/9999/stop/", Some(&a), &json!({})).await,
        404,
        "Job 9999 not found for user.",
    );
    assert_refused(
        app.put_json(&format!("/jobs/{id}/pause/"), Some(&a), &json!({}))
            .await,
        400,
        "Invalid PUT type passed.",
    );
    assert_eq!(
        app.put_json(&format!("/jobs/{id}/stop/"), Some(&a), &json!({}))
            .await,
        (
            200,
            json!({"message": "Job queued to stop.", "success": true})
        )
    );
    // Woken by the exit, long before the 30 s poll interval.
    let done = wait_job(&app, &a, id, "complete").await;
    assert!(done["datetime_end"].is_string());
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(!alive, "the job's process {pid} is still there");
    app.wait_for(ws, |w| w.is_some_and(|w| w.status.as_str() == "idle"))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_job_started_before_a_restart_is_still_monitored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    with_jobs(&mut config);
    config.server.job_poll_interval_seconds = 1;
    let app = App::start(dir, config.clone(), uws::Overrides::default()).await;
    let a = app.login("alice", "Alice", "A").await;
    let ws = app
        .create(&a, &json!({"name": "w", "description": "d"}))
        .await;
    let id = started(&app, &a, ws, "short").await;
    wait_job(&app, &a, id, "running").await;
    let dir = app.stop_keeping_dir().await;

    let app = App::start(dir, config, uws::Overrides::default()).await;
    assert_eq!(job(&app, &a, id).await["status"], "running");
    let done = wait_job(&app, &a, id, "complete").await;
    let hours: f64 = done["core_hours"].as_str().unwrap().parse().unwrap();
    // Three seconds of one CPU, measured from the first running observation.
    assert!(hours > 0.0 && hours < 0.01, "{hours}");
    app.wait_for(ws, |w| w.is_some_and(|w| w.status.as_str() == "idle"))
        .await;
    app.stop().await;
}

async fn socket(
    app: &App,
    id: i64,
    token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = app.url(&format!("/jobs/{id}/")).replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(t) = token {
        request
            .headers_mut()
            .insert("UWS-Authorization", format!("Token {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(stream),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("websocket: {other}"),
    }
}

async fn next_json(
    stream: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    use futures::StreamExt;
    let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no websocket message within 10 s")
        .unwrap()
        .unwrap();
    serde_json::from_str(message.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn the_job_websocket_needs_the_owners_token_and_reports_every_change() {
    let (app, a) = jobs_app().await;
    let b = app.login("bob", "Bob", "B").await;
    let ws = app
        .create(&a, &json!({"name": "w", "description": "d"}))
        .await;
    let id = started(&app, &a, ws, "sleeper").await;
    wait_job(&app, &a, id, "running").await;

    assert_eq!(socket(&app, id, None).await.err(), Some(401));
    assert_eq!(
        socket(&app, id, Some("0".repeat(40).as_str())).await.err(),
        Some(401)
    );
    assert_eq!(socket(&app, id, Some(&b)).await.err(), Some(404));
    assert_eq!(socket(&app, 9999, Some(&a)).await.err(), Some(404));

    let mut stream = socket(&app, id, Some(&a)).await.unwrap();
    assert_eq!(
        next_json(&mut stream).await,
        json!({"status": "running", "current_job_details": {}})
    );
    // The query form, for browsers.
    let url = app
        .url(&format!("/jobs/{id}/?token={a}"))
        .replacen("http", "ws", 1);
    let (mut by_query, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut by_query).await["status"], "running");

    app.put_json(&format!("/jobs/{id}/stop/"), Some(&a), &json!({}))
        .await;
    assert_eq!(next_json(&mut stream).await["status"], "stopping");
    assert_eq!(next_json(&mut stream).await["status"], "complete");
    app.stop().await;
}

#[tokio::test]
async fn quotas_refuse_starts_and_uploads_past_the_limits() {
    let app = App::spawn_with(|c| {
        with_jobs(c);
        c.server.quota_disk_space_bytes = 10;
        c.server.quota_core_hours = 0.0005;
    })
    .await;
    let a = app.login("alice", "Alice", "A").await;
    assert_eq!(
        app.get("/quota/", Some(&a)).await,
        (
            200,
            json!({"message": "Successful.", "success": true, "data": {"quota": {
                "disk_space": {"used": 0, "max": 10},
                "core_hours": {"used": "0.00000", "max": "0.00050"}}}})
        )
    );
    let (status, _) = app.get("/quota/", None).await;
    assert_eq!(status, 401);
    // Disk: a create past the limit writes nothing.
    assert_refused(
        app.post_json(
            "/workspaces/",
            Some(&a),
            &json!({"name": "w", "description": "d",
                    "workspace_details": {"files": [{"name": "big", "content": "0123456789A"}]}}),
        )
        .await,
        403,
        "Disk space quota exceeded: 0 bytes used, 11 more requested, 10 allowed.",
    );
    assert!(
        common::tree(&app.root).is_empty(),
        "{:?}",
        common::tree(&app.root)
    );
    let ws = app
        .create(
            &a,
            &json!({"name": "w", "description": "d",
                    "workspace_details": {"files": [{"name": "f", "content": "12345678"}]}}),
        )
        .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"abc".to_vec()).file_name("more.txt"),
    );
    let (status, body) = app
        .send(
            app.http
                .put(app.url(&format!("/workspaces/{ws}/upload/")))
                .multipart(form),
            Some(&a),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"success": false, "message":
                "Disk space quota exceeded: 8 bytes used, 3 more requested, 10 allowed."})
        )
    );
    // Core hours: a job of over 1.8 s uses the 0.0005 h; the next start is refused.
    let id = started(&app, &a, ws, "short").await;
    wait_job(&app, &a, id, "complete").await;
    let (status, body) = start(
        &app,
        &a,
        ws,
        &json!({"job_type": "echo", "resource_options": {"num_cpus": 1}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Core hour quota exceeded: 0.000"),
        "{body}"
    );
    app.stop().await;
}
