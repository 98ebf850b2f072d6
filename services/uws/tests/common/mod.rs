//! The test harness: the real app on port 0 with a fresh embedded store, a fresh storage
//! root and a dataset root, and helpers to log users in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_service::{Parts, Running};
use uws::config::{Parameter, UwsConfig, Validation};
use uws::{Core, Overrides, prepare};

pub struct App {
    pub url: String,
    pub http: reqwest::Client,
    pub root: PathBuf,
    pub datasets: PathBuf,
    pub outside: PathBuf,
    pub client_token: String,
    /// Seconds added to the real time (token expiry tests).
    pub skew: Arc<AtomicI64>,
    pub uws: Arc<tessera_workspaces::Uws>,
    running: Option<Running<Core>>,
    _dir: tempfile::TempDir,
}

pub fn config(dir: &Path) -> UwsConfig {
    let root = dir.join("root");
    let datasets = dir.join("datasets");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(datasets.join("ds1")).unwrap();
    std::fs::write(datasets.join("ds1/data.csv"), b"a,b\n").unwrap();
    let mut config = UwsConfig {
        parameters: vec![Parameter {
            display_name: "CPUs".into(),
            description: "Number of CPUs".into(),
            variable_name: "num_cpus".into(),
            default_value: json!(1),
            validation: Validation {
                kind: "int".into(),
                min: Some(json!(1)),
                max: Some(json!(4)),
                required: Some(true),
            },
        }],
        ..UwsConfig::local(
            root.canonicalize().unwrap(),
            vec![datasets.canonicalize().unwrap()],
        )
    };
    config.server.http.port = 0;
    config.server.embedded.embedded_db_path = dir.join("uws.sqlite");
    config
}

impl App {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(change: impl FnOnce(&mut UwsConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        change(&mut config);
        Self::start(dir, config, Overrides::default()).await
    }

    pub async fn start(
        dir: tempfile::TempDir,
        config: UwsConfig,
        mut overrides: Overrides,
    ) -> Self {
        let root = config.storage().unwrap().root_dir.clone();
        let datasets = config.storage().unwrap().dataset_roots[0].clone();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let skew = Arc::new(AtomicI64::new(0));
        let s = skew.clone();
        overrides.clock = Some(Arc::new(move || {
            chrono::Utc::now() + chrono::Duration::seconds(s.load(Ordering::SeqCst))
        }));
        let core = prepare(config, overrides).await.unwrap();
        let client_token = core
            .uws
            .create_api_client("portal", "portal@example.test")
            .await
            .unwrap();
        let uws = core.uws.clone();
        let running = tessera_service::start(core, Parts::ALL).await.unwrap();
        let url = running.url().unwrap();
        Self {
            url,
            http: reqwest::Client::new(),
            root,
            datasets,
            outside,
            client_token,
            skew,
            uws,
            running: Some(running),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }

    /// Stops the service and hands back its directory (store, storage root) for a restart.
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        self._dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Logs `username` in through POST /tokens/ and returns its token.
    pub async fn login(&self, username: &str, first: &str, last: &str) -> String {
        let (status, body) = self
            .post_json(
                "/tokens/",
                None,
                &json!({"client_token": self.client_token, "user_info": {
                    "username": username, "email": format!("{username}@example.test"),
                    "first_name": first, "last_name": last}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        let req = match token {
            Some(t) => req.header("UWS-Authorization", format!("Token {t}")),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.http.get(self.url(path)), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.http.delete(self.url(path)), token).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(body), token)
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(self.http.put(self.url(path)).json(body), token)
            .await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).body(body.to_owned()), token)
            .await
    }

    pub async fn put_raw(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        self.send(self.http.put(self.url(path)).body(body.to_owned()), token)
            .await
    }

    /// The id of user `name`, as `GET /users/` shows it to the holder of `token`.
    pub async fn user_id(&self, token: &str, name: &str) -> i64 {
        let (_, users) = self
            .get(&format!("/users/?search={name}"), Some(token))
            .await;
        users["data"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    /// Creates a workspace and returns its id.
    pub async fn create(&self, token: &str, body: &Value) -> i64 {
        let (status, reply) = self.post_json("/workspaces/", Some(token), body).await;
        assert_eq!(status, 200, "{reply}");
        reply["data"]["workspace"]["id"].as_i64().unwrap()
    }

    /// Waits until workspace `id` satisfies `done` (background work).
    pub async fn wait_for(&self, id: i64, done: impl Fn(Option<&uws_model::Workspace>) -> bool) {
        for _ in 0..200 {
            if done(self.uws.workspace(id).as_ref()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "workspace {id} never reached the expected state: {:?}",
            self.uws.workspace(id)
        );
    }
}

pub use tessera_workspaces::model as uws_model;

/// Asserts the error envelope exactly.
pub fn assert_refused(got: (u16, Value), status: u16, message: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1, json!({"success": false, "message": message}));
}

/// Every path under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
