//! The kit's contract suites against a store on a temporary file.

// Test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tessera_embedded::EmbeddedStore;
use tessera_kit::events::EventBus;
use tessera_kit::testsuite::{dao_suite, event_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dao_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("db/store.sqlite")).unwrap();
    dao_suite(&store).await;
    // Twice on one file: the suite's random names keep runs apart, and reopening works.
    drop(store);
    let store = EmbeddedStore::open(dir.path().join("db/store.sqlite")).unwrap();
    dao_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store.sqlite")).unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(store);
    event_suite(bus).await;
}

#[tokio::test(flavor = "current_thread")]
async fn event_contract_on_a_single_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store.sqlite")).unwrap();
    event_suite(Arc::new(store)).await;
}
