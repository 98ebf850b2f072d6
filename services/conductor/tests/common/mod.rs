//! What the conductor's test suites share: a free port, the config of a test app with a
//! fresh store and object directory, and the MD5 form uploads send.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use base64::Engine as _;
use conductor::ConductorConfig;
use md5::Digest as _;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The config of an app on `port` with a new key, its store and objects under `dir`, the
/// local object store served at `/objects`.
pub fn config(dir: &Path, port: u16) -> ConductorConfig {
    let base = format!("http://127.0.0.1:{port}");
    let mut config = ConductorConfig {
        base_url: base.clone(),
        private_key: conductor::keys::generate_private_key().unwrap().into(),
        ..ConductorConfig::default()
    };
    config.http.port = port;
    config.embedded.embedded_db_path = dir.join("db.sqlite");
    config.objects.objects_root = dir.join("objects");
    config.objects.objects_public_url = format!("{base}/objects");
    config
}

/// Base64 of the MD5 of `data` (`Content-MD5`).
pub fn md5_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// Signs `email` in through a test provider: the user and their user token.
pub async fn sign_in(
    identity: &tessera_conductor::Identity,
    email: &str,
) -> (tessera_conductor::User, String) {
    identity
        .sign_in(&tessera_conductor::SignedIn {
            provider: "test".into(),
            subject: email.into(),
            email: email.into(),
            name: Some("A Name".into()),
            picture: None,
        })
        .await
        .unwrap()
}
