//! A benchmark (not a test) of download work order token issuance over HTTP (wps.md §1.4):
//! the real REST server in process on the embedded store, driven by a hand-written
//! keep-alive HTTP/1.1 load generator, plus micro benchmarks of the parts of one issuance
//! (sign, seal, lookup, the domain call) to say where the time goes.
//!
//! It asserts nothing about timings, but fails loudly when any request is not a 201 or when
//! a returned token does not decrypt, verify and name the file that was asked for.
//!
//! Run it with `scripts/bench` (or `cargo bench -p wps --bench wot_http`). Knobs:
//! - `WPS_BENCH_CONCURRENCY`: keep-alive connections; a comma list runs each (default 16:
//!   on 2 cores it gives the throughput of 32 or 64 at a third of their p99)
//! - `WPS_BENCH_SECONDS`: measured window per run (default 10)
//! - `WPS_BENCH_WARMUP_SECONDS`: warm-up before each window (default 2)
//! - `WPS_BENCH_WORKERS`: actix workers, 0 = one per core (default 0)
//! - `WPS_BENCH_CLIENT_THREADS`: load generator threads (default 1)
//! - `WPS_BENCH_FILES`: files in the dataset, requests rotate over them (default 5)
//! - `WPS_BENCH_MICRO_SECONDS`: time per micro benchmark (default 1.5)
//! - `WPS_BENCH_MONGO_URL`: run on a fresh database of this MongoDB server instead of the
//!   embedded store (dropped at the end); [`Store`] is the one place that differs
//! - `WPS_BENCH_SOAK_SECONDS`: after the runs, sustained load at the first concurrency for
//!   this long, with the process's RSS (`/proc/self/status`) sampled every
//!   `WPS_BENCH_SOAK_SAMPLE_SECONDS` (default 60) and once more after 10 s idle: a leak
//!   keeps growing, allocator retention levels off (default 0: no soak)
//!
//! Server, load generator and micro benchmarks share the machine's cores, so the load
//! generator's CPU is part of every HTTP figure; the CPU split per thread group
//! (`/proc/self/task`) shows how much.
//!
//! Layout: [`Store`] (the one store parameter), `setup` (keys, config, seed data, a work
//! package created over HTTP), `Conn` and `run_load` (the load generator), `micro_*`
//! (micro benchmarks), `domain_throughput` (the domain call without HTTP), `cpu` (CPU
//! accounting from /proc), `run` and `print_*` (the report).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_auth::{JwtSigner, JwtVerifier, generate_es256_jwk_pair};
use tessera_config::Secret;
use tessera_crypt::{Crypt4ghKeyPair, seal_base64};
use tessera_work_orders::tokens::hash_token;
use tessera_work_orders::{
    AccessCheck, AccessionMap, Daos, Dataset, DatasetFile, GrantKind, TokenCrypto, WorkOrder,
    WorkOrderSigner, WorkPackageType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use uuid::Uuid;
use wps::adapters::{Crypt4ghCrypto, Es256Signer};
use wps::prepare::redact_dsn;
use wps::run::{Parts, RunningWps, start};
use wps::{Core, Overrides, WpsConfig, prepare_core};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const DATASET: &str = "GHGAD00000000000001";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nwot_http FAILED: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// The knobs, from the environment; an unparsable value is an error, not a default.
struct Knobs {
    concurrency: Vec<usize>,
    window: Duration,
    warmup: Duration,
    workers: usize,
    client_threads: usize,
    files: usize,
    micro: Duration,
    store: Store,
    /// Soak: sustained load for this long after the runs, RSS sampled (zero: no soak).
    soak: Duration,
    soak_every: Duration,
}

fn env_or<T: FromStr>(name: &str, default: T) -> BenchResult<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| format!("{name}={raw:?}: {e}").into()),
        _ => Ok(default),
    }
}

fn seconds(name: &str, default: f64) -> BenchResult<Duration> {
    let secs: f64 = env_or(name, default)?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{name}: {e}").into())
}

impl Knobs {
    fn from_env() -> BenchResult<Self> {
        let concurrency = std::env::var("WPS_BENCH_CONCURRENCY")
            .unwrap_or_else(|_| "16".into())
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&c| c > 0)
                    .ok_or_else(|| format!("WPS_BENCH_CONCURRENCY: {c:?} is not a positive number"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let knobs = Self {
            concurrency,
            window: seconds("WPS_BENCH_SECONDS", 10.0)?,
            warmup: seconds("WPS_BENCH_WARMUP_SECONDS", 2.0)?,
            workers: env_or("WPS_BENCH_WORKERS", 0)?,
            client_threads: env_or("WPS_BENCH_CLIENT_THREADS", 1)?,
            files: env_or("WPS_BENCH_FILES", 5)?,
            micro: seconds("WPS_BENCH_MICRO_SECONDS", 1.5)?,
            store: Store::from_env(),
            soak: seconds("WPS_BENCH_SOAK_SECONDS", 0.0)?,
            soak_every: seconds("WPS_BENCH_SOAK_SAMPLE_SECONDS", 60.0)?,
        };
        if !knobs.soak.is_zero() && knobs.soak_every.is_zero() {
            return Err("WPS_BENCH_SOAK_SAMPLE_SECONDS must be positive".into());
        }
        if knobs.window.is_zero() || knobs.files == 0 || knobs.client_threads == 0 {
            return Err(
                "WPS_BENCH_SECONDS, WPS_BENCH_FILES and WPS_BENCH_CLIENT_THREADS must be positive"
                    .into(),
            );
        }
        Ok(knobs)
    }
}

/// Where the service keeps its documents: the one parameter a store comparison changes.
enum Store {
    /// A fresh SQLite file in a temporary directory.
    Embedded,
    /// A fresh database on the MongoDB server at this URL (`WPS_BENCH_MONGO_URL`), dropped
    /// at the end.
    Mongo(String),
}

impl Store {
    fn from_env() -> Self {
        match std::env::var("WPS_BENCH_MONGO_URL") {
            Ok(url) if !url.trim().is_empty() => Self::Mongo(url),
            _ => Self::Embedded,
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Embedded => "embedded (SQLite, WAL)".into(),
            Self::Mongo(url) => format!("MongoDB at {}", redact_dsn(url)),
        }
    }

