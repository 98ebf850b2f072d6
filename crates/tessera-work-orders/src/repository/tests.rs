use std::sync::Mutex;

use chrono::{TimeZone, Timelike};
use serde_json::{Map, Value};

use super::*;
use crate::collections::{Collections, specs};
use crate::models::{BoxWorkType, DatasetFile};
use crate::ports::{
    AccessCheckError, CryptoError, KeyError, MockAccessCheck, MockTokenCrypto, MockWorkOrderSigner,
};
use crate::testing::{ManualClock, MemoryDocumentDao, spec_dao};

const KEY: &str = "bm9ybWFsaXNlZA==";
const USER: &str = "5f0c4b5e-2b3e-4a6f-9c1d-7e8f9a0b1c2d";
const OTHER_USER: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";
const RDUB: &str = "b0a1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";
const FUB: &str = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
const FILE1: &str = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 29, 10, 11, 12)
        .unwrap()
        .with_nanosecond(345_678_901)
        .unwrap()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Until(DateTime<Utc>),
    Nothing,
    Fail,
}

impl Answer {
    fn get(self) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        match self {
            Self::Until(t) => Ok(Some(t)),
            Self::Nothing => Ok(None),
            Self::Fail => Err(AccessCheckError::new("boom")),
        }
    }
}

/// What the access API answers, and what it was asked.
struct AccessState {
    download: Answer,
    upload: Answer,
    download_list: Option<Vec<(String, DateTime<Utc>)>>,
    upload_list: Option<Vec<(Uuid, DateTime<Utc>)>>,
    calls: Vec<String>,
}

fn access_mock(state: Arc<Mutex<AccessState>>) -> MockAccessCheck {
    let mut m = MockAccessCheck::new();
    let s = state.clone();
    m.expect_check_download_access().returning(move |u, d| {
        let mut st = s.lock().unwrap();
        st.calls.push(format!("download {u} {d}"));
        st.download.get()
    });
    let s = state.clone();
    m.expect_check_upload_access().returning(move |u, b| {
        let mut st = s.lock().unwrap();
        st.calls.push(format!("upload {u} {b}"));
        st.upload.get()
    });
    let s = state.clone();
    m.expect_list_download_access().returning(move |u| {
        let mut st = s.lock().unwrap();
        st.calls.push(format!("list downloads {u}"));
        st.download_list
            .clone()
            .ok_or_else(|| AccessCheckError::new("boom"))
    });
    let s = state;
    m.expect_list_upload_access().returning(move |u| {
        let mut st = s.lock().unwrap();
        st.calls.push(format!("list uploads {u}"));
        st.upload_list
            .clone()
            .ok_or_else(|| AccessCheckError::new("boom"))
    });
    m
}

fn crypto_mock(seal_fails: bool) -> MockTokenCrypto {
    let mut m = MockTokenCrypto::new();
    m.expect_normalise_key().returning(|raw| match raw {
        "" => Err(KeyError::Empty),
        "private" => Err(KeyError::PrivateKey),
        "bad" => Err(KeyError::Invalid),
        _ => Ok(KEY.to_owned()),
    });
    m.expect_seal().returning(move |key, plaintext| {
        if seal_fails {
            Err(CryptoError::new("no seal"))
        } else {
            Ok(format!("sealed({key}):{plaintext}"))
        }
    });
    m
}

fn signer_mock() -> MockWorkOrderSigner {
    let mut m = MockWorkOrderSigner::new();
    m.expect_sign()
        .returning(|claims| Ok(format!("jws:{}", Value::Object(claims.clone()))));
    m
}

fn unseal(sealed: &str) -> String {
    sealed
        .strip_prefix(&format!("sealed({KEY}):"))
        .unwrap_or_else(|| panic!("not sealed for the stored key: {sealed}"))
        .to_owned()
}

fn wot_claims(sealed: &str) -> Map<String, Value> {
    let jws = unseal(sealed);
    let json = jws.strip_prefix("jws:").unwrap();
    serde_json::from_str(json).unwrap()
}

struct Fx {
    repo: WorkPackageRepository,
    clock: Arc<ManualClock>,
    access: Arc<Mutex<AccessState>>,
    wps: Arc<MemoryDocumentDao>,
    datasets: Arc<MemoryDocumentDao>,
    boxes: Arc<MemoryDocumentDao>,
    maps: Arc<MemoryDocumentDao>,
}

