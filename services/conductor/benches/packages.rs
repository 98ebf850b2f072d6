//! A benchmark (not a test) of the package loader's CSV validation (MB/s on one core) and of
//! `/search/package`'s index: queries per second over 10,000 indexed packages on the
//! embedded default (SQLite FTS5).
//!
//! `cargo bench -p conductor --bench packages`. Knobs: `CONDUCTOR_BENCH_MB` (CSV size,
//! default 64), `CONDUCTOR_BENCH_SECONDS` (search window, default 5),
//! `CONDUCTOR_BENCH_CONCURRENCY` (concurrent queries, default 8).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench: setup failures abort it

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conductor::search::SqliteIndex;
use serde_json::json;
use tessera_conductor::PackageRecord;
use tessera_conductor::loader::CsvChecker;
use tessera_conductor::search::{FieldPath, PackageIndex, SearchQuery};
use tessera_conductor::tableschema::PackageDescriptor;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn loading() {
    let mb = env_num("CONDUCTOR_BENCH_MB", 64);
    let descriptor = json!({"name": "bench", "resources": [{"name": "budget", "path": "data/budget.csv",
        "schema": {"fields": [
            {"name": "id", "type": "integer", "constraints": {"unique": true}},
            {"name": "year", "type": "year"},
            {"name": "date", "type": "date"},
            {"name": "admin", "type": "string", "constraints": {"pattern": "[0-9]{2}"}},
            {"name": "label", "type": "string"},
            {"name": "amount", "type": "number", "constraints": {"required": true, "minimum": -1e12}}]}}]});
    let resource = PackageDescriptor::parse(descriptor.to_string().as_bytes())
        .unwrap()
        .resources
        .remove(0);
    let mut csv = b"id,year,date,admin,label,amount\n".to_vec();
    let mut i = 0u64;
    while csv.len() < usize::try_from(mb).unwrap() << 20 {
        csv.extend_from_slice(
            format!(
                "{i},{},20{:02}-0{}-1{},{:02},\"Ministry of things, {i}\",{}.{:02}\n",
                2000 + i % 25,
                i % 25,
                1 + i % 9,
                i % 10,
                i % 100,
                i * 37 % 100_000,
                i % 100
            )
            .as_bytes(),
        );
        i += 1;
    }
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut checker = CsvChecker::new(resource);
    for chunk in csv.chunks(64 * 1024) {
        checker.feed(chunk).expect("valid CSV");
    }
    let rows = checker.finish().expect("valid CSV");
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let size = csv.len() as f64 / 1e6;
    println!(
        "loading: {size:.1} MB, {rows} rows validated in {wall:.2} s: {:.1} MB/s wall, {:.1} MB/s per CPU second ({:.2} µs CPU per row)",
        size / wall,
        size / cpu.max(0.01),
        cpu * 1e6 / rows as f64
    );
}

fn record(i: usize) -> PackageRecord {
    let countries = ["DE", "FR", "IT", "ES", "PL", "NL", "BE", "AT"];
    let words = [
        "budget", "spending", "roads", "schools", "health", "water", "energy", "culture",
    ];
    PackageRecord {
        id: format!("owner{}:package-{i}", i % 100),
        model: json!({"measures": {"amount": {"source": "amount"}}}),
        package: json!({"name": format!("package-{i}"), "title": format!("{} {} {i}", words[i % 8], words[(i / 8) % 8]),
            "owner": format!("owner{}", i % 100), "private": i.is_multiple_of(10), "countryCode": countries[i % 8],
            "description": format!("The {} of region {}", words[(i / 3) % 8], i % 50), "count_of_rows": i})
            .as_object().cloned().unwrap(),
        origin_url: format!("http://x/owner/package-{i}/datapackage.json"),
        dataset: format!("package-{i}"),
        author: None,
        loading_status: "done".into(),
        loaded: true,
        objects_prefix: String::new(),
        last_update: i as f64,
        deleted: false,
        outbox: Vec::new(),
        outbox_pending: false,
    }
}

async fn search() {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(SqliteIndex::open(&dir.path().join("db.sqlite")).unwrap());
    for i in 0..10_000 {
        index.put(&record(i)).await.unwrap();
    }
    let seconds = env_num("CONDUCTOR_BENCH_SECONDS", 5);
    let concurrency = env_num("CONDUCTOR_BENCH_CONCURRENCY", 8);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (index, done) = (index.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Three of four queries have one word, the fourth two.
            let words = ["budget", "roads", "health", "energy roads"];
            let mut n = 0usize;
            while Instant::now() < deadline {
                let query = SearchQuery {
                    q: Some(words[(n + t as usize) % 4].into()),
                    filters: if n.is_multiple_of(2) {
                        vec![(
                            FieldPath::parse("package.countryCode").unwrap(),
                            vec![json!("DE")],
                        )]
                    } else {
                        Vec::new()
                    },
                    userid: Some(format!("owner{}", n % 100)),
                    from: 0,
                    size: 20,
                };
                let found = index.search(&query).await.unwrap();
                assert!(!found.is_empty());
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let n = done.load(Ordering::Relaxed) as f64;
    println!(
        "search: 10000 packages, {n:.0} queries (q of 1 or 2 words, every other with a filter, 20 per page) in {wall:.1} s with {concurrency} concurrent: {:.0} queries/s, {:.0} µs CPU per query",
        n / wall,
        cpu * 1e6 / n
    );
}

#[tokio::main]
async fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());
    loading();
    search().await;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