    /// The prepared core on this store (embedded files go to `dir`) and the typed DAOs
    /// behind it, for the micro benchmarks of single reads.
    async fn prepare(&self, mut config: WpsConfig, dir: &Path) -> BenchResult<(Core, Daos)> {
        match self {
            Self::Embedded => config.embedded.embedded_db_path = dir.join("wps.sqlite"),
            Self::Mongo(url) => {
                config.mongo.mongo_dsn = url.as_str().into();
                config.mongo.db_name = format!("wps_bench_{}", Uuid::new_v4().simple());
                config.mongo.mongo_timeout = Some(30);
            }
        }
        let core = prepare_core(config, Overrides::default()).await?;
        let daos = Daos::open(core.store.as_ref(), &core.config.collection_names()).await?;
        Ok((core, daos))
    }

    /// Removes what the run stored outside the temporary directory.
    async fn clean_up(&self, config: &WpsConfig) -> BenchResult<()> {
        if let Self::Mongo(url) = self {
            mongodb::Client::with_uri_str(url)
                .await?
                .database(&config.mongo.db_name)
                .drop()
                .await?;
        }
        Ok(())
    }
}

/// Everything the load and the micro benchmarks need, after setup.
struct Fixture {
    running: RunningWps,
    addr: SocketAddr,
    user: Uuid,
    package_id: Uuid,
    wpat: String,
    pair: Crypt4ghKeyPair,
    /// (accession, file id) of every file of the package.
    files: Vec<(String, Uuid)>,
    signing_public: String,
    wot_lifetime: i64,
    /// The raw request that created the package, for the creation run.
    create_request: Vec<u8>,
    daos: Daos,
    _dir: TempDir,
}

impl Fixture {
    fn core(&self) -> &Core {
        self.running.core()
    }
}

/// Starts the REST server on `store`, seeds a dataset with `files` files, their accession
/// maps and a download grant, and creates a work package over HTTP.
async fn setup(store: &Store, workers: usize, files: usize) -> BenchResult<Fixture> {
    let dir = tempfile::tempdir()?;
    let (signing_private, signing_public) = generate_es256_jwk_pair()?;
    let (auth_private, auth_public) = generate_es256_jwk_pair()?;
    let mut config = WpsConfig {
        work_package_signing_key: Secret::new(signing_private),
        auth_key: auth_public,
        ..WpsConfig::default()
    };
    config.http.port = 0;
    config.http.workers = workers;
    config.log.log_level = "OFF".into();
    let wot_lifetime = i64::from(config.wot_lifetime_seconds);
    let (core, daos) = store.prepare(config, dir.path()).await?;
    let running = start(core, Parts::REST).await?;
    let url = running.url().ok_or("the REST server is not running")?;
    let addr: SocketAddr = url.trim_start_matches("http://").parse()?;

    // The event-side operations, as the consumer would apply them.
    let repo = &running.core().repository;
    let accessions: Vec<String> = (1..=files).map(|i| format!("GHGAF{i:014}")).collect();
    repo.upsert_dataset(&Dataset {
        id: DATASET.into(),
        stage: WorkPackageType::Download,
        title: "Benchmark dataset".into(),
        description: None,
        files: accessions
            .iter()
            .map(|a| DatasetFile {
                accession: a.clone(),
                extension: ".bam".into(),
            })
            .collect(),
    })
    .await?;
    let mut mapped = Vec::new();
    for accession in accessions {
        let file_id = Uuid::new_v4();
        repo.upsert_accession_map(&AccessionMap {
            accession: accession.clone(),
            file_id,
        })
        .await?;
        mapped.push((accession, file_id));
    }
    let user = Uuid::new_v4();
    let now = Utc::now();
    running
        .core()
        .grants
        .add(
            user,
            GrantKind::Download,
            DATASET,
            now - TimeDelta::hours(1),
            now + TimeDelta::days(1),
        )
        .await?;

    // The work package, as a user would create it.
    let pair = Crypt4ghKeyPair::generate();
    let iat = now.timestamp();
    let claims = json!({
        "id": user.to_string(), "name": "Ada Lovelace", "email": "ada@example.org",
        "title": "Dr.", "roles": [], "iat": iat, "exp": iat + 3600,
    });
    let claims = claims.as_object().ok_or("claims are an object")?;
    let internal = JwtSigner::from_jwk_json(&auth_private)?.sign(claims)?;
    let create_body = json!({"type": "download", "dataset_id": DATASET, "file_ids": null,
                      "user_public_crypt4gh_key": pair.public_key().to_base64()})
    .to_string();
    let create_request = format!(
        "POST /work-packages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {internal}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{create_body}",
        create_body.len()
    )
    .into_bytes();
    let resp = reqwest::Client::new()
        .post(format!("{url}/work-packages"))
        .bearer_auth(internal)
        .header("content-type", "application/json")
        .body(create_body)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if status.as_u16() != 201 {
        return Err(format!("creating the work package answered {status}: {body}").into());
    }
    let package_id = Uuid::parse_str(body["id"].as_str().ok_or("no package id")?)?;
    let wpat = pair.open_base64(body["token"].as_str().ok_or("no sealed access token")?)?;
    Ok(Fixture {
        running,
        addr,
        user,
        package_id,
        wpat,
        pair,
        files: mapped,
        signing_public,
        wot_lifetime,
        create_request,
        daos,
        _dir: dir,
    })
}

/// One keep-alive HTTP/1.1 connection that sends prepared requests and reads responses
/// with a `Content-Length` body (what actix sends for these responses).
struct Conn {
    stream: TcpStream,
    /// Read but not yet consumed.
    buf: Vec<u8>,
    /// The body of the last response.
    body: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> BenchResult<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            body: Vec::with_capacity(1024),
        })
    }

    async fn fill(&mut self) -> BenchResult<()> {
        self.buf.reserve(8 * 1024);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err("the server closed a keep-alive connection".into());
        }
        Ok(())
    }

    /// Sends `request` and returns the response status; the body is in `self.body`.
    async fn roundtrip(&mut self, request: &[u8]) -> BenchResult<u16> {
        self.stream.write_all(request).await?;
        let head_len = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err("response head larger than 64 KiB".into());
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_len])?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
            return Err(format!("not an HTTP/1 status line: {status_line:?}").into());
        }
        let status: u16 = parts.next().unwrap_or_default().parse()?;
        let mut length = None;
        let mut close = false;
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!("unsupported transfer-encoding {value:?}").into());
            }
        }
        let length = length.ok_or("a response without Content-Length")?;
        while self.buf.len() < head_len + length {
            self.fill().await?;
        }
        self.body.clear();
        self.body
            .extend_from_slice(&self.buf[head_len..head_len + length]);
        self.buf.drain(..head_len + length);
        if close {
            return Err(format!("the server closed the connection after a {status}").into());
        }
        Ok(status)
    }
}