fn fx_with(config: RepositoryConfig, seal_fails: bool) -> Fx {
    let s = specs(&Collections::default());
    let (datasets, datasets_dao) = spec_dao(s.datasets);
    let (boxes, boxes_dao) = spec_dao(s.upload_boxes);
    let (wps, wps_dao) = spec_dao(s.work_packages);
    let (maps, maps_dao) = spec_dao(s.accession_maps);
    let far = t0() + TimeDelta::days(365);
    let access = Arc::new(Mutex::new(AccessState {
        download: Answer::Until(far),
        upload: Answer::Until(far),
        download_list: Some(Vec::new()),
        upload_list: Some(Vec::new()),
        calls: Vec::new(),
    }));
    let clock = Arc::new(ManualClock::new(t0()));
    let repo = WorkPackageRepository::new(
        config,
        Daos {
            datasets: datasets_dao,
            upload_boxes: boxes_dao,
            work_packages: wps_dao,
            accession_maps: maps_dao,
        },
        Arc::new(access_mock(access.clone())),
        Arc::new(crypto_mock(seal_fails)),
        Arc::new(signer_mock()),
    )
    .with_clock(clock.clone());
    Fx {
        repo,
        clock,
        access,
        wps,
        datasets,
        boxes,
        maps,
    }
}

fn auth() -> UserContext {
    UserContext {
        id: USER.into(),
        name: "Ada Lovelace".into(),
        email: "ada@example.org".into(),
        title: Some("Dr.".into()),
    }
}

fn dataset(id: &str, files: &[(&str, &str)]) -> Dataset {
    Dataset {
        id: id.into(),
        stage: WorkPackageType::Download,
        title: format!("Dataset {id}"),
        description: None,
        files: files
            .iter()
            .map(|(a, e)| DatasetFile {
                accession: (*a).into(),
                extension: (*e).into(),
            })
            .collect(),
    }
}

fn download_request(file_ids: Option<&[&str]>) -> WorkPackageCreationRequest {
    WorkPackageCreationRequest {
        package_type: WorkPackageType::Download,
        dataset_id: Some("DS1".into()),
        research_data_upload_box_id: None,
        file_ids: file_ids.map(|ids| ids.iter().map(|s| (*s).to_owned()).collect()),
        user_public_crypt4gh_key: "raw key".into(),
    }
}

fn upload_request() -> WorkPackageCreationRequest {
    WorkPackageCreationRequest {
        package_type: WorkPackageType::Upload,
        dataset_id: None,
        research_data_upload_box_id: Some(uuid(RDUB)),
        file_ids: Some(vec!["ignored".into()]),
        user_public_crypt4gh_key: "raw key".into(),
    }
}

fn access_detail<T: fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::Access(detail)) => detail,
        other => panic!("expected a 403, got {other:?}"),
    }
}

impl Fx {
    async fn seed(&self) {
        self.repo
            .upsert_dataset(&dataset(
                "DS1",
                &[("GHGAF3", ".c"), ("GHGAF1", ".a"), ("GHGAF2", ".b")],
            ))
            .await
            .unwrap();
        self.repo
            .upsert_upload_box(&UploadBox {
                id: uuid(RDUB),
                file_upload_box_id: uuid(FUB),
                title: "Box".into(),
                description: Some("a box".into()),
            })
            .await
            .unwrap();
        self.repo
            .upsert_accession_map(&AccessionMap {
                accession: "GHGAF1".into(),
                file_id: uuid(FILE1),
            })
            .await
            .unwrap();
    }

    fn set_download(&self, a: Answer) {
        self.access.lock().unwrap().download = a;
    }

    fn set_upload(&self, a: Answer) {
        self.access.lock().unwrap().upload = a;
    }

    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut self.access.lock().unwrap().calls)
    }

    /// Creates a package and returns its id and plain access token.
    async fn create(&self, request: WorkPackageCreationRequest) -> (Uuid, String) {
        let created = self.repo.create(request, &auth()).await.unwrap();
        self.calls();
        (created.id, unseal(&created.token))
    }

    fn stored(&self, id: Uuid) -> Option<Map<String, Value>> {
        self.wps
            .documents()
            .into_iter()
            .find(|d| d["id"] == Value::String(id.to_string()))
    }
}

// ---- create -------------------------------------------------------------------------

