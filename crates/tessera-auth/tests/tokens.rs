//! Token verification, claim checks and signing through the public API, with tokens minted
//! directly by josekit (including hostile ones).

// Helpers outside #[test] functions panic on purpose too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{self, JwsHeader, JwsSigner};
use serde_json::{Map, Value, json};
use tessera_auth::{
    AuthContext, AuthProvider, ClaimRules, Error, JwtSigner, JwtVerifier, generate_es256_jwk_pair,
};

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn user_claims() -> Map<String, Value> {
    let now = now();
    object(json!({
        "id": "6f1c2d3e-0000-4000-8000-000000000001", "name": "Jane Doe",
        "email": "jane@example.org", "title": "Prof.", "roles": [],
        "iat": now, "exp": now + 3600,
    }))
}

fn es256() -> Vec<String> {
    vec!["ES256".to_owned()]
}

struct Keys {
    signer: JwtSigner,
    private_jwk: String,
    public_jwk: String,
}

fn keys() -> Keys {
    let (private_jwk, public_jwk) = generate_es256_jwk_pair().unwrap();
    Keys {
        signer: JwtSigner::from_jwk_json(&private_jwk).unwrap(),
        private_jwk,
        public_jwk,
    }
}

fn mint(signer: &dyn JwsSigner, header: &JwsHeader, claims: &Map<String, Value>) -> String {
    jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), header, signer).unwrap()
}

fn unsigned(header: Value, claims: &Map<String, Value>) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(&serde_json::to_vec(claims).unwrap())
    )
}

/// A josekit signer for the same key, to mint tokens with headers our signer never writes.
fn josekit_signer(keys: &Keys) -> josekit::jws::alg::ecdsa::EcdsaJwsSigner {
    jws::ES256
        .signer_from_jwk(&Jwk::from_bytes(keys.private_jwk.as_bytes()).unwrap())
        .unwrap()
}

fn provider(keys: &Keys) -> AuthProvider {
    AuthProvider::from_jwk_json(&keys.public_jwk, &es256(), ClaimRules::default()).unwrap()
}

// ---- keys and signing ----

#[test]
fn generated_keys_sign_and_verify() {
    let keys = keys();
    let token = keys.signer.sign(&user_claims()).unwrap();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), user_claims());
    assert_eq!(verifier.algorithms().collect::<Vec<_>>(), ["ES256"]);
    // The signer's own public JWK verifies too.
    let verifier = JwtVerifier::from_jwk_json(keys.signer.public_jwk_json(), &es256()).unwrap();
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn generated_jwks_have_the_expected_members() {
    let keys = keys();
    let private: Value = serde_json::from_str(&keys.private_jwk).unwrap();
    let public: Value = serde_json::from_str(&keys.public_jwk).unwrap();
    for member in ["kty", "crv", "x", "y", "d"] {
        assert!(private[member].is_string(), "private {member}");
    }
    for member in ["x", "y"] {
        assert_eq!(private[member], public[member]);
    }
    assert_eq!(public["kty"], "EC");
    assert_eq!(public["crv"], "P-256");
    assert!(public.get("d").is_none());
    let derived: Value = serde_json::from_str(keys.signer.public_jwk_json()).unwrap();
    assert_eq!(derived, public);
    assert_ne!(keys.private_jwk, generate_es256_jwk_pair().unwrap().0);
}