/// What one connection saw.
#[derive(Default)]
struct ConnStats {
    /// Latencies (ns) of the 201s completed inside the measured window.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// The last token received and the index of the file it was asked for.
    sample: Option<(usize, Vec<u8>)>,
}

async fn connection_loop(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    index: usize,
    measure_from: Instant,
    until: Instant,
) -> BenchResult<ConnStats> {
    let mut conn = Conn::connect(addr).await?;
    let mut stats = ConnStats::default();
    let mut next = index;
    let mut last_ok = None;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let which = next % requests.len();
        next += 1;
        let status = conn.roundtrip(&requests[which]).await?;
        let done = Instant::now();
        if status != 201 {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error =
                    Some(format!("{status} {}", String::from_utf8_lossy(&conn.body)));
            }
            last_ok = None;
            continue;
        }
        last_ok = Some(which);
        if done >= measure_from && done < until {
            let nanos = u64::try_from((done - started).as_nanos()).unwrap_or(u64::MAX);
            stats.latencies.push(nanos);
        }
    }
    stats.sample = last_ok.map(|which| (which, conn.body.clone()));
    Ok(stats)
}

/// One load run at one concurrency.
struct LoadOutcome {
    concurrency: usize,
    tokens: u64,
    window: Duration,
    /// Sorted, in ns.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    samples: Vec<(usize, Vec<u8>)>,
    cpu: Option<cpu::Split>,
    usage: Option<cpu::Usage>,
}

impl LoadOutcome {
    fn rate(&self) -> f64 {
        self.tokens as f64 / self.window.as_secs_f64()
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1] as f64 / 1e6
    }

    /// Process CPU µs per token during the window.
    fn cpu_us_per_token(&self) -> Option<f64> {
        let split = self.cpu.as_ref()?;
        (self.tokens > 0).then(|| split.total() * 1e6 / self.tokens as f64)
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Runs `concurrency` connections on `load_rt` for the warm-up and the window, taking CPU
/// snapshots at the window's edges on this thread.
fn run_load(
    load_rt: &Runtime,
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> BenchResult<LoadOutcome> {
    let measure_from = Instant::now() + warmup;
    let until = measure_from + window;
    let handles: Vec<_> = (0..concurrency)
        .map(|i| {
            load_rt.spawn(connection_loop(
                addr,
                requests.clone(),
                i,
                measure_from,
                until,
            ))
        })
        .collect();
    sleep_until(measure_from);
    let before = cpu::threads();
    let meter = cpu::Meter::start();
    sleep_until(until);
    let usage = meter.stop();
    let after = cpu::threads();
    let stats = load_rt.block_on(async {
        let mut all = Vec::new();
        for handle in handles {
            all.push(handle.await??);
        }
        BenchResult::Ok(all)
    })?;
    let mut outcome = LoadOutcome {
        concurrency,
        tokens: 0,
        window,
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        samples: Vec::new(),
        cpu: before.zip(after).map(|(b, a)| cpu::Split::between(&b, &a)),
        usage,
    };
    for s in stats {
        outcome.latencies.extend(s.latencies);
        outcome.errors += s.errors;
        if outcome.first_error.is_none() {
            outcome.first_error = s.first_error;
        }
        outcome.samples.extend(s.sample);
    }
    outcome.tokens = outcome.latencies.len() as u64;
    outcome.latencies.sort_unstable();
    Ok(outcome)
}

/// The process's resident memory from `/proc/self/status`, KiB: (VmRSS, RssAnon, RssFile).
fn rss_kib() -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?))
}

