//! Interop with jwcrypto, the JOSE library of the original services, through
//! `scripts/interop/jwt_interop.py`.
//!
//! The interpreter is `$TESSERA_PYTHON` (default `python3`), with the packages of
//! `scripts/interop/requirements.txt`. Without them each test prints `SKIPPED: …` and passes,
//! unless `TESSERA_REQUIRE_INTEROP=1`, in which case it fails.

// Helpers outside #[test] functions panic on purpose too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tessera_auth::{
    AuthContext, AuthProvider, ClaimRules, JwtSigner, JwtVerifier, generate_es256_jwk_pair,
};
use tessera_test_support::interop::Oracle;

fn oracle() -> Oracle {
    Oracle::new("jwt_interop.py")
}

#[test]
fn jwcrypto_verifies_our_tokens_and_loads_our_keys() {
    if !oracle().available("jwcrypto_verifies_our_tokens_and_loads_our_keys") {
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

    let request = json!({"public_jwk": public_jwk, "private_jwk": private_jwk, "token": token});
    let verified = oracle().run_with_request("verify", &request);
    assert_eq!(verified["header"], json!({"alg": "ES256"}));
    assert_eq!(verified["claims"], claims);
    assert_eq!(verified["public_has_private"], json!(false));
    assert_eq!(verified["private_has_private"], json!(true));
    assert_eq!(verified["same_public"], json!(true));
}

#[test]
fn we_verify_jwcrypto_tokens() {
    if !oracle().available("we_verify_jwcrypto_tokens") {
        return;
    }
    let signed = oracle().run(&["sign"]);
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
