//! `tessera objects` on the local store, driven as an operator would, and a process killed
//! in the middle of an upload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::{Error, ObjectKey, ObjectStore};

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("TESSERA_CONFIG_YAML")
        .env_remove("TESSERA_S3_BUCKET")
        .env("TESSERA_OBJECTS_ROOT", dir.join("objects"));
    cmd
}

fn tessera(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tessera failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn store(dir: &Path) -> LocalObjectStore {
    LocalObjectStore::open(&LocalObjectsConfig {
        objects_root: dir.join("objects"),
        ..LocalObjectsConfig::default()
    })
    .unwrap()
}

#[test]
fn put_get_ls_rm_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&file, &data).unwrap();

    let put: Value = serde_json::from_str(&ok(&tessera(
        dir.path(),
        &["objects", "put", "runs/1/in.bin", file.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(put["key"], "runs/1/in.bin");
    assert_eq!(put["size"], 300_000);

    let out = dir.path().join("out.bin");
    ok(&tessera(
        dir.path(),
        &["objects", "get", "runs/1/in.bin", out.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let part = tessera(
        dir.path(),
        &["objects", "get", "runs/1/in.bin", "--range", "10..20"],
    );
    assert_eq!(part.stdout, &data[10..20]);

    let listed = ok(&tessera(dir.path(), &["objects", "ls", "runs/"]));
    let lines: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["key"], "runs/1/in.bin");
    assert_eq!(lines[0]["size"], 300_000);

    let presign: Value = serde_json::from_str(&ok(&tessera(
        dir.path(),
        &[
            "objects",
            "presign",
            "put",
            "runs/2",
            "--file",
            file.to_str().unwrap(),
            "--expires",
            "60",
        ],
    )))
    .unwrap();
    assert_eq!(presign["method"], "PUT");
    assert_eq!(presign["headers"]["Content-Length"], "300000");
    assert!(
        presign["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:8080/objects/runs/2?")
    );

    ok(&tessera(dir.path(), &["objects", "rm", "runs/1/in.bin"]));
    assert_eq!(ok(&tessera(dir.path(), &["objects", "ls"])), "");
}

#[test]
fn errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["objects", "get", "missing"],
            "no object with key \"missing\"",
        ),
        (
            &["objects", "rm", "missing"],
            "no object with key \"missing\"",
        ),
        (&["objects", "get", "../etc/passwd"], "invalid object key"),
        (&["objects", "put", "k", "-"], "--length is required"),
        (&["objects", "put", "k", "no-such-file"], "no-such-file"),
        (
            &["objects", "get", "k", "--range", "5..2"],
            "range 5..2 is empty",
        ),
        (&["objects", "get", "k", "--range", "x"], "--range \"x\""),
        (&["objects", "presign", "put", "k"], "needs --file"),
        (
            &["objects", "presign", "get", "k", "--expires", "0"],
            "expire",
        ),
    ];
    for (args, expected) in cases {
        let out = tessera(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(expected),
            "{args:?}: {err} should mention {expected}"
        );
    }
    // A body shorter than declared is refused and stores nothing.
    let mut child = command(
        dir.path(),
        &["objects", "put", "short", "-", "--length", "10"],
    )
    .stdin(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child.stdin.take().unwrap().write_all(b"12345").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the declared 10"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = store(dir.path());
    assert!(matches!(
        rt.block_on(s.head(&ObjectKey::parse("short").unwrap())),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.pending_uploads().unwrap(), 0);
}

/// `tessera objects put KEY - --length LEN`, reading its standard input from a pipe.
fn put_from_stdin(dir: &Path, key: &ObjectKey, len: usize) -> std::process::Child {
    command(
        dir,
        &[
            "objects",
            "put",
            key.as_str(),
            "-",
            "--length",
            &len.to_string(),
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// SIGKILL during `tessera objects put` from a slow standard input: afterwards no object
/// (neither by head, get nor list) is visible; only a temp file is left, which the store's
/// purge removes. The same upload completed makes the object visible, so the check can fail.
#[test]
fn a_killed_upload_leaves_no_visible_object() {
    let dir = tempfile::tempdir().unwrap();
    const LEN: usize = 4 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
    let key = ObjectKey::parse("uploads/killed.bin").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut child = put_from_stdin(dir.path(), &key, LEN);
    let mut stdin = child.stdin.take().unwrap();
    // Half the object, then wait until the upload is in progress (its temp file exists).
    stdin.write_all(&data[..LEN / 2]).unwrap();
    stdin.flush().unwrap();
    let s = store(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.pending_uploads().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    drop(stdin);

    assert!(matches!(
        rt.block_on(s.head(&key)),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rt.block_on(s.get(&key, None)),
        Err(Error::NotFound { .. })
    ));
    assert!(
        rt.block_on(s.list("")).unwrap().is_empty(),
        "nothing listed"
    );
    assert_eq!(
        s.pending_uploads().unwrap(),
        1,
        "the killed upload's temp file"
    );
    assert_eq!(s.purge_stale_uploads(Duration::ZERO).unwrap(), 1);
    assert_eq!(s.pending_uploads().unwrap(), 0);

    // Control: the same upload, not killed, is visible.
    let mut child = put_from_stdin(dir.path(), &key, LEN);
    child.stdin.take().unwrap().write_all(&data).unwrap();
    ok(&child.wait_with_output().unwrap());
    assert_eq!(rt.block_on(s.head(&key)).unwrap().size, LEN as u64);
}

/// The same commands on S3 (s3s-fs) when `s3_bucket` is configured, through `TESSERA_S3_*`.
#[test]
fn the_commands_work_on_s3_when_a_bucket_is_configured() {
    use tessera_test_support::infra;
    let Some(url) = infra::server(infra::S3S_URL) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s3 = |args: &[&str]| {
        command(dir.path(), args)
            .env("TESSERA_S3_ENDPOINT_URL", &url)
            .env(
                "TESSERA_S3_BUCKET",
                std::env::var(infra::S3_BUCKET).unwrap(),
            )
            .env(
                "TESSERA_S3_ACCESS_KEY_ID",
                std::env::var(infra::S3S_ACCESS_KEY).unwrap(),
            )
            .env(
                "TESSERA_S3_SECRET_ACCESS_KEY",
                std::env::var(infra::S3S_SECRET_KEY).unwrap(),
            )
            .output()
            .unwrap()
    };
    let prefix = format!("cli-{}", std::process::id());
    let key = format!("{prefix}/x.txt");
    let file = dir.path().join("x.txt");
    std::fs::write(&file, b"via the configured bucket").unwrap();
    ok(&s3(&[
        "objects",
        "put",
        &key,
        file.to_str().unwrap(),
        "--content-type",
        "text/plain",
    ]));
    assert_eq!(
        ok(&s3(&["objects", "get", &key])),
        "via the configured bucket"
    );
    let listed = ok(&s3(&["objects", "ls", &prefix]));
    assert!(listed.contains(&format!("\"key\":\"{key}\"")), "{listed}");
    let presign: Value =
        serde_json::from_str(&ok(&s3(&["objects", "presign", "get", &key]))).unwrap();
    assert!(
        presign["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
    ok(&s3(&["objects", "rm", &key]));
    assert_eq!(ok(&s3(&["objects", "ls", &prefix])), "");
    assert!(
        !dir.path().join("objects").exists(),
        "the local store was not used"
    );
    let out = s3(&["objects", "get", &key]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no object with key"));
}