#[test]
fn signed_header_is_exactly_alg_es256_even_with_a_kid() {
    let keys = keys();
    let mut jwk: Map<String, Value> = serde_json::from_str(&keys.private_jwk).unwrap();
    jwk.insert("kid".to_owned(), json!("key-1"));
    let signer = JwtSigner::from_jwk_json(&Value::Object(jwk).to_string()).unwrap();
    for signer in [&keys.signer, &signer] {
        let token = signer.sign(&user_claims()).unwrap();
        let header = token.split('.').next().unwrap();
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        assert_eq!(decoded, br#"{"alg":"ES256"}"#);
    }
}

#[test]
fn signer_without_private_part_fails_with_the_original_message() {
    let keys = keys();
    let err = JwtSigner::from_jwk_json(&keys.public_jwk).unwrap_err();
    assert_eq!(err, Error::NoPrivateKey);
    assert_eq!(err.to_string(), "No private work order signing key found.");
}

#[test]
fn signer_rejects_garbage_and_other_curves() {
    assert!(matches!(
        JwtSigner::from_jwk_json("not json"),
        Err(Error::InvalidJwk(_))
    ));
    let p384 = jws::ES384.generate_key_pair().unwrap();
    assert!(matches!(
        JwtSigner::from_jwk_json(&p384.to_jwk_key_pair().to_string()),
        Err(Error::InvalidJwk(_))
    ));
}

#[test]
fn signer_accepts_a_private_jwk_without_x_and_y() {
    let pair = jws::ES256.generate_key_pair().unwrap();
    let bare = pair.to_jwk_private_key();
    assert!(bare.parameter("x").is_none());
    let signer = JwtSigner::from_jwk_json(&bare.to_string()).unwrap();
    let public = pair.to_jwk_public_key().to_string();
    let verifier = JwtVerifier::from_jwk_json(&public, &es256()).unwrap();
    assert!(
        verifier
            .verify(&signer.sign(&user_claims()).unwrap())
            .is_ok()
    );
    let derived: Value = serde_json::from_str(signer.public_jwk_json()).unwrap();
    assert_eq!(derived, serde_json::from_str::<Value>(&public).unwrap());
}

// ---- verifier construction ----

#[test]
fn private_jwk_given_to_the_verifier_is_rejected() {
    let keys = keys();
    let err = JwtVerifier::from_jwk_json(&keys.private_jwk, &es256()).unwrap_err();
    assert_eq!(err, Error::PrivateKeyGiven);
    let oct = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
    assert_eq!(
        JwtVerifier::from_jwk_json(oct, &["HS256".to_owned()]).unwrap_err(),
        Error::PrivateKeyGiven
    );
}

#[test]
fn verifier_construction_errors() {
    let keys = keys();
    assert!(matches!(
        JwtVerifier::from_jwk_json("{", &es256()),
        Err(Error::InvalidJwk(_))
    ));
    for bad in ["none", "HS256", "es256", ""] {
        assert_eq!(
            JwtVerifier::from_jwk_json(&keys.public_jwk, &[bad.to_owned()]).unwrap_err(),
            Error::UnsupportedAlgorithm(bad.to_owned())
        );
    }
    assert!(matches!(
        JwtVerifier::from_jwk_json(&keys.public_jwk, &["RS256".to_owned()]),
        Err(Error::NoUsableAlgorithm(_))
    ));
    assert!(matches!(
        JwtVerifier::from_jwk_json(&keys.public_jwk, &[]),
        Err(Error::NoUsableAlgorithm(_))
    ));
    let broken = keys.public_jwk.replace("\"x\":\"", "\"x\":\"!!");
    assert!(matches!(
        JwtVerifier::from_jwk_json(&broken, &es256()),
        Err(Error::InvalidJwk(_))
    ));
}

// ---- hostile tokens ----

#[test]
fn alg_none_is_rejected() {
    let keys = keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    for alg in ["none", "None", "NONE"] {
        let token = unsigned(json!({"alg": alg}), &user_claims());
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            Error::AlgorithmNotAllowed(alg.to_owned())
        );
    }
    // An ES256 header with the signature stripped fails the signature check.
    let token = unsigned(json!({"alg": "ES256"}), &user_claims());
    assert!(matches!(
        verifier.verify(&token),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn hs256_signed_with_the_public_key_is_rejected() {
    let keys = keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    let jwk = Jwk::from_bytes(keys.public_jwk.as_bytes()).unwrap();
    let coordinate = |name: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk.parameter(name).unwrap().as_str().unwrap())
            .unwrap()
    };
    let raw_xy = [coordinate("x"), coordinate("y")].concat();
    let mut uncompressed = vec![4u8];
    uncompressed.extend(&raw_xy);
    for secret in [keys.public_jwk.as_bytes(), &raw_xy, &uncompressed] {
        let signer = jws::HS256.signer_from_bytes(secret).unwrap();
        let token = mint(&signer, &JwsHeader::new(), &user_claims());
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            Error::AlgorithmNotAllowed("HS256".to_owned())
        );
    }
}

