//! [`JwtVerifier`]: checks that a token is a compact JWS signed by one public JWK with an allowed
//! algorithm. It checks no claims ([`ClaimRules`](crate::ClaimRules) does).

use base64::Engine as _;
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Verifies compact JWS tokens against one public key.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    /// One josekit verifier per allowed algorithm that fits the key, keyed by JWS `alg` name.
    verifiers: Vec<(String, Box<dyn JwsVerifier>)>,
}

/// Key parameters that only private or symmetric JWKs carry (RFC 7518 §6).
const PRIVATE_PARAMETERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl JwtVerifier {
    /// Builds a verifier from a public JWK (JSON text) and the allowed algorithm names.
    ///
    /// Supported: `ES256`/`ES384`/`ES512` (EC P-256/P-384/P-521), `RS*` and `PS*` (RSA) and
    /// `EdDSA` (OKP). Allowed algorithms that do not fit the key type are ignored, but at least
    /// one must fit.
    ///
    /// Errors: [`Error::InvalidJwk`] for unparsable JSON or a bad key, [`Error::PrivateKeyGiven`]
    /// for a JWK with a private or symmetric part, [`Error::UnsupportedAlgorithm`] for an allowed
    /// name outside the list above (notably `none` and `HS*`), [`Error::NoUsableAlgorithm`] if no
    /// allowed algorithm fits the key.
    pub fn from_jwk_json(public_jwk_json: &str, allowed_algs: &[String]) -> Result<Self> {
        let jwk = Jwk::from_bytes(public_jwk_json.as_bytes())
            .map_err(|err| Error::InvalidJwk(err.to_string()))?;
        if jwk.key_type() == "oct"
            || PRIVATE_PARAMETERS
                .iter()
                .any(|name| jwk.parameter(name).is_some())
        {
            return Err(Error::PrivateKeyGiven);
        }
        let mut verifiers = Vec::new();
        for alg in allowed_algs {
            if let Some(verifier) = verifier_for(alg, &jwk)? {
                verifiers.push((alg.clone(), verifier));
            }
        }
        if verifiers.is_empty() {
            return Err(Error::NoUsableAlgorithm(allowed_algs.to_vec()));
        }
        Ok(Self { verifiers })
    }

    /// The algorithms this verifier accepts, in configuration order.
    pub fn algorithms(&self) -> impl Iterator<Item = &str> {
        self.verifiers.iter().map(|(alg, _)| alg.as_str())
    }

    /// Verifies `token` and returns its claims, unchecked.
    ///
    /// Errors: [`Error::MalformedToken`] unless the token is three base64url parts with a JSON
    /// object header and payload (so JWE and `alg: none` with no verifier fail here or below),
    /// [`Error::AlgorithmNotAllowed`] if the header's `alg` is not an allowed algorithm fitting the
    /// key, [`Error::InvalidSignature`] if the signature does not verify.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, _, _] = parts.as_slice() else {
            return Err(Error::MalformedToken(format!(
                "a compact jws has 3 parts, this token has {}",
                parts.len()
            )));
        };
        let header = decode_object(header, "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(Error::MalformedToken("alg is not a string".to_owned())),
            None => return Err(Error::MalformedToken("no alg in the header".to_owned())),
        };
        let Some((_, verifier)) = self.verifiers.iter().find(|(name, _)| name == alg) else {
            return Err(Error::AlgorithmNotAllowed(alg.clone()));
        };
        let (payload, _) = jws::deserialize_compact(token, verifier.as_ref())
            .map_err(|err| Error::InvalidSignature(err.to_string()))?;
        match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Ok(claims),
            _ => Err(Error::MalformedToken(
                "the payload is not a json object".to_owned(),
            )),
        }
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Error::MalformedToken(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::MalformedToken(format!(
            "the {what} is not a json object"
        ))),
    }
}

/// The josekit verifier for `alg` if it fits the key type, `None` if it does not.
fn verifier_for(alg: &str, jwk: &Jwk) -> Result<Option<Box<dyn JwsVerifier>>> {
    let kty = jwk.key_type();
    let crv = jwk.curve();
    let fits = |want_kty: &str, want_crv: &[&str]| {
        kty == want_kty && (want_crv.is_empty() || crv.is_some_and(|c| want_crv.contains(&c)))
    };
    // josekit verifiers built from a JWK with a `kid` demand that kid in every token; the original
    // (one key, not a key set) ignores kid, so it is removed.
    macro_rules! build {
        ($alg:expr) => {{
            let mut verifier = $alg
                .verifier_from_jwk(jwk)
                .map_err(|err| Error::InvalidJwk(err.to_string()))?;
            verifier.remove_key_id();
            Ok(Some(Box::new(verifier) as Box<dyn JwsVerifier>))
        }};
    }
    match alg {
        "ES256" if fits("EC", &["P-256"]) => build!(jws::ES256),
        "ES384" if fits("EC", &["P-384"]) => build!(jws::ES384),
        "ES512" if fits("EC", &["P-521"]) => build!(jws::ES512),
        "RS256" if fits("RSA", &[]) => build!(jws::RS256),
        "RS384" if fits("RSA", &[]) => build!(jws::RS384),
        "RS512" if fits("RSA", &[]) => build!(jws::RS512),
        "PS256" if fits("RSA", &[]) => build!(jws::PS256),
        "PS384" if fits("RSA", &[]) => build!(jws::PS384),
        "PS512" if fits("RSA", &[]) => build!(jws::PS512),
        "EdDSA" if fits("OKP", &["Ed25519", "Ed448"]) => build!(jws::EdDSA),
        "ES256" | "ES384" | "ES512" | "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
        | "EdDSA" => Ok(None),
        other => Err(Error::UnsupportedAlgorithm(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PUBLIC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn verifier() -> JwtVerifier {
        JwtVerifier::from_jwk_json(PUBLIC_JWK, &["ES256".to_owned()]).unwrap()
    }

    fn b64url(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn header_errors_are_malformed() {
        let verifier = verifier();
        for header in [r#"{"alg":5}"#, r#"{"typ":"JWT"}"#, "[]", "null"] {
            let token = format!("{}.e30.AAAA", b64url(header.as_bytes()));
            assert!(
                matches!(verifier.verify(&token), Err(Error::MalformedToken(_))),
                "{header}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_panic_or_pass(token in any::<String>()) {
            prop_assert!(verifier().verify(&token).is_err());
        }

        #[test]
        fn arbitrary_three_part_tokens_never_pass(
            header in prop_oneof![
                Just(r#"{"alg":"ES256"}"#.to_owned()),
                Just(r#"{"alg":"none"}"#.to_owned()),
                any::<String>(),
            ],
            payload in any::<Vec<u8>>(),
            signature in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let token = format!(
                "{}.{}.{}",
                b64url(header.as_bytes()),
                b64url(&payload),
                b64url(&signature)
            );
            prop_assert!(verifier().verify(&token).is_err());
        }
    }
}
