//! The binary: `--config FILE` (JSON), validation errors naming the key with exit code 2,
//! `api-client create` printing a 40-hex token, `--help` describing the config.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

fn uws(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_uws"))
        .args(args)
        .env_remove("UWS_CONFIG_YAML")
        .output()
        .unwrap()
}

#[test]
fn the_config_file_is_validated_and_api_clients_get_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let good = dir.path().join("uws.json");
    std::fs::write(&good, serde_json::to_vec(&config).unwrap()).unwrap();
    let path = good.to_str().unwrap();

    let out = uws(&[
        "--config",
        path,
        "api-client",
        "create",
        "--username",
        "portal",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 40);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let again = uws(&[
        "api-client",
        "create",
        "--username",
        "portal",
        "--config",
        path,
    ]);
    assert_ne!(
        String::from_utf8(again.stdout).unwrap().trim(),
        token,
        "renewed"
    );

    let mut bad = serde_json::to_value(&config).unwrap();
    bad["main_storage"] = "nowhere".into();
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = uws(&["--config", bad_file.to_str().unwrap(), "config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"main_storage\""), "{stderr}");

    let mut bad = serde_json::to_value(&config).unwrap();
    bad["parameters"][0]["validation"]["type"] = "list".into();
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = uws(&["--config", bad_file.to_str().unwrap(), "config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("parameters[0].validation.type"));

    let out = uws(&[
        "--config",
        dir.path().join("missing.json").to_str().unwrap(),
        "config",
        "check",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let help = String::from_utf8(uws(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("config.json") && help.contains("--config"),
        "{help}"
    );
}