fn print_rss(label: &str, tokens: u64, rate: Option<f64>) {
    let mib = |k: u64| k as f64 / 1024.0;
    let rate = rate.map_or(String::new(), |r| format!("  {r:>7.0} tokens/s"));
    match rss_kib() {
        Some((rss, anon, file)) => println!(
            "  {label:<10} {tokens:>10} tokens  RSS {:>6.1} MiB (anon {:>6.1}, file {:>5.1}){rate}",
            mib(rss),
            mib(anon),
            mib(file)
        ),
        None => println!("  {label:<10} {tokens:>10} tokens  RSS unavailable (no /proc){rate}"),
    }
}

/// Sustained load for `total` on `concurrency` connections that count 201s instead of
/// keeping latencies (which would grow the heap), printing the RSS every `every`.
fn soak(
    load_rt: &Runtime,
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    total: Duration,
    every: Duration,
) -> BenchResult<()> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    println!(
        "
soak: c={concurrency} for {:.0} s, RSS of the whole process (server, load generator \
         and bench) every {:.0} s",
        total.as_secs_f64(),
        every.as_secs_f64()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..concurrency)
        .map(|i| {
            let (stop, count, requests) = (stop.clone(), count.clone(), requests.clone());
            load_rt.spawn(async move {
                let mut conn = Conn::connect(addr).await?;
                let mut next = i;
                while !stop.load(Ordering::Relaxed) {
                    let status = conn.roundtrip(&requests[next % requests.len()]).await?;
                    if status != 201 {
                        return Err(format!(
                            "soak: {status} {}",
                            String::from_utf8_lossy(&conn.body)
                        )
                        .into());
                    }
                    next += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                BenchResult::Ok(())
            })
        })
        .collect();
    let started = Instant::now();
    print_rss("start", 0, None);
    let mut last = (0u64, started);
    let mut due = started;
    while due < started + total {
        due = (due + every).min(started + total);
        sleep_until(due);
        let (n, now) = (count.load(Ordering::Relaxed), Instant::now());
        let rate = (n - last.0) as f64 / (now - last.1).as_secs_f64();
        print_rss(
            &format!("{:.0} s", (now - started).as_secs_f64()),
            n,
            Some(rate),
        );
        last = (n, now);
    }
    stop.store(true, Ordering::Relaxed);
    load_rt.block_on(async {
        for handle in handles {
            handle.await??;
        }
        BenchResult::Ok(())
    })?;
    std::thread::sleep(Duration::from_secs(10));
    print_rss("idle 10 s", count.load(Ordering::Relaxed), None);
    Ok(())
}

/// Decrypts and verifies a returned token: it must be a JSON string holding a sealed ES256
/// JWS whose claims name the file asked for.
fn check_token(fx: &Fixture, verifier: &JwtVerifier, which: usize, body: &[u8]) -> BenchResult<()> {
    let sealed: String = serde_json::from_slice(body)?;
    let jws = fx.pair.open_base64(&sealed)?;
    let claims = verifier.verify(&jws)?;
    let (accession, file_id) = &fx.files[which];
    let expected = [
        ("work_type", json!("download")),
        ("accession", json!(accession)),
        ("file_id", json!(file_id.to_string())),
        (
            "user_public_crypt4gh_key",
            json!(fx.pair.public_key().to_base64()),
        ),
    ];
    for (name, value) in expected {
        if claims.get(name) != Some(&value) {
            return Err(format!(
                "token claim {name} is {:?}, expected {value}",
                claims.get(name)
            )
            .into());
        }
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("no integer iat")?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("no integer exp")?;
    if exp - iat != fx.wot_lifetime || (Utc::now().timestamp() - iat).abs() > 300 {
        return Err(format!("token iat {iat} / exp {exp} are off").into());
    }
    Ok(())
}

/// One row of the "where the time goes" table.
struct Row {
    name: String,
    iterations: u64,
    /// Wall time per call, one call at a time.
    wall_us: f64,
    /// Process CPU per call, one call at a time.
    cpu_us: Option<f64>,
    /// Process CPU per call with [`INFLIGHT`] calls in flight (async rows).
    busy_cpu_us: Option<f64>,
    /// Cores other processes kept busy meanwhile (noise).
    others: Option<f64>,
}

impl Row {
    fn new(name: &str, iterations: u64, wall: Duration, usage: Option<cpu::Usage>) -> Self {
        let n = iterations.max(1) as f64;
        Self {
            name: name.to_owned(),
            iterations,
            wall_us: wall.as_secs_f64() * 1e6 / n,
            cpu_us: usage.map(|u| u.process * 1e6 / n),
            busy_cpu_us: None,
            others: usage.and_then(|u| u.others_cores()),
        }
    }

    /// CPU per call as the server pays it: in flight with others when measured so.
    fn cost_us(&self) -> f64 {
        self.busy_cpu_us.or(self.cpu_us).unwrap_or(self.wall_us)
    }
}

/// Calls in flight for the second measurement of the async micro benchmarks.
const INFLIGHT: usize = 16;

/// Runs `f` in a tight loop for `budget` (after a short warm-up), one call at a time.
fn micro_sync(
    name: &str,
    budget: Duration,
    mut f: impl FnMut() -> BenchResult<()>,
) -> BenchResult<Row> {
    for _ in 0..20 {
        f()?;
    }
    let meter = cpu::Meter::start();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        for _ in 0..16 {
            f()?;
        }
        n += 16;
    }
    let wall = t0.elapsed();
    Ok(Row::new(name, n, wall, meter.stop()))
}

