//! The event translator (wps.md §4): dataset, upload box and accession map events become
//! upserts and deletes on the repository. Every action is idempotent (upserts replace,
//! deletes of missing documents succeed), so redelivered events are harmless.
//!
//! A payload that does not fit its schema, or a dataset with a file accession that does
//! not start with `GHGAF`, fails with a [`HandlerError`] of class `ValidationError`; the
//! subscriber then retries it and dead-letters it (or stops, without a dead-letter topic).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tessera_kit::events::{Event, EventHandler, HandlerError, Subscription};
use tessera_work_orders::validation::is_uuid4;
use tessera_work_orders::{
    AccessionMap, Dataset, DatasetFile, UploadBox, WorkPackageRepository, WorkPackageType,
};
use uuid::Uuid;

use crate::config::EventNames;

/// The `exc_class` of events whose payload or key breaks a rule.
pub const VALIDATION_ERROR: &str = "ValidationError";
/// The `exc_class` of events the store failed to apply.
pub const STORAGE_ERROR: &str = "StorageError";

/// A file of a `MetadataDatasetOverview` (ghga-event-schemas).
#[derive(Debug, Deserialize)]
struct OverviewFile {
    accession: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    file_extension: String,
}

/// `MetadataDatasetOverview`: extra keys are allowed; `description` must be present but
/// may be null (checked before decoding, since serde treats a missing `Option` as null).
#[derive(Debug, Deserialize)]
struct DatasetOverview {
    accession: String,
    stage: WorkPackageType,
    title: String,
    description: Option<String>,
    #[allow(dead_code)]
    dac_alias: String,
    #[allow(dead_code)]
    dac_email: String,
    files: Vec<OverviewFile>,
}

/// The accession of a dataset deletion.
#[derive(Debug, Deserialize)]
struct DatasetDeletion {
    accession: String,
}

/// The part of a `ResearchDataUploadBox` the WPS keeps; the rest is ignored.
#[derive(Debug, Deserialize)]
struct ResearchDataUploadBox {
    id: Uuid,
    file_upload_box_id: Uuid,
    title: String,
    #[serde(default)]
    description: Option<String>,
}

/// A `FileAccessionMapping`.
#[derive(Debug, Deserialize)]
struct FileAccessionMapping {
    accession: String,
    file_id: Uuid,
}

fn invalid(message: impl Into<String>) -> HandlerError {
    HandlerError::new(VALIDATION_ERROR, message)
}

fn decode<T: DeserializeOwned>(event: &Event, what: &str) -> Result<T, HandlerError> {
    serde_json::from_value(event.payload.clone())
        .map_err(|e| invalid(format!("invalid {what} payload: {e}")))
}

fn uuid4(value: Uuid, what: &str) -> Result<Uuid, HandlerError> {
    if is_uuid4(&value) {
        Ok(value)
    } else {
        Err(invalid(format!("{what} {value} is not a UUID4")))
    }
}

