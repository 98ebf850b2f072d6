//! Work package access tokens (wps.md §2.1) and work order token claims (§2.4).

use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::models::WorkType;

/// The length of a work package access token; the connector's length check of the sealed
/// token depends on it.
pub const WPAT_LEN: usize = 24;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh work package access token: [`WPAT_LEN`] characters of `[A-Za-z0-9]` from the
/// operating system's CSPRNG. MUST fail with [`Error::Internal`] when there is no randomness.
pub fn generate_access_token() -> Result<String> {
    let mut token = String::with_capacity(WPAT_LEN);
    let mut buf = [0u8; 48];
    while token.len() < WPAT_LEN {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
        // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if token.len() == WPAT_LEN {
                break;
            }
            token.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    Ok(token)
}

/// Lower-case hex SHA-256 of the token's UTF-8 bytes: the only form that is stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` hashes to `stored_hash`, compared without an early exit.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let got = hash_token(token);
    got.len() == stored_hash.len()
        && got
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// What a work order token allows (wps.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOrder {
    /// Download the file `file_id` known as `accession`.
    Download {
        /// The file id from the accession map.
        file_id: Uuid,
        /// The file accession.
        accession: String,
    },
    /// Create a file upload named `alias` in the file upload box `box_id`.
    Create {
        /// The new file's alias.
        alias: String,
        /// The file upload box.
        box_id: Uuid,
    },
    /// Upload parts of `file_id` in `box_id`.
    Upload {
        /// The file upload.
        file_id: Uuid,
        /// The file upload box.
        box_id: Uuid,
    },
    /// Complete `file_id` in `box_id`.
    Close {
        /// The file upload.
        file_id: Uuid,
        /// The file upload box.
        box_id: Uuid,
    },
    /// Delete `file_id` in `box_id`.
    Delete {
        /// The file upload.
        file_id: Uuid,
        /// The file upload box.
        box_id: Uuid,
    },
    /// View the file upload box `box_id`.
    View {
        /// The file upload box.
        box_id: Uuid,
    },
}

impl WorkOrder {
    /// The `work_type` claim.
    pub fn work_type(&self) -> WorkType {
        match self {
            Self::Download { .. } => WorkType::Download,
            Self::Create { .. } => WorkType::Create,
            Self::Upload { .. } => WorkType::Upload,
            Self::Close { .. } => WorkType::Close,
            Self::Delete { .. } => WorkType::Delete,
            Self::View { .. } => WorkType::View,
        }
    }

    /// The token's claims: `work_type`, the work type's own fields,
    /// `user_public_crypt4gh_key`, integer `iat` and `exp = iat + lifetime_secs`. Nothing
    /// else (no user id, name or e-mail).
    pub fn claims(
        &self,
        user_public_key: &str,
        iat: i64,
        lifetime_secs: i64,
    ) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("work_type".into(), json!(self.work_type().as_str()));
        match self {
            Self::Download { file_id, accession } => {
                claims.insert("file_id".into(), json!(file_id.to_string()));
                claims.insert("accession".into(), json!(accession));
            }
            Self::Create { alias, box_id } => {
                claims.insert("alias".into(), json!(alias));
                claims.insert("box_id".into(), json!(box_id.to_string()));
            }
            Self::Upload { file_id, box_id }
            | Self::Close { file_id, box_id }
            | Self::Delete { file_id, box_id } => {
                claims.insert("file_id".into(), json!(file_id.to_string()));
                claims.insert("box_id".into(), json!(box_id.to_string()));
            }
            Self::View { box_id } => {
                claims.insert("box_id".into(), json!(box_id.to_string()));
            }
        }
        claims.insert("user_public_crypt4gh_key".into(), json!(user_public_key));
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(iat.saturating_add(lifetime_secs)));
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_24_alphanumerics_and_differ() {
        let a = generate_access_token().unwrap();
        let b = generate_access_token().unwrap();
        assert_eq!(a.len(), WPAT_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_lower_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(token_matches("abc", &hash_token("abc")));
        assert!(!token_matches("abd", &hash_token("abc")));
        assert!(!token_matches("abc", ""));
        assert!(!token_matches("abc", &hash_token("abc").to_uppercase()));
    }

    #[test]
    fn claims_per_work_type_are_exact() {
        let f = Uuid::new_v4();
        let b = Uuid::new_v4();
        let (fs, bs) = (f.to_string(), b.to_string());
        let key = "a2V5";
        let base = |extra: Value| {
            let mut m = extra.as_object().unwrap().clone();
            m.insert("user_public_crypt4gh_key".into(), json!(key));
            m.insert("iat".into(), json!(1000));
            m.insert("exp".into(), json!(1030));
            m
        };
        let cases = [
            (
                WorkOrder::Download {
                    file_id: f,
                    accession: "GHGAF1".into(),
                },
                json!({"work_type": "download", "file_id": fs, "accession": "GHGAF1"}),
            ),
            (
                WorkOrder::Create {
                    alias: "a.txt".into(),
                    box_id: b,
                },
                json!({"work_type": "create", "alias": "a.txt", "box_id": bs}),
            ),
            (
                WorkOrder::Upload {
                    file_id: f,
                    box_id: b,
                },
                json!({"work_type": "upload", "file_id": fs, "box_id": bs}),
            ),
            (
                WorkOrder::Close {
                    file_id: f,
                    box_id: b,
                },
                json!({"work_type": "close", "file_id": fs, "box_id": bs}),
            ),
            (
                WorkOrder::Delete {
                    file_id: f,
                    box_id: b,
                },
                json!({"work_type": "delete", "file_id": fs, "box_id": bs}),
            ),
            (
                WorkOrder::View { box_id: b },
                json!({"work_type": "view", "box_id": bs}),
            ),
        ];
        for (order, extra) in cases {
            let claims = order.claims(key, 1000, 30);
            assert_eq!(claims, base(extra), "{order:?}");
            assert!(claims["iat"].is_i64() && claims["exp"].is_i64());
        }
    }
}