/// [`micro_sync`] for async calls on the caller's runtime: first one call at a time (the
/// latency, including waking an idle blocking pool per store read), then [`INFLIGHT`]
/// calls at a time (the CPU a busy server pays per call), `budget` each.
async fn micro_async<F, Fut>(name: &str, budget: Duration, f: F) -> BenchResult<Row>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = BenchResult<()>> + Send + 'static,
{
    for _ in 0..20 {
        f().await?;
    }
    let meter = cpu::Meter::start();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        f().await?;
        n += 1;
    }
    let mut row = Row::new(name, n, t0.elapsed(), meter.stop());

    let until = Instant::now() + budget;
    let meter = cpu::Meter::start();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..INFLIGHT {
        let f = f.clone();
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                f().await?;
                n += 1;
            }
            BenchResult::Ok(n)
        });
    }
    let mut total = 0u64;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    if let Some(usage) = meter.stop() {
        row.busy_cpu_us = Some(usage.process * 1e6 / total.max(1) as f64);
        row.others = match (row.others, usage.others_cores()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(row)
}

/// The micro benchmarks, each alone while the server idles.
fn micro_benchmarks(fx: &Fixture, budget: Duration) -> BenchResult<Vec<Row>> {
    let core = fx.core();
    let key_b64 = fx.pair.public_key().to_base64();
    let (accession, file_id) = fx.files[0].clone();
    let order = WorkOrder::Download {
        file_id,
        accession: accession.clone(),
    };
    let signer = Es256Signer(core.config.signer()?);
    let lifetime = fx.wot_lifetime;
    let claims = order.claims(&key_b64, Utc::now().timestamp(), lifetime);
    let jws = signer.sign(&claims)?;
    let public = fx.pair.public_key();
    let crypto = Crypt4ghCrypto;

    let mut rows = vec![
        micro_sync("claims map (WorkOrder::claims)", budget, || {
            std::hint::black_box(order.claims(&key_b64, Utc::now().timestamp(), lifetime));
            Ok(())
        })?,
        micro_sync("sign: claims + ES256 (Es256Signer)", budget, || {
            let claims = order.claims(&key_b64, Utc::now().timestamp(), lifetime);
            std::hint::black_box(signer.sign(&claims)?);
            Ok(())
        })?,
        micro_sync("seal: sealed box + base64 (seal_base64)", budget, || {
            std::hint::black_box(seal_base64(&public, &jws)?);
            Ok(())
        })?,
        micro_sync(
            "seal as served (Crypt4ghCrypto::seal, parses key)",
            budget,
            || {
                std::hint::black_box(crypto.seal(&key_b64, &jws)?);
                Ok(())
            },
        )?,
        micro_sync("sha256 of the WPAT (hash_token)", budget, || {
            std::hint::black_box(hash_token(&fx.wpat));
            Ok(())
        })?,
    ];

    // Like an actix worker: a current-thread runtime whose blocking pool runs the store
    // reads. The calls own what they use, so that several can be in flight.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("bench-micro")
        .build()?;
    let (id, user) = (fx.package_id, fx.user);
    let wpat: Arc<str> = fx.wpat.as_str().into();
    let accession: Arc<str> = accession.into();
    let package_key: Arc<str> = id.to_string().into();
    let (repo, grants, daos) = (
        core.repository.clone(),
        core.grants.clone(),
        fx.daos.clone(),
    );
    rt.block_on(async {
        let (d, k) = (daos.clone(), package_key.clone());
        rows.push(
            micro_async("DAO get_by_id (work package)", budget, move || {
                let (d, k) = (d.clone(), k.clone());
                async move {
                    std::hint::black_box(d.work_packages.get_by_id(&k).await?);
                    Ok(())
                }
            })
            .await?,
        );
        let g = grants.clone();
        rows.push(
            micro_async("grant re-check (GrantStore, find_all)", budget, move || {
                let g = g.clone();
                async move {
                    g.check_download_access(user, DATASET)
                        .await?
                        .ok_or("the grant is gone")?;
                    Ok(())
                }
            })
            .await?,
        );
        let (d, a) = (daos.clone(), accession.clone());
        rows.push(
            micro_async("DAO get_by_id (accession map)", budget, move || {
                let (d, a) = (d.clone(), a.clone());
                async move {
                    std::hint::black_box(d.accession_maps.get_by_id(&a).await?);
                    Ok(())
                }
            })
            .await?,
        );
        let (r, t) = (repo.clone(), wpat.clone());
        rows.push(
            micro_async(
                "lookup: repository.get (wp + sha256 + grant)",
                budget,
                move || {
                    let (r, t) = (r.clone(), t.clone());
                    async move {
                        std::hint::black_box(r.get(id, &t).await?);
                        Ok(())
                    }
                },
            )
            .await?,
        );
        let (r, t, a) = (repo.clone(), wpat.clone(), accession.clone());
        rows.push(
            micro_async(
                "domain: repository.download_wot (no HTTP)",
                budget,
                move || {
                    let (r, t, a) = (r.clone(), t.clone(), a.clone());
                    async move {
                        std::hint::black_box(r.download_wot(id, &a, &t).await?);
                        Ok(())
                    }
                },
            )
            .await?,
        );
        BenchResult::Ok(())
    })?;
    Ok(rows)
}

/// The domain call without HTTP at `concurrency` tasks on a runtime with one thread per
/// core: what the service could do if HTTP cost nothing.
fn domain_throughput(
    fx: &Fixture,
    cores: usize,
    concurrency: usize,
    window: Duration,
) -> BenchResult<(f64, Option<f64>, Option<cpu::Usage>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .thread_name("bench-domain")
        .build()?;
    let repo = fx.core().repository.clone();
    let accessions: Arc<Vec<String>> = Arc::new(fx.files.iter().map(|(a, _)| a.clone()).collect());
    let (id, wpat) = (fx.package_id, Arc::new(fx.wpat.clone()));
    let until = Instant::now() + window;
    let meter = cpu::Meter::start();
    let t0 = Instant::now();
    let count = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let (repo, accessions, wpat) = (repo.clone(), accessions.clone(), wpat.clone());
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while Instant::now() < until {
                        let accession = &accessions[(i + n) % accessions.len()];
                        repo.download_wot(id, accession, &wpat).await?;
                        n += 1;
                    }
                    BenchResult::Ok(n)
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await??;
        }
        BenchResult::Ok(total)
    })?;
    let wall = t0.elapsed().as_secs_f64();
    let usage = meter.stop();
    let cpu_us = usage.map(|u| u.process * 1e6 / count.max(1) as f64);
    Ok((count as f64 / wall, cpu_us, usage))
}