#[tokio::test]
async fn create_stores_the_hash_not_the_token_and_seals_the_token() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let created = fx
        .repo
        .create(download_request(None), &auth())
        .await
        .unwrap();
    let token = unseal(&created.token);
    assert_eq!(token.len(), 24);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(is_uuid4(&created.id));

    let doc = fx.stored(created.id).expect("the package is stored");
    assert_eq!(doc["token_hash"], Value::String(tokens::hash_token(&token)));
    assert!(
        !serde_json::to_string(&doc).unwrap().contains(&token),
        "the plain token is never stored"
    );
    let wp: WorkPackage = serde_json::from_value(Value::Object(doc.clone())).unwrap();
    assert_eq!(wp.user_id, uuid(USER));
    assert_eq!(wp.full_user_name, "Dr. Ada Lovelace");
    assert_eq!(wp.email, "ada@example.org");
    assert_eq!(
        wp.user_public_crypt4gh_key, KEY,
        "the normalised key is stored"
    );
    assert_eq!(wp.dataset_id.as_deref(), Some("DS1"));
    assert_eq!(wp.research_data_upload_box_id, None);
    assert_eq!(wp.created, truncate_ms(t0()), "created is in milliseconds");
    assert_eq!(wp.expires, truncate_ms(t0()) + TimeDelta::days(30));
    assert_eq!(created.expires, wp.expires);
    // The stored object keeps the dataset's file order.
    let keys: Vec<&str> = doc["files"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["GHGAF3", "GHGAF1", "GHGAF2"]);
    assert_eq!(fx.calls(), [format!("download {USER} DS1")]);

    let again = fx
        .repo
        .create(download_request(None), &auth())
        .await
        .unwrap();
    assert_ne!(again.id, created.id);
    assert_ne!(unseal(&again.token), token);
}

#[tokio::test]
async fn expires_is_the_earlier_of_valid_days_and_access_expiry() {
    let config = RepositoryConfig {
        work_package_valid_days: 10,
        ..RepositoryConfig::default()
    };
    let fx = fx_with(config, false);
    fx.seed().await;
    let created = truncate_ms(t0());

    fx.set_download(Answer::Until(t0() + TimeDelta::days(60)));
    let r = fx
        .repo
        .create(download_request(None), &auth())
        .await
        .unwrap();
    assert_eq!(r.expires, created + TimeDelta::days(10));

    let soon = t0() + TimeDelta::days(3) + TimeDelta::nanoseconds(123_456);
    fx.set_download(Answer::Until(soon));
    let r = fx
        .repo
        .create(download_request(None), &auth())
        .await
        .unwrap();
    assert_eq!(r.expires, truncate_ms(soon));
    let stored: WorkPackage =
        serde_json::from_value(Value::Object(fx.stored(r.id).unwrap())).unwrap();
    assert_eq!(stored.expires, r.expires, "the answer shows what is stored");

    // Upload packages follow the same rule with the box's expiry.
    fx.set_upload(Answer::Until(soon));
    let r = fx.repo.create(upload_request(), &auth()).await.unwrap();
    assert_eq!(r.expires, truncate_ms(soon));
}

#[tokio::test]
async fn file_filter_keeps_dataset_order_and_drops_unknown_ids() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, _) = fx
        .create(download_request(Some(&["GHGAF2", "NOPE", "GHGAF3"])))
        .await;
    let doc = fx.stored(id).unwrap();
    let files: Vec<(&str, &str)> = doc["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    assert_eq!(files, [("GHGAF3", ".c"), ("GHGAF2", ".b")]);

    for ids in [&[][..], &["NOPE"][..]] {
        assert_eq!(
            access_detail(fx.repo.create(download_request(Some(ids)), &auth()).await),
            "No existing files have been specified",
            "{ids:?}"
        );
    }
    fx.repo.upsert_dataset(&dataset("DS1", &[])).await.unwrap();
    assert_eq!(
        access_detail(fx.repo.create(download_request(None), &auth()).await),
        "No existing files have been specified"
    );
}

