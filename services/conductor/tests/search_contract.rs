//! The package search contract suite on both providers: SQLite FTS5 always, MongoDB when
//! the test infrastructure is up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use conductor::search::{MongoIndex, SqliteIndex};
use tessera_mongodb::MongoConfig;

#[tokio::test]
async fn sqlite_index_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let index = SqliteIndex::open(&dir.path().join("db.sqlite")).unwrap();
    tessera_conductor::search::suite::run(&index).await;
}

#[tokio::test]
async fn mongo_index_keeps_the_contract() {
    let Some(dsn) = tessera_test_support::infra::server(tessera_test_support::infra::MONGO_URL)
    else {
        return;
    };
    let config = MongoConfig {
        mongo_dsn: dsn.as_str().into(),
        db_name: format!("conductor_search_{}", std::process::id()),
        mongo_timeout: Some(10),
    };
    let index = MongoIndex::connect(&config, "package_index").await.unwrap();
    tessera_conductor::search::suite::run(&index).await;
}

/// Two processes on one file (two handles here): each sees the other's changes within the
/// catch-up interval.
#[tokio::test]
async fn sqlite_indexes_on_one_file_catch_up_with_each_other() {
    use serde_json::json;
    use tessera_conductor::PackageIndex;
    use tessera_conductor::search::SearchQuery;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let (a, b) = (
        SqliteIndex::open(&path).unwrap(),
        SqliteIndex::open(&path).unwrap(),
    );
    let record = |id: &str, title: &str| tessera_conductor::PackageRecord {
        id: id.into(),
        model: json!({}),
        package: json!({"owner": "o", "title": title})
            .as_object()
            .cloned()
            .unwrap(),
        origin_url: String::new(),
        dataset: id.into(),
        author: None,
        loading_status: "done".into(),
        loaded: true,
        objects_prefix: String::new(),
        last_update: 1.0,
        deleted: false,
        outbox: Vec::new(),
        outbox_pending: false,
    };
    let query = |q: &str| SearchQuery {
        q: Some(q.into()),
        filters: Vec::new(),
        userid: None,
        from: 0,
        size: 10,
    };
    let ids = |found: Vec<serde_json::Value>| -> Vec<String> {
        found
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(150));
    a.put(&record("o:x", "roads")).await.unwrap();
    settle().await;
    assert_eq!(ids(b.search(&query("roads")).await.unwrap()), ["o:x"]);
    b.put(&record("o:y", "roads too")).await.unwrap();
    a.put(&record("o:x", "schools")).await.unwrap();
    settle().await;
    assert_eq!(ids(a.search(&query("roads")).await.unwrap()), ["o:y"]);
    assert_eq!(ids(b.search(&query("schools")).await.unwrap()), ["o:x"]);
    assert!(a.remove("o:y").await.unwrap());
    settle().await;
    assert!(b.search(&query("roads")).await.unwrap().is_empty());
    b.clear().await.unwrap();
    settle().await;
    assert!(a.search(&query("schools")).await.unwrap().is_empty());
    // A reopened handle loads what is stored.
    a.put(&record("o:z", "water")).await.unwrap();
    let c = SqliteIndex::open(&path).unwrap();
    assert_eq!(ids(c.search(&query("water")).await.unwrap()), ["o:z"]);
}
