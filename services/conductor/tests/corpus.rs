//! The corpus of data packages (`tests/corpus/`: valid fiscal packages, several resources,
//! bad descriptors, bad types, constraint violations, ragged rows, a bad encoding, missing
//! files) through our loader and through Python's `frictionless` as an independent oracle:
//! the valid/invalid verdicts agree for every package, and so do the row counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tessera_conductor::loader::Loader;
use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::{ObjectKey, ObjectStore, PutRequest};
use tessera_test_support::interop::Oracle;

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

async fn put_dir(store: &dyn ObjectStore, root: &Path, dir: &Path, prefix: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            Box::pin(put_dir(store, root, &path, prefix)).await;
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let key = ObjectKey::parse(format!("{prefix}/{rel}")).unwrap();
        let len = data.len() as u64;
        let body = futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed();
        store.put(&key, body, PutRequest::new(len)).await.unwrap();
    }
}

/// Our verdicts: name → {"valid", "rows"}.
async fn ours() -> serde_json::Map<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalObjectStore::open(&LocalObjectsConfig {
            objects_root: dir.path().to_owned(),
            ..LocalObjectsConfig::default()
        })
        .unwrap(),
    );
    let loader = Loader::new(store.clone());
    let mut out = serde_json::Map::new();
    let mut names: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for package in names {
        let name = package.file_name().unwrap().to_string_lossy().into_owned();
        let prefix = format!("owner/{name}");
        put_dir(store.as_ref(), &package, &package, &prefix).await;
        let key = ObjectKey::parse(format!("{prefix}/datapackage.json")).unwrap();
        let verdict = match loader.load(&key, &mut |_| {}).await {
            Ok(loaded) => {
                // The final package is written back beside the original.
                let meta = store
                    .head(&ObjectKey::parse(format!("{prefix}/final/datapackage.json")).unwrap())
                    .await
                    .unwrap();
                assert!(meta.size > 0);
                json!({"valid": true, "rows": loaded.count_of_rows()})
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                json!({"valid": false, "rows": 0})
            }
        };
        out.insert(name, verdict);
    }
    out
}

#[tokio::test]
async fn the_loader_and_frictionless_agree_on_the_corpus() {
    let ours = ours().await;
    assert!(ours.len() >= 20, "the corpus holds {} packages", ours.len());
    let valid = ours.values().filter(|v| v["valid"] == json!(true)).count();
    assert!(
        valid >= 8 && ours.len() - valid >= 8,
        "{valid} valid of {}",
        ours.len()
    );
    let oracle = Oracle::new("frictionless_verdicts.py");
    if !oracle.available("the_loader_and_frictionless_agree_on_the_corpus") {
        return;
    }
    let theirs = oracle.run(&["verdicts", &corpus().to_string_lossy()]);
    assert_eq!(Value::Object(ours), theirs);
}

#[tokio::test]
async fn the_corpus_verdicts_are_the_expected_ones() {
    // Without the oracle, the names say what each package is.
    for (name, verdict) in ours().await {
        assert_eq!(
            verdict["valid"] == json!(true),
            name.starts_with("valid-"),
            "{name}: {verdict}"
        );
    }
}