#[tokio::test]
async fn create_validates_the_key_first_then_the_fields_then_the_user() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let bad_user = UserContext {
        id: "not-a-uuid".into(),
        ..auth()
    };
    let mut request = download_request(None);
    request.dataset_id = None;
    for (raw, want) in [
        ("", KeyError::Empty),
        ("private", KeyError::PrivateKey),
        ("bad", KeyError::Invalid),
    ] {
        request.user_public_crypt4gh_key = raw.into();
        match fx.repo.create(request.clone(), &bad_user).await {
            Err(Error::Key(e)) => assert_eq!(e, want),
            other => panic!("expected a key error, got {other:?}"),
        }
    }
    assert_eq!(
        KeyError::Empty.to_string(),
        "Key must be a non-empty string"
    );
    request.user_public_crypt4gh_key = "fine".into();
    match fx.repo.create(request, &bad_user).await {
        Err(Error::Validation(m)) => {
            assert_eq!(m, "dataset_id is required for download work packages");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    for id in [
        "not-a-uuid",
        "",
        "c232ab00-9414-11ec-b3c8-9f68deced846", // version 1
    ] {
        let user = UserContext {
            id: id.into(),
            ..auth()
        };
        assert_eq!(
            access_detail(fx.repo.create(download_request(None), &user).await),
            "Invalid user ID"
        );
    }
    assert!(fx.calls().is_empty(), "no access check before the user id");
    assert!(fx.wps.documents().is_empty());
}

#[tokio::test]
async fn create_download_checks_access_before_the_dataset() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    // A failing dataset store proves the dataset is not read before the access check.
    fx.datasets.fail(true);
    fx.set_download(Answer::Fail);
    assert_eq!(
        access_detail(fx.repo.create(download_request(None), &auth()).await),
        "Failed to check dataset access permission"
    );
    fx.set_download(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.create(download_request(None), &auth()).await),
        "Missing dataset access permission"
    );
    fx.set_download(Answer::Until(t0() + TimeDelta::days(1)));
    assert!(matches!(
        fx.repo.create(download_request(None), &auth()).await,
        Err(Error::Storage(_))
    ));
    fx.datasets.fail(false);
    let mut request = download_request(None);
    request.dataset_id = Some("DS2".into());
    assert_eq!(
        access_detail(fx.repo.create(request, &auth()).await),
        "Cannot determine dataset files"
    );
    assert!(fx.wps.documents().is_empty());

    // The dataset's stage is not checked.
    let mut upload_stage = dataset("DS1", &[("GHGAF1", ".a")]);
    upload_stage.stage = WorkPackageType::Upload;
    fx.repo.upsert_dataset(&upload_stage).await.unwrap();
    assert!(
        fx.repo
            .create(download_request(None), &auth())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn create_upload_checks_access_then_the_box() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    fx.boxes.fail(true);
    fx.set_upload(Answer::Fail);
    assert_eq!(
        access_detail(fx.repo.create(upload_request(), &auth()).await),
        "Failed to check upload box access permission"
    );
    fx.set_upload(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.create(upload_request(), &auth()).await),
        "Missing upload box access permission"
    );
    fx.boxes.fail(false);
    fx.set_upload(Answer::Until(t0() + TimeDelta::days(1)));
    let mut other_box = upload_request();
    other_box.research_data_upload_box_id = Some(Uuid::new_v4());
    assert_eq!(
        access_detail(fx.repo.create(other_box, &auth()).await),
        "Cannot find research data upload box details"
    );
    assert!(fx.wps.documents().is_empty());
    fx.calls();

    let created = fx.repo.create(upload_request(), &auth()).await.unwrap();
    assert_eq!(fx.calls(), [format!("upload {USER} {RDUB}")]);
    let wp: WorkPackage =
        serde_json::from_value(Value::Object(fx.stored(created.id).unwrap())).unwrap();
    assert_eq!(wp.package_type, WorkPackageType::Upload);
    assert!(wp.files.is_empty(), "file_ids is ignored for upload");
    assert_eq!(wp.dataset_id, None);
    assert_eq!(wp.research_data_upload_box_id, Some(uuid(RDUB)));
    assert_eq!(wp.file_upload_box_id, Some(uuid(FUB)));
    assert_eq!(wp.full_user_name, "Dr. Ada Lovelace");
}

#[tokio::test]
async fn full_name_without_title_and_failed_sealing_stores_nothing() {
    let fx = fx_with(RepositoryConfig::default(), true);
    fx.seed().await;
    assert!(matches!(
        fx.repo.create(download_request(None), &auth()).await,
        Err(Error::Crypto(_))
    ));
    assert!(fx.wps.documents().is_empty());

    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let user = UserContext {
        title: None,
        ..auth()
    };
    let created = fx.repo.create(download_request(None), &user).await.unwrap();
    assert_eq!(
        fx.stored(created.id).unwrap()["full_user_name"],
        Value::String("Ada Lovelace".into())
    );
}

// ---- get ----------------------------------------------------------------------------

#[tokio::test]
async fn get_checks_existence_token_expiry_then_access_in_that_order() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(download_request(None)).await;
    let wp = fx.repo.get(id, &token).await.unwrap();
    assert_eq!(fx.calls(), [format!("download {USER} DS1")]);

    assert_eq!(
        access_detail(fx.repo.get(Uuid::new_v4(), &token).await),
        "Work package not found"
    );
    // A wrong token is reported before expiry and access.
    fx.clock.set(wp.expires + TimeDelta::days(1));
    fx.set_download(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.get(id, "wrong-token").await),
        "Invalid work package access token"
    );
    assert_eq!(
        access_detail(fx.repo.get(id, &token.to_lowercase()).await),
        "Invalid work package access token"
    );
    // Expiry is reported before the access re-check, which is then not made.
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Work package has expired"
    );
    fx.clock.set(wp.expires);
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Work package has expired",
        "expires is exclusive"
    );
    fx.clock.set(wp.created - TimeDelta::milliseconds(1));
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Work package has expired",
        "not valid before created"
    );
    assert!(fx.calls().is_empty());

    fx.clock.set(wp.expires - TimeDelta::milliseconds(1));
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Download access has been revoked"
    );
    fx.set_download(Answer::Fail);
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Failed to check dataset access permission"
    );
    fx.set_download(Answer::Until(t0()));
    fx.clock.set(wp.created);
    assert_eq!(fx.repo.get(id, &token).await.unwrap(), wp);
}

