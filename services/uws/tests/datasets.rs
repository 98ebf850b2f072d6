//! `dataset_uuid` symlinks through HuBMAP's ingest API (§A8.2), against a stand-in for the
//! API started here: `POST /datasets/file-system-abs-path` with a JSON list of uuids and a
//! bearer groups token, answering `{uuid, path}` or `{uuid, error}` per uuid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App as ActixApp, HttpRequest, HttpResponse, HttpServer, web};
use common::{App, assert_refused, tree};
use serde_json::{Value, json};
use uws::config::HUBMAP_STORAGE;

const GROUPS_TOKEN: &str = "groups-token-of-alice";

/// How the stand-in answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// As the ingest API.
    Normal,
    /// 500 with a text body.
    Failing,
    /// 200 with HTML.
    Garbage,
}

#[derive(Clone)]
struct StandIn {
    paths: Arc<Mutex<HashMap<String, String>>>,
    mode: Arc<Mutex<Mode>>,
    asked: Arc<Mutex<Vec<Value>>>,
}

async fn abs_path(state: web::Data<StandIn>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::Failing => return HttpResponse::InternalServerError().body("database is down"),
        Mode::Garbage => {
            return HttpResponse::Ok()
                .content_type("text/html")
                .body("<html>maintenance</html>");
        }
        Mode::Normal => {}
    }
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if bearer != format!("Bearer {GROUPS_TOKEN}") {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid token"}));
    }
    let Ok(Value::Array(uuids)) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"error": "expected a list of uuids"}));
    };
    state
        .asked
        .lock()
        .unwrap()
        .push(Value::Array(uuids.clone()));
    let paths = state.paths.lock().unwrap();
    let answer: Vec<Value> = uuids
        .iter()
        .map(|uuid| {
            let uuid = uuid.as_str().unwrap_or_default();
            match paths.get(uuid) {
                Some(path) => json!({"uuid": uuid, "path": path}),
                None => json!({"uuid": uuid, "error": format!("Dataset {uuid} not found")}),
            }
        })
        .collect();
    HttpResponse::Ok().json(answer)
}