fn domain_error(err: tessera_work_orders::Error) -> HandlerError {
    match err {
        tessera_work_orders::Error::InvalidEvent(message) => invalid(message),
        other => HandlerError::new(
            STORAGE_ERROR,
            tessera_http::error_chain(&other as &(dyn std::error::Error + 'static)),
        ),
    }
}

/// The WPS's event handler.
pub struct EventTranslator {
    repository: Arc<WorkPackageRepository>,
    names: EventNames,
}

impl fmt::Debug for EventTranslator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventTranslator")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl EventTranslator {
    /// A translator applying the events named in `names` to `repository`.
    pub fn new(repository: Arc<WorkPackageRepository>, names: EventNames) -> Self {
        Self { repository, names }
    }

    async fn upsert_dataset(&self, event: &Event) -> Result<(), HandlerError> {
        if event.payload.get("description").is_none() {
            return Err(invalid(
                "invalid dataset payload: missing field `description`",
            ));
        }
        let overview: DatasetOverview = decode(event, "dataset")?;
        let dataset = Dataset {
            id: overview.accession,
            stage: overview.stage,
            title: overview.title,
            description: overview.description,
            files: overview
                .files
                .into_iter()
                .map(|f| DatasetFile {
                    accession: f.accession,
                    extension: f.file_extension,
                })
                .collect(),
        };
        self.repository
            .upsert_dataset(&dataset)
            .await
            .map_err(domain_error)
    }

    async fn delete_dataset(&self, event: &Event) -> Result<(), HandlerError> {
        let deletion: DatasetDeletion = decode(event, "dataset deletion")?;
        self.repository
            .delete_dataset(&deletion.accession)
            .await
            .map_err(domain_error)
    }

    async fn upsert_upload_box(&self, event: &Event) -> Result<(), HandlerError> {
        let rdub: ResearchDataUploadBox = decode(event, "research data upload box")?;
        let upload_box = UploadBox {
            id: uuid4(rdub.id, "box id")?,
            file_upload_box_id: uuid4(rdub.file_upload_box_id, "file upload box id")?,
            title: rdub.title,
            description: rdub.description,
        };
        self.repository
            .upsert_upload_box(&upload_box)
            .await
            .map_err(domain_error)
    }

    async fn delete_upload_box(&self, event: &Event) -> Result<(), HandlerError> {
        let box_id = Uuid::parse_str(&event.key)
            .map_err(|e| invalid(format!("event key {:?} is not a box id: {e}", event.key)))?;
        self.repository
            .delete_upload_box(box_id)
            .await
            .map_err(domain_error)
    }

    async fn upsert_accession_map(&self, event: &Event) -> Result<(), HandlerError> {
        let mapping: FileAccessionMapping = decode(event, "accession map")?;
        let map = AccessionMap {
            accession: mapping.accession,
            file_id: uuid4(mapping.file_id, "file id")?,
        };
        if map.accession.is_empty() {
            return Err(invalid("accession map without an accession"));
        }
        self.repository
            .upsert_accession_map(&map)
            .await
            .map_err(domain_error)
    }

    async fn delete_accession_map(&self, event: &Event) -> Result<(), HandlerError> {
        if event.key.is_empty() {
            return Err(invalid("accession map deletion without a key"));
        }
        self.repository
            .delete_accession_map(&event.key)
            .await
            .map_err(domain_error)
    }
}

#[async_trait]
impl EventHandler for EventTranslator {
    fn subscriptions(&self) -> Vec<Subscription> {
        let n = &self.names;
        vec![
            Subscription {
                topic: n.dataset_topic.clone(),
                event_types: vec![n.dataset_upsertion.clone(), n.dataset_deletion.clone()],
            },
            Subscription {
                topic: n.upload_box_topic.clone(),
                event_types: vec![n.upserted.clone(), n.deleted.clone()],
            },
            Subscription {
                topic: n.accession_map_topic.clone(),
                event_types: vec![n.upserted.clone(), n.deleted.clone()],
            },
        ]
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let n = &self.names;
        let (topic, kind) = (&event.topic, &event.event_type);
        // Datasets first: when topics are shared, the configured dataset types win.
        if *topic == n.dataset_topic && *kind == n.dataset_upsertion {
            self.upsert_dataset(event).await
        } else if *topic == n.dataset_topic && *kind == n.dataset_deletion {
            self.delete_dataset(event).await
        } else if *topic == n.upload_box_topic && *kind == n.upserted {
            self.upsert_upload_box(event).await
        } else if *topic == n.upload_box_topic && *kind == n.deleted {
            self.delete_upload_box(event).await
        } else if *topic == n.accession_map_topic && *kind == n.upserted {
            self.upsert_accession_map(event).await
        } else if *topic == n.accession_map_topic && *kind == n.deleted {
            self.delete_accession_map(event).await
        } else {
            Err(invalid(format!(
                "event type {kind} on topic {topic} is not handled"
            )))
        }
    }
}
