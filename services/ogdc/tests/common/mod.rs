//! Spawning the real service on a free port with a fresh store, and a local input server.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;

use ogdc::{Core, OgdcConfig, Overrides, prepare};
use serde_json::Value;
use tessera_service::{Parts, Running};

pub const ADMIN_PASSWORD: &str = "admin-pw";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn config(dir: &Path) -> OgdcConfig {
    let mut config = OgdcConfig {
        jwt_secret_key: "test-jwt-secret".into(),
        admin_password: ADMIN_PASSWORD.into(),
        // Cheap hashes keep the suite fast; the benchmark uses the original's cost.
        argon2_t: 1,
        argon2_m_kib: 64,
        argon2_p: 1,
        data_dir: dir.join("data"),
        recipe_local_root: dir.join("recipes").display().to_string(),
        allow_private_urls: true,
        command_timeout_seconds: 20,
        ..OgdcConfig::default()
    };
    config.http.port = free_port();
    config
}

pub struct App {
    pub url: String,
    pub running: Running<Core>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// A directory for an app: reachable by the unprivileged account commands run as, with
/// an empty `recipes/`.
pub fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
    dir
}

pub async fn spawn(change: impl FnOnce(&mut OgdcConfig, &Path)) -> App {
    spawn_with(change, Overrides::default()).await
}

pub async fn spawn_with(change: impl FnOnce(&mut OgdcConfig, &Path), overrides: Overrides) -> App {
    let dir = app_dir();
    let mut config = config(dir.path());
    change(&mut config, dir.path());
    start(dir, config, overrides).await
}

/// The app in `dir` (from [`app_dir`]) with `config` and `overrides`.
pub async fn start(dir: tempfile::TempDir, config: OgdcConfig, overrides: Overrides) -> App {
    let core = prepare(config, overrides).await.unwrap();
    let running = tessera_service::start(core, Parts::REST).await.unwrap();
    let url = running.url().unwrap().trim_end_matches('/').to_owned();
    App {
        url,
        running,
        client: reqwest::Client::new(),
        dir,
    }
}

impl App {
    pub async fn token(&self, user: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}/token", self.url))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Stops the service and hands back its directory (store, work, volume) for a restart.
    pub async fn stop_keeping_dir(self) -> tempfile::TempDir {
        self.running.stop().await.unwrap();
        self.dir
    }

    pub async fn admin(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    pub async fn create_user(&self, name: &str, password: &str) -> reqwest::Response {
        let admin = self.admin().await;
        self.client
            .post(format!("{}/create_user", self.url))
            .bearer_auth(admin)
            .form(&[("username", name), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    pub fn recipe(&self, name: &str, meta: &str, sh: &str) {
        let dir = self.dir.path().join("recipes").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.yml"), meta).unwrap();
        std::fs::write(dir.join("recipe.sh"), sh).unwrap();
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn submit(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/submit", self.url))
            .bearer_auth(token)
            .json(&serde_json::json!({ "recipe_path": path }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `GET /runs/{name}/logs`.
    pub async fn logs(&self, token: &str, name: &str) -> String {
        self.client
            .get(format!("{}/runs/{name}/logs", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `/status` until a terminal phase (at most a minute).
    pub async fn wait(&self, token: &str, name: &str) -> String {
        for _ in 0..600 {
            let (status, body) = self.get(&format!("/status/{name}"), token).await;
            assert_eq!(status, 200, "{body}");
            let phase = body["status"].as_str().unwrap().to_owned();
            if matches!(phase.as_str(), "Succeeded" | "Failed" | "Error") {
                let (_, runs) = self.get("/runs", token).await;
                let logs = self.logs(token, name).await;
                eprintln!("run {name}: {phase} {runs}\n{logs}");
                return phase;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("run {name} did not finish");
    }
}

/// A local HTTP server answering `GET /<name>` with `body` (other paths 404).
pub async fn input_server(name: &'static str, body: &'static str) -> String {
    let base = http_server(vec![(format!("/{name}"), String::new(), body.to_owned())]).await;
    format!("{base}/{name}")
}

/// A local HTTP server answering `GET <path>` of each route `(path, extra header lines,
/// body)` (other paths 404); its base URL.
pub async fn http_server(routes: Vec<(String, String, String)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = std::sync::Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let response = match routes.iter().find(|(p, _, _)| *p == path) {
                    Some((_, headers, body)) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

pub fn meta(name: &str, url: &str, output: &str) -> String {
    format!(
        "name: {name}\nworkflow:\n  type: shell\n  sh_file: recipe.sh\ninput:\n  params:\n    - type: url\n      value: {url}\noutput:\n  type: {output}\n"
    )
}

/// `meta.yml` of a parallel shell recipe over `urls`, `partition_size` files per
/// partition, `max_parallelism` at once.
pub fn parallel_meta(
    name: &str,
    urls: &[String],
    partition_size: u32,
    max_parallelism: u32,
    output: &str,
) -> String {
    let params: String = urls
        .iter()
        .map(|url| format!("    - type: url\n      value: {url}\n"))
        .collect();
    format!(
        "name: {name}\nworkflow:\n  type: shell\n  sh_file: recipe.sh\n  parallel:\n    enabled: true\n    partition_strategy: files\n    partition_size: {partition_size}\n    max_parallelism: {max_parallelism}\ninput:\n  params:\n{params}output:\n  type: {output}\n"
    )
}

/// A local HTTP server with files `a.txt`, `b.txt`, … (`n` of them, each holding its
/// letter and a newline); their URLs.
pub async fn letter_inputs(n: u8) -> Vec<String> {
    let letters: Vec<char> = (b'a'..b'a' + n).map(char::from).collect();
    let base = http_server(
        letters
            .iter()
            .map(|c| (format!("/{c}.txt"), String::new(), format!("{c}\n")))
            .collect(),
    )
    .await;
    letters.iter().map(|c| format!("{base}/{c}.txt")).collect()
}

impl App {
    /// Every file of run `name`'s zip (downloaded through `/output`), by name.
    pub async fn zip_files(
        &self,
        token: &str,
        name: &str,
    ) -> std::collections::BTreeMap<String, String> {
        use std::io::Read;
        let (status, body) = self.get(&format!("/output/{name}"), token).await;
        assert_eq!(status, 200, "{body}");
        let bytes = self
            .client
            .get(body["data_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let mut files = std::collections::BTreeMap::new();
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).unwrap();
            if file.is_dir() {
                continue;
            }
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            files.insert(file.name().unwrap().into_owned(), text);
        }
        files
    }
}