#[tokio::test]
async fn get_rechecks_upload_access_on_every_call() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(upload_request()).await;
    fx.repo.get(id, &token).await.unwrap();
    fx.repo.get(id, &token).await.unwrap();
    assert_eq!(
        fx.calls(),
        [
            format!("upload {USER} {RDUB}"),
            format!("upload {USER} {RDUB}")
        ]
    );
    fx.set_upload(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Upload access has been revoked"
    );
    fx.set_upload(Answer::Fail);
    assert_eq!(
        access_detail(fx.repo.get(id, &token).await),
        "Failed to check upload box access permission"
    );
}

#[tokio::test]
async fn storage_failures_and_broken_records_are_not_403s() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(download_request(None)).await;
    fx.wps.fail(true);
    assert!(matches!(
        fx.repo.get(id, &token).await,
        Err(Error::Storage(_))
    ));
    fx.wps.fail(false);
    // A download package without a dataset breaks the type/id rule.
    let mut doc = fx.stored(id).unwrap();
    doc.insert("dataset_id".into(), Value::Null);
    use tessera_kit::dao::DocumentDao;
    fx.wps.upsert(doc).await.unwrap();
    assert!(matches!(
        fx.repo.get(id, &token).await,
        Err(Error::Internal(_))
    ));
}

#[tokio::test]
async fn details_show_the_package_without_secrets() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(download_request(Some(&["GHGAF1"]))).await;
    let details = fx.repo.details(id, &token).await.unwrap();
    assert_eq!(
        serde_json::to_value(&details).unwrap(),
        serde_json::json!({
            "type": "download", "files": {"GHGAF1": ".a"},
            "research_data_upload_box_id": null, "file_upload_box_id": null,
            "created": "2026-05-29T10:11:12.345000Z", "expires": "2026-06-28T10:11:12.345000Z"
        })
    );
    let (id, token) = fx.create(upload_request()).await;
    let details = fx.repo.details(id, &token).await.unwrap();
    assert!(details.files.is_empty());
    assert_eq!(details.research_data_upload_box_id, Some(uuid(RDUB)));
    assert_eq!(details.file_upload_box_id, Some(uuid(FUB)));
    assert_eq!(
        access_detail(fx.repo.details(id, "nope").await),
        "Invalid work package access token"
    );
}

// ---- work order tokens --------------------------------------------------------------

#[tokio::test]
async fn download_wot_claims_and_refusals() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx
        .create(download_request(Some(&["GHGAF1", "GHGAF3"])))
        .await;
    fx.clock.set(t0() + TimeDelta::seconds(100));
    let sealed = fx.repo.download_wot(id, "GHGAF1", &token).await.unwrap();
    let iat = (t0() + TimeDelta::seconds(100)).timestamp();
    let mut want = Map::new();
    want.insert("work_type".into(), Value::from("download"));
    want.insert("file_id".into(), Value::from(FILE1));
    want.insert("accession".into(), Value::from("GHGAF1"));
    want.insert("user_public_crypt4gh_key".into(), Value::from(KEY));
    want.insert("iat".into(), Value::from(iat));
    want.insert("exp".into(), Value::from(iat + 30));
    assert_eq!(wot_claims(&sealed), want);

    assert_eq!(
        access_detail(fx.repo.download_wot(id, "GHGAF2", &token).await),
        "File is not contained in work package"
    );
    assert_eq!(
        access_detail(fx.repo.download_wot(id, "GHGAF3", &token).await),
        "File not available for download"
    );
    assert_eq!(
        access_detail(fx.repo.download_wot(id, "GHGAF1", "nope").await),
        "Invalid work package access token"
    );
    fx.set_download(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.download_wot(id, "GHGAF1", &token).await),
        "Download access has been revoked"
    );

    let (up, up_token) = fx.create(upload_request()).await;
    assert_eq!(
        access_detail(fx.repo.download_wot(up, "GHGAF1", &up_token).await),
        "Work package type must be DOWNLOAD to obtain a download access WOT"
    );
}

