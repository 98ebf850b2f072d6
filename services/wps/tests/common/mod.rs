//! Shared test fixtures: keys, configs, a fake access API, and the real app on port 0 with
//! a fresh SQLite file.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tessera_auth::{JwtSigner, JwtVerifier, generate_es256_jwk_pair};
use tessera_config::Secret;
use tessera_crypt::Crypt4ghKeyPair;
use tessera_work_orders::testing::ManualClock;
use tessera_work_orders::{
    AccessCheck, AccessCheckError, AccessionMap, Dataset, DatasetFile, UploadBox, WorkPackageType,
};
use uuid::Uuid;
use wps::run::{Parts, RunningWps, start};
use wps::{Overrides, WpsConfig, prepare_core};

/// The keys of one test: the work order signing key and the internal auth key.
pub struct Keys {
    pub signing_private: String,
    pub signing_public: String,
    pub auth_private: String,
    pub auth_public: String,
}

impl Keys {
    pub fn generate() -> Self {
        let (signing_private, signing_public) = generate_es256_jwk_pair().unwrap();
        let (auth_private, auth_public) = generate_es256_jwk_pair().unwrap();
        Self {
            signing_private,
            signing_public,
            auth_private,
            auth_public,
        }
    }

    /// An internal auth token with `claims` as given.
    pub fn token_with(&self, claims: Value) -> String {
        let signer = JwtSigner::from_jwk_json(&self.auth_private).unwrap();
        signer.sign(claims.as_object().unwrap()).unwrap()
    }

    /// A valid internal auth token for `user_id`.
    pub fn token(&self, user_id: &str) -> String {
        let now = Utc::now().timestamp();
        self.token_with(json!({
            "id": user_id, "name": "Ada Lovelace", "email": "ada@example.org",
            "title": "Dr.", "roles": [], "iat": now, "exp": now + 3600,
        }))
    }

    /// Verifies a work order token with the signing key's public part; returns its header
    /// (decoded) and claims.
    pub fn verify_wot(&self, jws: &str) -> (Value, Map<String, Value>) {
        let verifier = JwtVerifier::from_jwk_json(&self.signing_public, &["ES256".into()]).unwrap();
        let claims = verifier.verify(jws).unwrap();
        let header = jws.split('.').next().unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        (serde_json::from_slice(&header).unwrap(), claims)
    }
}

/// A config for tests: the keys, a fresh SQLite file, port 0.
pub fn config(keys: &Keys, db: &std::path::Path) -> WpsConfig {
    let mut config = WpsConfig {
        work_package_signing_key: Secret::new(keys.signing_private.clone()),
        auth_key: keys.auth_public.clone(),
        ..WpsConfig::default()
    };
    config.http.port = 0;
    config.embedded.embedded_db_path = db.to_owned();
    config.log.log_level = "OFF".into();
    config
}

/// What the fake access API answers for one resource.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Until(DateTime<Utc>),
    Fail,
}

/// An access API whose answers tests set; unset resources mean no access.
#[derive(Debug, Default)]
pub struct FakeAccess {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    download: HashMap<(Uuid, String), Answer>,
    upload: HashMap<(Uuid, Uuid), Answer>,
    download_list: Option<Vec<(String, DateTime<Utc>)>>,
    upload_list: Option<Vec<(Uuid, DateTime<Utc>)>>,
    list_fails: bool,
}

impl FakeAccess {
    pub fn set_download(&self, user: Uuid, dataset: &str, answer: Option<Answer>) {
        let mut s = self.state.lock().unwrap();
        match answer {
            Some(a) => s.download.insert((user, dataset.to_owned()), a),
            None => s.download.remove(&(user, dataset.to_owned())),
        };
    }

    pub fn set_upload(&self, user: Uuid, box_id: Uuid, answer: Option<Answer>) {
        let mut s = self.state.lock().unwrap();
        match answer {
            Some(a) => s.upload.insert((user, box_id), a),
            None => s.upload.remove(&(user, box_id)),
        };
    }

    pub fn set_download_list(&self, list: Vec<(String, DateTime<Utc>)>) {
        self.state.lock().unwrap().download_list = Some(list);
    }

    pub fn set_upload_list(&self, list: Vec<(Uuid, DateTime<Utc>)>) {
        self.state.lock().unwrap().upload_list = Some(list);
    }

    pub fn fail_lists(&self, fail: bool) {
        self.state.lock().unwrap().list_fails = fail;
    }

    fn answer(a: Option<Answer>) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        match a {
            None => Ok(None),
            Some(Answer::Until(t)) => Ok(Some(t)),
            Some(Answer::Fail) => Err(AccessCheckError::new("access api down")),
        }
    }
}

#[async_trait]
impl AccessCheck for FakeAccess {
    async fn check_download_access(
        &self,
        user_id: Uuid,
        dataset_id: &str,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        let a = self
            .state
            .lock()
            .unwrap()
            .download
            .get(&(user_id, dataset_id.to_owned()))
            .copied();
        Self::answer(a)
    }

