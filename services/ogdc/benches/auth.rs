//! `cargo bench -p ogdc --bench auth`: `/token` logins/s at 1 and 8 concurrent clients with
//! the original's Argon2id cost (t=3, m=64 MiB, p=4), the service's peak RSS during them,
//! and authenticated `GET /user` requests/s; CPU per request from the service process's
//! own counters. The service runs as its own process (the built `ogdc` binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (utime + stime in clock ticks, VmHWM in KiB) of `pid`.
fn proc_stats(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, hwm)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn load<F, Fut>(clients: usize, duration: Duration, make: F) -> usize
where
    F: Fn(reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut done = 0;
                while Instant::now() < deadline {
                    assert!(make(client.clone()).await, "request failed");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_ogdc"))
        .arg("serve")
        .env("OGDC_JWT_SECRET_KEY", "bench-secret")
        .env("OGDC_ADMIN_PASSWORD", "bench-admin")
        .env("OGDC_PORT", port.to_string())
        .env("OGDC_DATA_DIR", dir.path())
        .env("OGDC_LOG_LEVEL", "WARNING")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = Service(child);
    let pid = service.0.id();
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{url}/version")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tick = 100.0; // USER_HZ
    println!(
        "uptime before: {}",
        String::from_utf8_lossy(&Command::new("uptime").output().unwrap().stdout).trim()
    );
    println!("idle RSS: {} MiB", rss_kib(pid) / 1024);

    for clients in [1usize, 8] {
        let (cpu0, _) = proc_stats(pid);
        let start = Instant::now();
        let token_url = format!("{url}/token");
        let n = load(
            clients,
            Duration::from_secs(10),
            move |c: reqwest::Client| {
                let token_url = token_url.clone();
                async move {
                    c.post(token_url)
                        .form(&[("username", "admin"), ("password", "bench-admin")])
                        .send()
                        .await
                        .map(|r| r.status() == 200)
                        .unwrap_or(false)
                }
            },
        )
        .await;
        let secs = start.elapsed().as_secs_f64();
        let (cpu1, hwm) = proc_stats(pid);
        println!(
            "POST /token, {clients} client(s): {n} logins in {secs:.1} s = {:.2} logins/s, {:.0} ms CPU/login, peak RSS so far {} MiB, RSS now {} MiB",
            n as f64 / secs,
            (cpu1 - cpu0) as f64 / tick * 1000.0 / n as f64,
            hwm / 1024,
            rss_kib(pid) / 1024
        );
    }

    let token: serde_json::Value = client
        .post(format!("{url}/token"))
        .form(&[("username", "admin"), ("password", "bench-admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    for clients in [1usize, 8, 32] {
        let (cpu0, _) = proc_stats(pid);
        let start = Instant::now();
        let user_url = format!("{url}/user");
        let token = token.clone();
        let n = load(
            clients,
            Duration::from_secs(5),
            move |c: reqwest::Client| {
                let (user_url, token) = (user_url.clone(), token.clone());
                async move {
                    c.get(user_url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .map(|r| r.status() == 200)
                        .unwrap_or(false)
                }
            },
        )
        .await;
        let secs = start.elapsed().as_secs_f64();
        let (cpu1, _) = proc_stats(pid);
        println!(
            "GET /user, {clients} client(s): {:.0} req/s, {:.1} µs service CPU/req",
            n as f64 / secs,
            (cpu1 - cpu0) as f64 / tick * 1e6 / n as f64
        );
    }
    let (_, hwm) = proc_stats(pid);
    println!("peak RSS of the service: {} MiB", hwm / 1024);
    println!(
        "uptime after: {}",
        String::from_utf8_lossy(&Command::new("uptime").output().unwrap().stdout).trim()
    );
}
