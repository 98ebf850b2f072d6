//! Signing keys per issuer.
//!
//! Where the keys of an issuer are (§B2, §B9.3): the `jwks_uri` of its discovery document;
//! `<issuer>/jwt/keys` (Fence's `{"keys": [[kid, pem], …]}`) only when the discovery document
//! cannot be fetched or parsed; a discovery document without `jwks_uri` is an error. Both
//! places may serve either format.
//!
//! Keys are fetched on first use and again when a token names an unknown `kid`, but at most
//! once per `min_refresh` per issuer, so forged `kid`s cannot make the service hammer an IdP.
//! The store trusts the issuer it is asked about: callers check issuers first.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::{Map, Value};

use crate::discovery;
use crate::http::get_json;
use crate::{Error, Result};

/// The public keys of one issuer, each with a verifier per algorithm it fits.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<(Option<String>, Arc<VerifyKey>)>,
}

/// One public key.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    verifiers: Vec<(&'static str, Box<dyn JwsVerifier>)>,
}

impl VerifyKey {
    /// Verifies a compact JWS with algorithm `alg` and returns its payload.
    pub fn verify(&self, alg: &str, token: &str) -> Result<Vec<u8>, String> {
        let (_, verifier) = self
            .verifiers
            .iter()
            .find(|(name, _)| *name == alg)
            .ok_or_else(|| format!("the key does not fit algorithm {alg}"))?;
        jws::deserialize_compact(token, verifier.as_ref())
            .map(|(payload, _)| payload)
            .map_err(|e| format!("invalid signature: {e}"))
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> impl Iterator<Item = &str> {
        self.verifiers.iter().map(|(alg, _)| *alg)
    }
}

const RSA_ALGS: [&str; 6] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

fn rsa_verifier(alg: &str, jwk: Option<&Jwk>, pem: Option<&[u8]>) -> Option<Box<dyn JwsVerifier>> {
    macro_rules! make {
        ($alg:expr) => {{
            let mut verifier = match (jwk, pem) {
                (Some(jwk), _) => $alg.verifier_from_jwk(jwk).ok()?,
                (None, Some(pem)) => $alg.verifier_from_pem(pem).ok()?,
                (None, None) => return None,
            };
            // The key was picked by kid already; josekit would demand it again.
            verifier.remove_key_id();
            Some(Box::new(verifier) as Box<dyn JwsVerifier>)
        }};
    }
    match alg {
        "RS256" => make!(jws::RS256),
        "RS384" => make!(jws::RS384),
        "RS512" => make!(jws::RS512),
        "PS256" => make!(jws::PS256),
        "PS384" => make!(jws::PS384),
        "PS512" => make!(jws::PS512),
        _ => None,
    }
}

impl VerifyKey {
    /// A key from a public JWK; `None` for keys that cannot verify (encryption keys,
    /// symmetric or private ones, unknown types).
    fn from_jwk(map: &Map<String, Value>) -> Option<Self> {
        if map
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
            || ["d", "k", "p", "q"].iter().any(|p| map.contains_key(*p))
        {
            return None;
        }
        let jwk = Jwk::from_map(map.clone()).ok()?;
        let fixed_alg = map.get("alg").and_then(Value::as_str);
        let wanted = |alg: &str| fixed_alg.is_none_or(|fixed| fixed == alg);
        let mut verifiers: Vec<(&'static str, Box<dyn JwsVerifier>)> = Vec::new();
        macro_rules! push {
            ($name:expr, $alg:expr) => {
                if wanted($name)
                    && let Ok(mut verifier) = $alg.verifier_from_jwk(&jwk)
                {
                    verifier.remove_key_id();
                    verifiers.push(($name, Box::new(verifier)));
                }
            };
        }
        match (jwk.key_type(), jwk.curve()) {
            ("RSA", _) => {
                for alg in RSA_ALGS {
                    if wanted(alg)
                        && let Some(verifier) = rsa_verifier(alg, Some(&jwk), None)
                    {
                        verifiers.push((alg, verifier));
                    }
                }
            }
            ("EC", Some("P-256")) => push!("ES256", jws::ES256),
            ("EC", Some("P-384")) => push!("ES384", jws::ES384),
            ("EC", Some("P-521")) => push!("ES512", jws::ES512),
            ("OKP", Some("Ed25519" | "Ed448")) => push!("EdDSA", jws::EdDSA),
            _ => {}
        }
        (!verifiers.is_empty()).then_some(Self { verifiers })
    }

    /// An RSA public key in PEM (Fence's key list).
    fn from_pem(pem: &str) -> Option<Self> {
        let verifiers: Vec<_> = RSA_ALGS
            .into_iter()
            .filter_map(|alg| Some((alg, rsa_verifier(alg, None, Some(pem.as_bytes()))?)))
            .collect();
        (!verifiers.is_empty()).then_some(Self { verifiers })
    }
}

impl KeySet {
    /// Parses `{"keys": [jwk, …]}` or Fence's `{"keys": [[kid, pem], …]}` (mixed is fine).
    /// Entries that are not usable verification keys are skipped.
    pub fn parse(document: &Map<String, Value>) -> Result<Self, String> {
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("no keys list")?;
        let mut keys = Vec::new();
        for entry in entries {
            match entry {
                Value::Object(jwk) => {
                    if let Some(key) = VerifyKey::from_jwk(jwk) {
                        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
                        keys.push((kid, Arc::new(key)));
                    }
                }
                Value::Array(pair) => {
                    if let [Value::String(kid), Value::String(pem)] = pair.as_slice()
                        && let Some(key) = VerifyKey::from_pem(pem)
                    {
                        keys.push((Some(kid.clone()), Arc::new(key)));
                    }
                }
                _ => {}
            }
        }
        Ok(Self { keys })
    }

