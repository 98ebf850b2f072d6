//! A fake IdP on loopback (discovery, JWKS, Fence's key list, token and revocation
//! endpoints under `/user/`), recording what it receives, and token-minting helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::KeyPair as _;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{self, JwsSigner};
use serde_json::{Map, Value, json};
use tessera_tokens::Clock;

/// What the discovery document looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// With `jwks_uri` and `revocation_endpoint`.
    Full,
    /// Without `jwks_uri`.
    NoJwksUri,
    /// Without `revocation_endpoint`.
    NoRevocation,
    /// 404.
    Missing,
    /// Authorization, token and revocation endpoints under `/idp/` instead of Fence's paths
    /// (a provider other than Fence standing in as the commons' IdP).
    Elsewhere,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub form: HashMap<String, String>,
}

pub struct State {
    pub base: Mutex<String>,
    pub discovery: Mutex<DiscoveryMode>,
    pub jwks: Mutex<Value>,
    pub fence_keys: Mutex<Value>,
    pub token_answer: Mutex<(u16, Value)>,
    pub token_delay: Mutex<Duration>,
    pub revoke_status: Mutex<u16>,
    pub userinfo: Mutex<Value>,
    pub requests: Mutex<Vec<Recorded>>,
    pub discovery_hits: AtomicUsize,
    pub jwks_hits: AtomicUsize,
    pub fence_hits: AtomicUsize,
}

pub struct FakeIdp {
    pub url: String,
    pub state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeIdp {
    pub async fn start() -> Self {
        let state = Arc::new(State {
            base: Mutex::new(String::new()),
            discovery: Mutex::new(DiscoveryMode::Full),
            jwks: Mutex::new(json!({"keys": []})),
            fence_keys: Mutex::new(json!({"keys": []})),
            token_answer: Mutex::new((200, json!({}))),
            token_delay: Mutex::new(Duration::ZERO),
            revoke_status: Mutex::new(200),
            userinfo: Mutex::new(json!({})),
            requests: Mutex::new(Vec::new()),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            fence_hits: AtomicUsize::new(0),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/user/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/user/jwks", web::get().to(jwks))
                .route("/user/jwt/keys", web::get().to(fence_keys))
                .route("/user/oauth2/token", web::post().to(token))
                .route("/user/oauth2/revoke", web::post().to(revoke))
                .route("/idp/token", web::post().to(token))
                .route("/idp/revoke", web::post().to(revoke))
                .route("/user/userinfo", web::get().to(userinfo))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        let url = format!("http://{addr}");
        *state.base.lock().unwrap() = url.clone();
        Self { url, state, handle }
    }

    /// The issuer: `<url>/user`.
    pub fn issuer(&self) -> String {
        format!("{}/user", self.url)
    }

    pub fn set_jwks(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn set_discovery(&self, mode: DiscoveryMode) {
        *self.state.discovery.lock().unwrap() = mode;
    }

    pub fn answer_token(&self, status: u16, body: Value) {
        *self.state.token_answer.lock().unwrap() = (status, body);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn key_fetches(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
            + self.state.jwks_hits.load(Ordering::SeqCst)
            + self.state.fence_hits.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn discovery(state: web::Data<State>) -> HttpResponse {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let base = state.base.lock().unwrap().clone();
    let mut doc = json!({
        "issuer": format!("{base}/user"),
        "authorization_endpoint": format!("{base}/user/oauth2/authorize"),
        "token_endpoint": format!("{base}/user/oauth2/token"),
        "jwks_uri": format!("{base}/user/jwks"),
        "revocation_endpoint": format!("{base}/user/oauth2/revoke"),
        "userinfo_endpoint": format!("{base}/user/userinfo"),
    });
    match *state.discovery.lock().unwrap() {
        DiscoveryMode::Full => {}
        DiscoveryMode::NoJwksUri => {
            doc.as_object_mut().unwrap().remove("jwks_uri");
        }
        DiscoveryMode::NoRevocation => {
            doc.as_object_mut().unwrap().remove("revocation_endpoint");
        }
        DiscoveryMode::Missing => return HttpResponse::NotFound().finish(),
        DiscoveryMode::Elsewhere => {
            doc["authorization_endpoint"] = json!(format!("{base}/idp/authorize"));
            doc["token_endpoint"] = json!(format!("{base}/idp/token"));
            doc["revocation_endpoint"] = json!(format!("{base}/idp/revoke"));
        }
    }
    HttpResponse::Ok().json(doc)
}

async fn jwks(state: web::Data<State>) -> HttpResponse {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(state.jwks.lock().unwrap().clone())
}

async fn fence_keys(state: web::Data<State>) -> HttpResponse {
    state.fence_hits.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(state.fence_keys.lock().unwrap().clone())
}

fn record(state: &State, req: &HttpRequest, form: HashMap<String, String>) {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    state.requests.lock().unwrap().push(Recorded {
        path: req.path().to_owned(),
        headers,
        form,
    });
}

async fn token(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    record(&state, &req, form.into_inner());
    let delay = *state.token_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, body) = state.token_answer.lock().unwrap().clone();
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

async fn userinfo(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    record(&state, &req, HashMap::new());
    HttpResponse::Ok().json(state.userinfo.lock().unwrap().clone())
}

async fn revoke(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    record(&state, &req, form.into_inner());
    let status = *state.revoke_status.lock().unwrap();
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    signer: Box<dyn JwsSigner>,
    pub public_jwk: Value,
    pub public_pem: String,
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(2048).unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id(kid);
        Self {
            kid: kid.to_owned(),
            alg: "RS256",
            signer: Box::new(
                jws::RS256
                    .signer_from_der(pair.to_der_private_key())
                    .unwrap(),
            ),
            public_jwk: Value::Object(public.as_ref().clone()),
            public_pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
        }
    }

    pub fn es256(kid: &str) -> Self {
        let pair = EcKeyPair::generate(EcCurve::P256).unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id(kid);
        Self {
            kid: kid.to_owned(),
            alg: "ES256",
            signer: Box::new(
                jws::ES256
                    .signer_from_der(pair.to_der_private_key())
                    .unwrap(),
            ),
            public_jwk: Value::Object(public.as_ref().clone()),
            public_pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
        }
    }

    /// A compact JWS of `claims` with header `{"alg", "kid"}` (plus `extra` header fields).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    pub fn sign_with_header(&self, header: Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let signature = self.signer.sign(message.as_bytes()).unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// An unsigned-looking token with any header (for `none` and HMAC headers).
pub fn forge(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A clock fixed at a second.
#[derive(Debug)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

pub const NOW: i64 = 1_800_000_000;

/// Claims of a valid commons access token for `issuer`.
pub fn access_claims(issuer: &str) -> Map<String, Value> {
    json!({
        "iss": issuer,
        "sub": "42",
        "aud": ["gen3", "other"],
        "scope": ["openid", "user", "data"],
        "pur": "access",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "jti": "abc",
        "context": {"user": {"name": "alice@example.org"}},
    })
    .as_object()
    .unwrap()
    .clone()
}