#[tokio::test]
async fn wot_lifetime_is_configurable() {
    let config = RepositoryConfig {
        wot_lifetime_secs: 45,
        ..RepositoryConfig::default()
    };
    let fx = fx_with(config, false);
    fx.seed().await;
    let (id, token) = fx.create(download_request(None)).await;
    let claims = wot_claims(&fx.repo.download_wot(id, "GHGAF1", &token).await.unwrap());
    assert_eq!(claims["iat"], Value::from(t0().timestamp()));
    assert_eq!(claims["exp"], Value::from(t0().timestamp() + 45));
}

#[tokio::test]
async fn upload_wots_name_the_file_upload_box_per_work_type() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(upload_request()).await;
    let file = Uuid::new_v4();
    let iat = t0().timestamp();
    let req = |work_type, alias: Option<&str>, file_id| BoxWotRequest {
        work_type,
        alias: alias.map(str::to_owned),
        file_id,
    };
    let cases = [
        (
            req(BoxWorkType::Create, Some("a.bam"), Some(file)),
            serde_json::json!({"work_type": "create", "alias": "a.bam", "box_id": FUB}),
        ),
        (
            req(BoxWorkType::Upload, None, Some(file)),
            serde_json::json!({"work_type": "upload", "file_id": file.to_string(), "box_id": FUB}),
        ),
        (
            req(BoxWorkType::Close, Some("x"), Some(file)),
            serde_json::json!({"work_type": "close", "file_id": file.to_string(), "box_id": FUB}),
        ),
        (
            req(BoxWorkType::Delete, None, Some(file)),
            serde_json::json!({"work_type": "delete", "file_id": file.to_string(), "box_id": FUB}),
        ),
        (
            req(BoxWorkType::View, None, None),
            serde_json::json!({"work_type": "view", "box_id": FUB}),
        ),
    ];
    for (request, extra) in cases {
        let sealed = fx
            .repo
            .upload_wot(id, uuid(RDUB), &request, &token)
            .await
            .unwrap();
        let mut want = extra.as_object().unwrap().clone();
        want.insert("user_public_crypt4gh_key".into(), Value::from(KEY));
        want.insert("iat".into(), Value::from(iat));
        want.insert("exp".into(), Value::from(iat + 30));
        assert_eq!(wot_claims(&sealed), want, "{request:?}");
    }
}

#[tokio::test]
async fn upload_wot_validates_first_then_checks_the_box() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(upload_request()).await;
    let no_alias = BoxWotRequest {
        work_type: BoxWorkType::Create,
        alias: None,
        file_id: None,
    };
    // The request rule comes before the package lookup.
    match fx
        .repo
        .upload_wot(Uuid::new_v4(), uuid(RDUB), &no_alias, "nope")
        .await
    {
        Err(Error::Validation(m)) => assert_eq!(m, "File alias is required for CREATE work type"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    let no_file = BoxWotRequest {
        work_type: BoxWorkType::Delete,
        alias: None,
        file_id: None,
    };
    assert!(matches!(
        fx.repo.upload_wot(id, uuid(RDUB), &no_file, &token).await,
        Err(Error::Validation(_))
    ));
    let view = BoxWotRequest {
        work_type: BoxWorkType::View,
        alias: None,
        file_id: None,
    };
    assert_eq!(
        access_detail(
            fx.repo
                .upload_wot(Uuid::new_v4(), uuid(RDUB), &view, &token)
                .await
        ),
        "Work package not found"
    );
    for wrong in [uuid(FUB), Uuid::new_v4()] {
        assert_eq!(
            access_detail(fx.repo.upload_wot(id, wrong, &view, &token).await),
            "Specified box ID is incorrect."
        );
    }
    let (dl, dl_token) = fx.create(download_request(None)).await;
    assert_eq!(
        access_detail(fx.repo.upload_wot(dl, uuid(RDUB), &view, &dl_token).await),
        "Specified box ID is incorrect.",
        "download packages fail on the box id"
    );
    fx.set_upload(Answer::Nothing);
    assert_eq!(
        access_detail(fx.repo.upload_wot(id, uuid(RDUB), &view, &token).await),
        "Upload access has been revoked"
    );
}

// ---- users --------------------------------------------------------------------------

#[tokio::test]
async fn user_datasets_follow_the_access_api_order_and_skip_unknown_ones() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    fx.repo
        .upsert_dataset(&dataset("DS2", &[("GHGAF9", ".x")]))
        .await
        .unwrap();
    let (e1, e2) = (t0() + TimeDelta::days(1), t0() + TimeDelta::days(2));
    fx.access.lock().unwrap().download_list = Some(vec![
        ("DS9".into(), e1),
        ("DS2".into(), e2),
        ("DS1".into(), e1),
    ]);
    let got = fx.repo.user_datasets(uuid(USER), &auth()).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|d| (d.id.as_str(), d.expires))
            .collect::<Vec<_>>(),
        [("DS2", e2), ("DS1", e1)]
    );
    assert_eq!(got[1].files.len(), 3);
    assert_eq!(fx.calls(), [format!("list downloads {USER}")]);

    let upper = UserContext {
        id: USER.to_uppercase(),
        ..auth()
    };
    assert_eq!(
        access_detail(fx.repo.user_datasets(uuid(USER), &upper).await),
        "Not authorized to get datasets"
    );
    assert_eq!(
        access_detail(fx.repo.user_datasets(uuid(OTHER_USER), &auth()).await),
        "Not authorized to get datasets"
    );
    assert!(fx.calls().is_empty());
    fx.access.lock().unwrap().download_list = None;
    assert_eq!(
        access_detail(fx.repo.user_datasets(uuid(USER), &auth()).await),
        "Failed to fetch accessible datasets with expiration"
    );
    fx.access.lock().unwrap().download_list = Some(vec![("DS1".into(), e1)]);
    fx.datasets.fail(true);
    assert!(matches!(
        fx.repo.user_datasets(uuid(USER), &auth()).await,
        Err(Error::Storage(_))
    ));
}