fn run() -> BenchResult<()> {
    let knobs = Knobs::from_env()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let main_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("bench-main")
        .build()?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(knobs.client_threads)
        .enable_all()
        .thread_name("bench-load")
        .build()?;

    let fx = main_rt.block_on(setup(&knobs.store, knobs.workers, knobs.files))?;
    let workers = match knobs.workers {
        0 => cores,
        n => n,
    };
    println!("wot_http: download work order tokens over HTTP (wps.md §1.4)");
    println!(
        "  store {} | {cores} cores | {workers} actix workers | load generator on {} thread(s) \
         | {} files | warm-up {:.1} s, window {:.1} s",
        knobs.store.label(),
        knobs.client_threads,
        fx.files.len(),
        knobs.warmup.as_secs_f64(),
        knobs.window.as_secs_f64(),
    );
    println!(
        "  server and load generator share the cores: every HTTP figure includes the load \
         generator's CPU"
    );

    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        fx.files
            .iter()
            .map(|(accession, _)| {
                format!(
                    "POST /work-packages/{}/files/{accession}/work-order-tokens HTTP/1.1\r\n\
                     Host: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
                    fx.package_id, fx.addr, fx.wpat
                )
                .into_bytes()
            })
            .collect(),
    );
    let verifier = JwtVerifier::from_jwk_json(&fx.signing_public, &["ES256".into()])?;

    let mut outcomes = Vec::new();
    for &concurrency in &knobs.concurrency {
        let outcome = run_load(
            &load_rt,
            fx.addr,
            &requests,
            concurrency,
            knobs.warmup,
            knobs.window,
        )?;
        print_outcome(&outcome, cores, "tokens");
        if outcome.errors > 0 {
            return Err(format!(
                "{} requests did not answer 201 at concurrency {concurrency}; first: {}",
                outcome.errors,
                outcome.first_error.as_deref().unwrap_or("?")
            )
            .into());
        }
        if outcome.tokens == 0 {
            return Err(format!("no token was issued at concurrency {concurrency}").into());
        }
        for (which, body) in &outcome.samples {
            check_token(&fx, &verifier, *which, body)?;
        }
        println!(
            "  sanity: {} returned tokens (the last of each connection) decrypted, verified \
             (ES256) and named the requested file",
            outcome.samples.len()
        );
        outcomes.push(outcome);
    }
    let best = outcomes
        .iter()
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .ok_or("no load run")?;
    let creation = run_load(
        &load_rt,
        fx.addr,
        &Arc::new(vec![fx.create_request.clone()]),
        knobs.concurrency[0],
        knobs.warmup,
        knobs.window,
    )?;
    println!("\nwork package creation (POST /work-packages, a new package per request):");
    print_outcome(&creation, cores, "packages");
    if creation.errors > 0 || creation.tokens == 0 {
        return Err(format!(
            "creation: {} requests did not answer 201; first: {}",
            creation.errors,
            creation.first_error.as_deref().unwrap_or("none succeeded")
        )
        .into());
    }
    for (_, body) in &creation.samples {
        let body: Value = serde_json::from_slice(body)?;
        let sealed = body["token"].as_str().ok_or("creation answered no token")?;
        if fx.pair.open_base64(sealed)?.len() != 24 {
            return Err("a created package's access token is not 24 characters".into());
        }
    }
    println!(
        "  sanity: {} returned access tokens (the last of each connection) decrypted",
        creation.samples.len()
    );
    if !knobs.soak.is_zero() {
        soak(
            &load_rt,
            fx.addr,
            &requests,
            knobs.concurrency[0],
            knobs.soak,
            knobs.soak_every,
        )?;
    }

    println!(
        "\nwhere the time goes: micro benchmarks, one call at a time, server idle \
         ({:.1} s each)",
        knobs.micro.as_secs_f64()
    );
    let mut rows = micro_benchmarks(&fx, knobs.micro)?;
    rows.push(Row {
        name: format!(
            "HTTP end to end (load run, c={}; wall = p50)",
            best.concurrency
        ),
        iterations: best.tokens,
        wall_us: best.percentile_ms(0.5) * 1e3,
        cpu_us: None,
        busy_cpu_us: best.cpu_us_per_token(),
        others: best.usage.and_then(|u| u.others_cores()),
    });
    print_rows(&rows);

    let domain_window = knobs.micro.mul_f64(2.0);
    let (domain_rate, domain_cpu_us, domain_usage) =
        domain_throughput(&fx, cores, best.concurrency, domain_window)?;
    println!(
        "\ndomain call without HTTP, {} tasks on {cores} threads for {:.1} s: {:.0} tokens/s, \
         {:.0} CPU µs per token;{}",
        best.concurrency,
        domain_window.as_secs_f64(),
        domain_rate,
        domain_cpu_us.unwrap_or(f64::NAN),
        domain_usage.map_or(String::new(), |u| u.describe()),
    );

    print_summary(&outcomes, best, &rows, cores, domain_cpu_us);
    let config = fx.core().config.clone();
    main_rt.block_on(async {
        fx.running.stop().await?;
        knobs.store.clean_up(&config).await
    })?;
    Ok(())
}

