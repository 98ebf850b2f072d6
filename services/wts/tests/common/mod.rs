//! Spawning the real app on port 0 with a fresh embedded store, fakes for the IdPs and the
//! commons token validator, and small HTTP helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use async_trait::async_trait;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;
use tessera_embedded::EmbeddedStore;
use tessera_kit::dao::Filter;
use tessera_tokens::{
    AccessTokenValidator, Cipher, Fernet, Identity, RefreshTokenRecord, TokenExchange,
    ValidationError,
};
use wts::config::IdentitySource;
use wts::{Overrides, RunningWts, WtsConfig, prepare, start};

/// Valid commons tokens: `alice-token`, `bob-token`.
#[derive(Debug)]
pub struct FakeValidator;

#[async_trait]
impl AccessTokenValidator for FakeValidator {
    async fn validate(&self, token: &str) -> Result<Identity, ValidationError> {
        match token {
            "alice-token" => Ok(Identity {
                subject: "1".into(),
                username: "alice".into(),
            }),
            "bob-token" => Ok(Identity {
                subject: "2".into(),
                username: "bob".into(),
            }),
            _ => Err(ValidationError("signature verification failed".into())),
        }
    }
}

/// The workspace address [`config`] maps to carol.
pub const CAROL_IP: &str = "10.0.0.1";

pub fn config(dir: &std::path::Path) -> WtsConfig {
    let mut config = WtsConfig {
        wts_base_url: "https://wts.commons.org/wts/".into(),
        fence_base_url: "https://commons.org/user".into(),
        encryption_key: Fernet::generate_key().into(),
        secret_key: "the-session-signing-secret".into(),
        oidc_client_id: "wts-client".into(),
        oidc_client_secret: "wts-secret".into(),
        identity_source: IdentitySource::Static,
        purge_interval_seconds: 0,
        ..WtsConfig::default()
    };
    // Workspaces come through one proxy hop; the tests set X-Forwarded-For.
    config.forwarded_for_hops = 1;
    config
        .static_identities
        .insert(CAROL_IP.into(), "carol".into());
    config.http.port = 0;
    config.embedded.embedded_db_path = dir.join("wts.sqlite");
    config
}

pub struct App {
    pub url: String,
    pub running: RunningWts,
    pub fernet: Fernet,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn spawn(
    change: impl FnOnce(&mut WtsConfig),
    exchanges: Vec<(&str, Arc<dyn TokenExchange>)>,
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    change(&mut config);
    let fernet = Fernet::new(config.encryption_key.expose()).unwrap();
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let overrides = Overrides {
        store: Some(store),
        validator: Some(Arc::new(FakeValidator)),
        exchanges: exchanges
            .into_iter()
            .map(|(id, x)| (id.to_owned(), x))
            .collect::<BTreeMap<_, _>>(),
        ..Overrides::default()
    };
    let core = prepare(config, overrides).await.unwrap();
    let running = start(core).await.unwrap();
    App {
        url: running.url().unwrap(),
        running,
        fernet,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl App {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.url))
    }

    /// `GET path` from carol's workspace (through the proxy, as [`CAROL_IP`]).
    pub fn get_from_workspace(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).header("x-forwarded-for", CAROL_IP)
    }

    /// Stores a refresh token for (username, idp).
    pub async fn store(&self, username: &str, idp: &str, token: &str, expires: i64) {
        self.running
            .core()
            .dao
            .insert(&RefreshTokenRecord {
                id: uuid_v4(),
                token_ciphertext: self.fernet.encrypt(token).unwrap(),
                jti: format!("jti-{token}"),
                username: username.into(),
                userid: format!("sub-{username}"),
                idp: idp.into(),
                expires,
            })
            .await
            .unwrap();
    }

    pub async fn rows(&self) -> Vec<RefreshTokenRecord> {
        self.running
            .core()
            .dao
            .find_all(&Filter::new())
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.running.stop().await.unwrap();
    }
}

pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends `request`: its status and JSON body (see [`json`]).
pub async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    json(request.send().await.unwrap()).await
}

/// Status and JSON body (Null when the body is empty or not JSON).
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A self-signed CA certificate for `127.0.0.1`, and its key.
pub fn self_signed() -> (X509, PKey<openssl::pkey::Private>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "kubernetes").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    cert.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    cert.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&cert.x509v3_context(None, None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    (cert.build(), key)
}

/// An HTTPS server with a [`self_signed`] certificate (written to `<dir>/ca.crt`) that
/// answers one request per connection until the process ends: `answer(target, head)`
/// gives the status line and JSON body. Returns `127.0.0.1:<port>`.
pub fn serve_https(
    dir: &Path,
    answer: impl Fn(&str, &str) -> (&'static str, Value) + Send + 'static,
) -> String {
    let (cert, key) = self_signed();
    std::fs::write(dir.join("ca.crt"), cert.to_pem().unwrap()).unwrap();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&cert).unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A client that refuses the certificate aborts the handshake: just go on.
            let Ok(mut tls) = acceptor.accept(stream) else {
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n")
                && tls.read(&mut byte).map(|n| n == 1).unwrap_or(false)
            {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            // Read the body too: closing with unread data would reset the connection.
            let length: usize = header_in(&head, "content-length")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = tls.read_exact(&mut body);
            let target = head.split_whitespace().nth(1).unwrap_or_default();
            let (status, body) = answer(target, &head);
            let body = body.to_string();
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.shutdown();
        }
    });
    host
}

/// A header's value in a raw request head (name in any case).
pub fn header_in<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
