//! The domain's crypto ports on the workspace's crypto crates: [`Crypt4ghCrypto`]
//! (tessera-crypt) and [`Es256Signer`] (tessera-auth).

use serde_json::{Map, Value};
use tessera_auth::JwtSigner;
use tessera_crypt::Crypt4ghPublicKey;
use tessera_work_orders::{CryptoError, KeyError, TokenCrypto, WorkOrderSigner};

/// Key normalisation and sealed boxes with Crypt4GH (X25519) keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crypt4ghCrypto;

impl TokenCrypto for Crypt4ghCrypto {
    fn normalise_key(&self, raw: &str) -> Result<String, KeyError> {
        Crypt4ghPublicKey::parse(raw)
            .map(|key| key.to_base64())
            .map_err(|e| match e {
                tessera_crypt::Error::EmptyKey => KeyError::Empty,
                tessera_crypt::Error::PrivateKeyGiven => KeyError::PrivateKey,
                tessera_crypt::Error::Base64(message) => KeyError::Base64(message),
                tessera_crypt::Error::LowOrderKey => KeyError::LowOrder,
                _ => KeyError::Invalid,
            })
    }

    fn seal(&self, key_b64: &str, plaintext: &str) -> Result<String, CryptoError> {
        let key = Crypt4ghPublicKey::parse(key_b64)
            .map_err(|e| CryptoError::with_source("stored public key is unusable", e))?;
        tessera_crypt::seal_base64(&key, plaintext)
            .map_err(|e| CryptoError::with_source("sealing failed", e))
    }
}

/// ES256 work order signing with the header exactly `{"alg":"ES256"}`.
#[derive(Debug, Clone)]
pub struct Es256Signer(pub JwtSigner);

impl WorkOrderSigner for Es256Signer {
    fn sign(&self, claims: &Map<String, Value>) -> Result<String, CryptoError> {
        self.0
            .sign(claims)
            .map_err(|e| CryptoError::with_source("signing a work order token failed", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_crypt::Crypt4ghKeyPair;

    #[test]
    fn keys_are_normalised_and_errors_mapped() {
        let pair = Crypt4ghKeyPair::generate();
        let crypto = Crypt4ghCrypto;
        let b64 = pair.public_key().to_base64();
        assert_eq!(crypto.normalise_key(&pair.public_armored()).unwrap(), b64);
        assert_eq!(crypto.normalise_key(""), Err(KeyError::Empty));
        assert_eq!(
            crypto.normalise_key("-----BEGIN CRYPT4GH PRIVATE KEY-----"),
            Err(KeyError::PrivateKey)
        );
        assert_eq!(crypto.normalise_key("AAAA"), Err(KeyError::Invalid));
        assert_eq!(
            crypto.normalise_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(KeyError::LowOrder)
        );
        assert!(matches!(
            crypto.normalise_key("A"),
            Err(KeyError::Base64(_))
        ));
        let sealed = crypto.seal(&b64, "hello").unwrap();
        assert_eq!(pair.open_base64(&sealed).unwrap(), "hello");
        assert!(crypto.seal("nope", "hello").is_err());
    }
}
