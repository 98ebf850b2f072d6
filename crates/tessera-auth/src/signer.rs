//! [`JwtSigner`]: ES256 signing of work order tokens (WPS spec §2.4), and key generation for the
//! operator CLI.

use josekit::jwk::{Jwk, KeyPair as _, alg::ec::EcKeyPair};
use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{self, JwsHeader};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Signs claims as compact JWS with ES256 and the protected header exactly `{"alg":"ES256"}`.
#[derive(Debug, Clone)]
pub struct JwtSigner {
    signer: EcdsaJwsSigner,
    public_jwk_json: String,
}

impl JwtSigner {
    /// Builds the signer from a private P-256 JWK (JSON text with `kty`, `crv`, `d`, and
    /// usually `x`, `y`).
    ///
    /// Errors: [`Error::InvalidJwk`] for unparsable JSON or a key that is not EC P-256,
    /// [`Error::NoPrivateKey`] (the original's startup message) if there is no `d`.
    pub fn from_jwk_json(private_jwk_json: &str) -> Result<Self> {
        let jwk = Jwk::from_bytes(private_jwk_json.as_bytes())
            .map_err(|err| Error::InvalidJwk(err.to_string()))?;
        if jwk.parameter("d").is_none() {
            return Err(Error::NoPrivateKey);
        }
        if jwk.key_type() != "EC" || jwk.curve() != Some("P-256") {
            return Err(Error::InvalidJwk(
                "the work order signing key must be an EC P-256 key".to_owned(),
            ));
        }
        let mut signer = jws::ES256
            .signer_from_jwk(&jwk)
            .map_err(|err| Error::InvalidJwk(err.to_string()))?;
        // The header must be exactly {"alg":"ES256"}; josekit would add the JWK's kid.
        signer.remove_key_id();
        // Derived from the key pair, not copied, so a private JWK without x/y still yields them.
        let public_jwk_json = EcKeyPair::from_jwk(&jwk)
            .map_err(|err| Error::InvalidJwk(err.to_string()))?
            .to_jwk_public_key()
            .to_string();
        Ok(Self {
            signer,
            public_jwk_json,
        })
    }

    /// Signs `claims` (serialised as given: callers set integer `iat`/`exp` themselves).
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String> {
        let payload = serde_json::to_vec(claims).map_err(|err| Error::Crypto(err.to_string()))?;
        jws::serialize_compact(&payload, &JwsHeader::new(), &self.signer)
            .map_err(|err| Error::Crypto(err.to_string()))
    }

    /// The public JWK (`kty`, `crv`, `x`, `y`, plus `kid`/`alg` if the private JWK had them) as
    /// JSON, for the services that verify the tokens.
    pub fn public_jwk_json(&self) -> &str {
        &self.public_jwk_json
    }
}

/// Generates a P-256 key pair for ES256: (private JWK JSON with `kty`, `crv`, `x`, `y`, `d`;
/// public JWK JSON with `kty`, `crv`, `x`, `y`).
pub fn generate_es256_jwk_pair() -> Result<(String, String)> {
    let pair = jws::ES256
        .generate_key_pair()
        .map_err(|err| Error::Crypto(err.to_string()))?;
    // `to_jwk_private_key` would drop x and y, which other JOSE libraries require.
    Ok((
        pair.to_jwk_key_pair().to_string(),
        pair.to_jwk_public_key().to_string(),
    ))
}
