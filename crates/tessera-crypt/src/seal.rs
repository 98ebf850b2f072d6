//! libsodium `crypto_box_seal` for a Crypt4GH recipient (WPS spec §2.2).
//!
//! Output layout: ephemeral public key (32) ‖ Poly1305 MAC (16) ‖ XSalsa20 ciphertext, with the
//! nonce BLAKE2b-24(ephemeral pk ‖ recipient pk), exactly as PyNaCl's `SealedBox` expects.

use rand::rngs::OsRng;

use crate::{Crypt4ghPublicKey, Error, Result, b64};

/// Bytes a sealed box adds to its plaintext: ephemeral public key and MAC.
pub const SEAL_OVERHEAD: usize = 32 + 16;

/// Seals `plaintext` for `recipient` with a fresh ephemeral key.
///
/// CPU-bound (one X25519 exchange): callers on an async runtime sealing large payloads should
/// use `spawn_blocking`; a token costs tens of microseconds.
pub fn seal(recipient: &Crypt4ghPublicKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    // crypto_box would seal to a low-order key, under a shared key everyone knows.
    if recipient.is_low_order() {
        return Err(Error::LowOrderKey);
    }
    crypto_box::PublicKey::from_bytes(*recipient.as_bytes())
        .seal(&mut OsRng, plaintext)
        .map_err(|_| Error::Seal)
}

/// Seals the UTF-8 bytes of `plaintext` and returns standard padded base64, the form the
/// service sends to users.
pub fn seal_base64(recipient: &Crypt4ghPublicKey, plaintext: &str) -> Result<String> {
    seal(recipient, plaintext.as_bytes()).map(|sealed| b64::encode(&sealed))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use crypto_box::SecretKey;

    use super::*;

    fn recipient() -> (SecretKey, Crypt4ghPublicKey) {
        let secret = SecretKey::generate(&mut OsRng);
        let public = Crypt4ghPublicKey::from_bytes(*secret.public_key().as_bytes());
        (secret, public)
    }

    #[test]
    fn sealed_boxes_open_with_crypto_box() {
        let (secret, public) = recipient();
        for message in [&b""[..], b"x", b"a work package access token", &[0u8; 4096]] {
            let sealed = seal(&public, message).unwrap();
            assert_eq!(sealed.len(), message.len() + SEAL_OVERHEAD);
            assert_eq!(secret.unseal(&sealed).unwrap(), message);
        }
    }

    #[test]
    fn low_order_recipients_are_refused() {
        for point in crate::public_key::low_order_points() {
            let key = Crypt4ghPublicKey::from_bytes(point);
            assert_eq!(seal(&key, b"token"), Err(Error::LowOrderKey));
            assert_eq!(seal_base64(&key, "token"), Err(Error::LowOrderKey));
        }
    }

    #[test]
    fn sealing_is_randomised() {
        let (_, public) = recipient();
        let a = seal(&public, b"same").unwrap();
        let b = seal(&public, b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn another_key_cannot_open() {
        let (_, public) = recipient();
        let (other, _) = recipient();
        let sealed = seal(&public, b"secret").unwrap();
        assert!(other.unseal(&sealed).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let (secret, public) = recipient();
        let mut sealed = seal(&public, b"secret").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(secret.unseal(&sealed).is_err());
    }

    #[test]
    fn base64_form_is_standard_padded_and_opens() {
        let (secret, public) = recipient();
        // 24 characters give 72 bytes and 96 base64 characters, the length clients check.
        let token = "abcdefghijklmnopqrstuvwx";
        let text = seal_base64(&public, token).unwrap();
        assert_eq!(text.len(), 96);
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap();
        assert_eq!(secret.unseal(&sealed).unwrap(), token.as_bytes());
        let odd = seal_base64(&public, "ab").unwrap();
        assert!(odd.ends_with('='));
    }
}
