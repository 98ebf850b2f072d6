//! [`Crypt4ghKeyPair`]: X25519 key pairs in the Crypt4GH key-file formats.
//!
//! The private-key file is PEM-like armour around base64 of
//! `c4gh-v1 ‖ string(kdfname) [‖ string(kdfoptions)] ‖ string(ciphername) ‖ string(key) [‖
//! string(comment)]`, each string prefixed by its big-endian u16 length. Only the unencrypted form
//! (kdf and cipher `none`) is written and read here; the Python `crypt4gh` package reads it.

use std::fmt;

use rand::rngs::OsRng;

use crate::{Crypt4ghPublicKey, Error, KEY_LEN, Result, b64};

const MAGIC: &[u8] = b"c4gh-v1";
const NONE: &[u8] = b"none";
const BEGIN_PRIVATE: &str = "-----BEGIN CRYPT4GH PRIVATE KEY-----";
const END_PRIVATE: &str = "-----END CRYPT4GH PRIVATE KEY-----";
/// Key-derivation functions of passphrase-protected Crypt4GH keys.
const KNOWN_KDFS: [&[u8]; 3] = [b"scrypt", b"bcrypt", b"pbkdf2_hmac_sha256"];

/// An X25519 key pair usable as a Crypt4GH identity. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Crypt4ghKeyPair {
    secret: crypto_box::SecretKey,
    public: Crypt4ghPublicKey,
}

impl Crypt4ghKeyPair {
    /// Generates a key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::from_secret(crypto_box::SecretKey::generate(&mut OsRng))
    }

    /// Builds the key pair of a raw 32-byte secret (as stored in a Crypt4GH private-key file).
    pub fn from_secret_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self::from_secret(crypto_box::SecretKey::from_bytes(bytes))
    }

    fn from_secret(secret: crypto_box::SecretKey) -> Self {
        let public = Crypt4ghPublicKey::from_bytes(*secret.public_key().as_bytes());
        Self { secret, public }
    }

    /// The public half.
    pub fn public_key(&self) -> Crypt4ghPublicKey {
        self.public
    }

    /// The public key in the Crypt4GH public-key file format.
    pub fn public_armored(&self) -> String {
        self.public.to_armored()
    }

    /// The raw secret bytes. Key material: for tests and for callers that open sealed boxes with
    /// another library.
    pub fn secret_bytes(&self) -> [u8; KEY_LEN] {
        self.secret.to_bytes()
    }

    /// The secret key in the Crypt4GH private-key file format, UNENCRYPTED (no passphrase).
    pub fn private_armored(&self) -> String {
        let secret = self.secret.to_bytes();
        let mut blob = Vec::with_capacity(MAGIC.len() + 3 * 2 + 2 * NONE.len() + KEY_LEN);
        blob.extend_from_slice(MAGIC);
        for part in [NONE, NONE, &secret[..]] {
            // The parts are at most 32 bytes, far below the u16 length limit.
            blob.extend_from_slice(&(part.len() as u16).to_be_bytes());
            blob.extend_from_slice(part);
        }
        format!("{BEGIN_PRIVATE}\n{}\n{END_PRIVATE}\n", b64::encode(&blob))
    }

    /// Parses an unencrypted Crypt4GH private-key file.
    ///
    /// Errors: [`Error::PrivateKeyFormat`] for anything malformed (armour, base64, magic, lengths,
    /// a cipher other than `none`), [`Error::EncryptedPrivateKey`] for a passphrase-protected key.
    pub fn from_private_armored(text: &str) -> Result<Self> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return Err(format_error("empty"));
        };
        if lines.len() < 3 || *first != BEGIN_PRIVATE || *last != END_PRIVATE {
            return Err(format_error(
                "expected CRYPT4GH PRIVATE KEY armour around a base64 body",
            ));
        }
        let body = lines[1..lines.len() - 1].concat();
        let blob = b64::decode_lenient(&body).map_err(|err| format_error(&err.to_string()))?;
        parse_blob(&blob).map(Self::from_secret_bytes)
    }

    /// Opens a sealed box addressed to this key pair.
    ///
    /// Errors: [`Error::Open`] if the box is too short, was sealed for another key or was altered.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        self.secret.unseal(sealed).map_err(|_| Error::Open)
    }

    /// Opens a base64 sealed box holding UTF-8 text, the form the service sends.
    ///
    /// Errors: [`Error::Base64`], [`Error::Open`], [`Error::NotUtf8`].
    pub fn open_base64(&self, sealed: &str) -> Result<String> {
        let sealed = b64::decode_lenient(sealed)?;
        String::from_utf8(self.open(&sealed)?).map_err(|_| Error::NotUtf8)
    }
}

