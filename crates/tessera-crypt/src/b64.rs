//! Base64 decoding with the leniency of Python's `base64.b64decode(s)` (non-strict
//! `binascii.a2b_base64`), because the original service validates keys with it and clients
//! rely on what it accepts.
//!
//! The rules, as CPython implements them:
//! - characters outside `A-Z a-z 0-9 + /` and `=` (whitespace, newlines, `-`, …) are skipped;
//! - `=` ends the input once it completes a quantum (one after three data characters, two after
//!   two); anything after that is ignored, and `=` elsewhere is skipped;
//! - a final quantum of one data character is an error, of two or three without padding it is
//!   "Incorrect padding";
//! - a `str` with non-ASCII characters is rejected before decoding.

use crate::{Error, Result};

const PAD: u8 = b'=';

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes `input` as Python's `base64.b64decode(input)` does for a `str`.
///
/// Errors are [`Error::Base64`] with Python's message.
pub fn decode_lenient(input: &str) -> Result<Vec<u8>> {
    if !input.is_ascii() {
        return Err(Error::Base64(
            "string argument should contain only ASCII characters".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    // Position inside the current 4-character quantum, the bits carried over, and the number of
    // consecutive pads seen, mirroring CPython's state machine.
    let mut quad_pos = 0u8;
    let mut left = 0u8;
    let mut pads = 0u8;
    for byte in input.bytes() {
        if byte == PAD {
            pads = pads.saturating_add(1);
            if quad_pos >= 2 && quad_pos + pads >= 4 {
                return Ok(out);
            }
            continue;
        }
        let Some(value) = sextet(byte) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => {
                left = value;
                quad_pos = 1;
            }
            1 => {
                out.push((left << 2) | (value >> 4));
                left = value & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push((left << 4) | (value >> 2));
                left = value & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push((left << 6) | value);
                left = 0;
                quad_pos = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(Error::Base64(format!(
            "Invalid base64-encoded string: number of data characters ({}) cannot be 1 more than \
             a multiple of 4",
            out.len() / 3 * 4 + 1
        ))),
        _ => Err(Error::Base64("Incorrect padding".to_owned())),
    }
}

/// Standard base64 with padding, the form the service stores and sends.
pub fn encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Vec<u8> {
        decode_lenient(input).unwrap()
    }

    fn err(input: &str) -> String {
        decode_lenient(input).unwrap_err().to_string()
    }

    // Expected values were taken from CPython 3.11's base64.b64decode.
    #[test]
    fn matches_python_on_tricky_inputs() {
        assert_eq!(ok(""), b"");
        assert_eq!(ok("YWJj\nZA=="), b"abcd");
        assert_eq!(ok("ab==c"), b"i");
        assert_eq!(ok("abc=====xyz"), b"i\xb7");
        assert_eq!(ok("ab=\n="), b"i");
        assert_eq!(ok("=ab=="), b"i");
        assert_eq!(ok("abc=d==="), b"i\xb7");
        assert_eq!(ok("ab=cd"), b"i\xb7\x1d");
        assert_eq!(ok("-_YW Jj.!"), b"abc");
    }

    #[test]
    fn reports_python_errors() {
        assert_eq!(err("abc"), "Incorrect padding");
        assert_eq!(err("ab=c"), "Incorrect padding");
        assert_eq!(err("ab="), "Incorrect padding");
        assert_eq!(
            err("abcde"),
            "Invalid base64-encoded string: number of data characters (5) cannot be 1 more than \
             a multiple of 4"
        );
        assert_eq!(
            err("a"),
            "Invalid base64-encoded string: number of data characters (1) cannot be 1 more than \
             a multiple of 4"
        );
        assert_eq!(
            err("é"),
            "string argument should contain only ASCII characters"
        );
    }

    #[test]
    fn agrees_with_the_base64_crate_on_canonical_input() {
        use base64::Engine as _;
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(ok(&text), bytes, "length {len}");
            assert_eq!(encode(&bytes), text);
        }
    }
}
