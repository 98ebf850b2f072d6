//! `wps migrate-db`: makes sure every collection exists and records the database version
//! the way GHGA hexkit's `MigrationManager` does (wps.md §3 "Versioning"), so that this
//! service and the original agree on a shared MongoDB database.
//!
//! The version collection (`db_version_collection`) holds records `{version, completed,
//! backward, total_duration_ms}` (`completed` an ISO string, as hexkit writes it) and, while
//! a migration runs, the lock document `{_id: 0, lock_acquired: true, acquired_at}`. The
//! current version is that of the record with the greatest `(completed, version)`.
//!
//! This service reads and writes only the version-2 shape (native UUIDs and dates), so:
//! - version 2: nothing to do;
//! - no record: a new database, or one this service wrote before `migrate-db` ran. Both are
//!   in the version-2 shape, which a probe checks (a UUID id must be found as a UUID); then
//!   versions 1 and 2 are recorded under the lock, as hexkit records a fresh database;
//! - version 1 (strings for UUIDs and dates), or a probe that finds that shape: refused —
//!   the original's `migrate-db` converts it;
//! - above 2: refused (written by a newer service).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tessera_kit::dao::{self, CollectionSpec, DaoFactory, DocumentDao, Filter};
use tessera_work_orders::collections::specs;

use crate::config::WpsConfig;
use crate::prepare::open_documents;
use crate::{Error, Result};

/// The database version this service reads and writes.
pub const DB_VERSION: i64 = 2;
/// The id of hexkit's lock document in the version collection.
const LOCK_ID: i64 = 0;

/// What a collection looked like before `migrate-db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionStatus {
    /// It held no document; now it exists (MongoDB creates a collection with its first
    /// document, so a probe document was written and deleted).
    Created,
    /// It held documents already.
    Exists,
}

/// One collection `migrate-db` made sure of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionReport {
    /// The collection name as stored.
    pub collection: String,
    /// What was done.
    pub status: CollectionStatus,
}

/// What `migrate-db` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Where: the MongoDB database or the SQLite file.
    pub db: String,
    /// The work package collections.
    pub collections: Vec<CollectionReport>,
    /// The version collection.
    pub version_collection: String,
    /// The version before (0: no record).
    pub previous_version: i64,
    /// The version now ([`DB_VERSION`]).
    pub version: i64,
    /// The versions recorded by this run (empty when the database was current).
    pub recorded: Vec<i64>,
}

/// Runs `migrate-db` on the document store of `config`.
pub async fn migrate(config: &WpsConfig) -> Result<MigrationReport> {
    let documents = open_documents(config, None, None).await?;
    let mut report = migrate_on(config, documents.factory.as_ref()).await?;
    report.db = documents.location;
    Ok(report)
}

/// Runs `migrate-db` on `factory` (its `db` left empty for the caller).
pub async fn migrate_on(config: &WpsConfig, factory: &dyn DaoFactory) -> Result<MigrationReport> {
    let s = specs(&config.collection_names());
    let mut collections = Vec::new();
    let mut old_shape = None;
    for spec in [
        s.datasets,
        s.upload_boxes,
        s.work_packages,
        s.accession_maps,
        s.grants,
    ] {
        let probe_old_shape = spec.field_kinds.contains_key(&spec.id_field);
        let dao = factory.document_dao(spec.clone()).await?;
        let docs = dao.find_all(&Filter::new()).await?;
        let status = match docs.first() {
            None => {
                create_collection(dao.as_ref(), &spec).await?;
                CollectionStatus::Created
            }
            Some(first) => {
                if probe_old_shape
                    && old_shape.is_none()
                    && !found_by_id(dao.as_ref(), first).await?
                {
                    old_shape = Some(spec.name.clone());
                }
                CollectionStatus::Exists
            }
        };
        collections.push(CollectionReport {
            collection: spec.name,
            status,
        });
    }

    let version_collection = config.version_collection_name();
    let versions = factory
        .document_dao(CollectionSpec::new(&version_collection, "id"))
        .await?;
    let previous_version = current_version(versions.as_ref()).await?;
    let recorded = match previous_version {
        DB_VERSION => Vec::new(),
        0 => {
            if let Some(collection) = old_shape {
                return Err(Error::Migration(format!(
                    "collection {collection:?} holds documents with string ids (the shape \
                     before version 2) and {version_collection:?} has no version record: run \
                     the original service's migrate-db to convert them to version {DB_VERSION}"
                )));
            }
            initialize(versions.as_ref(), &version_collection, config.lock_wait()).await?
        }
        v if v > DB_VERSION => {
            return Err(Error::Migration(format!(
                "the database is at version {v}, newer than this service's {DB_VERSION}"
            )));
        }
        v => {
            return Err(Error::Migration(format!(
                "the database is at version {v}: run the original service's migrate-db to \
                 convert it to version {DB_VERSION}, which is the only shape this service \
                 reads"
            )));
        }
    };
    Ok(MigrationReport {
        db: String::new(),
        collections,
        version_collection,
        previous_version,
        version: DB_VERSION,
        recorded,
    })
}

