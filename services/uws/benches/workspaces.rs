//! Benchmark of the uws binary on the embedded default (a report, not a test: nothing here
//! asserts a timing).
//!
//! Starts `uws serve --config <file>` (the real binary, a fresh store and storage root),
//! measures its idle RSS, makes an API client (`uws api-client create`) and a user with 100
//! workspaces, then runs keep-alive HTTP/1.1 load from this process:
//! - `GET /workspaces/` (the user's 100 workspaces);
//! - `POST /workspaces/` with 10 files each.
//!
//! Every response must be a 200, or the bench fails. It reports requests/s, the server's CPU
//! per request (from /proc) and the machine load (`uptime`) at the time.
//!
//! Knobs (environment): `UWS_BENCH_SECONDS` (default 10), `UWS_BENCH_CONCURRENCY` (default
//! 32), `UWS_BENCH_WORKERS` (actix workers, default 2), `UWS_BENCH_ROOT` (a directory to
//! hold the workspaces instead of the temporary directory, e.g. a tmpfs such as `/dev/shm`
//! to take the disk file system's inode allocation out of the figure; the store stays in
//! the temporary directory, so its commits still reach the disk).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Served, cpu_seconds, env, free_port, rss_mib, serve, uptime};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and reads one response; returns its status.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> u16 {
    stream.write_all(request).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 65536];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            break (pos + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    if status != 200 {
        eprintln!("{}", String::from_utf8_lossy(buf));
    }
    status
}

/// Runs `concurrency` connections sending `request` for `seconds`; requests done.
async fn load(port: u16, request: Arc<Vec<u8>>, concurrency: u64, seconds: u64) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (done, stop, request) = (done.clone(), stop.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::with_capacity(65536);
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(exchange(&mut stream, &request, &mut buf).await, 200);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed)
}

async fn measure(
    name: &str,
    pid: u32,
    port: u16,
    request: Vec<u8>,
    concurrency: u64,
    seconds: u64,
) {
    // Warm up.
    load(port, Arc::new(request.clone()), concurrency, 1).await;
    let load_before = uptime();
    let cpu = cpu_seconds(pid);
    let started = Instant::now();
    let n = load(port, Arc::new(request), concurrency, seconds).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu;
    println!(
        "{name}: {n} requests in {elapsed:.1} s = {:.0} requests/s, server CPU {:.0} µs per request \
         ({concurrency} connections; load before: {load_before})",
        n as f64 / elapsed,
        cpu * 1e6 / n as f64,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env("UWS_BENCH_SECONDS", 10);
    let concurrency = env("UWS_BENCH_CONCURRENCY", 32);
    let workers = env("UWS_BENCH_WORKERS", 2);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path(), port, workers);
    let root_parent = std::env::var_os("UWS_BENCH_ROOT")
        .filter(|p| !p.is_empty())
        .map(|p| tempfile::tempdir_in(p).unwrap());
    if let Some(parent) = &root_parent {
        config["available_storage"]["local"]["root_dir"] = json!(parent.path());
        println!("workspaces under {}", parent.path().display());
    }
    config["available_job_types"] = json!({"jupyter_lab": {"name": "JupyterLab", "job_type": "JupyterLabJob", "environment_details": {}}});
    let Served {
        server: _server,
        pid,
        client_token,
        base,
    } = serve(env!("CARGO_BIN_EXE_uws"), dir.path(), &config, port).await;
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("idle RSS: {:.1} MiB", rss_mib(pid));

    let login: Value = http
        .post(format!("{base}/tokens/"))
        .json(&json!({"client_token": client_token, "user_info": {"username": "alice", "email": "alice@example.test"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    for i in 0..100 {
        let res = http
            .post(format!("{base}/workspaces/"))
            .header("UWS-Authorization", format!("Token {token}"))
            .json(&json!({"name": format!("w{i}"), "description": "a workspace of the benchmark", "workspace_details": {"files": [{"name": "a.txt", "content": "x"}]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listed: Value = http
        .get(format!("{base}/workspaces/"))
        .header("UWS-Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body_len = listed.to_string().len();
    assert_eq!(listed["data"]["workspaces"].as_array().unwrap().len(), 100);

    let get = format!(
        "GET /workspaces/ HTTP/1.1\r\nHost: bench\r\nUWS-Authorization: Token {token}\r\n\r\n"
    );
    measure(
        &format!("GET /workspaces/ (100 workspaces, {body_len} bytes)"),
        pid,
        port,
        get.into_bytes(),
        concurrency,
        seconds,
    )
    .await;

    let files: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("file{i}.txt"), "content": "some content of a file ".repeat(4)}))
        .collect();
    let body = json!({"name": "bench", "description": "d", "workspace_details": {"files": files}})
        .to_string();
    let post = format!(
        "POST /workspaces/ HTTP/1.1\r\nHost: bench\r\nUWS-Authorization: Token {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    measure(
        "POST /workspaces/ (10 files)",
        pid,
        port,
        post.into_bytes(),
        concurrency.min(16),
        seconds,
    )
    .await;
    println!("RSS after the load: {:.1} MiB", rss_mib(pid));
}
