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