/// Starts the stand-in on a free port; returns it and its URL.
fn stand_in() -> (StandIn, String) {
    let state = StandIn {
        paths: Arc::default(),
        mode: Arc::new(Mutex::new(Mode::Normal)),
        asked: Arc::default(),
    };
    let data = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        ActixApp::new().app_data(data.clone()).route(
            "/api/datasets/file-system-abs-path",
            web::post().to(abs_path),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (state, format!("http://127.0.0.1:{port}/api"))
}

async fn spawn(root_url: &str) -> App {
    let root_url = root_url.to_owned();
    App::spawn_with(move |config| {
        let storage = config.available_storage.values_mut().next().unwrap();
        storage.storage_type = HUBMAP_STORAGE.into();
        storage.connection_details = json!({"root_url": root_url});
    })
    .await
}

fn body(details: Value) -> Value {
    json!({"name": "w", "description": "d", "workspace_details": details})
}

#[tokio::test]
async fn dataset_uuids_become_symlinks_into_the_dataset_roots() {
    let (api, url) = stand_in();
    let app = spawn(&url).await;
    let source = app.datasets.join("ds1");
    api.paths
        .lock()
        .unwrap()
        .insert("uuid-public".into(), source.display().to_string());
    let alice = app.login("alice", "Alice", "Smith").await;
    let id = app
        .create(
            &alice,
            &body(json!({
            "globus_groups_token": GROUPS_TOKEN,
            "symlinks": [
                {"name": "sub/data", "dataset_uuid": "uuid-public"},
                {"name": "again", "dataset_uuid": "uuid-public"},
                {"name": "plain", "source_path": source},
            ]})),
        )
        .await;
    let dir = app.root.join(format!("alice/{id}"));
    for link in ["sub/data", "again", "plain"] {
        assert_eq!(
            std::fs::read_link(dir.join(link)).unwrap(),
            source,
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/data/data.csv")).unwrap(),
        "a,b\n"
    );
    // One request for every uuid, each asked once.
    assert_eq!(*api.asked.lock().unwrap(), vec![json!(["uuid-public"])]);
    let ws = app.uws.workspace(id).unwrap();
    assert_eq!(
        serde_json::to_value(&ws.workspace_details.current_workspace_details).unwrap()["symlinks"],
        json!([{"name": "/again"}, {"name": "/plain"}, {"name": "/sub/data"}])
    );
    app.stop().await;
}

#[tokio::test]
async fn dataset_uuid_failures_are_refused_before_anything_is_written() {
    let (api, url) = stand_in();
    let app = spawn(&url).await;
    let protected = app.outside.join("protected-dataset");
    std::fs::create_dir_all(&protected).unwrap();
    {
        let mut paths = api.paths.lock().unwrap();
        paths.insert(
            "uuid-public".into(),
            app.datasets.join("ds1").display().to_string(),
        );
        // An access level whose data root is not among `dataset_roots`.
        paths.insert("uuid-protected".into(), protected.display().to_string());
        paths.insert(
            "uuid-gone".into(),
            app.datasets.join("gone").display().to_string(),
        );
    }
    let alice = app.login("alice", "Alice", "Smith").await;
    let t = Some(alice.as_str());
    let link = |uuid: &str| json!({"globus_groups_token": GROUPS_TOKEN, "symlinks": [{"name": "d", "dataset_uuid": uuid}]});
    // A bad name is refused before the API is asked.
    assert_refused(
        app.post_json(
            "/workspaces/",
            t,
            &body(json!({"globus_groups_token": GROUPS_TOKEN, "symlinks": [{"name": "../d", "dataset_uuid": "uuid-public"}]})),
        )
        .await,
        400,
        "Symlink name cannot contain double dots.",
    );
    assert!(api.asked.lock().unwrap().is_empty());
    let cases = [
        (
            json!({"symlinks": [{"name": "d", "dataset_uuid": "uuid-public"}]}),
            400,
            "No globus_groups_token passed when trying to use dataset_uuid.".to_owned(),
        ),
        (
            link("uuid-unknown"),
            500,
            "Errors encountered when attempting to gather UUID information: \
             [{'uuid': 'uuid-unknown', 'error': 'Dataset uuid-unknown not found'}]"
                .to_owned(),
        ),
        (
            link("uuid-protected"),
            400,
            format!("Symlink path not allowed: {}", protected.display()),
        ),
        (
            link("uuid-gone"),
            500,
            format!(
                "Symlink path not found: {}",
                app.datasets.join("gone").display()
            ),
        ),
        (
            json!({"globus_groups_token": "someone-else", "symlinks": [{"name": "d", "dataset_uuid": "uuid-public"}]}),
            500,
            r#"The dataset API refused the request (401): {"error":"invalid token"}"#.to_owned(),
        ),
    ];
    for (details, status, message) in cases {
        assert_refused(
            app.post_json("/workspaces/", t, &body(details)).await,
            status,
            &message,
        );
    }
    *api.mode.lock().unwrap() = Mode::Failing;
    assert_refused(
        app.post_json("/workspaces/", t, &body(link("uuid-public")))
            .await,
        500,
        "Server side error: database is down",
    );
    *api.mode.lock().unwrap() = Mode::Garbage;
    assert_refused(
        app.post_json("/workspaces/", t, &body(link("uuid-public")))
            .await,
        500,
        "Invalid answer from the dataset API.",
    );
    assert!(tree(&app.root).is_empty(), "{:?}", tree(&app.root));
    let (_, listed) = app.get("/workspaces/", t).await;
    assert_eq!(listed["data"]["workspaces"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_api_is_a_500_and_without_the_api_uuids_stay_unresolved() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn(&format!("http://127.0.0.1:{port}")).await;
    let alice = app.login("alice", "Alice", "Smith").await;
    let details = json!({"globus_groups_token": GROUPS_TOKEN, "symlinks": [{"name": "d", "dataset_uuid": "u1"}]});
    assert_refused(
        app.post_json("/workspaces/", Some(&alice), &body(details.clone()))
            .await,
        500,
        "Could not reach the dataset API.",
    );
    app.stop().await;

    // The plain local storage has no dataset API.
    let app = App::spawn().await;
    let alice = app.login("alice", "Alice", "Smith").await;
    assert_refused(
        app.post_json("/workspaces/", Some(&alice), &body(details))
            .await,
        500,
        "Could not resolve dataset_uuid u1.",
    );
    assert!(tree(&app.root).is_empty());
    app.stop().await;
}

#[test]
fn a_hubmap_storage_needs_an_http_root_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    for bad in [
        json!({}),
        json!({"root_url": "ftp://x"}),
        json!({"root_url": 3}),
    ] {
        let storage = config.available_storage.values_mut().next().unwrap();
        storage.storage_type = HUBMAP_STORAGE.into();
        storage.connection_details = bad.clone();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("available_storage.local.connection_details.root_url"),
            "{bad}: {err}"
        );
    }
}