/// Writes and deletes a document holding only an id, so that MongoDB creates the
/// collection (the embedded store created it with the DAO already).
async fn create_collection(dao: &dyn DocumentDao, spec: &CollectionSpec) -> Result<()> {
    let id = if spec.field_kinds.contains_key(&spec.id_field) {
        uuid::Uuid::nil().to_string()
    } else {
        "wps-migrate-db-probe".to_owned()
    };
    let mut probe = Map::new();
    probe.insert(spec.id_field.clone(), Value::String(id.clone()));
    dao.insert(probe).await?;
    dao.delete(&id).await?;
    Ok(())
}

/// Whether `doc` is found by its own id: a UUID id stored as a string (before version 2)
/// is not, since ids are looked up as native UUIDs.
async fn found_by_id(dao: &dyn DocumentDao, doc: &dao::Document) -> Result<bool> {
    let id = dao.spec().id_of(doc)?;
    match dao.get_by_id(&id).await {
        Ok(_) => Ok(true),
        Err(dao::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The version of the record with the greatest `(completed, version)`; 0 without records.
async fn current_version(versions: &dyn DocumentDao) -> Result<i64> {
    let docs = versions.find_all(&Filter::new()).await?;
    Ok(docs
        .iter()
        .filter(|d| d.get("id") != Some(&json!(LOCK_ID)))
        .filter_map(|d| {
            let version = d.get("version")?.as_i64()?;
            let completed = d.get("completed").and_then(Value::as_str).unwrap_or("");
            Some((completed.to_owned(), version))
        })
        .max()
        .map_or(0, |(_, version)| version))
}

/// Python's `datetime.isoformat()` of an aware UTC time, as hexkit writes `completed`.
fn iso_now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// How long to wait for another run's lock (hexkit's `migration_wait_sec` and
/// `migration_max_wait_sec`).
#[derive(Debug, Clone, Copy)]
pub struct LockWait {
    /// The pause between two looks at the lock.
    pub interval: Duration,
    /// The longest wait in all; `None` waits as long as the lock is held.
    pub max: Option<Duration>,
}

/// Takes hexkit's lock, waiting while another run holds it; `false` when that run brought
/// the database to this version meanwhile (nothing left to do).
async fn acquire(versions: &dyn DocumentDao, collection: &str, wait: LockWait) -> Result<bool> {
    let started = Instant::now();
    loop {
        let mut lock = Map::new();
        lock.insert("id".into(), json!(LOCK_ID));
        lock.insert("lock_acquired".into(), json!(true));
        lock.insert("acquired_at".into(), json!(iso_now()));
        match versions.insert(lock).await {
            Ok(()) => return Ok(true),
            Err(dao::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let waited = started.elapsed();
        if wait.max.is_some_and(|max| waited + wait.interval > max) {
            return Err(Error::Migration(format!(
                "another migration holds the lock (the document with _id 0 in {collection:?}) \
                 and did not finish within migration_max_wait_sec ({} s); run migrate-db \
                 again when it is done, or delete that document if it is stale",
                wait.max.map_or(0, |max| max.as_secs())
            )));
        }
        tracing::info!(
            collection,
            waited_secs = waited.as_secs(),
            "another migration holds the lock; waiting"
        );
        tokio::time::sleep(wait.interval).await;
        if current_version(versions).await? == DB_VERSION {
            return Ok(false);
        }
    }
}

/// Records versions 1 and 2 under hexkit's lock; returns them, or nothing when another run
/// did it meanwhile.
async fn initialize(
    versions: &dyn DocumentDao,
    collection: &str,
    wait: LockWait,
) -> Result<Vec<i64>> {
    let started = Instant::now();
    if !acquire(versions, collection, wait).await? {
        return Ok(Vec::new());
    }
    let result = record_initial_versions(versions, started).await;
    let released = versions.delete(&LOCK_ID.to_string()).await;
    let recorded = result?;
    released?;
    Ok(recorded)
}

async fn record_initial_versions(versions: &dyn DocumentDao, started: Instant) -> Result<Vec<i64>> {
    // Another run may have finished between our look and taking the lock.
    if current_version(versions).await? == DB_VERSION {
        return Ok(Vec::new());
    }
    let mut recorded = Vec::new();
    for version in 1..=DB_VERSION {
        let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let record = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "version": version,
            "completed": iso_now(),
            "backward": false,
            "total_duration_ms": millis,
        });
        if let Value::Object(doc) = record {
            versions.insert(doc).await?;
        }
        recorded.push(version);
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_looks_like_python_isoformat() {
        let now = iso_now();
        assert_eq!(now.len(), "2026-05-01T10:11:12.345678+00:00".len(), "{now}");
        assert!(now.ends_with("+00:00"));
        assert!(chrono::DateTime::parse_from_rfc3339(&now).is_ok());
    }
}
