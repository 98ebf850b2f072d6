//! Interop with jwcrypto, the JOSE library of the original services, through
//! `scripts/interop/jwt_interop.py`.
//!
//! The interpreter is `$TESSERA_PYTHON` (default `python3`), with the packages of
//! `scripts/interop/requirements.txt`. Without them each test prints `SKIPPED: …` and passes,
//! unless `TESSERA_REQUIRE_INTEROP=1`, in which case it fails.

// Helpers outside #[test] functions panic on purpose too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tessera_auth::{
    AuthContext, AuthProvider, ClaimRules, JwtSigner, JwtVerifier, generate_es256_jwk_pair,
};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop/jwt_interop.py")
}

fn interpreter() -> String {
    std::env::var("TESSERA_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs the oracle's `check`; `false` (after printing why) when the test should skip.
fn oracle_available(test: &str) -> bool {
    let python = interpreter();
    let reason = match Command::new(&python).arg(script()).arg("check").output() {
        Err(err) => format!("cannot run {python}: {err}"),
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{python} lacks the interop packages (pip install -r scripts/interop/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    };
    assert!(
        std::env::var("TESSERA_REQUIRE_INTEROP").as_deref() != Ok("1"),
        "TESSERA_REQUIRE_INTEROP=1 but the python oracle is unavailable: {reason}"
    );
    // Straight to the stream rather than `println!`, which the test harness captures.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
    false
}

fn run(args: &[&str]) -> Value {
    let out = Command::new(interpreter())
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn jwcrypto_verifies_our_tokens_and_loads_our_keys() {
    if !oracle_available("jwcrypto_verifies_our_tokens_and_loads_our_keys") {
        return;
    }
    let (private_jwk, public_jwk) = generate_es256_jwk_pair().unwrap();
    let signer = JwtSigner::from_jwk_json(&private_jwk).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"work_type": "download", "file_id": "f", "iat": now, "exp": now + 30});
    let token = signer.sign(claims.as_object().unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.json");
    let body = json!({"public_jwk": public_jwk, "private_jwk": private_jwk, "token": token});
    std::fs::write(&request, body.to_string()).unwrap();
    let verified = run(&["verify", request.to_str().unwrap()]);
    assert_eq!(verified["header"], json!({"alg": "ES256"}));
    assert_eq!(verified["claims"], claims);
    assert_eq!(verified["public_has_private"], json!(false));
    assert_eq!(verified["private_has_private"], json!(true));
    assert_eq!(verified["same_public"], json!(true));
}

#[test]
fn we_verify_jwcrypto_tokens() {
    if !oracle_available("we_verify_jwcrypto_tokens") {
        return;
    }
    let signed = run(&["sign"]);
    let public_jwk = signed["public_jwk"].as_str().unwrap();
    let token = signed["token"].as_str().unwrap();
    let provider =
        AuthProvider::from_jwk_json(public_jwk, &["ES256".to_owned()], ClaimRules::default())
            .unwrap();
    let context = provider.authenticate(token).unwrap();
    assert_eq!(
        context,
        AuthContext::from_claims(signed["claims"].as_object().unwrap()).unwrap()
    );
    assert_eq!(context.roles, ["admin"]);

    // The same token must fail against another key.
    let (_, other) = generate_es256_jwk_pair().unwrap();
    let verifier = JwtVerifier::from_jwk_json(&other, &["ES256".to_owned()]).unwrap();
    assert!(verifier.verify(token).is_err());
}
