//! The service on MongoDB (`TESSERA_TEST_MONGO_URL`, e.g. from `scripts/test-infra up
//! mongo`): the same rules through the other storage provider. Without the variable the test
//! prints `SKIPPED: …` and passes, unless `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{CAROL_IP, FakeValidator, call, now};
use serde_json::json;
use tessera_kit::dao::Filter;
use tessera_test_support::infra;
use tessera_tokens::ports::MockTokenExchange;
use tessera_tokens::{Cipher, Fernet, IssuedRefreshToken, RefreshGrant, RefreshTokenRecord};
use wts::{Overrides, prepare, start};

#[tokio::test]
async fn refresh_tokens_live_in_mongodb() {
    let Some(url) = infra::server(infra::MONGO_URL) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.mongo.mongo_dsn = url.into();
    config.mongo.db_name = format!("wts-test-{}", uuid::Uuid::new_v4().simple());
    config.mongo.mongo_timeout = Some(10);
    assert!(config.uses_mongo());
    assert_eq!(config.collection_name(), "refresh_token");
    let fernet = Fernet::new(config.encryption_key.expose()).unwrap();
    let mut fence = MockTokenExchange::new();
    fence.expect_refresh().returning(|rt| {
        Ok(RefreshGrant {
            access_token: format!("at-{rt}"),
            refresh_token: Some(IssuedRefreshToken {
                token: format!("{rt}-rotated"),
                expires: None,
                jti: None,
            }),
        })
    });
    let overrides = Overrides {
        validator: Some(Arc::new(FakeValidator)),
        exchanges: [("default".to_owned(), Arc::new(fence) as _)].into(),
        ..Overrides::default()
    };
    let app = start(prepare(config, overrides).await.unwrap())
        .await
        .unwrap();
    assert!(!dir.path().join("wts.sqlite").exists(), "nothing embedded");
    let dao = app.core().dao.clone();
    let record = |id: &str, user: &str, jti: &str, expires: i64| RefreshTokenRecord {
        id: id.into(),
        token_ciphertext: fernet.encrypt(&format!("rt-{user}")).unwrap(),
        jti: jti.into(),
        username: user.into(),
        userid: format!("sub-{user}"),
        idp: "default".into(),
        expires,
    };
    let carol_id = uuid::Uuid::new_v4().to_string();
    dao.insert(&record(&carol_id, "carol", "jti-carol", now() + 3600))
        .await
        .unwrap();
    dao.insert(&record(
        &uuid::Uuid::new_v4().to_string(),
        "old",
        "jti-old",
        now() - 1,
    ))
    .await
    .unwrap();
    // jti is unique in MongoDB too.
    assert!(
        dao.insert(&record(
            &uuid::Uuid::new_v4().to_string(),
            "x",
            "jti-carol",
            now()
        ))
        .await
        .is_err()
    );

    let client = reqwest::Client::new();
    let url = app.url().unwrap();
    let r = client.get(format!("{url}/_status")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "Healthy");
    let (status, body) = call(
        client
            .get(format!("{url}/token/"))
            .header("x-forwarded-for", CAROL_IP),
    )
    .await;
    assert_eq!((status, body), (200, json!({"token": "at-rt-carol"})));
    let stored = dao.get_by_id(&carol_id).await.unwrap();
    assert_eq!(
        fernet.decrypt(&stored.token_ciphertext).unwrap(),
        "rt-carol-rotated"
    );
    assert_eq!(app.core().service.purge_expired().await.unwrap(), 1);
    assert_eq!(dao.find_all(&Filter::new()).await.unwrap().len(), 1);
    app.stop().await.unwrap();
}