fn print_outcome(o: &LoadOutcome, cores: usize, what: &str) {
    println!(
        "\nc={:<3} {:>8.0} {what}/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  \
         errors {}  ({} {what} in {:.1} s)",
        o.concurrency,
        o.rate(),
        o.percentile_ms(0.50),
        o.percentile_ms(0.90),
        o.percentile_ms(0.99),
        o.percentile_ms(1.0),
        o.errors,
        o.tokens,
        o.window.as_secs_f64(),
    );
    let (Some(split), Some(usage)) = (&o.cpu, o.usage) else {
        println!("  CPU split unavailable (no /proc)");
        return;
    };
    let secs = o.window.as_secs_f64();
    println!(
        "  CPU in the window (/proc, USER_HZ=100): {:.0} µs per request;{}",
        o.cpu_us_per_token().unwrap_or(f64::NAN),
        usage.describe(),
    );
    let per_token = |used: f64| used * 1e6 / o.tokens.max(1) as f64;
    for (group, used) in split.groups() {
        println!(
            "    {group:<48} {:>5.2} of {cores} cores {:>6.0} µs/request",
            used / secs,
            per_token(used),
        );
    }
}

fn print_rows(rows: &[Row]) {
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "  {:<50} {:>8} {:>9} {:>9} {:>9} {:>10} {:>6}",
        "operation", "iters", "wall µs", "CPU µs", "busy CPU", "ops/s/core", "others"
    );
    for r in rows {
        println!(
            "  {:<50} {:>8} {:>9.1} {:>9} {:>9} {:>10.0} {:>6}",
            r.name,
            r.iterations,
            r.wall_us,
            us(r.cpu_us),
            us(r.busy_cpu_us),
            1e6 / r.cost_us(),
            r.others.map_or("?".to_owned(), |c| format!("{c:.2}")),
        );
    }
    println!(
        "  wall µs and CPU µs: one call at a time (CPU of the whole process, so async rows \
         include waking an idle\n  blocking pool per store read); busy CPU µs: {INFLIGHT} calls \
         in flight on one current-thread runtime (HTTP:\n  the load run's CPU per token, load \
         generator included); ops/s/core = 1e6 / (busy CPU, else CPU);\n  others = cores other \
         processes kept busy meanwhile (noise: should be about 0)"
    );
}

fn cost_of(rows: &[Row], prefix: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.name.starts_with(prefix))
        .map(Row::cost_us)
}