#[test]
fn a_token_signed_by_another_key_is_rejected() {
    let keys = keys();
    let other = self::keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    let token = other.signer.sign(&user_claims()).unwrap();
    assert!(matches!(
        verifier.verify(&token),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn a_tampered_payload_is_rejected() {
    let keys = keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    let token = keys.signer.sign(&user_claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = user_claims();
    claims.insert("roles".to_owned(), json!(["admin"]));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert!(matches!(
        verifier.verify(&forged),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn non_jws_tokens_are_rejected() {
    let keys = keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    let jwe_header = b64url(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let jwe = format!("{jwe_header}.AAAA.BBBB.CCCC.DDDD");
    let not_json_header = format!("{}.{}.AAAA", b64url(b"nope"), b64url(b"{}"));
    for token in [
        "",
        "random text",
        "a.b",
        "a.b.c.d",
        &jwe,
        &not_json_header,
        "!!!.???.***",
        "eyJhbGciOiJFUzI1NiJ9..",
    ] {
        let err = verifier.verify(token).unwrap_err();
        assert!(
            matches!(err, Error::MalformedToken(_) | Error::InvalidSignature(_)),
            "{token:?}: {err:?}"
        );
    }
    assert!(matches!(
        verifier.verify(&jwe),
        Err(Error::MalformedToken(_))
    ));
}

#[test]
fn a_signed_non_object_payload_is_rejected() {
    let keys = keys();
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &es256()).unwrap();
    let token =
        jws::serialize_compact(b"[1,2]", &JwsHeader::new(), &josekit_signer(&keys)).unwrap();
    assert!(matches!(
        verifier.verify(&token),
        Err(Error::MalformedToken(_))
    ));
}

#[test]
fn typ_and_kid_headers_are_tolerated() {
    let keys = keys();
    let mut jwk: Map<String, Value> = serde_json::from_str(&keys.public_jwk).unwrap();
    jwk.insert("kid".to_owned(), json!("key-1"));
    let with_kid = Value::Object(jwk).to_string();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("some-other-kid");
    let token = mint(&josekit_signer(&keys), &header, &user_claims());
    let plain = keys.signer.sign(&user_claims()).unwrap();
    for public in [&keys.public_jwk, &with_kid] {
        let verifier = JwtVerifier::from_jwk_json(public, &es256()).unwrap();
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&plain).is_ok());
    }
}

#[test]
fn other_algorithms_work_when_allowed() {
    let all: Vec<String> = ["ES256", "ES384", "RS256", "EdDSA"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let es384 = jws::ES384.generate_key_pair().unwrap();
    let rsa = jws::RS256.generate_key_pair(2048).unwrap();
    let ed = jws::EdDSA.generate_key_pair(josekit::jwk::Ed25519).unwrap();
    let cases: Vec<(String, Box<dyn JwsSigner>, &str)> = vec![
        (
            es384.to_jwk_public_key().to_string(),
            Box::new(
                jws::ES384
                    .signer_from_jwk(&es384.to_jwk_key_pair())
                    .unwrap(),
            ),
            "ES384",
        ),
        (
            rsa.to_jwk_public_key().to_string(),
            Box::new(jws::RS256.signer_from_jwk(&rsa.to_jwk_key_pair()).unwrap()),
            "RS256",
        ),
        (
            ed.to_jwk_public_key().to_string(),
            Box::new(jws::EdDSA.signer_from_jwk(&ed.to_jwk_key_pair()).unwrap()),
            "EdDSA",
        ),
    ];
    for (public, signer, alg) in cases {
        let token = mint(signer.as_ref(), &JwsHeader::new(), &user_claims());
        let verifier = JwtVerifier::from_jwk_json(&public, &all).unwrap();
        assert_eq!(verifier.algorithms().collect::<Vec<_>>(), [alg]);
        assert!(verifier.verify(&token).is_ok(), "{alg}");
        // The default list (ES256 only) does not fit these keys.
        assert!(
            JwtVerifier::from_jwk_json(&public, &es256()).is_err(),
            "{alg}"
        );
    }
}

#[test]
fn an_allowed_algorithm_that_does_not_match_the_header_is_rejected() {
    let keys = keys();
    let both = vec!["ES256".to_owned(), "ES384".to_owned()];
    let verifier = JwtVerifier::from_jwk_json(&keys.public_jwk, &both).unwrap();
    // ES384 is allowed but does not fit the P-256 key, so a header claiming it is refused.
    let token = unsigned(json!({"alg": "ES384"}), &user_claims());
    assert_eq!(
        verifier.verify(&token).unwrap_err(),
        Error::AlgorithmNotAllowed("ES384".to_owned())
    );
}

// ---- claims through the provider ----

#[test]
fn a_valid_token_gives_the_user_context() {
    let keys = keys();
    let claims = user_claims();
    let context = provider(&keys)
        .authenticate(&keys.signer.sign(&claims).unwrap())
        .unwrap();
    assert_eq!(context, AuthContext::from_claims(&claims).unwrap());
    assert_eq!(context.title.as_deref(), Some("Prof."));
}

#[test]
fn expiry_leeway_is_sixty_seconds() {
    let keys = keys();
    let provider = provider(&keys);
    let mut claims = user_claims();
    claims.insert("exp".to_owned(), json!(now() - 30));
    assert!(
        provider
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .is_ok()
    );
    claims.insert("exp".to_owned(), json!(now() - 120));
    assert!(matches!(
        provider.authenticate(&keys.signer.sign(&claims).unwrap()),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn missing_and_wrong_claims_are_rejected() {
    let keys = keys();
    let mut claims = user_claims();
    claims.remove("email");
    assert_eq!(
        provider(&keys)
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .unwrap_err(),
        Error::MissingClaim("email".to_owned())
    );

    let mut rules = ClaimRules::default();
    rules.required.insert("iss".to_owned(), Some(json!("GHGA")));
    let strict = AuthProvider::from_jwk_json(&keys.public_jwk, &es256(), rules).unwrap();
    let mut claims = user_claims();
    claims.insert("iss".to_owned(), json!("someone else"));
    assert_eq!(
        strict
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .unwrap_err(),
        Error::UnexpectedClaimValue("iss".to_owned())
    );
    claims.insert("iss".to_owned(), json!("GHGA"));
    assert!(
        strict
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .is_ok()
    );
}

#[test]
fn string_and_float_iat_pass_non_numeric_fails() {
    let keys = keys();
    let provider = provider(&keys);
    let now = now();
    for iat in [json!(now.to_string()), json!(now as f64 + 0.5)] {
        let mut claims = user_claims();
        claims.insert("iat".to_owned(), iat.clone());
        let context = provider
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .unwrap();
        assert_eq!(context.iat, now, "{iat}");
    }
    let mut claims = user_claims();
    claims.insert("iat".to_owned(), json!("yesterday"));
    assert_eq!(
        provider
            .authenticate(&keys.signer.sign(&claims).unwrap())
            .unwrap_err(),
        Error::NotAnInteger("iat".to_owned())
    );
}

#[test]
fn claim_mapping_renames_and_drops() {
    let keys = keys();
    let mut rules = ClaimRules::default();
    // Checks see the token's names; the mapping applies afterwards.
    rules.required.remove("id");
    rules.required.insert("sub".to_owned(), None);
    rules.map.insert("sub".to_owned(), Some("id".to_owned()));
    rules.map.insert("title".to_owned(), None);
    let provider = AuthProvider::from_jwk_json(&keys.public_jwk, &es256(), rules).unwrap();
    let mut claims = user_claims();
    claims.remove("id");
    claims.insert("sub".to_owned(), json!("oidc-subject"));
    claims.insert("title".to_owned(), json!("not a valid title"));
    let token = keys.signer.sign(&claims).unwrap();
    let mapped = provider.claims(&token).unwrap();
    assert!(!mapped.contains_key("sub"));
    assert!(!mapped.contains_key("title"));
    let context = provider.authenticate(&token).unwrap();
    assert_eq!(context.id, "oidc-subject");
    assert_eq!(context.title, None);
}

#[test]
fn a_non_string_id_is_rejected() {
    let keys = keys();
    let mut claims = user_claims();
    claims.insert("id".to_owned(), json!(12345));
    assert!(matches!(
        provider(&keys).authenticate(&keys.signer.sign(&claims).unwrap()),
        Err(Error::InvalidContext(_))
    ));
}
