//! Fernet interop with Python's `cryptography.fernet` (what the original WTS stores with),
//! driven through `scripts/interop/fernet_interop.py`: tokens made by Python decrypt here, and
//! ours decrypt in Python, with a key made on either side.
//!
//! The interpreter is `$TESSERA_PYTHON` (default `python3`) with `cryptography` installed
//! (`scripts/interop/requirements.txt`). Without it each test prints `SKIPPED: …` and passes,
//! unless `TESSERA_REQUIRE_INTEROP=1`, in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tessera_test_support::interop::Oracle;
use tessera_tokens::{Cipher, CipherError, Fernet};

fn oracle() -> Oracle {
    Oracle::new("fernet_interop.py")
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
    if !oracle().available("python_tokens_decrypt_here") {
        return;
    }
    let key = oracle().run(&["generate"])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = oracle().run_with_request("encrypt", &json!({"key": key, "messages": messages()}));
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
    if !oracle().available("our_tokens_decrypt_in_python") {
        return;
    }
    let key = Fernet::generate_key();
    let fernet = Fernet::new(&key).unwrap();
    let tokens: Vec<String> = messages()
        .iter()
        .map(|m| fernet.encrypt(m).unwrap())
        .collect();
    let out = oracle().run_with_request("decrypt", &json!({"key": key, "tokens": tokens}));
    assert_eq!(strings(&out["messages"]), messages());
}
