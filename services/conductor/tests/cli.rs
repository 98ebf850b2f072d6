//! The `conductor` binary: `permissions grant|revoke|list` on the configured store, and
//! refusing to serve without a key, naming the variable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn conductor(dir: &std::path::Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conductor"));
    command
        .args(args)
        .env_clear()
        .env("HOME", dir)
        .current_dir(dir)
        .env("OS_BASE_URL", "http://127.0.0.1:9")
        .env("OS_EMBEDDED_DB_PATH", dir.join("db.sqlite"))
        .env("OS_OBJECTS_ROOT", dir.join("objects"));
    if let Some(key) = key {
        command.env("OS_PRIVATE_KEY_FILE", key);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim()).unwrap()
}

#[test]
fn permissions_are_granted_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let pem = stdout(&conductor(dir.path(), None, &["generate-key"]));
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    std::fs::write(&key, pem).unwrap();
    let key = key.to_str().unwrap();

    let listed = stdout(&conductor(dir.path(), Some(key), &["permissions", "list"]));
    assert_eq!(
        json(&listed),
        serde_json::json!({"permissions": {"datapackage-upload": true}, "service": "os.datastore", "userid": "*"})
    );
    let granted = stdout(&conductor(
        dir.path(),
        Some(key),
        &[
            "permissions",
            "grant",
            "u1",
            "os.admin",
            "edit",
            "roles=[\"a\"]",
        ],
    ));
    assert_eq!(
        json(&granted),
        serde_json::json!({"permissions": {"edit": true, "roles": ["a"]}, "service": "os.admin", "userid": "u1"})
    );
    let only = stdout(&conductor(
        dir.path(),
        Some(key),
        &["permissions", "list", "--userid", "u1"],
    ));
    assert_eq!(only.lines().count(), 1);
    let revoked = stdout(&conductor(
        dir.path(),
        Some(key),
        &["permissions", "revoke", "u1", "os.admin", "edit"],
    ));
    assert_eq!(
        json(&revoked)["permissions"],
        serde_json::json!({"roles": ["a"]})
    );
    let deleted = stdout(&conductor(
        dir.path(),
        Some(key),
        &["permissions", "revoke", "u1", "os.admin"],
    ));
    assert!(deleted.contains("deleted"), "{deleted}");
    let missing = conductor(
        dir.path(),
        Some(key),
        &["permissions", "revoke", "u1", "os.admin"],
    );
    assert!(!missing.status.success());
    let bad = conductor(
        dir.path(),
        Some(key),
        &["permissions", "grant", "a b", "s", "x"],
    );
    assert!(!bad.status.success());
}

#[test]
fn serve_refuses_to_start_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = conductor(dir.path(), None, &["serve"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OS_PRIVATE_KEY"), "{stderr}");
}

#[test]
fn packages_remove_and_reindex_work_on_the_configured_store() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        stdout(&conductor(dir.path(), None, &["generate-key"])),
    )
    .unwrap();
    let key = key.to_str().unwrap();
    let reindexed = stdout(&conductor(dir.path(), Some(key), &["reindex"]));
    assert_eq!(reindexed.trim(), "0 package(s) indexed.");
    let out = conductor(dir.path(), Some(key), &["packages", "remove", "u1:nothing"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Package \"u1:nothing\" not found in index."
    );
    let out = conductor(dir.path(), Some(key), &["packages", "remove"]);
    assert_eq!(out.status.code(), Some(2), "ids are required");
}
