//! Fernet (the spec of Python's `cryptography.fernet`), the encryption of stored refresh
//! tokens. Existing rows of the original service must keep decrypting, so the format is
//! followed byte for byte:
//!
//! - key: 32 bytes in URL-safe base64; the first 16 sign (HMAC-SHA256), the last 16 encrypt
//!   (AES-128-CBC);
//! - token: URL-safe base64 (padded) of `0x80 ‖ timestamp (u64 BE) ‖ IV (16) ‖ ciphertext
//!   (PKCS#7) ‖ HMAC-SHA256 over everything before it`.
//!
//! No TTL is checked, as in the original.

use std::fmt;

use aes::Aes128;
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::ports::{Cipher, CipherError};

const VERSION: u8 = 0x80;
const HEADER_LEN: usize = 1 + 8 + 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// A Fernet key.
#[derive(Clone)]
pub struct Fernet {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl fmt::Debug for Fernet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fernet(**********)")
    }
}

impl Fernet {
    /// The key from its URL-safe base64 form (padding optional). MUST be 32 bytes.
    pub fn new(key: &str) -> Result<Self, CipherError> {
        let bytes = decode(key.trim())
            .ok_or_else(|| CipherError::InvalidKey("not url-safe base64".to_owned()))?;
        let (signing, encryption) = bytes
            .split_first_chunk::<16>()
            .and_then(|(s, rest)| Some((*s, <[u8; 16]>::try_from(rest).ok()?)))
            .ok_or_else(|| {
                CipherError::InvalidKey(format!("must be 32 bytes, not {}", bytes.len()))
            })?;
        Ok(Self {
            signing,
            encryption,
        })
    }

    /// A fresh random key in its URL-safe base64 form.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        URL_SAFE.encode(key)
    }

    /// Encrypts with a given timestamp and IV; [`Cipher::encrypt`] uses now and a random IV.
    pub fn encrypt_with(
        &self,
        plaintext: &[u8],
        timestamp: u64,
        iv: [u8; 16],
    ) -> Result<String, CipherError> {
        let ciphertext = cbc::Encryptor::<Aes128>::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut token = Vec::with_capacity(HEADER_LEN + ciphertext.len() + MAC_LEN);
        token.push(VERSION);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let tag = self.mac()?.chain_update(&token).finalize().into_bytes();
        token.extend_from_slice(&tag);
        Ok(URL_SAFE.encode(token))
    }

    /// Decrypts a token, checking version, length and HMAC before decrypting.
    pub fn decrypt_bytes(&self, token: &str) -> Result<Vec<u8>, CipherError> {
        let data = decode(token.trim()).ok_or(CipherError::InvalidToken)?;
        if data.len() < HEADER_LEN + BLOCK + MAC_LEN
            || data.first() != Some(&VERSION)
            || !(data.len() - HEADER_LEN - MAC_LEN).is_multiple_of(BLOCK)
        {
            return Err(CipherError::InvalidToken);
        }
        let (signed, tag) = data.split_at(data.len() - MAC_LEN);
        self.mac()?
            .chain_update(signed)
            .verify_slice(tag)
            .map_err(|_| CipherError::InvalidToken)?;
        let iv: [u8; 16] = signed
            .get(9..HEADER_LEN)
            .and_then(|iv| iv.try_into().ok())
            .ok_or(CipherError::InvalidToken)?;
        let ciphertext = signed.get(HEADER_LEN..).ok_or(CipherError::InvalidToken)?;
        cbc::Decryptor::<Aes128>::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| CipherError::InvalidToken)
    }

    fn mac(&self) -> Result<HmacSha256, CipherError> {
        <HmacSha256 as Mac>::new_from_slice(&self.signing)
            .map_err(|e| CipherError::InvalidKey(e.to_string()))
    }
}

/// URL-safe base64, padded or not (Python writes padded tokens and keys).
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
}

impl Cipher for Fernet {
    fn encrypt(&self, plaintext: &str) -> Result<String, CipherError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut iv = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut iv);
        self.encrypt_with(plaintext.as_bytes(), timestamp, iv)
    }

    fn decrypt(&self, token: &str) -> Result<String, CipherError> {
        String::from_utf8(self.decrypt_bytes(token)?).map_err(|_| CipherError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Fernet spec (github.com/fernet/spec, generate.json): key, time
    // 1985-10-26T01:20:00-07:00, IV 0..15 and message "hello".
    const SPEC_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const SPEC_TOKEN: &str = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    const SPEC_TIME: u64 = 499_162_800;

    fn spec_iv() -> [u8; 16] {
        core::array::from_fn(|i| u8::try_from(i).unwrap())
    }

    #[test]
    fn matches_the_spec_vector_both_ways() {
        let fernet = Fernet::new(SPEC_KEY).unwrap();
        assert_eq!(
            fernet.encrypt_with(b"hello", SPEC_TIME, spec_iv()).unwrap(),
            SPEC_TOKEN
        );
        assert_eq!(fernet.decrypt(SPEC_TOKEN).unwrap(), "hello");
    }

    #[test]
    fn round_trips_with_random_iv_and_generated_key() {
        let fernet = Fernet::new(&Fernet::generate_key()).unwrap();
        for text in ["", "x", "exactly sixteen!", &"r".repeat(1000)] {
            let a = fernet.encrypt(text).unwrap();
            let b = fernet.encrypt(text).unwrap();
            assert_ne!(a, b, "a fresh iv per token");
            assert_eq!(fernet.decrypt(&a).unwrap(), text);
        }
    }

    #[test]
    fn refuses_tampered_foreign_and_malformed_tokens() {
        let fernet = Fernet::new(SPEC_KEY).unwrap();
        let other = Fernet::new(&Fernet::generate_key()).unwrap();
        assert_eq!(other.decrypt(SPEC_TOKEN), Err(CipherError::InvalidToken));
        let mut bytes = URL_SAFE.decode(SPEC_TOKEN).unwrap();
        for index in [0, 5, 20, 30, bytes.len() - 1] {
            bytes[index] ^= 1;
            let tampered = URL_SAFE.encode(&bytes);
            assert_eq!(
                fernet.decrypt(&tampered),
                Err(CipherError::InvalidToken),
                "{index}"
            );
            bytes[index] ^= 1;
        }
        for bad in ["", "not base64!", "gAAAAA", &URL_SAFE.encode([0x80; 57])] {
            assert_eq!(fernet.decrypt(bad), Err(CipherError::InvalidToken), "{bad}");
        }
    }

    #[test]
    fn keys_must_be_32_bytes_of_url_safe_base64() {
        assert!(Fernet::new(&URL_SAFE.encode([1u8; 32])).is_ok());
        assert!(Fernet::new(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        for bad in [
            URL_SAFE.encode([1u8; 31]),
            URL_SAFE.encode([1u8; 33]),
            "***".into(),
        ] {
            assert!(
                matches!(Fernet::new(&bad), Err(CipherError::InvalidKey(_))),
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", Fernet::new(SPEC_KEY).unwrap()),
            "Fernet(**********)"
        );
    }
}
