//! Durable loads: the `conductor` binary is killed (SIGKILL) while it loads a package; a new
//! process takes the job over once its lease has expired and finishes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conductor::{Overrides, prepare};
use futures::StreamExt;
use serde_json::{Value, json};
use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::{ObjectKey, ObjectStore, PutRequest};

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    key_file: std::path::PathBuf,
}

impl Setup {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_conductor"))
            .arg("serve")
            .env_clear()
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .env("OS_BASE_URL", self.base())
            .env("OS_PORT", self.port.to_string())
            .env("OS_PRIVATE_KEY_FILE", &self.key_file)
            .env("OS_EMBEDDED_DB_PATH", self.dir.path().join("db.sqlite"))
            .env("OS_OBJECTS_ROOT", self.dir.path().join("objects"))
            .env("OS_OBJECTS_PUBLIC_URL", format!("{}/objects", self.base()))
            .env("OS_LOAD_LEASE_SECONDS", "5")
            .env("OS_LOAD_POLL_SECONDS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

async fn status(http: &reqwest::Client, base: &str, url: &str) -> Option<Value> {
    let r = http
        .get(format!("{base}/package/status"))
        .query(&[("datapackage", url)])
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("conductor did not come up");
}

#[tokio::test]
async fn a_load_killed_midway_is_resumed_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    let port = common::free_port();
    let config = common::config(dir.path(), port);
    std::fs::write(&key_file, config.private_key.expose()).unwrap();
    let setup = Setup {
        port,
        key_file,
        dir,
    };
    // A user and their permission token, straight from the store the service will use.
    let core = prepare(config, Overrides::default()).await.unwrap();
    let (user, user_token) = common::sign_in(&core.identity, "ada@example.test").await;
    let permission = core
        .identity
        .authorize(&user.idhash, "os.datastore")
        .await
        .unwrap()
        .token;
    drop(core);

    // A package large enough that its load takes a while.
    let store = LocalObjectStore::open(&LocalObjectsConfig {
        objects_root: setup.dir.path().join("objects"),
        ..LocalObjectsConfig::default()
    })
    .unwrap();
    let rows = 1_500_000u64;
    let mut csv = b"id,label,amount\n".to_vec();
    for i in 0..rows {
        csv.extend_from_slice(
            format!("{i},\"row number {i} of the test\",{}.5\n", i % 1000).as_bytes(),
        );
    }
    let descriptor = json!({"name": "big", "resources": [{"name": "big", "path": "data/big.csv",
        "schema": {"fields": [{"name": "id", "type": "integer", "constraints": {"unique": true}},
                              {"name": "label"}, {"name": "amount", "type": "number"}]}}]});
    for (path, data) in [
        ("datapackage.json", descriptor.to_string().into_bytes()),
        ("data/big.csv", csv),
    ] {
        let key = ObjectKey::parse(format!("{}/big/{path}", user.idhash)).unwrap();
        let len = data.len() as u64;
        let body = futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed();
        store.put(&key, body, PutRequest::new(len)).await.unwrap();
    }
    let url = format!(
        "{}/objects/{}/big/datapackage.json",
        setup.base(),
        user.idhash
    );
    let http = reqwest::Client::new();
    let base = setup.base();

    let mut first = setup.spawn();
    wait_up(&http, &base).await;
    let r = http
        .post(format!("{base}/package/upload"))
        .form(&[("jwt", permission.as_str()), ("datapackage", url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], json!("queued"));
    // Kill it as soon as the load is under way.
    let start = Instant::now();
    loop {
        let s = status(&http, &base, &url).await.unwrap();
        assert_ne!(s["status"], json!("fail"), "{s}");
        assert_ne!(
            s["status"],
            json!("done"),
            "the load ended before it could be killed: {s}"
        );
        if s["status"] == "loading-data" && s["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let killed_at = status(&http, &base, &url).await;
    assert!(killed_at.is_none(), "the process is gone");

    // A new process finds the job in the store and loads it to the end.
    let mut second = setup.spawn();
    wait_up(&http, &base).await;
    let s = status(&http, &base, &url).await.unwrap();
    assert_eq!(
        s["status"],
        json!("loading-data"),
        "the job survived the kill: {s}"
    );
    let start = Instant::now();
    let done = loop {
        let s = status(&http, &base, &url).await.unwrap();
        if s["status"] == "done" || s["status"] == "fail" {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not resumed: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done, json!({"status": "done", "progress": 1.0}));
    let found: Value = http
        .get(format!("{base}/search/package"))
        .query(&[("jwt", user_token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["package"]["count_of_rows"], json!(rows));
    second.kill().unwrap();
    second.wait().unwrap();
}
