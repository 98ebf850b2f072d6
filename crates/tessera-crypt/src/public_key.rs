//! [`Crypt4ghPublicKey`]: a user's Crypt4GH (X25519) public key, validated and normalised as the
//! original service does (WPS spec §2.3 and §10 items 2-3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, KEY_LEN, Result, b64};

const BEGIN_PUBLIC: &str = "-----BEGIN CRYPT4GH PUBLIC KEY-----";
const END_PUBLIC: &str = "-----END CRYPT4GH PUBLIC KEY-----";

/// A validated Crypt4GH public key: 32 raw X25519 bytes.
///
/// Parsing accepts raw base64 and the `CRYPT4GH PUBLIC KEY` armour. The normalised form
/// ([`to_base64`](Self::to_base64), `Display` and serde) is the standard padded base64 of the
/// 32 bytes, re-encoded rather than copied from the input, so an armoured body split over several
/// lines is stored in the one form clients compare with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Crypt4ghPublicKey([u8; KEY_LEN]);

impl Crypt4ghPublicKey {
    /// Wraps raw key bytes unchecked ([`seal`](crate::seal) still refuses a low-order
    /// point; [`parse`](Self::parse) refuses it up front).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Whether the key is a point of small order, on the curve or its twist (all zeros,
    /// one, the order-8 points, and their non-canonical encodings). X25519 with any
    /// clamped scalar, a multiple of the cofactor, sends exactly those to zero: the check
    /// libsodium makes before sealing.
    ///
    /// Decided by comparing the reduced u-coordinate with the five small-order values
    /// (0, 1, p - 1 and the two of order 8), not by a scalar multiplication: that costs an
    /// X25519 ladder (tens of microseconds) per check, and every sealed token checks twice.
    /// A test holds this to the multiplication over all encodings near p and random keys.
    pub fn is_low_order(&self) -> bool {
        let u = reduced_u(self.0);
        SMALL_ORDER_U
            .iter()
            .any(|small| constant_time_eq(small, &u))
    }

    /// Validates and normalises a key given as base64 or armoured text.
    ///
    /// Errors, in the order they are checked: [`Error::EmptyKey`] for an empty or blank value,
    /// [`Error::PrivateKeyGiven`] if a line matches `-.*PRIVATE.*-`, [`Error::Base64`] if the
    /// body is not decodable base64 (Python's lenient rules), [`Error::InvalidKey`] if it does not
    /// decode to exactly 32 bytes, [`Error::LowOrderKey`] if it is a point of small order.
    pub fn parse(input: &str) -> Result<Self> {
        if input.trim().is_empty() {
            return Err(Error::EmptyKey);
        }
        // Python's `re.search` without DOTALL: `.` stops at `\n` only.
        if input.split('\n').any(looks_private) {
            return Err(Error::PrivateKeyGiven);
        }
        let body = input.replace(BEGIN_PUBLIC, "").replace(END_PUBLIC, "");
        let bytes = b64::decode_lenient(body.trim())?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKey)?;
        let key = Self(bytes);
        if key.is_low_order() {
            return Err(Error::LowOrderKey);
        }
        Ok(key)
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The normalised form: standard padded base64 of the 32 bytes (44 characters).
    pub fn to_base64(&self) -> String {
        b64::encode(&self.0)
    }

    /// The key in the Crypt4GH public-key file format, ending with a newline.
    pub fn to_armored(&self) -> String {
        format!("{BEGIN_PUBLIC}\n{}\n{END_PUBLIC}\n", self.to_base64())
    }
}

/// Whether `line` matches the regex `-.*PRIVATE.*-`.
fn looks_private(line: &str) -> bool {
    let Some(dash) = line.find('-') else {
        return false;
    };
    let after_dash = &line[dash + 1..];
    let Some(word) = after_dash.find("PRIVATE") else {
        return false;
    };
    after_dash[word + "PRIVATE".len()..].contains('-')
}

impl fmt::Debug for Crypt4ghPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Crypt4ghPublicKey")
            .field(&self.to_base64())
            .finish()
    }
}

impl fmt::Display for Crypt4ghPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl FromStr for Crypt4ghPublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Crypt4ghPublicKey {
    type Error = Error;

    fn try_from(value: &str) -> Result<Self> {
        Self::parse(value)
    }
}

