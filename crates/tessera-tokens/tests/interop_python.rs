//! Fernet interop with Python's `cryptography.fernet` (what the original WTS stores with),
//! driven through `scripts/interop/fernet_interop.py`: tokens made by Python decrypt here, and
//! ours decrypt in Python, with a key made on either side.
//!
//! The interpreter is `$TESSERA_PYTHON` (default `python3`) with `cryptography` installed
//! (`scripts/interop/requirements.txt`). Without it each test prints `SKIPPED: …` and passes,
//! unless `TESSERA_REQUIRE_INTEROP=1`, in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tessera_tokens::{Cipher, CipherError, Fernet};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop/fernet_interop.py")
}

fn interpreter() -> String {
    std::env::var("TESSERA_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn required() -> bool {
    std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|value| value == "1")
}

/// Runs the oracle's `check`; `false` (after printing why) when the test should skip.
fn oracle_available(test: &str) -> bool {
    let python = interpreter();
    let reason = match Command::new(&python).arg(script()).arg("check").output() {
        Err(err) => format!("cannot run {python}: {err}"),
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{python} lacks the cryptography package (pip install -r scripts/interop/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    };
    assert!(
        !required(),
        "TESSERA_REQUIRE_INTEROP=1 but the python oracle is unavailable: {reason}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
    false
}

fn run(command: &str, request: Option<&Value>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(interpreter());
    cmd.arg(script()).arg(command);
    if let Some(request) = request {
        let path = dir.path().join("request.json");
        std::fs::write(&path, serde_json::to_vec(request).unwrap()).unwrap();
        cmd.arg(path);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "oracle {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Refresh-token-like messages: a JWT, an opaque token, empty, block-sized, non-ASCII.
fn messages() -> Vec<String> {
    vec![
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjoxfQ.c2ln".to_owned(),
        "YQNuPzYGAjNAOlm2RXoYbqXXUsYeFkWGlZ4k3sa9IPT".to_owned(),
        String::new(),
        "0123456789abcdef".to_owned(),
        "ünïcødé ✓".to_owned(),
        "x".repeat(3000),
    ]
}

#[test]
fn python_tokens_decrypt_here() {
    if !oracle_available("python_tokens_decrypt_here") {
        return;
    }
    let key = run("generate", None)["key"].as_str().unwrap().to_owned();
    let out = run(
        "encrypt",
        Some(&json!({"key": key, "messages": messages()})),
    );
    let fernet = Fernet::new(&key).unwrap();
    let decrypted: Vec<String> = strings(&out["tokens"])
        .iter()
        .map(|t| fernet.decrypt(t).unwrap())
        .collect();
    assert_eq!(decrypted, messages());
    // A key of our own must not open Python's tokens.
    let other = Fernet::new(&Fernet::generate_key()).unwrap();
    assert_eq!(
        other.decrypt(&strings(&out["tokens"])[0]),
        Err(CipherError::InvalidToken)
    );
}

#[test]
fn our_tokens_decrypt_in_python() {
    if !oracle_available("our_tokens_decrypt_in_python") {
        return;
    }
    let key = Fernet::generate_key();
    let fernet = Fernet::new(&key).unwrap();
    let tokens: Vec<String> = messages()
        .iter()
        .map(|m| fernet.encrypt(m).unwrap())
        .collect();
    let out = run("decrypt", Some(&json!({"key": key, "tokens": tokens})));
    assert_eq!(strings(&out["messages"]), messages());
}
