//! The object storage contract ([`object_suite`], [`object_large_suite`]) and its presigned
//! URL part, driven by a plain HTTP client (reqwest) as a browser or `curl` would.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use md5::{Digest, Md5};

use crate::objects::{
    ByteRange, ByteStream, ContentMd5, Error, ObjectKey, ObjectStore, PresignPut, PresignedRequest,
    PutRequest,
};

/// What a provider's server can be held to.
#[derive(Debug, Clone, Copy)]
pub struct ObjectSuiteOptions {
    /// Whether the server checks signatures (moto does not: a presigned upload with other
    /// headers, a tampered or an expired URL is accepted there, so those cases are skipped
    /// and the skip is printed).
    pub verifies_signatures: bool,
    /// Whether the server refuses a body that does not match its `Content-MD5` (AWS, s3s-fs
    /// and the local scope do; moto does not).
    pub checks_body_md5: bool,
    /// Whether such a refused body leaves nothing behind (s3s-fs 0.14.1 writes the object
    /// before it compares the MD5, so it stays although the upload was refused).
    pub discards_refused_body: bool,
}

impl ObjectSuiteOptions {
    /// A server that checks everything (AWS, the local store).
    pub const STRICT: Self = Self {
        verifies_signatures: true,
        checks_body_md5: true,
        discards_refused_body: true,
    };
}

/// The MD5 of `data`.
pub fn md5_of(data: &[u8]) -> ContentMd5 {
    ContentMd5(Md5::digest(data).into())
}