    async fn list_download_access(
        &self,
        _user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, AccessCheckError> {
        let s = self.state.lock().unwrap();
        if s.list_fails {
            return Err(AccessCheckError::new("access api down"));
        }
        Ok(s.download_list.clone().unwrap_or_default())
    }

    async fn check_upload_access(
        &self,
        user_id: Uuid,
        box_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        let a = self
            .state
            .lock()
            .unwrap()
            .upload
            .get(&(user_id, box_id))
            .copied();
        Self::answer(a)
    }

    async fn list_upload_access(
        &self,
        _user_id: Uuid,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, AccessCheckError> {
        let s = self.state.lock().unwrap();
        if s.list_fails {
            return Err(AccessCheckError::new("access api down"));
        }
        Ok(s.upload_list.clone().unwrap_or_default())
    }
}

/// The real app (REST only) on port 0 with a fresh database, a fake access API and a
/// manual clock set to now.
pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub keys: Keys,
    pub access: Arc<FakeAccess>,
    pub clock: Arc<ManualClock>,
    pub running: RunningWps,
    _dir: tempfile::TempDir,
}

pub const DATASET: &str = "GHGAD00000000000001";
pub const FILE1: &str = "GHGAF00000000000001";
pub const FILE2: &str = "GHGAF00000000000002";
pub const FILE3: &str = "GHGAF00000000000003";

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut WpsConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::generate();
        let mut config = config(&keys, &dir.path().join("wps.sqlite"));
        adjust(&mut config);
        let access = Arc::new(FakeAccess::default());
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let core = prepare_core(
            config,
            Overrides {
                access: Some(access.clone()),
                clock: Some(clock.clone()),
                ..Overrides::default()
            },
        )
        .await
        .unwrap();
        let running = start(core, Parts::REST).await.unwrap();
        Self {
            url: running.url().unwrap(),
            client: reqwest::Client::new(),
            keys,
            access,
            clock,
            running,
            _dir: dir,
        }
    }

    pub fn repo(&self) -> &tessera_work_orders::WorkPackageRepository {
        &self.running.core().repository
    }

    /// Stores a download dataset with three files and their accession maps (not FILE3's).
    pub async fn seed_dataset(&self) -> (Uuid, Uuid) {
        let dataset = Dataset {
            id: DATASET.into(),
            stage: WorkPackageType::Download,
            title: "A dataset".into(),
            description: Some("for tests".into()),
            files: [(FILE1, ".json"), (FILE2, ".csv"), (FILE3, ".bam")]
                .into_iter()
                .map(|(a, e)| DatasetFile {
                    accession: a.into(),
                    extension: e.into(),
                })
                .collect(),
        };
        self.repo().upsert_dataset(&dataset).await.unwrap();
        let (f1, f2) = (Uuid::new_v4(), Uuid::new_v4());
        for (accession, file_id) in [(FILE1, f1), (FILE2, f2)] {
            self.repo()
                .upsert_accession_map(&AccessionMap {
                    accession: accession.into(),
                    file_id,
                })
                .await
                .unwrap();
        }
        (f1, f2)
    }

    /// Stores a research data upload box; returns (box id, file upload box id).
    pub async fn seed_box(&self) -> (Uuid, Uuid) {
        let upload_box = UploadBox {
            id: Uuid::new_v4(),
            file_upload_box_id: Uuid::new_v4(),
            title: "A box".into(),
            description: None,
        };
        self.repo().upsert_upload_box(&upload_box).await.unwrap();
        (upload_box.id, upload_box.file_upload_box_id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn post_json(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    pub async fn post_empty(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    /// Creates a download package for `user` (with access granted until `until`); returns
    /// (package id, access token).
    pub async fn create_download(
        &self,
        user: Uuid,
        pair: &Crypt4ghKeyPair,
        until: DateTime<Utc>,
    ) -> (String, String) {
        self.access
            .set_download(user, DATASET, Some(Answer::Until(until)));
        let resp = self
            .post_json(
                "/work-packages",
                Some(&self.keys.token(&user.to_string())),
                &json!({"type": "download", "dataset_id": DATASET, "file_ids": null,
                        "user_public_crypt4gh_key": pair.public_key().to_base64()}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        let token = pair.open_base64(body["token"].as_str().unwrap()).unwrap();
        (body["id"].as_str().unwrap().to_owned(), token)
    }

    /// Creates an upload package for `user` and `box_id`; returns (package id, token).
    pub async fn create_upload(
        &self,
        user: Uuid,
        pair: &Crypt4ghKeyPair,
        box_id: Uuid,
        until: DateTime<Utc>,
    ) -> (String, String) {
        self.access
            .set_upload(user, box_id, Some(Answer::Until(until)));
        let resp = self
            .post_json(
                "/work-packages",
                Some(&self.keys.token(&user.to_string())),
                &json!({"type": "upload", "research_data_upload_box_id": box_id,
                        "user_public_crypt4gh_key": pair.public_key().to_base64()}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        let token = pair.open_base64(body["token"].as_str().unwrap()).unwrap();
        (body["id"].as_str().unwrap().to_owned(), token)
    }
}

/// Asserts a 403 with `detail`.
pub async fn assert_forbidden(resp: reqwest::Response, detail: &str) {
    assert_eq!(resp.status(), 403, "expected 403 {detail:?}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "detail": detail }));
}

/// Asserts a 401 "Not authenticated" with `WWW-Authenticate: Bearer`.
pub async fn assert_not_authenticated(resp: reqwest::Response) {
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"detail": "Not authenticated"}));
}

/// Asserts a 401 "Invalid authentication credentials" without `WWW-Authenticate`.
pub async fn assert_invalid_credentials(resp: reqwest::Response) {
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "Invalid authentication credentials"})
    );
}

/// Asserts a 422 and returns its `detail` list.
pub async fn validation_items(resp: reqwest::Response) -> Vec<Value> {
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    body["detail"].as_array().unwrap().clone()
}