impl TryFrom<String> for Crypt4ghPublicKey {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<Crypt4ghPublicKey> for String {
    fn from(key: Crypt4ghPublicKey) -> Self {
        key.to_base64()
    }
}

impl From<[u8; KEY_LEN]> for Crypt4ghPublicKey {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }
}

/// The u-coordinates of the points of order dividing 8 on Curve25519 and its twist, in
/// canonical little-endian form: 0 (order 2), 1 (order 4), p - 1 (order 4 on the twist)
/// and the two of order 8.
const SMALL_ORDER_U: [[u8; KEY_LEN]; 5] = [
    [0; KEY_LEN],
    {
        let mut one = [0; KEY_LEN];
        one[0] = 1;
        one
    },
    {
        let mut p_minus_1 = [0xff; KEY_LEN];
        p_minus_1[0] = 0xec;
        p_minus_1[KEY_LEN - 1] = 0x7f;
        p_minus_1
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
];

/// The u-coordinate as X25519 reads it: the top bit ignored, then reduced mod p = 2^255 - 19
/// (only the 19 values from p to 2^255 - 1 change: they become 0 to 18).
fn reduced_u(bytes: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut u = bytes;
    u[KEY_LEN - 1] &= 0x7f;
    let at_least_p =
        u[KEY_LEN - 1] == 0x7f && u[1..KEY_LEN - 1].iter().all(|&b| b == 0xff) && u[0] >= 0xed;
    if at_least_p {
        let low = u[0] - 0xed;
        u = [0; KEY_LEN];
        u[0] = low;
    }
    u
}

/// Compares without an early exit (public keys are public, but keeping key-derived
/// comparisons branch-free costs nothing here).
fn constant_time_eq(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// libsodium's list of small-order X25519 points (`has_small_order`), each also with the
/// ignored top bit set.
#[cfg(test)]
pub(crate) fn low_order_points() -> Vec<[u8; KEY_LEN]> {
    let hex = |h: &str| -> [u8; KEY_LEN] {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    };
    let canonical = [
        // 0 (order 4) and 1 (order 1)
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        // the two points of order 8
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        // p - 1 (order 2), p (= 0) and p + 1 (= 1)
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    canonical
        .iter()
        .flat_map(|h| {
            let point = hex(h);
            let mut high = point;
            high[KEY_LEN - 1] |= 0x80;
            [point, high]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition: X25519 with a clamped scalar (a multiple of the cofactor) sends the
    /// point to zero.
    fn low_order_by_multiplication(bytes: [u8; KEY_LEN]) -> bool {
        curve25519_dalek::montgomery::MontgomeryPoint(bytes)
            .mul_clamped([0x5a; KEY_LEN])
            .to_bytes()
            == [0; KEY_LEN]
    }

    #[test]
    fn the_comparison_agrees_with_the_multiplication() {
        let mut cases: Vec<[u8; KEY_LEN]> = low_order_points();
        // Every encoding from p - 40 to 2^256 - 1 whose upper bytes are all ones, with and
        // without the top bit: the non-canonical ones among them.
        for top in [0x7f, 0xff] {
            for low in 0xc0..=0xff {
                let mut bytes = [0xff; KEY_LEN];
                bytes[0] = low;
                bytes[KEY_LEN - 1] = top;
                cases.push(bytes);
            }
        }
        // Small values and their neighbours.
        for low in 0..=40u8 {
            let mut bytes = [0; KEY_LEN];
            bytes[0] = low;
            cases.push(bytes);
            bytes[KEY_LEN - 1] = 0x80;
            cases.push(bytes);
        }
        for point in SMALL_ORDER_U {
            for i in 0..KEY_LEN {
                let mut near = point;
                near[i] ^= 1;
                cases.push(near);
            }
        }
        for _ in 0..200 {
            cases.push(*crate::Crypt4ghKeyPair::generate().public_key().as_bytes());
            cases.push(rand::random());
        }
        let mut low = 0;
        for bytes in cases {
            let expected = low_order_by_multiplication(bytes);
            low += usize::from(expected);
            assert_eq!(
                Crypt4ghPublicKey::from_bytes(bytes).is_low_order(),
                expected,
                "{}",
                b64_of(&bytes)
            );
        }
        // 5 values, 2 top bits each, plus p and p + 1 in both forms; the list has 14 of them.
        assert!(low >= 14, "{low}");
    }

    proptest! {
        #[test]
        fn any_key_agrees_with_the_multiplication(bytes in any::<[u8; KEY_LEN]>()) {
            prop_assert_eq!(
                Crypt4ghPublicKey::from_bytes(bytes).is_low_order(),
                low_order_by_multiplication(bytes)
            );
        }
    }

    #[test]
    fn low_order_points_are_refused() {
        for point in low_order_points() {
            let key = Crypt4ghPublicKey::from_bytes(point);
            assert!(key.is_low_order(), "{}", b64_of(&point));
            for text in [b64_of(&point), key.to_armored()] {
                assert_eq!(
                    Crypt4ghPublicKey::parse(&text).unwrap_err(),
                    Error::LowOrderKey,
                    "{text}"
                );
            }
        }
        assert!(!Crypt4ghPublicKey::from_bytes(RAW).is_low_order());
    }

    const RAW: [u8; 32] = [
        0x6b, 0x1f, 0xa3, 0x00, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0,
        0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
        0x0b, 0x0c,
    ];

    fn b64_of(bytes: &[u8]) -> String {
        b64::encode(bytes)
    }

    fn armor(body: &str) -> String {
        format!("{BEGIN_PUBLIC}\n{body}\n{END_PUBLIC}\n")
    }

    #[test]
    fn raw_base64_is_accepted() {
        let key = Crypt4ghPublicKey::parse(&b64_of(&RAW)).unwrap();
        assert_eq!(key.as_bytes(), &RAW);
        assert_eq!(key.to_base64(), b64_of(&RAW));
        assert_eq!(key.to_base64().len(), 44);
    }

    #[test]
    fn armored_and_raw_normalise_to_the_same_value() {
        let raw = Crypt4ghPublicKey::parse(&b64_of(&RAW)).unwrap();
        let armored = Crypt4ghPublicKey::parse(&armor(&b64_of(&RAW))).unwrap();
        assert_eq!(raw, armored);
        assert_eq!(raw.to_base64(), armored.to_base64());
    }

    #[test]
    fn two_line_armored_body_normalises_without_the_inner_newline() {
        let text = b64_of(&RAW);
        let (first, second) = text.split_at(20);
        let key = Crypt4ghPublicKey::parse(&armor(&format!("{first}\n{second}"))).unwrap();
        assert_eq!(key.to_base64(), text);
        assert!(!key.to_base64().contains('\n'));
    }

    #[test]
    fn surrounding_whitespace_and_crlf_are_tolerated() {
        let text = format!(
            "  \r\n{BEGIN_PUBLIC}\r\n{}\r\n{END_PUBLIC}\r\n\t",
            b64_of(&RAW)
        );
        assert_eq!(Crypt4ghPublicKey::parse(&text).unwrap().as_bytes(), &RAW);
    }

    #[test]
    fn armor_round_trips() {
        let key = Crypt4ghPublicKey::from_bytes(RAW);
        let armored = key.to_armored();
        assert!(armored.starts_with("-----BEGIN CRYPT4GH PUBLIC KEY-----\n"));
        assert!(armored.ends_with("\n-----END CRYPT4GH PUBLIC KEY-----\n"));
        assert_eq!(Crypt4ghPublicKey::parse(&armored).unwrap(), key);
    }

    #[test]
    fn empty_and_blank_are_rejected() {
        for input in ["", "   ", "\n\t \r\n"] {
            let err = Crypt4ghPublicKey::parse(input).unwrap_err();
            assert_eq!(err, Error::EmptyKey);
            assert_eq!(err.to_string(), "Key must be a non-empty string");
        }
    }

    #[test]
    fn private_keys_of_both_pem_kinds_are_rejected() {
        let body = b64_of(&[7u8; 80]);
        for label in ["CRYPT4GH PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY"] {
            let text = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            let err = Crypt4ghPublicKey::parse(&text).unwrap_err();
            assert_eq!(err, Error::PrivateKeyGiven, "{label}");
            assert_eq!(err.to_string(), "Do not pass a private key");
        }
        // Only the END line is enough.
        let text = format!("{}\n-----END CRYPT4GH PRIVATE KEY-----", b64_of(&RAW));
        assert_eq!(
            Crypt4ghPublicKey::parse(&text).unwrap_err(),
            Error::PrivateKeyGiven
        );
    }

    #[test]
    fn private_regex_is_line_bound() {
        assert!(looks_private("-PRIVATE-"));
        assert!(looks_private("x-a PRIVATE b-y"));
        assert!(!looks_private("PRIVATE-"));
        assert!(!looks_private("-PRIVATE"));
        assert!(!looks_private("-PRIVAT-E-"));
        assert!(!looks_private("--PRIVATE"));
        // Spread over two lines the regex does not match, so this fails later as bad base64.
        let err = Crypt4ghPublicKey::parse("-\nPRIVATE\n-").unwrap_err();
        assert_ne!(err, Error::PrivateKeyGiven);
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for len in [1usize, 31, 33, 64] {
            let err = Crypt4ghPublicKey::parse(&b64_of(&vec![1u8; len])).unwrap_err();
            assert_eq!(err, Error::InvalidKey, "length {len}");
            assert_eq!(err.to_string(), "Invalid key");
        }
        // Markers alone are not blank, but decode to nothing.
        assert_eq!(
            Crypt4ghPublicKey::parse(&armor("")).unwrap_err(),
            Error::InvalidKey
        );
    }

    #[test]
    fn a_crypt4gh_private_blob_is_rejected() {
        let blob =
            b64_of(b"c4gh-v1\x00\x04none\x00\x04none\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            Crypt4ghPublicKey::parse(&blob).unwrap_err(),
            Error::InvalidKey
        );
    }

    #[test]
    fn bad_padding_is_rejected_with_pythons_message() {
        let text = b64_of(&RAW);
        let unpadded = text.trim_end_matches('=');
        let err = Crypt4ghPublicKey::parse(unpadded).unwrap_err();
        assert_eq!(err, Error::Base64("Incorrect padding".to_owned()));
        assert_eq!(err.to_string(), "Incorrect padding");
    }

    #[test]
    fn another_armour_left_in_place_is_a_base64_error() {
        let text = format!(
            "-----BEGIN SSH2 PUBLIC KEY-----\n{}\n-----END SSH2 PUBLIC KEY-----",
            b64_of(&RAW)
        );
        assert!(matches!(
            Crypt4ghPublicKey::parse(&text),
            Err(Error::Base64(_) | Error::InvalidKey)
        ));
    }

    #[test]
    fn trait_entry_points_agree() {
        let text = b64_of(&RAW);
        let a: Crypt4ghPublicKey = text.parse().unwrap();
        let b = Crypt4ghPublicKey::try_from(text.as_str()).unwrap();
        let c = Crypt4ghPublicKey::try_from(text.clone()).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), text);
        assert_eq!(String::from(a), text);
        assert_eq!(format!("{a:?}"), format!("Crypt4ghPublicKey({text:?})"));
    }

    #[test]
    fn serde_uses_the_normalised_string_and_validates() {
        let text = b64_of(&RAW);
        let key: Crypt4ghPublicKey =
            serde_json::from_value(serde_json::json!(armor(&text))).unwrap();
        assert_eq!(serde_json::to_value(key).unwrap(), serde_json::json!(text));
        let err = serde_json::from_value::<Crypt4ghPublicKey>(serde_json::json!("")).unwrap_err();
        assert!(err.to_string().contains("Key must be a non-empty string"));
        assert!(serde_json::from_value::<Crypt4ghPublicKey>(serde_json::json!(5)).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(input in any::<String>()) {
            let _ = Crypt4ghPublicKey::parse(&input);
        }

        #[test]
        fn arbitrary_armored_strings_never_panic(body in any::<String>()) {
            let _ = Crypt4ghPublicKey::parse(&armor(&body));
        }

        #[test]
        fn base64ish_strings_never_panic(input in "[A-Za-z0-9+/=\\-\n ]{0,80}") {
            if let Ok(key) = Crypt4ghPublicKey::parse(&input) {
                prop_assert_eq!(Crypt4ghPublicKey::parse(&key.to_base64()).unwrap(), key);
            }
        }

        #[test]
        fn every_key_round_trips_raw_armored_and_split(
            bytes in any::<[u8; 32]>(),
            split in 0usize..=44,
        ) {
            let key = Crypt4ghPublicKey::from_bytes(bytes);
            let text = key.to_base64();
            prop_assert_eq!(Crypt4ghPublicKey::parse(&text).unwrap(), key);
            prop_assert_eq!(Crypt4ghPublicKey::parse(&key.to_armored()).unwrap(), key);
            let (a, b) = text.split_at(split);
            prop_assert_eq!(Crypt4ghPublicKey::parse(&armor(&format!("{a}\n{b}"))).unwrap(), key);
        }
    }
}
