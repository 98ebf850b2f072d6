//! A benchmark (not a test) of `POST /datastore/authorize` for a 10-file package on the
//! embedded default (local object store), and of the service's idle RSS.
//!
//! It runs the real `conductor` binary as a child process (so its RSS and CPU are its own),
//! waits until it is idle and reads its RSS, then drives it with a hand-written keep-alive
//! HTTP/1.1 load generator for a bounded window and reports requests/s, the server's CPU per
//! request (from `/proc/<pid>/stat`) and the load average. It fails when any answer is not
//! a 200 naming ten upload URLs.
//!
//! `cargo bench -p conductor --bench authorize`. Knobs: `CONDUCTOR_BENCH_CONCURRENCY`
//! (connections, default 16), `CONDUCTOR_BENCH_SECONDS` (window, default 10).

#![allow(clippy::expect_used)] // a bench: setup failures abort it

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tessera_conductor::{TokenCodec, TokenKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(11) + num(12)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one request on a keep-alive connection and returns the status and body.
async fn roundtrip(
    conn: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    conn.write_all(request).await.map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("no status")?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or("no content-length")?;
            while buf.len() < end + 4 + length {
                let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + length].to_vec();
            buf.drain(..end + 4 + length);
            return Ok((status, body));
        }
        let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let concurrency = env_num("CONDUCTOR_BENCH_CONCURRENCY", 16) as usize;
    let seconds = env_num("CONDUCTOR_BENCH_SECONDS", 10);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let pem = conductor::keys::generate_private_key().expect("key");
    let child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("serve")
        .env_clear()
        .env("OS_BASE_URL", &base)
        .env("OS_PRIVATE_KEY", &pem)
        .env("OS_PORT", port.to_string())
        .env("OS_EMBEDDED_DB_PATH", dir.path().join("db.sqlite"))
        .env("OS_OBJECTS_ROOT", dir.path().join("objects"))
        .env("OS_OBJECTS_PUBLIC_URL", format!("{base}/objects"))
        .env("OS_LOG_LEVEL", "WARNING")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("conductor starts");
    let pid = child.id();
    let _server = Server(child);
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while TcpStream::connect(&addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            eprintln!("conductor did not listen within 20 s");
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_kib = proc_field(pid, "status", "VmRSS:").unwrap_or(0);

    // A permission token signed with the service's key, and a 10-file package.
    let keys = conductor::keys::Keys::from_pem(&pem).expect("keys");
    let owner = tessera_conductor::idhash("bench@example.test");
    let mut claims = Map::new();
    claims.insert("userid".into(), json!(owner));
    claims.insert("service".into(), json!("os.datastore"));
    claims.insert("permissions".into(), json!({"datapackage-upload": true}));
    claims.insert("exp".into(), json!(chrono::Utc::now().timestamp() + 3600));
    let token = keys.sign(TokenKind::Permission, &claims).expect("token");
    let files: Map<String, Value> = (0..10)
        .map(|i| {
            (
                format!("data/file-{i}.csv"),
                json!({"length": 1000 + i, "md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "name": format!("file-{i}.csv"), "type": "text/csv"}),
            )
        })
        .collect();
    let body =
        json!({"metadata": {"owner": owner, "name": "bench"}, "filedata": files}).to_string();
    let request = format!(
        "POST /datastore/authorize HTTP/1.1\r\nHost: {addr}\r\nAuth-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    // Check one answer fully.
    let mut conn = TcpStream::connect(&addr).await.expect("connect");
    let mut buf = Vec::new();
    let (status, answer) = roundtrip(&mut conn, &request, &mut buf)
        .await
        .expect("first request");
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    let urls = answer["filedata"].as_object().map_or(0, |f| {
        f.values().filter(|v| v["upload_url"].is_string()).count()
    });
    if status != 200 || urls != 10 {
        eprintln!("unexpected answer {status}: {answer}");
        return ExitCode::FAILURE;
    }

    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_ticks(pid);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let request = request.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            let mut done = 0u64;
            while Instant::now() < deadline {
                let (status, _) = roundtrip(&mut conn, &request, &mut buf).await?;
                if status != 200 {
                    return Err(format!("status {status}"));
                }
                done += 1;
            }
            Ok::<u64, String>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(done)) => total += done,
            Ok(Err(e)) => {
                eprintln!("a connection failed: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("a connection panicked: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
    let busy_rss_kib = proc_field(pid, "status", "VmRSS:").unwrap_or(0);
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "conductor /datastore/authorize, 10 files, local object store, {concurrency} keep-alive connections, {seconds} s"
    );
    println!(
        "  requests:            {total} in {elapsed:.1} s = {:.0} requests/s",
        total as f64 / elapsed
    );
    println!(
        "  server CPU:          {cpu_seconds:.2} s = {:.0} µs per request (the load generator shares the 2 cores)",
        cpu_seconds * 1e6 / total.max(1) as f64
    );
    println!(
        "  server idle RSS:     {:.1} MiB",
        idle_rss_kib as f64 / 1024.0
    );
    println!(
        "  server RSS after:    {:.1} MiB",
        busy_rss_kib as f64 / 1024.0
    );
    println!("  load average before: {}", load_before.trim());
    println!("  load average after:  {}", load_after.trim());
    ExitCode::SUCCESS
}