fn print_summary(
    outcomes: &[LoadOutcome],
    best: &LoadOutcome,
    rows: &[Row],
    cores: usize,
    domain_cpu_us: Option<f64>,
) {
    println!("\nsummary");
    for o in outcomes {
        println!(
            "  c={:<3} {:>8.0} tokens/s  p50 {:.2} ms  p99 {:.2} ms{}{}",
            o.concurrency,
            o.rate(),
            o.percentile_ms(0.5),
            o.percentile_ms(0.99),
            o.usage
                .and_then(|u| u.others_cores())
                .filter(|&c| c > 0.1)
                .map_or(String::new(), |c| format!(
                    "  (other processes took {c:.2} cores)"
                )),
            if std::ptr::eq(o, best) {
                "  <- best"
            } else {
                ""
            },
        );
    }
    let n = cores as f64;
    if let (Some(sign), Some(seal), Some(split), Some(total)) = (
        cost_of(rows, "sign:"),
        cost_of(rows, "seal as served"),
        best.cpu.as_ref(),
        best.cpu_us_per_token(),
    ) {
        let per_token = |prefix: &str| {
            split
                .groups()
                .filter(|(g, _)| g.starts_with(prefix))
                .map(|(_, used)| used * 1e6 / best.tokens.max(1) as f64)
                .sum::<f64>()
        };
        let (workers, blocking, load) = (
            per_token("actix workers"),
            per_token("actix blocking"),
            per_token("load generator"),
        );
        println!(
            "  CPU per token at c={}: {total:.0} µs = actix workers {workers:.0} (sign {sign:.0} \
             + seal {seal:.0} + the rest {:.0}: HTTP, routing, middleware, JSON, sha256, \
             hand-offs) + store reads on blocking pools {blocking:.0} + load generator \
             {load:.0} + other {:.0}",
            best.concurrency,
            workers - sign - seal,
            total - workers - blocking - load,
        );
        if let Some(domain) = domain_cpu_us {
            println!(
                "  the domain call alone (no HTTP, same concurrency) costs {domain:.0} µs: HTTP, \
                 actix and middleware add {:.0} µs per token, the load generator {load:.0}",
                total - load - domain,
            );
        }
        println!(
            "  ceilings on {cores} cores: sign + seal alone {:.0}/s; the server without the load \
             generator {:.0}/s; everything {:.0}/s; measured {:.0}/s",
            n * 1e6 / (sign + seal),
            n * 1e6 / (total - load),
            n * 1e6 / total,
            best.rate(),
        );
    }
    let target = 10_000.0;
    println!(
        "  target {target:.0} tokens/s: {}",
        if best.rate() >= target {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// CPU time from /proc (Linux): per thread, for the whole process and for the machine;
/// `None` elsewhere.
mod cpu {
    use super::HashMap;
    use std::time::Instant;

    /// Clock ticks per second of /proc's times (USER_HZ, 100 on Linux).
    const TICKS: f64 = 100.0;

    /// (name, utime + stime in ticks) from one `stat` file; the name may hold spaces and
    /// parentheses, so fields are counted from the last `)`.
    fn parse_stat(text: &str) -> Option<(String, u64)> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let name = text.get(open + 1..close)?.to_owned();
        let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
        // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
        let utime: u64 = rest.get(11)?.parse().ok()?;
        let stime: u64 = rest.get(12)?.parse().ok()?;
        Some((name, utime + stime))
    }

    /// The whole process's CPU seconds, including threads that already exited.
    fn process_seconds() -> Option<f64> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat(&text).map(|(_, ticks)| ticks as f64 / TICKS)
    }

    /// (busy, stolen) CPU seconds of the whole machine, all cores: busy is neither idle,
    /// waiting for I/O nor stolen by the hypervisor.
    fn machine_seconds() -> Option<(f64, f64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal
        if fields.len() < 8 {
            return None;
        }
        let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
        Some((busy as f64 / TICKS, fields[7] as f64 / TICKS))
    }

    /// CPU used between [`Meter::start`] and [`Meter::stop`].
    #[derive(Debug, Clone, Copy)]
    pub struct Usage {
        /// This process, seconds.
        pub process: f64,
        /// The whole machine, seconds (when readable).
        machine: Option<f64>,
        /// Stolen by the hypervisor, seconds (when readable).
        stolen: Option<f64>,
        wall: f64,
    }

    impl Usage {
        /// Cores other processes kept busy (the machine minus this process).
        pub fn others_cores(&self) -> Option<f64> {
            self.machine
                .map(|m| ((m - self.process) / self.wall).max(0.0))
        }

        pub fn describe(&self) -> String {
            let mut text = format!(" this process {:.2} cores", self.process / self.wall);
            if let Some(others) = self.others_cores() {
                text.push_str(&format!(", other processes {others:.2} cores"));
                if others > 0.1 {
                    text.push_str(
                        " (not a quiet machine, unless that is a local database server: \
                         figures are low)",
                    );
                }
            }
            if let Some(stolen) = self.stolen.map(|s| s / self.wall).filter(|&s| s > 0.05) {
                text.push_str(&format!(", stolen by the hypervisor {stolen:.2} cores"));
            }
            text
        }
    }

    pub struct Meter {
        process: Option<f64>,
        machine: Option<(f64, f64)>,
        at: Instant,
    }

    impl Meter {
        pub fn start() -> Self {
            Self {
                process: process_seconds(),
                machine: machine_seconds(),
                at: Instant::now(),
            }
        }

        pub fn stop(&self) -> Option<Usage> {
            let process = process_seconds()? - self.process?;
            let delta = machine_seconds()
                .zip(self.machine)
                .map(|((busy, stolen), (busy0, stolen0))| (busy - busy0, stolen - stolen0));
            Some(Usage {
                process,
                machine: delta.map(|d| d.0),
                stolen: delta.map(|d| d.1),
                wall: self.at.elapsed().as_secs_f64().max(1e-9),
            })
        }
    }

    /// Per thread id: (name, CPU ticks).
    pub type Threads = HashMap<u64, (String, u64)>;

    pub fn threads() -> Option<Threads> {
        let mut out = HashMap::new();
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let Ok(entry) = entry else { continue };
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may exit between listing and reading.
            if let Ok(text) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some(stat) = parse_stat(&text)
            {
                out.insert(tid, stat);
            }
        }
        Some(out)
    }

    /// CPU seconds per thread group between two snapshots.
    pub struct Split(Vec<(String, f64)>);

    fn group(name: &str) -> String {
        if name.starts_with("actix-server wo") {
            "actix workers (HTTP, sign, seal, JSON, sha256)".into()
        } else if name.starts_with("tokio-r") {
            // The only unnamed runtimes are the actix workers' current-thread runtimes,
            // whose blocking pools run the embedded store's reads (MongoDB calls run on the
            // workers, and the server's CPU shows as other processes when it is local).
            "actix blocking pools (embedded store reads)".into()
        } else if name.starts_with("bench-load") {
            "load generator".into()
        } else {
            format!("other ({name})")
        }
    }

    impl Split {
        pub fn between(before: &Threads, after: &Threads) -> Self {
            let mut groups: HashMap<String, f64> = HashMap::new();
            for (tid, (name, ticks)) in after {
                let start = before.get(tid).map_or(0, |(_, t)| *t);
                let used = ticks.saturating_sub(start) as f64 / TICKS;
                *groups.entry(group(name)).or_default() += used;
            }
            let mut groups: Vec<_> = groups.into_iter().filter(|(_, s)| *s > 0.0).collect();
            groups.sort_by(|a, b| b.1.total_cmp(&a.1));
            Self(groups)
        }

        pub fn total(&self) -> f64 {
            self.0.iter().map(|(_, s)| s).sum()
        }

        pub fn groups(&self) -> impl Iterator<Item = (&str, f64)> {
            self.0.iter().map(|(g, s)| (g.as_str(), *s))
        }
    }
}
