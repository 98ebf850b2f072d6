//! Benchmark of job monitoring (a report, not a test: nothing here asserts a timing).
//!
//! Starts `uws serve` (the real binary, a fresh store and storage root, the local-process
//! resource, the default 5 s poll interval), starts `UWS_BENCH_JOBS` (default 50) idle
//! command jobs (`sleep`), waits until all are running, then measures the server's CPU over
//! `UWS_BENCH_SECONDS` (default 60) from /proc and prints it as a fraction of one core with
//! the machine load (`uptime`). The original busy-polled: 0.56–0.8 of a core per idle job.
//! The jobs are stopped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Served, cpu_seconds, env, free_port, rss_mib, serve, uptime};
use serde_json::{Value, json};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env("UWS_BENCH_SECONDS", 60);
    let jobs = env("UWS_BENCH_JOBS", 50);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path(), port, 1);
    config["main_resource"] = json!("local");
    config["available_resources"] = json!({"local": {"name": "Local", "resource_type": "LocalResource", "storage": "local", "user_authentication": "local"}});
    config["available_job_types"] = json!({"idle": {"name": "Idle", "job_type": "CommandJob", "environment_details": {"local": {"command": "exec sleep 3600"}}}});
    let Served {
        server: _server,
        pid,
        client_token,
        base,
    } = serve(env!("CARGO_BIN_EXE_uws"), dir.path(), &config, port).await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/tokens/"))
        .json(&json!({"client_token": client_token, "user_info": {"username": "alice", "email": "alice@example.test"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auth = format!("Token {}", login["token"].as_str().unwrap());
    let mut ids = Vec::new();
    for i in 0..jobs {
        let created: Value = http
            .post(format!("{base}/workspaces/"))
            .header("UWS-Authorization", &auth)
            .json(&json!({"name": format!("w{i}"), "description": "d"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws = created["data"]["workspace"]["id"].as_i64().unwrap();
        let started: Value = http
            .put(format!("{base}/workspaces/{ws}/start/"))
            .header("UWS-Authorization", &auth)
            .json(&json!({"job_type": "idle"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(started["message"], "Successful start.", "{started}");
        ids.push(started["data"]["job"]["id"].as_i64().unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed: Value = http
            .get(format!("{base}/jobs/?status=running"))
            .header("UWS-Authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed["data"]["jobs"].as_array().unwrap().len() as u64 == jobs {
            break;
        }
        assert!(Instant::now() < deadline, "not all jobs running: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load_before = uptime();
    let cpu = cpu_seconds(pid);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu;
    println!(
        "{jobs} running idle jobs, {elapsed:.0} s: server CPU {cpu:.2} s = {:.3}% of one core \
         ({:.1} µs/s per job); RSS {:.1} MiB; load before: {load_before}; after: {}",
        cpu / elapsed * 100.0,
        cpu / elapsed / jobs as f64 * 1e6,
        rss_mib(pid),
        uptime()
    );
    for id in ids {
        http.put(format!("{base}/jobs/{id}/stop/"))
            .header("UWS-Authorization", &auth)
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}
