//! The whole flow with real processes on one SQLite file: dataset events published with
//! `tessera events publish`, a grant added with `wps grants add`, `wps serve` consuming the
//! events and serving a package, its details and a work order token per file, until
//! `wps grants revoke` makes the next call 403 "Download access has been revoked".

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::Keys;
use serde_json::{Value, json};
use tessera_crypt::Crypt4ghKeyPair;
use uuid::Uuid;

const DATASET: &str = "GHGAD00000000000042";
const FILES: [(&str, &str); 2] = [
    ("GHGAF00000000000421", ".json"),
    ("GHGAF00000000000422", ".csv"),
];

/// A child process that is killed if the test ends early.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wps_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wps"))
}

/// Builds the `tessera` package with the same profile and target dir as this test, and
/// returns its binary (next to `wps`).
fn tessera_bin() -> PathBuf {
    let wps = wps_bin();
    let dir = wps.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "tessera"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "building the tessera CLI failed");
    dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

struct Env {
    vars: Vec<(String, String)>,
    dir: PathBuf,
}

impl Env {
    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        // Only this test's settings: no config file, no inherited service variables.
        for (name, _) in std::env::vars() {
            if name.starts_with("WPS_") || name.starts_with("TESSERA_") {
                cmd.env_remove(name);
            }
        }
        cmd.current_dir(&self.dir).envs(self.vars.iter().cloned());
        cmd
    }

    fn wps(&self, args: &[&str]) -> Output {
        self.command(&wps_bin()).args(args).output().unwrap()
    }
}

fn stdout_json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn events_grant_package_tokens_and_revocation_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("tessera.sqlite");
    let keys = Keys::generate();
    let port = free_port();
    let env = Env {
        vars: vec![
            ("WPS_EMBEDDED_DB_PATH".into(), db.display().to_string()),
            (
                "WPS_WORK_PACKAGE_SIGNING_KEY".into(),
                keys.signing_private.clone(),
            ),
            ("WPS_AUTH_KEY".into(), keys.auth_public.clone()),
            ("WPS_PORT".into(), port.to_string()),
            ("WPS_LOG_LEVEL".into(), "WARNING".into()),
        ],
        dir: tmp.path().to_owned(),
    };

    // 1. Dataset and accession map events, published by the operator CLI.
    let tessera = tessera_bin();
    let publish = |topic: &str, event_type: &str, key: &str, payload: Value| {
        let output = env
            .command(&tessera)
            .args(["events", "publish", "--db"])
            .arg(&db)
            .args([
                "--topic",
                topic,
                "--type",
                event_type,
                "--key",
                key,
                "--payload",
            ])
            .arg(payload.to_string())
            .output()
            .unwrap();
        let lines = stdout_json_lines(&output);
        assert!(lines[0]["event_id"].is_string());
    };
    let mut file_ids = Vec::new();
    for (accession, _) in FILES {
        let file_id = Uuid::new_v4();
        file_ids.push(file_id);
        publish(
            "file-accession-mappings",
            "upserted",
            accession,
            json!({"accession": accession, "file_id": file_id}),
        );
    }
    publish(
        "metadata-datasets",
        "dataset_created",
        DATASET,
        json!({"accession": DATASET, "title": "Flow", "stage": "download",
               "description": "whole flow", "dac_alias": "DAC", "dac_email": "dac@example.org",
               "files": FILES.iter().map(|(a, e)| json!({
                   "accession": a, "description": null, "file_extension": e
               })).collect::<Vec<_>>()}),
    );

    // 2. A download grant for the user.
    let user = Uuid::new_v4();
    let added = stdout_json_lines(&env.wps(&[
        "grants",
        "add",
        "--user",
        &user.to_string(),
        "--dataset",
        DATASET,
        "--valid-days",
        "10",
    ]));
    let grant_id = added[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(added[0]["kind"], "download");
    assert_eq!(added[0]["resource_id"], DATASET);
    let listed = stdout_json_lines(&env.wps(&["grants", "list", "--user", &user.to_string()]));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], grant_id.as_str());

    // 3. `wps serve`: REST and consumer in one process.
    let child = env
        .command(&wps_bin())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if let Ok(resp) = client.get(format!("{base}/health")).send().await
            && resp.status() == 200
        {
            up = true;
            break;
        }
        assert!(server.0.try_wait().unwrap().is_none(), "wps serve exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "wps serve never became healthy");

    // The consumer picks up the published events: the dataset shows up for the user.
    let jwt = keys.token(&user.to_string());
    let mut datasets = Value::Null;
    for _ in 0..300 {
        let resp = client
            .get(format!("{base}/users/{user}/datasets"))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        datasets = resp.json().await.unwrap();
        if datasets.as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(datasets[0]["id"], DATASET);
    assert_eq!(datasets[0]["files"].as_array().unwrap().len(), 2);

    // 4. A package, its details, and a work order token per file.
    let pair = Crypt4ghKeyPair::generate();
    let resp = client
        .post(format!("{base}/work-packages"))
        .bearer_auth(&jwt)
        .json(
            &json!({"type": "download", "dataset_id": DATASET, "file_ids": null,
                      "user_public_crypt4gh_key": pair.public_armored()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let wpat = pair
        .open_base64(created["token"].as_str().unwrap())
        .unwrap();
    let details: Value = client
        .get(format!("{base}/work-packages/{id}"))
        .bearer_auth(&wpat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        details["files"],
        json!({FILES[0].0: FILES[0].1, FILES[1].0: FILES[1].1})
    );
    for ((accession, _), file_id) in FILES.iter().zip(&file_ids) {
        let resp = client
            .post(format!(
                "{base}/work-packages/{id}/files/{accession}/work-order-tokens"
            ))
            .bearer_auth(&wpat)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["cache-control"], "max-age=30, private");
        let jws = pair
            .open_base64(&resp.json::<String>().await.unwrap())
            .unwrap();
        let (header, claims) = keys.verify_wot(&jws);
        assert_eq!(header, json!({"alg": "ES256"}));
        let iat = claims["iat"].as_i64().unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"work_type": "download", "file_id": file_id.to_string(),
                   "accession": accession,
                   "user_public_crypt4gh_key": pair.public_key().to_base64(),
                   "iat": iat, "exp": iat + 30})
        );
    }

    // 5. Revoking the grant ends access on the next call.
    let revoked = stdout_json_lines(&env.wps(&["grants", "revoke", &grant_id]));
    assert_eq!(revoked[0]["revoked"], grant_id.as_str());
    for resp in [
        client
            .get(format!("{base}/work-packages/{id}"))
            .bearer_auth(&wpat)
            .send()
            .await
            .unwrap(),
        client
            .post(format!(
                "{base}/work-packages/{id}/files/{}/work-order-tokens",
                FILES[0].0
            ))
            .bearer_auth(&wpat)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 403);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"detail": "Download access has been revoked"})
        );
    }
    assert!(
        stdout_json_lines(&env.wps(&["grants", "list", "--user", &user.to_string()])).is_empty()
    );

    // 6. SIGTERM stops the service cleanly.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    for _ in 0..300 {
        status = server.0.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("wps serve did not stop after SIGTERM");
    assert!(status.success(), "wps serve exited with {status}");
}
