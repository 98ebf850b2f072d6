//! Object storage throughput and presign rate (a load run, not criterion; nothing asserts a
//! timing). `cargo bench -p tessera-s3 --bench objects`.
//!
//! - put and get of one large object, streamed, on the local store (a temp dir) and, when
//!   `TESSERA_TEST_S3S_URL` is set (`eval "$(scripts/test-infra up s3s)"`), on s3s-fs, in
//!   MB/s (10^6 bytes); the body is one 8 MiB random block repeated, so generating it costs
//!   nothing, and the store computes the MD5 as a real upload does;
//! - presigned PUT URLs per second on one core, for both providers (pure computation).
//!
//! Knobs: `OBJECTS_BENCH_MB` (object size in MB, default 256), `OBJECTS_BENCH_ROUNDS`
//! (put+get rounds per store, default 3), `OBJECTS_BENCH_PRESIGN` (presigns, default 200000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::{ContentMd5, ObjectKey, ObjectStore, PresignPut, PutRequest};
use tessera_s3::{S3Config, S3ObjectStore};

const BLOCK: usize = 8 << 20;
/// Chunks as a network stack delivers them.
const CHUNK: usize = 256 << 10;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One random block, and the MD5 of `len` bytes of it repeated.
fn block_and_md5(len: u64) -> (Bytes, ContentMd5) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let block: Vec<u8> = (0..BLOCK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let block = Bytes::from(block);
    let mut hasher = Md5::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    (block, ContentMd5(hasher.finalize().into()))
}

fn body(block: &Bytes, len: u64) -> tessera_kit::objects::ByteStream {
    let block = block.clone();
    let chunks = (0..len.div_ceil(CHUNK as u64)).map(move |i| {
        let start = i * CHUNK as u64;
        let end = (start + CHUNK as u64).min(len);
        let offset = (start % BLOCK as u64) as usize;
        // CHUNK divides BLOCK, so a chunk never wraps around the block.
        Ok(block.slice(offset..offset + (end - start) as usize))
    });
    futures::stream::iter(chunks).boxed()
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

async fn throughput(name: &str, store: &dyn ObjectStore, len: u64, rounds: u64) {
    let (block, md5) = block_and_md5(len);
    let key = ObjectKey::parse(format!("bench-{}/large.bin", std::process::id())).unwrap();
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        store
            .put(&key, body(&block, len), PutRequest::new(len).md5(md5))
            .await
            .unwrap();
        puts.push(mb_per_s(len, started.elapsed()));

        let started = Instant::now();
        let mut got = store.get(&key, None).await.unwrap().body;
        let mut total = 0u64;
        while let Some(chunk) = got.next().await {
            total += chunk.unwrap().len() as u64;
        }
        assert_eq!(total, len, "the download is complete");
        gets.push(mb_per_s(len, started.elapsed()));
    }
    store.delete(&key).await.unwrap();
    let show = |v: &[f64]| {
        let best = v.iter().copied().fold(0.0, f64::max);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        format!("mean {mean:7.1} MB/s, best {best:7.1} MB/s")
    };
    println!(
        "{name:<8} {} MB x{rounds}: put {}; get {}",
        len / 1_000_000,
        show(&puts),
        show(&gets)
    );
}

async fn presign_rate(name: &str, store: &dyn ObjectStore, n: u64) {
    let key = ObjectKey::parse("bench/some/object-key.bin").unwrap();
    let request = PresignPut {
        md5: ContentMd5([7; 16]),
        content_type: "application/octet-stream".to_owned(),
        length: 123_456_789,
        expires_in: Duration::from_secs(3600),
    };
    // Warm-up.
    for _ in 0..1000 {
        store.presign_put(&key, &request).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(store.presign_put(&key, &request).await.unwrap());
    }
    let elapsed = started.elapsed();
    println!(
        "{name:<8} presign PUT: {:9.0} /s on one core ({:.2} µs each)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    let len = env_u64("OBJECTS_BENCH_MB", 256) * 1_000_000;
    let rounds = env_u64("OBJECTS_BENCH_ROUNDS", 3).max(1);
    let presigns = env_u64("OBJECTS_BENCH_PRESIGN", 200_000).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalObjectStore::open(&LocalObjectsConfig {
            objects_root: dir.path().to_owned(),
            ..LocalObjectsConfig::default()
        })
        .unwrap();
        let s3s = std::env::var("TESSERA_TEST_S3S_URL").ok().map(|url| {
            S3ObjectStore::new(&S3Config {
                s3_endpoint_url: url,
                s3_bucket: std::env::var("TESSERA_TEST_S3_BUCKET")
                    .unwrap_or_else(|_| "tessera-test".into()),
                s3_access_key_id: std::env::var("TESSERA_TEST_S3S_ACCESS_KEY").unwrap(),
                s3_secret_access_key: std::env::var("TESSERA_TEST_S3S_SECRET_KEY").unwrap().into(),
                ..S3Config::default()
            })
            .unwrap()
        });

        throughput("local", &local, len, rounds).await;
        match &s3s {
            Some(store) => throughput("s3s-fs", store, len, rounds).await,
            None => println!("s3s-fs   skipped: TESSERA_TEST_S3S_URL is not set"),
        }
        presign_rate("local", &local, presigns).await;
        // Presigning makes no request: any endpoint does.
        let s3 = s3s.unwrap_or_else(|| {
            S3ObjectStore::new(&S3Config {
                s3_endpoint_url: "http://127.0.0.1:9".into(),
                s3_bucket: "bench".into(),
                s3_access_key_id: "AK".into(),
                s3_secret_access_key: "SK".into(),
                ..S3Config::default()
            })
            .unwrap()
        });
        presign_rate("s3", &s3, presigns).await;
    });
}
