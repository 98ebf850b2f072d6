//! `migrate-db` waits for another run's lock (`migration_wait_sec`,
//! `migration_max_wait_sec`), as hexkit's `MigrationManager` does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns
mod common;

use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tessera_embedded::EmbeddedStore;
use tessera_kit::dao::{CollectionSpec, DaoFactory, DocumentDao};
use wps::migrate::migrate_on;

async fn version_dao(
    store: &EmbeddedStore,
    config: &wps::WpsConfig,
) -> std::sync::Arc<dyn DocumentDao> {
    store
        .document_dao(CollectionSpec::new(config.version_collection_name(), "id"))
        .await
        .unwrap()
}

fn lock() -> Map<String, serde_json::Value> {
    let mut lock = Map::new();
    lock.insert("id".into(), json!(0));
    lock.insert("lock_acquired".into(), json!(true));
    lock.insert("acquired_at".into(), json!("2026-12-04T00:00:00+00:00"));
    lock
}

#[tokio::test]
async fn a_held_lock_is_waited_for_up_to_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let keys = common::Keys::generate();
    let mut config = common::config(&keys, &dir.path().join("wps.sqlite"));
    config.migration_wait_sec = 1;
    config.migration_max_wait_sec = Some(2);
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let versions = version_dao(&store, &config).await;
    versions.insert(lock()).await.unwrap();

    // Held for good: refused after the maximum, naming the key.
    let started = Instant::now();
    let err = migrate_on(&config, &store).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    assert!(err.to_string().contains("migration_max_wait_sec"), "{err}");

    // Released while waiting: this run takes the lock and records the versions.
    config.migration_max_wait_sec = None;
    let release = {
        let versions = versions.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            versions.delete("0").await.unwrap();
        })
    };
    let report = migrate_on(&config, &store).await.unwrap();
    release.await.unwrap();
    assert_eq!(report.recorded, [1, 2]);
    assert!(
        versions.get_by_id("0").await.is_err(),
        "the lock is released"
    );

    // Held by a run that brings the database to this version meanwhile: nothing to do.
    config.embedded.embedded_db_path = dir.path().join("other.sqlite");
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let versions = version_dao(&store, &config).await;
    versions.insert(lock()).await.unwrap();
    let other_run = {
        let versions = versions.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut record = Map::new();
            record.insert("id".into(), json!("other-run"));
            record.insert("version".into(), json!(2));
            record.insert("completed".into(), json!("2026-12-04T00:00:01+00:00"));
            record.insert("backward".into(), json!(false));
            record.insert("total_duration_ms".into(), json!(5));
            versions.insert(record).await.unwrap();
            versions.delete("0").await.unwrap();
        })
    };
    let report = migrate_on(&config, &store).await.unwrap();
    other_run.await.unwrap();
    assert!(report.recorded.is_empty(), "{report:?}");
    assert_eq!(report.version, 2);
}