/// `data` as a body stream of chunks of at most `chunk` bytes.
pub fn body(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<_> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

async fn read_all(body: ByteStream) -> Vec<u8> {
    body.try_fold(Vec::new(), |mut acc, chunk| async move {
        acc.extend_from_slice(&chunk);
        Ok(acc)
    })
    .await
    .unwrap()
}

fn key(prefix: &str, name: &str) -> ObjectKey {
    ObjectKey::parse(format!("{prefix}/{name}")).unwrap()
}

async fn put_bytes(store: &dyn ObjectStore, key: &ObjectKey, data: &[u8]) {
    let request = PutRequest::new(data.len() as u64).md5(md5_of(data));
    let meta = store.put(key, body(data, 7), request).await.unwrap();
    assert_eq!(meta.size, data.len() as u64, "put reports the stored size");
    assert_eq!(&meta.key, key);
}

async fn get_bytes(store: &dyn ObjectStore, key: &ObjectKey) -> Vec<u8> {
    read_all(store.get(key, None).await.unwrap().body).await
}

async fn assert_absent(store: &dyn ObjectStore, key: &ObjectKey, why: &str) {
    assert!(
        matches!(store.head(key).await, Err(Error::NotFound { .. })),
        "{why}: {key} must not exist"
    );
}

/// The object storage contract, except the presigned URLs' HTTP side and the large object.
pub async fn object_suite(store: &dyn ObjectStore, options: ObjectSuiteOptions) {
    let prefix = format!("suite-{}", super::suffix());
    let a = key(&prefix, "dir/a.txt");
    let data = b"hello, objects: the quick brown fox".to_vec();

    // Round trip, streamed in small chunks; head agrees.
    assert_absent(store, &a, "before any put").await;
    put_bytes(store, &a, &data).await;
    assert_eq!(
        get_bytes(store, &a).await,
        data,
        "get returns what put stored"
    );
    let meta = store.head(&a).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let got = store.get(&a, None).await.unwrap();
    assert_eq!(got.range, 0..data.len() as u64);
    assert_eq!(got.meta.size, data.len() as u64);

    // Ranges: bounded, open, clamped, and outside the object.
    let ranged = store
        .get(&a, Some(ByteRange::new(7, 14).unwrap()))
        .await
        .unwrap();
    assert_eq!(ranged.range, 7..14);
    assert_eq!(read_all(ranged.body).await, &data[7..14]);
    let tail = store.get(&a, Some(ByteRange::from(30))).await.unwrap();
    assert_eq!(read_all(tail.body).await, &data[30..]);
    let clamped = store
        .get(&a, Some(ByteRange::new(30, 10_000).unwrap()))
        .await
        .unwrap();
    assert_eq!(clamped.range, 30..data.len() as u64);
    assert_eq!(read_all(clamped.body).await, &data[30..]);
    assert!(
        matches!(
            store
                .get(&a, Some(ByteRange::from(data.len() as u64)))
                .await,
            Err(Error::InvalidRange { .. })
        ),
        "a range starting at the end is InvalidRange"
    );

    // Replacing: the new bytes win.
    put_bytes(store, &a, b"second version").await;
    assert_eq!(get_bytes(store, &a).await, b"second version");

    // An empty object.
    let empty = key(&prefix, "empty");
    put_bytes(store, &empty, b"").await;
    assert_eq!(store.head(&empty).await.unwrap().size, 0);
    assert!(get_bytes(store, &empty).await.is_empty());

    // Wrong length or MD5, and a failing body: refused, nothing stored, old object kept.
    let b = key(&prefix, "dir/b.bin");
    let short = store
        .put(&b, body(&data, 5), PutRequest::new(data.len() as u64 + 1))
        .await;
    assert!(
        matches!(short, Err(Error::PreconditionFailed { .. })),
        "a body shorter than declared is PreconditionFailed: {short:?}"
    );
    let long = store
        .put(&b, body(&data, 5), PutRequest::new(data.len() as u64 - 1))
        .await;
    assert!(
        matches!(long, Err(Error::PreconditionFailed { .. })),
        "a body longer than declared is PreconditionFailed: {long:?}"
    );
    let bad_md5 = store
        .put(
            &b,
            body(&data, 5),
            PutRequest::new(data.len() as u64).md5(md5_of(b"something else")),
        )
        .await;
    assert!(
        matches!(bad_md5, Err(Error::PreconditionFailed { .. })),
        "a body with another MD5 is PreconditionFailed: {bad_md5:?}"
    );
    let failing: ByteStream = stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(Error::Body("the client went away".into())),
    ])
    .boxed();
    let failed = store.put(&b, failing, PutRequest::new(100)).await;
    assert!(
        matches!(failed, Err(Error::Body(_))),
        "a failing body is Body: {failed:?}"
    );
    assert_absent(store, &b, "after refused uploads").await;
    let kept = store
        .put(&a, body(b"xx", 1), PutRequest::new(2).md5(md5_of(b"yy")))
        .await;
    assert!(matches!(kept, Err(Error::PreconditionFailed { .. })));
    assert_eq!(
        get_bytes(store, &a).await,
        b"second version",
        "a refused upload leaves the old object in place"
    );

    // Missing objects.
    let missing = key(&prefix, "missing");
    assert!(matches!(
        store.get(&missing, None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.copy(&missing, &b).await,
        Err(Error::NotFound { .. })
    ));
    store.delete(&missing).await.unwrap();

    // Copy, then both exist independently.
    store.copy(&a, &b).await.unwrap();
    assert_eq!(get_bytes(store, &b).await, b"second version");
    put_bytes(store, &a, b"third").await;
    assert_eq!(
        get_bytes(store, &b).await,
        b"second version",
        "a copy is independent"
    );

    // List: plain string prefixes, key order.
    put_bytes(store, &key(&prefix, "dir2/c"), b"c").await;
    put_bytes(store, &key(&prefix, "dir/sub/d"), b"dd").await;
    let keys = |metas: Vec<crate::objects::ObjectMeta>| {
        metas
            .into_iter()
            .map(|m| m.key.to_string())
            .collect::<Vec<_>>()
    };
    let all = store.list(&format!("{prefix}/")).await.unwrap();
    let sizes: Vec<u64> = all.iter().map(|m| m.size).collect();
    assert_eq!(
        keys(all),
        [
            format!("{prefix}/dir/a.txt"),
            format!("{prefix}/dir/b.bin"),
            format!("{prefix}/dir/sub/d"),
            format!("{prefix}/dir2/c"),
            format!("{prefix}/empty"),
        ]
    );
    assert_eq!(sizes, [5, 14, 2, 1, 0]);
    assert_eq!(
        keys(store.list(&format!("{prefix}/dir/")).await.unwrap()),
        [
            format!("{prefix}/dir/a.txt"),
            format!("{prefix}/dir/b.bin"),
            format!("{prefix}/dir/sub/d"),
        ]
    );
    assert_eq!(
        keys(store.list(&format!("{prefix}/dir")).await.unwrap()).len(),
        4,
        "a prefix may end inside a segment"
    );
    assert_eq!(
        keys(store.list(&format!("{prefix}/di")).await.unwrap()).len(),
        4
    );
    assert!(
        store
            .list(&format!("{prefix}/nothing"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.list("../").await,
        Err(Error::InvalidKey { .. })
    ));

    // Delete, idempotently.
    store.delete(&b).await.unwrap();
    assert_absent(store, &b, "after delete").await;
    store.delete(&b).await.unwrap();

    presign_suite(store, options, &prefix).await;

    for meta in store.list(&format!("{prefix}/")).await.unwrap() {
        store.delete(&meta.key).await.unwrap();
    }
    assert!(store.list(&format!("{prefix}/")).await.unwrap().is_empty());
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sends a presigned request with its headers, except those replaced by `overrides`.
async fn send(
    request: &PresignedRequest,
    body: Vec<u8>,
    overrides: &[(&str, &str)],
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut builder = client().request(method, &request.url);
    for (name, value) in &request.headers {
        if overrides.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        // reqwest sets Content-Length from the body itself.
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        builder = builder.header(name, value);
    }
    for (name, value) in overrides {
        builder = builder.header(*name, *value);
    }
    if request.method == "PUT" {
        builder = builder.body(body);
    }
    builder.send().await.unwrap()
}

fn skip(what: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}: {why}");
}

const NO_SIGNATURES: &str = "this server does not verify signatures";

async fn assert_refused(response: reqwest::Response, why: &str) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status.is_client_error(),
        "{why}: expected a 4xx refusal, got {status}: {text}"
    );
}