    /// The key with this id; without an id, the only key there is.
    pub fn get(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key.clone()),
            None => match self.keys.as_slice() {
                [(_, only)] => Some(only.clone()),
                _ => None,
            },
        }
    }

    /// How many usable keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[derive(Default)]
struct IssuerKeys {
    keys: Mutex<Arc<KeySet>>,
    fetched_at: Mutex<Option<Instant>>,
    /// Serialises fetches so that a burst of unknown kids costs one.
    refresh: tokio::sync::Mutex<()>,
}

/// Signing keys of every issuer asked about, shared by the access-token validator and the
/// IdP clients.
pub struct KeyStore {
    client: reqwest::Client,
    min_refresh: Duration,
    issuers: Mutex<HashMap<String, Arc<IssuerKeys>>>,
    fetches: AtomicUsize,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("min_refresh", &self.min_refresh)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyStore {
    /// A store fetching over `client`, refreshing an issuer at most once per `min_refresh`.
    pub fn new(client: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            client,
            min_refresh,
            issuers: Mutex::new(HashMap::new()),
            fetches: AtomicUsize::new(0),
        }
    }

    /// How many key sets were fetched so far (for tests and metrics).
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    fn issuer(&self, issuer: &str) -> Arc<IssuerKeys> {
        lock(&self.issuers)
            .entry(issuer.trim_end_matches('/').to_owned())
            .or_default()
            .clone()
    }

    /// The key `kid` of `issuer` (without a kid: the issuer's only key), fetching the key
    /// set when it is unknown and the last fetch is at least `min_refresh` ago.
    pub async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<VerifyKey>> {
        let entry = self.issuer(issuer);
        if let Some(key) = lock(&entry.keys).get(kid) {
            return Ok(key);
        }
        let unknown = || Error::UnknownKey {
            issuer: issuer.to_owned(),
            kid: kid.unwrap_or("(none)").to_owned(),
        };
        let _refreshing = entry.refresh.lock().await;
        // Another task may have refreshed while this one waited.
        if let Some(key) = lock(&entry.keys).get(kid) {
            return Ok(key);
        }
        let due = lock(&entry.fetched_at).is_none_or(|at| at.elapsed() >= self.min_refresh);
        if !due {
            return Err(unknown());
        }
        *lock(&entry.fetched_at) = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let set = Arc::new(self.fetch(issuer).await?);
        tracing::debug!(issuer, keys = set.len(), "signing keys fetched");
        *lock(&entry.keys) = set.clone();
        set.get(kid).ok_or_else(unknown)
    }

    async fn fetch(&self, issuer: &str) -> Result<KeySet> {
        let base = issuer.trim_end_matches('/');
        let url = match discovery::fetch(&self.client, base).await {
            Ok(metadata) => metadata.jwks_uri.ok_or_else(|| Error::Document {
                url: discovery::discovery_url(base),
                reason: "no jwks_uri".to_owned(),
            })?,
            Err(e) => {
                tracing::debug!(issuer, error = %e, "no discovery document; trying /jwt/keys");
                format!("{base}/jwt/keys")
            }
        };
        let doc = get_json(&self.client, &url).await?;
        KeySet::parse(&doc).map_err(|reason| Error::Document { url, reason })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_jwks_and_fence_lists_and_skips_unusable_entries() {
        let rsa = josekit::jwk::alg::rsa::RsaKeyPair::generate(2048).unwrap();
        let mut public = rsa.to_jwk_public_key();
        public.set_key_id("rsa-1");
        let pem = String::from_utf8(rsa.to_pem_public_key()).unwrap();
        let ec = josekit::jwk::alg::ec::EcKeyPair::generate(josekit::jwk::alg::ec::EcCurve::P256)
            .unwrap();
        let mut ec_public = ec.to_jwk_public_key();
        ec_public.set_key_id("ec-1");
        ec_public.set_algorithm("ES256");
        let mut enc = rsa.to_jwk_public_key();
        enc.set_key_id("enc");
        enc.set_key_use("enc");
        let doc = json!({"keys": [
            Value::Object(public.as_ref().clone()),
            Value::Object(ec_public.as_ref().clone()),
            Value::Object(enc.as_ref().clone()),
            ["fence-1", pem],
            ["broken", "not a pem"],
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            42,
        ]});
        let set = KeySet::parse(doc.as_object().unwrap()).unwrap();
        assert_eq!(set.len(), 3);
        let rsa_key = set.get(Some("rsa-1")).unwrap();
        assert!(rsa_key.algorithms().any(|a| a == "RS256"));
        assert_eq!(
            set.get(Some("ec-1"))
                .unwrap()
                .algorithms()
                .collect::<Vec<_>>(),
            ["ES256"]
        );
        assert!(
            set.get(Some("fence-1"))
                .unwrap()
                .algorithms()
                .any(|a| a == "RS256")
        );
        for missing in ["enc", "broken", "hmac", "nope"] {
            assert!(set.get(Some(missing)).is_none(), "{missing}");
        }
        assert!(set.get(None).is_none(), "no kid with several keys");
        assert!(KeySet::parse(json!({"nokeys": []}).as_object().unwrap()).is_err());
    }
}
