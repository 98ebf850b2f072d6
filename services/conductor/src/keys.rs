//! The signing keys and the [`TokenCodec`] on josekit: RS256 permission tokens with the
//! configured RSA key; HS256 user tokens keyed by the private key's PEM text (the original's
//! PyJWT default, so its user tokens stay valid with the same key); HS256 login states under
//! a key derived from it.

use std::fmt;

use hmac::{Hmac, Mac};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::alg::hmac::{HmacJwsSigner, HmacJwsVerifier};
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use josekit::jws::{self, JwsHeader, JwsSigner, JwsVerifier};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};
use sha2::Sha256;
use tessera_conductor::{TokenCodec, TokenError, TokenKind};

use crate::config::ConductorConfig;
use crate::{Error, Result};

/// A new RSA-2048 private key, PEM (PKCS#8).
pub fn generate_private_key() -> Result<String> {
    let pair = RsaKeyPair::generate(2048).map_err(|e| Error::Internal(e.to_string()))?;
    String::from_utf8(pair.to_pem_private_key()).map_err(|e| Error::Internal(e.to_string()))
}

/// The keys of the three token kinds.
pub struct Keys {
    public_pem: String,
    rs_signer: RsassaJwsSigner,
    rs_verifier: RsassaJwsVerifier,
    user_signer: HmacJwsSigner,
    user_verifier: HmacJwsVerifier,
    state_signer: HmacJwsSigner,
    state_verifier: HmacJwsVerifier,
    pkce: Hmac<Sha256>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

fn hmac(secret: &[u8]) -> std::result::Result<Hmac<Sha256>, String> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|e| e.to_string())
}

/// A key for one purpose, derived from the private key's text.
fn derive(secret: &[u8], label: &str) -> std::result::Result<Vec<u8>, String> {
    let mut mac = hmac(secret)?;
    mac.update(label.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

impl Keys {
    /// The keys from a PEM private key (PKCS#1 or PKCS#8 RSA).
    pub fn from_pem(private_pem: &str) -> std::result::Result<Self, String> {
        let pair = RsaKeyPair::from_pem(private_pem.as_bytes()).map_err(|e| e.to_string())?;
        let public_pem = String::from_utf8(pair.to_pem_public_key()).map_err(|e| e.to_string())?;
        let private_der = pair.to_der_private_key();
        let rs_signer = jws::RS256
            .signer_from_der(&private_der)
            .map_err(|e| e.to_string())?;
        let rs_verifier = jws::RS256
            .verifier_from_pem(public_pem.as_bytes())
            .map_err(|e| e.to_string())?;
        let secret = private_pem.as_bytes();
        let hs = |key: &[u8]| -> std::result::Result<(HmacJwsSigner, HmacJwsVerifier), String> {
            Ok((
                jws::HS256
                    .signer_from_bytes(key)
                    .map_err(|e| e.to_string())?,
                jws::HS256
                    .verifier_from_bytes(key)
                    .map_err(|e| e.to_string())?,
            ))
        };
        let (user_signer, user_verifier) = hs(secret)?;
        let (state_signer, state_verifier) = hs(&derive(secret, "conductor login state")?)?;
        Ok(Self {
            public_pem,
            rs_signer,
            rs_verifier,
            user_signer,
            user_verifier,
            state_signer,
            state_verifier,
            pkce: hmac(&derive(secret, "conductor pkce")?)?,
        })
    }

    /// The keys of the config: `private_key`, else the file `private_key_file`.
    pub fn from_config(config: &ConductorConfig) -> Result<Self> {
        let (pem, key) = match &config.private_key_file {
            Some(path) if config.private_key.expose().trim().is_empty() => (
                std::fs::read_to_string(path).map_err(|e| Error::Config {
                    key: "private_key_file",
                    message: format!("{}: {e}", path.display()),
                })?,
                "private_key_file",
            ),
            _ => (config.private_key.expose().to_owned(), "private_key"),
        };
        Self::from_pem(&pem).map_err(|message| Error::Config {
            key,
            message: format!("not an RSA private key in PEM: {message}"),
        })
    }

    /// The PKCE verifier of a login (derived from its nonce, so nothing is kept between
    /// the two requests and the verifier never travels through the browser).
    pub fn pkce_verifier(&self, nonce: &str) -> String {
        use base64::Engine as _;
        let mut mac = self.pkce.clone();
        mac.update(nonce.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn signer(&self, kind: TokenKind) -> &dyn JwsSigner {
        match kind {
            TokenKind::User => &self.user_signer,
            TokenKind::Permission => &self.rs_signer,
            TokenKind::LoginState => &self.state_signer,
        }
    }

    fn verifier(&self, kind: TokenKind) -> &dyn JwsVerifier {
        match kind {
            TokenKind::User => &self.user_verifier,
            TokenKind::Permission => &self.rs_verifier,
            TokenKind::LoginState => &self.state_verifier,
        }
    }
}

impl TokenCodec for Keys {
    fn sign(&self, kind: TokenKind, claims: &Map<String, Value>) -> Result<String, TokenError> {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let payload =
            JwtPayload::from_map(claims.clone()).map_err(|e| TokenError(e.to_string()))?;
        jwt::encode_with_signer(&payload, &header, self.signer(kind))
            .map_err(|e| TokenError(e.to_string()))
    }

    fn verify(&self, kind: TokenKind, token: &str) -> Result<Map<String, Value>, TokenError> {
        let (payload, _) = jwt::decode_with_verifier(token, self.verifier(kind))
            .map_err(|e| TokenError(format!("invalid token: {e}")))?;
        Ok(payload.claims_set().clone())
    }

    fn public_key_pem(&self) -> String {
        self.public_pem.clone()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_do_not_cross_and_tampering_fails() {
        let keys = Keys::from_pem(&generate_private_key().unwrap()).unwrap();
        let mut claims = Map::new();
        claims.insert("userid".into(), json!("u"));
        let user = keys.sign(TokenKind::User, &claims).unwrap();
        let permission = keys.sign(TokenKind::Permission, &claims).unwrap();
        assert_eq!(keys.verify(TokenKind::User, &user).unwrap()["userid"], "u");
        assert!(keys.verify(TokenKind::Permission, &user).is_err());
        assert!(keys.verify(TokenKind::User, &permission).is_err());
        assert!(keys.verify(TokenKind::LoginState, &user).is_err());
        let mut tampered = permission.clone();
        tampered.pop();
        tampered.push('A');
        assert!(keys.verify(TokenKind::Permission, &tampered).is_err() || tampered == permission);
        assert!(
            keys.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(Keys::from_pem("not a key").is_err());
        assert_ne!(keys.pkce_verifier("a"), keys.pkce_verifier("b"));
    }
}
