//! The object storage contract against real S3 servers: s3s-fs (checks SigV4 signatures) and
//! moto (checks none, so the signature cases are skipped there and say so).
//!
//! Start them with `scripts/test-infra up s3 s3s` and `eval "$(scripts/test-infra env)"`.
//! Without the variables every test prints `SKIPPED: …` and passes, unless
//! `TESSERA_REQUIRE_INFRA=1`, which makes a missing server a failure. Each suite works
//! under a fresh random key prefix in the shared bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_kit::objects::{ObjectKey, ObjectStore};
use tessera_kit::testsuite::{ObjectSuiteOptions, object_large_suite, object_suite};
use tessera_s3::{S3Config, S3ObjectStore};
use tessera_test_support::infra;

fn bucket() -> String {
    std::env::var(infra::S3_BUCKET).unwrap_or_else(|_| "tessera-test".to_owned())
}

/// s3s-fs with its credentials, or None (skipped).
fn s3s() -> Option<S3ObjectStore> {
    let url = infra::server(infra::S3S_URL)?;
    let config = S3Config {
        s3_endpoint_url: url,
        s3_bucket: bucket(),
        s3_access_key_id: std::env::var(infra::S3S_ACCESS_KEY).unwrap(),
        s3_secret_access_key: std::env::var(infra::S3S_SECRET_KEY).unwrap().into(),
        ..S3Config::default()
    };
    Some(S3ObjectStore::new(&config).unwrap())
}

fn moto() -> Option<S3ObjectStore> {
    let url = infra::server(infra::S3_URL)?;
    let config = S3Config {
        s3_endpoint_url: url,
        s3_bucket: bucket(),
        s3_access_key_id: "moto".to_owned(),
        s3_secret_access_key: "moto".into(),
        ..S3Config::default()
    };
    Some(S3ObjectStore::new(&config).unwrap())
}

#[tokio::test]
async fn contract_on_s3s_fs() {
    let Some(store) = s3s() else { return };
    // s3s-fs 0.14.1 refuses a body with the wrong MD5 but leaves it stored.
    let options = ObjectSuiteOptions {
        discards_refused_body: false,
        ..ObjectSuiteOptions::STRICT
    };
    object_suite(&store, options).await;
}

#[tokio::test]
async fn contract_on_moto() {
    let Some(store) = moto() else { return };
    let options = ObjectSuiteOptions {
        verifies_signatures: false,
        checks_body_md5: false,
        discards_refused_body: false,
    };
    object_suite(&store, options).await;
}

#[tokio::test]
async fn large_object_on_s3s_fs() {
    let Some(store) = s3s() else { return };
    object_large_suite(&store).await;
}

#[tokio::test]
async fn large_object_on_moto() {
    let Some(store) = moto() else { return };
    object_large_suite(&store).await;
}

#[tokio::test]
async fn wrong_credentials_are_a_backend_error() {
    let Some(url) = infra::server(infra::S3S_URL) else {
        return;
    };
    let store = S3ObjectStore::new(&S3Config {
        s3_endpoint_url: url,
        s3_bucket: bucket(),
        s3_access_key_id: "nobody".to_owned(),
        s3_secret_access_key: "wrong".into(),
        ..S3Config::default()
    })
    .unwrap();
    let key = ObjectKey::parse("any").unwrap();
    let err = store.head(&key).await.unwrap_err();
    assert!(
        matches!(err, tessera_kit::objects::Error::Backend(_)),
        "unknown credentials are Backend, not NotFound: {err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    let store = S3ObjectStore::new(&S3Config {
        s3_endpoint_url: "http://127.0.0.1:9".to_owned(),
        s3_bucket: "b".to_owned(),
        s3_access_key_id: "a".to_owned(),
        s3_secret_access_key: "s".into(),
        ..S3Config::default()
    })
    .unwrap();
    let key = ObjectKey::parse("any").unwrap();
    let err = store.list("").await.unwrap_err();
    assert!(
        matches!(err, tessera_kit::objects::Error::Backend(_)),
        "{err:?}"
    );
    let _ = key;
}
