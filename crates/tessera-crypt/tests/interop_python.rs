//! Interop with independent implementations: PyNaCl (libsodium) and the Python `crypt4gh`
//! package, driven through `scripts/interop/crypt4gh_interop.py`.
//!
//! The interpreter is `$TESSERA_PYTHON` (default `python3`), with the packages of
//! `scripts/interop/requirements.txt`. Without them each test prints `SKIPPED: …` and passes,
//! unless `TESSERA_REQUIRE_INTEROP=1`, in which case it fails.

// Helpers outside #[test] functions panic on purpose too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_crypt::{Crypt4ghKeyPair, Crypt4ghPublicKey, Error, b64, seal};
use tessera_test_support::interop::Oracle;

fn oracle() -> Oracle {
    Oracle::new("crypt4gh_interop.py")
}

fn std_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn un_b64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap()
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"abcdefghijklmnopqrstuvwx".to_vec(),
        "eyJhbGciOiJFUzI1NiJ9.é.ü".as_bytes().to_vec(),
        (0..=255u8).cycle().take(5000).collect(),
    ]
}

#[test]
fn pynacl_opens_what_rust_seals() {
    if !oracle().available("pynacl_opens_what_rust_seals") {
        return;
    }
    let pair = oracle().run(&["nacl-keypair"]);
    let recipient = Crypt4ghPublicKey::parse(pair["public"].as_str().unwrap()).unwrap();
    let mut boxes: Vec<String> = messages()
        .iter()
        .map(|m| std_b64(&seal(&recipient, m).unwrap()))
        .collect();
    boxes.push(tessera_crypt::seal_base64(&recipient, "a token").unwrap());
    let opened = oracle().run_with_request(
        "nacl-open",
        &json!({"secret": pair["secret"], "boxes": boxes}),
    );
    let plaintexts: Vec<Vec<u8>> = opened["plaintexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(un_b64)
        .collect();
    let mut expected = messages();
    expected.push(b"a token".to_vec());
    assert_eq!(plaintexts, expected);
}

#[test]
fn rust_opens_what_pynacl_seals() {
    if !oracle().available("rust_opens_what_pynacl_seals") {
        return;
    }
    let pair = Crypt4ghKeyPair::generate();
    let encoded: Vec<String> = messages().iter().map(|m| std_b64(m)).collect();
    let sealed = oracle().run_with_request(
        "nacl-seal",
        &json!({"public": pair.public_key().to_base64(), "messages": encoded}),
    );
    let opened: Vec<Vec<u8>> = sealed["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| pair.open(&un_b64(b)).unwrap())
        .collect();
    assert_eq!(opened, messages());
}

#[test]
fn python_crypt4gh_loads_our_key_files() {
    if !oracle().available("python_crypt4gh_loads_our_key_files") {
        return;
    }
    let pair = Crypt4ghKeyPair::generate();
    let dir = tempfile::tempdir().unwrap();
    let (sec, public) = (dir.path().join("rust.sec"), dir.path().join("rust.pub"));
    std::fs::write(&sec, pair.private_armored()).unwrap();
    std::fs::write(&public, pair.public_armored()).unwrap();
    let loaded = oracle().run(&["c4gh-load", sec.to_str().unwrap(), public.to_str().unwrap()]);
    assert_eq!(un_b64(&loaded["secret"]), pair.secret_bytes());
    assert_eq!(un_b64(&loaded["public"]), pair.public_key().as_bytes());
    assert_eq!(
        un_b64(&loaded["derived_public"]),
        pair.public_key().as_bytes()
    );
}

#[test]
fn python_crypt4gh_key_files_normalise_in_rust() {
    if !oracle().available("python_crypt4gh_key_files_normalise_in_rust") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let generated = oracle().run(&["c4gh-generate", dir.path().to_str().unwrap()]);
    let public_file = std::fs::read_to_string(dir.path().join("py.pub")).unwrap();
    let public = Crypt4ghPublicKey::parse(&public_file).unwrap();
    assert_eq!(public.as_bytes().as_slice(), un_b64(&generated["public"]));
    assert_eq!(public.to_base64(), generated["public"].as_str().unwrap());

    let private_file = std::fs::read_to_string(dir.path().join("py.sec")).unwrap();
    assert_eq!(
        Crypt4ghPublicKey::parse(&private_file).unwrap_err(),
        Error::PrivateKeyGiven
    );
    let pair = Crypt4ghKeyPair::from_private_armored(&private_file).unwrap();
    assert_eq!(pair.secret_bytes().as_slice(), un_b64(&generated["secret"]));
    assert_eq!(pair.public_key(), public);

    let locked = std::fs::read_to_string(dir.path().join("locked.sec")).unwrap();
    assert!(matches!(
        Crypt4ghKeyPair::from_private_armored(&locked),
        Err(Error::EncryptedPrivateKey(_))
    ));
}

#[test]
fn lenient_base64_matches_python() {
    if !oracle().available("lenient_base64_matches_python") {
        return;
    }
    let mut inputs: Vec<String> = [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "ab=",
        "ab==",
        "ab=c",
        "ab==c",
        "abc=",
        "abc=d===",
        "=ab==",
        "ab=\n=",
        "abc=====xyz",
        "ab=cd",
        "YW Jj\nZA==",
        "-_.!*",
        "a=b=c=d",
        "====",
        "ab\u{e9}c",
        "ab\tc\rd",
        "abcd=efgh",
        "abc==",
        "a===",
        "ab===c",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Deterministic pseudo-random strings over base64-ish characters.
    let alphabet = b"AQgw+/=\n -_#";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 13) as usize;
        let text: String = (0..len)
            .map(|i| alphabet[((state >> (i * 4)) % alphabet.len() as u64) as usize] as char)
            .collect();
        inputs.push(text);
    }
    let python = oracle().run_with_request("b64decode", &json!({"inputs": inputs}));
    for (input, expected) in inputs.iter().zip(python["results"].as_array().unwrap()) {
        match (b64::decode_lenient(input), expected.get("ok")) {
            (Ok(bytes), Some(ok)) => assert_eq!(bytes, un_b64(ok), "{input:?}"),
            (Err(Error::Base64(message)), None) => {
                assert_eq!(message, expected["error"].as_str().unwrap(), "{input:?}")
            }
            (ours, _) => panic!("{input:?}: rust {ours:?}, python {expected}"),
        }
    }
}
