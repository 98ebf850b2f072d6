//! Helpers the uws benchmarks share: knobs, ports, the server process and its CPU and RSS
//! from /proc, the machine load.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command};

pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// utime + stime of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

pub fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The server process, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `uws serve` of the benchmark: the process, its API client's token, its URL.
pub struct Served {
    pub server: Server,
    pub pid: u32,
    pub client_token: String,
    pub base: String,
}

/// Writes `config` into `dir`, makes the API client `portal` with the binary, starts
/// `uws serve` on `port` and waits until it answers.
pub async fn serve(
    bin: &str,
    dir: &std::path::Path,
    config: &serde_json::Value,
    port: u16,
) -> Served {
    let file = dir.join("uws.json");
    std::fs::write(&file, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let out = Command::new(bin)
        .args([
            "--config",
            file.to_str().unwrap(),
            "api-client",
            "create",
            "--username",
            "portal",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = Server(
        Command::new(bin)
            .args(["--config", file.to_str().unwrap(), "serve"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/status/")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Served {
        server,
        pid,
        client_token,
        base,
    }
}

/// The benchmarks' config: local login and storage under `dir/root` (files owned by the
/// account running uws), the embedded store in `dir`, `port`, `workers`; no resource and
/// no job types (a benchmark adds its own).
pub fn config(dir: &std::path::Path, port: u16, workers: u64) -> serde_json::Value {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    serde_json::json!({
        "api_user_authentication": "local",
        "main_storage": "local",
        "available_user_authentication": {"local": {"name": "Local", "user_authentication_type": "LocalUserAuthentication", "connection_details": {}}},
        "available_storage": {"local": {"name": "Local", "storage_type": "LocalFileSystemStorage", "user_authentication": "local", "root_dir": root, "connection_details": {}, "account_mapping": "service", "min_uid": 0}},
        "available_resources": {},
        "available_job_types": {},
        "parameters": [],
        "server": {"port": port, "workers": workers, "log_level": "WARN", "embedded_db_path": dir.join("uws.sqlite")},
    })
}