fn format_error(reason: &str) -> Error {
    Error::PrivateKeyFormat(reason.to_owned())
}

/// Reads the secret out of a decoded private-key blob.
fn parse_blob(blob: &[u8]) -> Result<[u8; KEY_LEN]> {
    let mut rest = blob
        .strip_prefix(MAGIC)
        .ok_or_else(|| format_error("missing c4gh-v1 magic"))?;
    let kdf = take_string(&mut rest)?;
    if kdf != NONE {
        return Err(if KNOWN_KDFS.contains(&kdf) {
            Error::EncryptedPrivateKey(String::from_utf8_lossy(kdf).into_owned())
        } else {
            format_error("unknown kdf")
        });
    }
    let cipher = take_string(&mut rest)?;
    if cipher != NONE {
        return Err(format_error("a key without kdf must have cipher none"));
    }
    // A trailing comment string may follow; like the reference implementation, ignore it.
    take_string(&mut rest)?
        .try_into()
        .map_err(|_| format_error("the secret key must be 32 bytes"))
}

fn take_string<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8]> {
    let (len, tail) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| format_error("truncated"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if tail.len() < len {
        return Err(format_error("truncated"));
    }
    let (value, tail) = tail.split_at(len);
    *rest = tail;
    Ok(value)
}

impl fmt::Debug for Crypt4ghKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypt4ghKeyPair")
            .field("public_key", &self.public)
            .field("secret", &"**********")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal;

    fn armor(blob: &[u8]) -> String {
        format!("{BEGIN_PRIVATE}\n{}\n{END_PRIVATE}\n", b64::encode(blob))
    }

    fn string(value: &[u8]) -> Vec<u8> {
        let mut out = (value.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(value);
        out
    }

    fn blob(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for part in parts {
            out.extend(string(part));
        }
        out
    }

    #[test]
    fn generated_keys_differ_and_derive_their_public_key() {
        let a = Crypt4ghKeyPair::generate();
        let b = Crypt4ghKeyPair::generate();
        assert_ne!(a.secret_bytes(), b.secret_bytes());
        let derived = crypto_box::SecretKey::from_bytes(a.secret_bytes()).public_key();
        assert_eq!(a.public_key().as_bytes(), derived.as_bytes());
    }

    #[test]
    fn private_file_has_the_crypt4gh_layout() {
        let pair = Crypt4ghKeyPair::from_secret_bytes([9u8; 32]);
        let text = pair.private_armored();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "-----BEGIN CRYPT4GH PRIVATE KEY-----");
        assert_eq!(lines[2], "-----END CRYPT4GH PRIVATE KEY-----");
        assert!(text.ends_with('\n'));
        let decoded = b64::decode_lenient(lines[1]).unwrap();
        assert_eq!(decoded, blob(&[b"none", b"none", &[9u8; 32]]));
    }

    #[test]
    fn private_file_round_trips() {
        let pair = Crypt4ghKeyPair::generate();
        let back = Crypt4ghKeyPair::from_private_armored(&pair.private_armored()).unwrap();
        assert_eq!(back.secret_bytes(), pair.secret_bytes());
        assert_eq!(back.public_key(), pair.public_key());
    }

    #[test]
    fn public_file_parses_as_public_key() {
        let pair = Crypt4ghKeyPair::generate();
        let parsed = Crypt4ghPublicKey::parse(&pair.public_armored()).unwrap();
        assert_eq!(parsed, pair.public_key());
    }

    #[test]
    fn private_file_is_rejected_as_public_key() {
        let pair = Crypt4ghKeyPair::generate();
        assert_eq!(
            Crypt4ghPublicKey::parse(&pair.private_armored()).unwrap_err(),
            Error::PrivateKeyGiven
        );
    }

    #[test]
    fn a_trailing_comment_is_ignored() {
        let text = armor(&blob(&[b"none", b"none", &[3u8; 32], b"a comment"]));
        let pair = Crypt4ghKeyPair::from_private_armored(&text).unwrap();
        assert_eq!(pair.secret_bytes(), [3u8; 32]);
    }

    #[test]
    fn encrypted_keys_are_rejected() {
        for kdf in ["scrypt", "bcrypt", "pbkdf2_hmac_sha256"] {
            let text = armor(&blob(&[
                kdf.as_bytes(),
                &[0, 0, 0, 16, 1, 2, 3, 4],
                b"chacha20_poly1305",
                &[5u8; 60],
            ]));
            let err = Crypt4ghKeyPair::from_private_armored(&text).unwrap_err();
            assert_eq!(err, Error::EncryptedPrivateKey(kdf.to_owned()));
            assert!(err.to_string().contains("not supported"));
        }
    }

    #[test]
    fn malformed_private_files_are_rejected() {
        let good = blob(&[b"none", b"none", &[3u8; 32]]);
        let cases = [
            String::new(),
            "\n \n".to_owned(),
            b64::encode(&good),
            format!("{BEGIN_PRIVATE}\n{END_PRIVATE}\n"),
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                b64::encode(&good)
            ),
            format!("{BEGIN_PRIVATE}\nabc\n{END_PRIVATE}\n"),
            armor(b"c4gh-v2"),
            armor(&good[..good.len() - 1]),
            armor(&blob(&[b"none"])),
            armor(&blob(&[b"magic", b"none", &[3u8; 32]])),
            armor(&blob(&[b"none", b"chacha20_poly1305", &[3u8; 32]])),
            armor(&blob(&[b"none", b"none", &[3u8; 31]])),
            armor(&blob(&[b"none", b"none", &[3u8; 33]])),
            armor(&[0xff; 3]),
        ];
        for text in cases {
            let err = Crypt4ghKeyPair::from_private_armored(&text).unwrap_err();
            assert!(
                matches!(err, Error::PrivateKeyFormat(_)),
                "{text:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn open_reads_what_seal_wrote() {
        let pair = Crypt4ghKeyPair::generate();
        let sealed = seal::seal(&pair.public_key(), b"hello").unwrap();
        assert_eq!(pair.open(&sealed).unwrap(), b"hello");
        let text = seal::seal_base64(&pair.public_key(), "héllo").unwrap();
        assert_eq!(pair.open_base64(&text).unwrap(), "héllo");
    }

    #[test]
    fn open_errors() {
        let pair = Crypt4ghKeyPair::generate();
        let other = Crypt4ghKeyPair::generate();
        let sealed = seal::seal(&other.public_key(), b"hello").unwrap();
        assert_eq!(pair.open(&sealed).unwrap_err(), Error::Open);
        assert_eq!(pair.open(&[0u8; 10]).unwrap_err(), Error::Open);
        assert_eq!(pair.open(&[]).unwrap_err(), Error::Open);
        assert!(matches!(pair.open_base64("abc"), Err(Error::Base64(_))));
        let binary = b64::encode(&seal::seal(&pair.public_key(), &[0xff, 0xfe]).unwrap());
        assert_eq!(pair.open_base64(&binary).unwrap_err(), Error::NotUtf8);
    }

    #[test]
    fn debug_hides_the_secret() {
        let pair = Crypt4ghKeyPair::from_secret_bytes([0xab; 32]);
        let shown = format!("{pair:?}");
        assert!(shown.contains("**********"));
        assert!(shown.contains(&pair.public_key().to_base64()));
        assert!(!shown.contains(&b64::encode(&[0xab; 32])));
        assert!(!shown.to_lowercase().contains("abab"));
        assert!(!shown.contains("171"));
    }
}