#[tokio::test]
async fn user_boxes_follow_the_access_api_order_and_skip_unknown_ones() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let second = UploadBox {
        id: Uuid::new_v4(),
        file_upload_box_id: Uuid::new_v4(),
        title: "Second".into(),
        description: None,
    };
    fx.repo.upsert_upload_box(&second).await.unwrap();
    let e = t0() + TimeDelta::days(1);
    fx.access.lock().unwrap().upload_list =
        Some(vec![(second.id, e), (Uuid::new_v4(), e), (uuid(RDUB), e)]);
    let got = fx.repo.user_boxes(uuid(USER), &auth()).await.unwrap();
    assert_eq!(
        got.iter().map(|b| b.id).collect::<Vec<_>>(),
        [second.id, uuid(RDUB)]
    );
    assert_eq!(got[1].file_upload_box_id, uuid(FUB));
    assert_eq!(
        serde_json::to_value(&got[0]).unwrap()["expires"],
        Value::from("2026-05-30T10:11:12.345678Z")
    );
    assert_eq!(
        access_detail(fx.repo.user_boxes(uuid(OTHER_USER), &auth()).await),
        "Not authorized to get upload boxes"
    );
    fx.access.lock().unwrap().upload_list = None;
    assert_eq!(
        access_detail(fx.repo.user_boxes(uuid(USER), &auth()).await),
        "Failed to fetch accessible upload boxes with expiration"
    );
}

// ---- beyond the original ------------------------------------------------------------

#[tokio::test]
async fn users_list_only_their_own_packages_without_secrets() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (first, _) = fx.create(download_request(None)).await;
    fx.clock.set(t0() + TimeDelta::seconds(1));
    let (second, _) = fx.create(upload_request()).await;
    let other = UserContext {
        id: OTHER_USER.into(),
        ..auth()
    };
    fx.repo
        .create(download_request(None), &other)
        .await
        .unwrap();

    let mine = fx
        .repo
        .list_user_packages(uuid(USER), &auth())
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|p| p.id).collect::<Vec<_>>(),
        [first, second]
    );
    let text = serde_json::to_string(&mine).unwrap();
    assert!(!text.contains("token_hash") && !text.contains(KEY) && !text.contains("ada@"));
    assert_eq!(
        access_detail(fx.repo.list_user_packages(uuid(OTHER_USER), &auth()).await),
        "Not authorized to get work packages"
    );
}

#[tokio::test]
async fn delete_with_the_token_works_even_after_expiry() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, token) = fx.create(download_request(None)).await;
    assert_eq!(
        access_detail(fx.repo.delete_package(id, "nope").await),
        "Invalid work package access token"
    );
    assert!(fx.stored(id).is_some());
    fx.clock.set(t0() + TimeDelta::days(400));
    fx.set_download(Answer::Nothing);
    fx.repo.delete_package(id, &token).await.unwrap();
    assert!(fx.stored(id).is_none());
    assert_eq!(
        access_detail(fx.repo.delete_package(id, &token).await),
        "Work package not found"
    );
}