async fn presign_suite(store: &dyn ObjectStore, options: ObjectSuiteOptions, prefix: &str) {
    let k = key(prefix, "presigned/upload.bin");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let other: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
    let put = PresignPut {
        md5: md5_of(&data),
        content_type: "application/x-tessera-test".to_owned(),
        length: data.len() as u64,
        expires_in: Duration::from_secs(300),
    };

    // Arguments the protocol refuses.
    for bad in [
        PresignPut {
            expires_in: Duration::ZERO,
            ..put.clone()
        },
        PresignPut {
            expires_in: Duration::from_secs(8 * 24 * 3600),
            ..put.clone()
        },
        PresignPut {
            content_type: "a\nb".to_owned(),
            ..put.clone()
        },
    ] {
        assert!(
            matches!(
                store.presign_put(&k, &bad).await,
                Err(Error::InvalidRequest(_))
            ),
            "{bad:?} is InvalidRequest"
        );
    }
    assert!(matches!(
        store.presign_get(&k, Duration::ZERO).await,
        Err(Error::InvalidRequest(_))
    ));

    let request = store.presign_put(&k, &put).await.unwrap();
    assert_eq!(request.method, "PUT");
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-md5"), Some(put.md5.to_base64()));
    assert_eq!(header("content-type"), Some(put.content_type.clone()));
    assert_eq!(header("content-length"), Some(data.len().to_string()));
    let now = chrono::Utc::now();
    assert!(request.expires_at > now + chrono::Duration::seconds(290));
    assert!(request.expires_at <= now + chrono::Duration::seconds(301));

    // The bound headers: another MD5, type or length is refused (the signature covers them).
    if options.verifies_signatures {
        let other_md5 = md5_of(&other).to_base64();
        let response = send(&request, other.clone(), &[("content-md5", &other_md5)]).await;
        assert_refused(response, "a presigned PUT with another Content-MD5").await;
        let response = send(&request, data.clone(), &[("content-type", "text/plain")]).await;
        assert_refused(response, "a presigned PUT with another Content-Type").await;
        let mut longer = data.clone();
        longer.push(0);
        let response = send(&request, longer, &[]).await;
        assert_refused(response, "a presigned PUT with another Content-Length").await;
        // A tampered signature (the last hex digit of the URL flipped).
        let mut tampered = request.clone();
        let last = tampered.url.pop().unwrap();
        tampered.url.push(if last == '0' { '1' } else { '0' });
        let response = send(&tampered, data.clone(), &[]).await;
        assert_refused(response, "a presigned PUT with a tampered URL").await;
        assert_absent(store, &k, "after refused presigned uploads").await;
    } else {
        skip(
            "presigned PUT with other headers, tampered URL",
            NO_SIGNATURES,
        );
    }

    // The bound headers sent, but a body that does not match the MD5: refused by the MD5
    // check itself (every S3 server and the local scope verify Content-MD5).
    let response = send(&request, other.clone(), &[]).await;
    if options.checks_body_md5 {
        assert_refused(
            response,
            "a presigned PUT whose body does not match its MD5",
        )
        .await;
        if options.discards_refused_body {
            assert_absent(store, &k, "after a body with the wrong MD5").await;
        } else {
            skip(
                "nothing stored after a refused body",
                "this server stores the body before it checks Content-MD5",
            );
            store.delete(&k).await.unwrap();
        }
    } else {
        skip(
            "presigned PUT with a body that does not match Content-MD5",
            "this server does not check Content-MD5",
        );
        store.delete(&k).await.unwrap();
    }

    // The upload as bound succeeds from a plain HTTP client.
    let response = send(&request, data.clone(), &[]).await;
    let status = response.status();
    assert!(
        status.is_success(),
        "a presigned PUT as bound succeeds: {status}: {}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        get_bytes(store, &k).await,
        data,
        "the presigned upload is stored"
    );

    // Presigned GET, and a GET of a missing object.
    let get = store
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(get.method, "GET");
    let response = send(&get, Vec::new(), &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
    let missing = store
        .presign_get(&key(prefix, "presigned/missing"), Duration::from_secs(300))
        .await
        .unwrap();
    let response = send(&missing, Vec::new(), &[]).await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);

    // Expired URLs are refused.
    if options.verifies_signatures {
        let short = PresignPut {
            expires_in: Duration::from_secs(1),
            ..put.clone()
        };
        let k2 = key(prefix, "presigned/late.bin");
        let late_put = store.presign_put(&k2, &short).await.unwrap();
        let late_get = store.presign_get(&k, Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_refused(
            send(&late_put, data.clone(), &[]).await,
            "an expired PUT URL",
        )
        .await;
        assert_refused(send(&late_get, Vec::new(), &[]).await, "an expired GET URL").await;
        assert_absent(store, &k2, "after an expired upload").await;
    } else {
        skip("expired presigned URLs", NO_SIGNATURES);
    }
}

/// A deterministic pseudo-random body of `len` bytes in 1 MiB chunks, generated on the fly.
pub fn generated(len: u64, seed: u64) -> ByteStream {
    const CHUNK: u64 = 1 << 20;
    stream::unfold((0u64, seed), move |(offset, mut state)| async move {
        if offset >= len {
            return None;
        }
        let n = CHUNK.min(len - offset);
        let mut chunk = Vec::with_capacity(n as usize);
        while (chunk.len() as u64) < n {
            // xorshift64*: cheap and good enough to defeat any compression.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            let take = (n as usize - chunk.len()).min(8);
            chunk.extend_from_slice(&word[..take]);
        }
        Some((Ok(Bytes::from(chunk)), (offset + n, state)))
    })
    .boxed()
}

/// The MD5 of a [`generated`] body.
pub async fn generated_md5(len: u64, seed: u64) -> ContentMd5 {
    let mut hasher = Md5::new();
    let mut body = generated(len, seed);
    while let Some(chunk) = body.next().await {
        hasher.update(chunk.unwrap());
    }
    ContentMd5(hasher.finalize().into())
}

/// The resident set size of this process in bytes (Linux), for the memory bound.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples [`rss`] every 5 ms until dropped and keeps the peak.
struct RssPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssPeak {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// How much a 100 MB transfer may grow this process's resident memory: far less than the
/// object, so a provider that buffers it whole fails.
pub const LARGE_MEMORY_BOUND: u64 = 64 << 20;

/// A 100 MB object streams through put and get in bounded memory, byte-exact.
pub async fn object_large_suite(store: &dyn ObjectStore) {
    const LEN: u64 = 100_000_000;
    let seed = 0x7e55_e7a5_eed5_u64;
    let k = ObjectKey::parse(format!("suite-{}/large.bin", super::suffix())).unwrap();
    let md5 = generated_md5(LEN, seed).await;

    let before = rss();
    let peak = RssPeak::start();
    let started = Instant::now();
    let meta = store
        .put(&k, generated(LEN, seed), PutRequest::new(LEN).md5(md5))
        .await
        .unwrap();
    assert_eq!(meta.size, LEN);
    let put_time = started.elapsed();

    let started = Instant::now();
    let got = store.get(&k, None).await.unwrap();
    assert_eq!(got.range, 0..LEN);
    let mut hasher = Md5::new();
    let mut expected = generated(LEN, seed);
    let mut pending = Bytes::new();
    let mut body = got.body;
    let mut total = 0u64;
    // Compare byte-exact against the regenerated stream, whatever the chunking.
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.unwrap();
        total += chunk.len() as u64;
        hasher.update(&chunk);
        while !chunk.is_empty() {
            if pending.is_empty() {
                pending = expected
                    .next()
                    .await
                    .expect("the download is longer")
                    .unwrap();
            }
            let n = chunk.len().min(pending.len());
            assert!(
                chunk[..n] == pending[..n],
                "the download differs near byte {total}"
            );
            chunk = chunk.slice(n..);
            pending = pending.slice(n..);
        }
    }
    assert_eq!(total, LEN, "the download has every byte");
    assert_eq!(ContentMd5(hasher.finalize().into()), md5);
    let get_time = started.elapsed();
    let peak = peak.finish();
    store.delete(&k).await.unwrap();

    if let Some(before) = before {
        let growth = peak.saturating_sub(before);
        assert!(
            growth < LARGE_MEMORY_BOUND,
            "a 100 MB put and get grew resident memory by {} MiB (bound {} MiB)",
            growth >> 20,
            LARGE_MEMORY_BOUND >> 20
        );
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "object_large_suite: put {put_time:?}, get {get_time:?} (not a benchmark)"
    );
}

/// Sends a presigned request with an independent S3 client and returns status and body.
pub type SendPresigned<'a> = &'a (dyn Fn(&PresignedRequest, &[u8]) -> (u16, Vec<u8>) + Sync);

/// Presigned URLs used by an independent client (`send`, e.g. botocore): an upload as bound
/// is stored, a download returns it, a missing object is 404, and an upload whose body does
/// not match the bound MD5 is refused when the server checks it.
pub async fn presign_interop_suite(
    store: &dyn ObjectStore,
    options: ObjectSuiteOptions,
    send: SendPresigned<'_>,
) {
    let prefix = format!("interop-{}", super::suffix());
    let k = key(&prefix, "via-presigned.bin");
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let put = PresignPut {
        md5: md5_of(&data),
        content_type: "application/x-interop".to_owned(),
        length: data.len() as u64,
        expires_in: Duration::from_secs(120),
    };
    let request = store.presign_put(&k, &put).await.unwrap();

    if options.checks_body_md5 {
        let mut wrong = data.clone();
        wrong[0] ^= 1;
        let (status, _) = send(&request, &wrong);
        assert!(
            (400..500).contains(&status),
            "a body that does not match the bound MD5 is refused, got {status}"
        );
        if !options.discards_refused_body {
            store.delete(&k).await.unwrap();
        }
    }
    let (status, body) = send(&request, &data);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get_bytes(store, &k).await, data);

    let get = store
        .presign_get(&k, Duration::from_secs(120))
        .await
        .unwrap();
    let (status, body) = send(&get, &[]);
    assert_eq!(status, 200);
    assert!(body == data, "the presigned download returns the object");
    let missing = store
        .presign_get(&key(&prefix, "missing"), Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(send(&missing, &[]).0, 404);
    store.delete(&k).await.unwrap();
}
