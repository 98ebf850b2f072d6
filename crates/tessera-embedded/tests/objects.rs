//! The object storage contract on the local file-system store, with its presigned URLs
//! served by the actix scope (feature `http`) on a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::{App, HttpServer};
use tessera_embedded::objects_http::objects_scope;
use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::ObjectStore;
use tessera_kit::testsuite::{ObjectSuiteOptions, object_large_suite, object_suite};

/// A store under a temp dir whose presigned URLs point at a scope served on port 0.
async fn served() -> (
    LocalObjectStore,
    tempfile::TempDir,
    actix_web::dev::ServerHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = LocalObjectStore::open(&LocalObjectsConfig {
        objects_root: dir.path().to_owned(),
        objects_public_url: format!("http://127.0.0.1:{port}/objects"),
        ..LocalObjectsConfig::default()
    })
    .unwrap();
    let scoped = store.clone();
    let server =
        HttpServer::new(move || App::new().service(objects_scope("/objects", scoped.clone())))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    (store, dir, handle)
}

#[tokio::test]
async fn contract_on_the_local_store() {
    let (store, _dir, server) = served().await;
    object_suite(&store, ObjectSuiteOptions::STRICT).await;
    assert_eq!(
        store.pending_uploads().unwrap(),
        0,
        "no temp file is left behind"
    );
    server.stop(true).await;
}

#[tokio::test]
async fn large_object_on_the_local_store() {
    let (store, _dir, server) = served().await;
    object_large_suite(&store).await;
    server.stop(true).await;
}

#[tokio::test]
async fn the_scope_answers_s3_like_errors() {
    let (store, _dir, server) = served().await;
    let key = tessera_kit::objects::ObjectKey::parse("x/y").unwrap();
    let get = store
        .presign_get(&key, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    // No signature at all.
    let unsigned = get.url.split_once('?').unwrap().0.to_owned();
    let response = client.get(&unsigned).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>SignatureDoesNotMatch</Code>")
    );
    // A signed URL for a key the protocol refuses cannot exist; a path that is not a key is
    // refused before any file is touched.
    let escape = get
        .url
        .replace("/objects/x/y?", "/objects/x/..%2F..%2Fetc?");
    let response = client.get(&escape).send().await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // Missing object.
    let response = client.get(&get.url).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>NoSuchKey</Code>")
    );
    server.stop(true).await;
}

/// A real S3 client's HTTP stack (botocore, `scripts/interop/s3_interop.py`) uploads and
/// downloads through the local store's presigned URLs.
#[tokio::test(flavor = "multi_thread")]
async fn botocore_through_presigned_urls_on_the_local_store() {
    let oracle = tessera_test_support::interop::Oracle::new("s3_interop.py");
    if !oracle.available("botocore_through_presigned_urls_on_the_local_store") {
        return;
    }
    let (store, _dir, server) = served().await;
    let send = |request: &tessera_kit::objects::PresignedRequest, body: &[u8]| {
        tessera_test_support::interop::botocore_send(
            &oracle,
            request.method,
            &request.url,
            &request.headers,
            body,
        )
    };
    tessera_kit::testsuite::presign_interop_suite(&store, ObjectSuiteOptions::STRICT, &send).await;
    assert_eq!(store.pending_uploads().unwrap(), 0);
    server.stop(true).await;
}