#[tokio::test]
async fn delete_as_user_hides_other_users_packages() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let (id, _) = fx.create(download_request(None)).await;
    let other = UserContext {
        id: OTHER_USER.into(),
        ..auth()
    };
    assert_eq!(
        access_detail(fx.repo.delete_package_as_user(id, &other).await),
        "Work package not found"
    );
    let upper = UserContext {
        id: USER.to_uppercase(),
        ..auth()
    };
    assert_eq!(
        access_detail(fx.repo.delete_package_as_user(id, &upper).await),
        "Work package not found"
    );
    assert!(fx.stored(id).is_some());
    fx.repo.delete_package_as_user(id, &auth()).await.unwrap();
    assert!(fx.stored(id).is_none());
    assert_eq!(
        access_detail(fx.repo.delete_package_as_user(id, &auth()).await),
        "Work package not found"
    );
}

#[tokio::test]
async fn purge_deletes_only_packages_expired_longer_than_the_retention() {
    let fx = fx_with(RepositoryConfig::default(), false);
    fx.seed().await;
    let mut ids = Vec::new();
    for days in [1, 2, 5] {
        fx.set_download(Answer::Until(t0() + TimeDelta::days(days)));
        ids.push(fx.create(download_request(None)).await.0);
    }
    let retention = TimeDelta::days(1);
    fx.clock.set(t0());
    assert_eq!(fx.repo.purge_expired(retention).await.unwrap(), 0);
    // The first expired at t0+1d; at t0+3d it is 2 days past, the second exactly 1 day.
    fx.clock.set(truncate_ms(t0()) + TimeDelta::days(3));
    assert_eq!(fx.repo.purge_expired(retention).await.unwrap(), 2);
    assert!(fx.stored(ids[0]).is_none());
    assert!(fx.stored(ids[1]).is_none());
    assert!(fx.stored(ids[2]).is_some());
    assert_eq!(fx.repo.purge_expired(retention).await.unwrap(), 0);
    fx.wps.fail(true);
    assert!(fx.repo.purge_expired(retention).await.is_err());
}

// ---- events -------------------------------------------------------------------------

#[tokio::test]
async fn event_operations_are_idempotent() {
    let fx = fx_with(RepositoryConfig::default(), false);
    let ds = dataset("DS1", &[("GHGAF1", ".a")]);
    fx.repo.upsert_dataset(&ds).await.unwrap();
    fx.repo.upsert_dataset(&ds).await.unwrap();
    let changed = dataset("DS1", &[("GHGAF2", ".b")]);
    fx.repo.upsert_dataset(&changed).await.unwrap();
    assert_eq!(fx.datasets.documents().len(), 1);
    assert_eq!(
        fx.datasets.documents()[0]["files"],
        serde_json::json!([{"accession": "GHGAF2", "extension": ".b"}]),
        "the last write wins"
    );
    fx.repo.delete_dataset("DS1").await.unwrap();
    fx.repo.delete_dataset("DS1").await.unwrap();
    assert!(fx.datasets.documents().is_empty());

    let b = UploadBox {
        id: uuid(RDUB),
        file_upload_box_id: uuid(FUB),
        title: "t".into(),
        description: None,
    };
    fx.repo.upsert_upload_box(&b).await.unwrap();
    fx.repo.upsert_upload_box(&b).await.unwrap();
    assert_eq!(fx.boxes.documents().len(), 1);
    fx.repo.delete_upload_box(b.id).await.unwrap();
    fx.repo.delete_upload_box(b.id).await.unwrap();
    assert!(fx.boxes.documents().is_empty());

    let m = AccessionMap {
        accession: "GHGAF1".into(),
        file_id: uuid(FILE1),
    };
    fx.repo.upsert_accession_map(&m).await.unwrap();
    fx.repo.upsert_accession_map(&m).await.unwrap();
    assert_eq!(fx.maps.documents().len(), 1);
    assert_eq!(fx.maps.documents()[0]["id"], Value::from("GHGAF1"));
    fx.repo.delete_accession_map("GHGAF1").await.unwrap();
    fx.repo.delete_accession_map("GHGAF1").await.unwrap();
    assert!(fx.maps.documents().is_empty());

    // A missing document is fine; a failing store is not.
    fx.maps.fail(true);
    assert!(matches!(
        fx.repo.delete_accession_map("GHGAF1").await,
        Err(Error::Storage(_))
    ));
}

#[tokio::test]
async fn datasets_with_non_ghgaf_files_are_refused_whole() {
    let fx = fx_with(RepositoryConfig::default(), false);
    let bad = dataset("DS1", &[("GHGAF1", ".a"), ("GHGAD2", ".b")]);
    match fx.repo.upsert_dataset(&bad).await {
        Err(Error::InvalidEvent(m)) => assert!(m.contains("GHGAD2"), "{m}"),
        other => panic!("expected an invalid event, got {other:?}"),
    }
    assert!(fx.datasets.documents().is_empty());
}
