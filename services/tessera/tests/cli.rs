//! The `tessera` binary end to end: keys, tokens, events, config, help and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn tessera(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(dir)
        .env_remove("TESSERA_CONFIG_YAML")
        .env("TESSERA_EMBEDDED_DB_PATH", dir.join("store/t.sqlite"))
        .output()
        .expect("tessera runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tessera failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn example_config_is_fresh() {
    let generated = tessera::config::example().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../example-config.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "example-config.yaml is stale: run `cargo run -p tessera -- config example > example-config.yaml`"
    );
}

#[test]
fn keys_generate_prints_four_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out: Value =
        serde_json::from_str(&stdout(&tessera(dir.path(), &["keys", "generate"]))).unwrap();
    let private: Value =
        serde_json::from_str(out["signing_private_jwk"].as_str().unwrap()).unwrap();
    assert_eq!(private["crv"], "P-256");
    assert!(private["d"].is_string() && private["x"].is_string() && private["y"].is_string());
    let public: Value = serde_json::from_str(out["signing_public_jwk"].as_str().unwrap()).unwrap();
    assert!(public.get("d").is_none());
    assert!(
        out["crypt4gh_public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CRYPT4GH PUBLIC KEY-----")
    );
    assert!(
        out["crypt4gh_private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CRYPT4GH PRIVATE KEY-----")
    );
}

#[test]
fn events_publish_then_tail_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let published: Value = serde_json::from_str(&stdout(&tessera(
        dir.path(),
        &[
            "events",
            "publish",
            "--topic",
            "metadata-datasets",
            "--type",
            "dataset_created",
            "--key",
            "GHGAD1",
            "--payload",
            r#"{"accession":"GHGAD1"}"#,
            "--header",
            "x=y",
        ],
    )))
    .unwrap();
    let event_id = published["event_id"].as_str().unwrap().to_owned();
    let tail = stdout(&tessera(
        dir.path(),
        &["events", "tail", "--topic", "metadata-datasets"],
    ));
    let lines: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "dataset_created");
    assert_eq!(lines[0]["key"], "GHGAD1");
    assert_eq!(lines[0]["payload"]["accession"], "GHGAD1");
    assert_eq!(lines[0]["headers"]["event_id"], event_id);
    assert_eq!(lines[0]["headers"]["x"], "y");
    // Other topics are filtered out; `--from` past the end prints nothing.
    assert!(
        stdout(&tessera(
            dir.path(),
            &["events", "tail", "--topic", "other"]
        ))
        .is_empty()
    );
    assert!(stdout(&tessera(dir.path(), &["events", "tail", "--from", "2"])).is_empty());
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(
        dir.path(),
        &[
            "events",
            "publish",
            "--topic",
            "bad topic",
            "--type",
            "t",
            "--key",
            "k",
            "--payload",
            "{}",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid topic"));
    let out = tessera(
        dir.path(),
        &[
            "events",
            "publish",
            "--topic",
            "t",
            "--type",
            "t",
            "--key",
            "k",
            "--payload",
            "{oops",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
}

#[test]
fn a_bad_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".tessera.yaml"),
        "embeded_db_path: x.sqlite\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["events", "tail"])
        .current_dir(dir.path())
        .env_remove("TESSERA_CONFIG_YAML")
        .env_remove("TESSERA_EMBEDDED_DB_PATH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("embeded_db_path"), "{err}");
}

#[test]
fn minted_tokens_verify_with_the_dev_auth_key() {
    let dir = tempfile::tempdir().unwrap();
    let token = stdout(&tessera(
        dir.path(),
        &[
            "token",
            "mint",
            "--id",
            "0b6d1e5c-6f4e-4d5f-9a8b-2c3d4e5f6a7b",
            "--name",
            "Jane Doe",
            "--email",
            "jane@example.org",
            "--title",
            "Dr.",
        ],
    ));
    let keys: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("store/dev-keys.json")).unwrap(),
    )
    .unwrap();
    let provider = tessera_auth::AuthProvider::from_jwk_json(
        keys["auth_public_jwk"].as_str().unwrap(),
        &["ES256".to_owned()],
        tessera_auth::ClaimRules::default(),
    )
    .unwrap();
    let context = provider.authenticate(token.trim()).unwrap();
    assert_eq!(context.name, "Jane Doe");
    assert_eq!(context.title.as_deref(), Some("Dr."));
    let out = tessera(
        dir.path(),
        &[
            "token",
            "mint",
            "--id",
            "x",
            "--name",
            "n",
            "--email",
            "e@x.org",
            "--valid-minutes",
            "0",
        ],
    );
    assert!(!out.status.success());
}

#[test]
fn help_explains_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let help = stdout(&tessera(dir.path(), &["--help"]));
    for word in [
        "keys",
        "events",
        "dev",
        "config",
        "token",
        "TESSERA_CONFIG_YAML",
    ] {
        assert!(help.contains(word), "--help mentions {word}");
    }
}
