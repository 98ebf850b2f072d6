//! The store's files are private: a created directory is 0700, the database and its
//! `-wal`/`-shm` 0600; an existing open directory is tightened only when it is the
//! store's own.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use tessera_embedded::EmbeddedStore;
use tessera_kit::dao::{CollectionSpec, DaoFactory};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Opens the store at `path` and writes a document, so the WAL files exist.
async fn open_and_write(path: &Path) -> EmbeddedStore {
    let store = EmbeddedStore::open(path).unwrap();
    let dao = store
        .document_dao(CollectionSpec::new("people", "id"))
        .await
        .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    dao.insert(
        json!({"id": id, "email": "a@example.org"})
            .as_object()
            .unwrap()
            .clone(),
    )
    .await
    .unwrap();
    store
}

fn companions(path: &Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            name.into()
        })
        .collect()
}

#[tokio::test]
async fn new_files_are_owner_only_in_an_owner_only_directory() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("state/.tessera/tessera.sqlite");
    let _store = open_and_write(&path).await;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&root.path().join("state")), 0o700);
    for file in companions(&path) {
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn an_existing_open_store_is_tightened() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(".tessera");
    let path = dir.join("tessera.sqlite");
    drop(open_and_write(&path).await);
    // As an earlier build left it.
    set_mode(&dir, 0o755);
    for file in companions(&path) {
        if file.exists() {
            set_mode(&file, 0o644);
        }
    }
    let _store = open_and_write(&path).await;
    assert_eq!(mode(&dir), 0o700);
    for file in companions(&path) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_shared_directory_keeps_its_mode_but_the_files_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("home");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    set_mode(&dir, 0o755);
    let path = dir.join("tessera.sqlite");
    let _store = open_and_write(&path).await;
    assert_eq!(mode(&dir), 0o755, "not the store's own directory");
    for file in companions(&path) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
