//! [`Packages`]: durable load jobs, the package records of §A3 and what `/package/*` does
//! with them.
//!
//! - A **load job** ([`LoadJob`], id = the datapackage URL) is stored before
//!   `/package/upload` answers, so a restart loses nothing. Workers take jobs that are
//!   `queued`, or `loading-data` with a heartbeat older than the lease (their worker died).
//!   Taking a job means inserting the lease `<url>#<attempt+1>`: the store's unique ids let
//!   one worker win each attempt, so a URL never loads twice at once.
//! - Only URLs under the datastore's prefixes (or the configured aliases of its root) are
//!   accepted, and they are read through the object store, never fetched: no SSRF.
//! - A **record** ([`PackageRecord`], id `<owner>:<name>`) carries its own outbox: the
//!   events of a change are written in the same document write as the change, and the relay
//!   publishes them afterwards ([`Packages::relay`]); a deletion leaves a tombstone until
//!   its event is out.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tessera_kit::dao::{self, CollectionSpec, Dao, Filter};
use tessera_kit::events::{Event, EventPublisher, EventType, Topic};
use tessera_kit::objects::{ObjectKey, ObjectStore};

use crate::loader::{LoadError, Loaded, Loader};
use crate::ports::Clock;
use crate::search::{PackageIndex, PackageStats, SearchQuery};
use crate::{Error, Result};

/// `queued`.
pub const QUEUED: &str = "queued";
/// `loading-data`.
pub const LOADING: &str = "loading-data";
/// `done`.
pub const DONE: &str = "done";
/// `fail`.
pub const FAIL: &str = "fail";

/// Event types.
pub const PACKAGE_LOADED: &str = "package_loaded";
/// Published or unpublished.
pub const PACKAGE_PUBLISHED: &str = "package_published";
/// Deleted.
pub const PACKAGE_DELETED: &str = "package_deleted";

/// A load job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadJob {
    /// The datapackage URL (the id).
    pub url: String,
    /// Its object key.
    pub key: String,
    /// The user who asked.
    pub owner: String,
    /// `queued`, `loading-data`, `done` or `fail`.
    pub status: String,
    /// Fraction of the CSV bytes read, 0–1.
    pub progress: f64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt of the lease that runs (or ran) it.
    pub attempt: u32,
    /// When its worker last wrote (Unix seconds).
    pub heartbeat: i64,
    /// When it was queued.
    pub queued_at: i64,
    /// The package id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
}

impl LoadJob {
    /// The collection of jobs.
    pub fn spec(name: &str) -> CollectionSpec {
        CollectionSpec::new(name, "url")
    }

    /// `/package/status`'s answer.
    pub fn status_json(&self) -> Value {
        let mut out = json!({"status": self.status, "progress": self.progress});
        if let Some(error) = &self.error {
            out["error"] = json!(error);
        }
        out
    }
}

/// A lease: one worker's claim on one attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLease {
    /// `<url>#<attempt>`.
    pub id: String,
    /// The job.
    pub url: String,
    /// When it was taken.
    pub at: i64,
}

impl JobLease {
    /// The collection of leases.
    pub fn spec(name: &str) -> CollectionSpec {
        CollectionSpec::new(name, "id")
    }
}

/// An event waiting in a record's outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Its id (the `event_id` header).
    pub event_id: String,
    /// `package_loaded`, `package_published` or `package_deleted`.
    pub event_type: String,
    /// The payload.
    pub payload: Value,
}

/// A package record (§A3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// `<owner>:<name>`.
    pub id: String,
    /// The model built from the fields' `columnType`s.
    pub model: Value,
    /// The descriptor plus `owner`, `private`, `author`, `count_of_rows`, …
    pub package: Map<String, Value>,
    /// The datapackage URL it was loaded from.
    pub origin_url: String,
    /// The package name.
    pub dataset: String,
    /// The masked author.
    #[serde(default)]
    pub author: Option<String>,
    /// The last load's status.
    pub loading_status: String,
    /// Whether its data is loaded.
    pub loaded: bool,
    /// The directory of its objects (`<owner>/<dir>`, where its `datapackage.json` was).
    #[serde(default)]
    pub objects_prefix: String,
    /// When it last changed (Unix seconds, fractional).
    pub last_update: f64,
    /// A deletion whose event is not out yet.
    #[serde(default)]
    pub deleted: bool,
    /// Events not yet published.
    #[serde(default)]
    pub outbox: Vec<OutboxEvent>,
    /// Whether `outbox` holds anything (for the relay's query).
    #[serde(default)]
    pub outbox_pending: bool,
}

impl PackageRecord {
    /// The collection of records.
    pub fn spec(name: &str) -> CollectionSpec {
        CollectionSpec::new(name, "id")
    }

    /// The owner (`package.owner`).
    pub fn owner(&self) -> &str {
        self.package
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether it is private.
    pub fn private(&self) -> bool {
        self.package
            .get("private")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn push_event(&mut self, event_type: &str, payload: Value) {
        self.outbox.push(OutboxEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.to_owned(),
            payload,
        });
        self.outbox_pending = true;
    }

    fn summary(&self) -> Value {
        json!({"id": self.id, "owner": self.owner(), "dataset": self.dataset,
               "private": self.private(), "origin_url": self.origin_url})
    }
}

/// `Name <email>` → `Name <local@not.shown>` (the original's masking on done).
pub fn mask_author(author: &str) -> String {
    match author.split_once('<') {
        Some((name, rest)) => {
            let email = rest.trim_end().trim_end_matches('>');
            let local = email.split('@').next().unwrap_or("");
            format!("{} <{local}@not.shown>", name.trim_end())
        }
        None => author.to_owned(),
    }
}

/// The model of a package: a measure per field whose `columnType` is `value`, the others
/// grouped into dimensions by the first segment of their `columnType`.
pub fn build_model(loaded: &Loaded) -> Value {
    let mut measures = Map::new();
    let mut dimensions = Map::new();
    for resource in &loaded.descriptor.resources {
        for field in &resource.fields {
            let Some(column_type) = &field.column_type else {
                continue;
            };
            let title = field
                .raw
                .get("title")
                .cloned()
                .unwrap_or_else(|| json!(field.name));
            if column_type == "value" || column_type.starts_with("value:") {
                let mut measure =
                    json!({"source": field.name, "title": title, "columnType": column_type});
                if let Some(currency) = field.raw.get("currency") {
                    measure["currency"] = currency.clone();
                }
                measures.insert(field.name.clone(), measure);
                continue;
            }
            let group = column_type
                .split(':')
                .next()
                .unwrap_or(column_type)
                .to_owned();
            let dimension = dimensions.entry(group.clone()).or_insert_with(
                || json!({"dimensionType": group, "attributes": {}, "primaryKey": []}),
            );
            dimension["attributes"][&field.name] =
                json!({"source": field.name, "title": title, "columnType": column_type});
            if let Some(keys) = dimension["primaryKey"].as_array_mut() {
                keys.push(json!(field.name));
            }
        }
    }
    json!({"measures": measures, "dimensions": dimensions})
}

/// How `/package/publish` changes visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Public.
    True,
    /// Private.
    False,
    /// The other one.
    Toggle,
}

impl Publish {
    /// `true`, `false` or `toggle`, any case.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "true" => Some(Self::True),
            "false" => Some(Self::False),
            "toggle" => Some(Self::Toggle),
            _ => None,
        }
    }
}

/// What [`Packages`] is configured with.
#[derive(Debug, Clone)]
pub struct PackagesSettings {
    /// URL prefixes that stand for the object store's root (the datastore's public prefixes
    /// and the configured aliases), without a trailing `/`.
    pub url_prefixes: Vec<String>,
    /// A `loading-data` job whose heartbeat is older is taken over.
    pub lease: Duration,
    /// The topic of package events.
    pub topic: Topic,
}

/// The packages core.
pub struct Packages {
    jobs: Arc<dyn Dao<LoadJob>>,
    leases: Arc<dyn Dao<JobLease>>,
    records: Arc<dyn Dao<PackageRecord>>,
    index: Arc<dyn PackageIndex>,
    store: Arc<dyn ObjectStore>,
    loader: Loader,
    clock: Arc<dyn Clock>,
    settings: PackagesSettings,
}

impl fmt::Debug for Packages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packages")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn not_found(id: &str) -> Error {
    Error::PackageNotFound(id.to_owned())
}

impl Packages {
    /// The core over its collections, index and object store.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        jobs: Arc<dyn Dao<LoadJob>>,
        leases: Arc<dyn Dao<JobLease>>,
        records: Arc<dyn Dao<PackageRecord>>,
        index: Arc<dyn PackageIndex>,
        store: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        settings: PackagesSettings,
    ) -> Self {
        Self {
            jobs,
            leases,
            records,
            index,
            loader: Loader::new(store.clone()),
            store,
            clock,
            settings,
        }
    }

    /// The search index.
    pub fn index(&self) -> &Arc<dyn PackageIndex> {
        &self.index
    }

    /// The object key of a datapackage URL: it MUST be under one of the prefixes and name
    /// `<owner>/…/datapackage.json`; else `BadRequest`.
    pub fn key_of_url(&self, url: &str) -> Result<ObjectKey> {
        let refused = || {
            Error::BadRequest(format!(
                "datapackage URL {url:?} is not a datapackage.json under this datastore"
            ))
        };
        let rest = self
            .settings
            .url_prefixes
            .iter()
            .find_map(|p| {
                url.strip_prefix(p.as_str())
                    .and_then(|r| r.strip_prefix('/'))
            })
            .ok_or_else(refused)?;
        if !rest.ends_with("/datapackage.json") || rest.split('/').count() < 3 {
            return Err(refused());
        }
        ObjectKey::parse(rest).map_err(|_| refused())
    }

    /// `/package/upload`: queues a load of `url` for `userid`, whose package it must be
    /// (`Forbidden` otherwise). A job of the URL that is queued or loading stays as it is
    /// (one load at a time); a finished one is queued again. The answer is the job's status.
    pub async fn upload(&self, userid: &str, url: &str) -> Result<LoadJob> {
        let key = self.key_of_url(url)?;
        let owner = key.as_str().split('/').next().unwrap_or("");
        if owner != userid {
            return Err(Error::Forbidden(format!(
                "the package at {url:?} belongs to another user"
            )));
        }
        let now = self.clock.now();
        let existing = match self.jobs.get_by_id(url).await {
            Ok(job) => Some(job),
            Err(dao::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(job) = &existing
            && (job.status == QUEUED || job.status == LOADING)
        {
            return Ok(job.clone());
        }
        let job = LoadJob {
            url: url.to_owned(),
            key: key.to_string(),
            owner: userid.to_owned(),
            status: QUEUED.into(),
            progress: 0.0,
            error: None,
            attempt: existing.as_ref().map_or(0, |j| j.attempt),
            heartbeat: now,
            queued_at: now,
            package_id: None,
        };
        match existing {
            None => match self.jobs.insert(&job).await {
                Ok(()) => {}
                // Another upload of the URL won the race: report its job.
                Err(dao::Error::AlreadyExists { .. }) => {
                    return Ok(self.jobs.get_by_id(url).await?);
                }
                Err(e) => return Err(e.into()),
            },
            Some(_) => self.jobs.upsert(&job).await?,
        }
        tracing::info!(url, owner = userid, "package load queued");
        Ok(job)
    }

    /// `/package/status`: the job of `url`, if any.
    pub async fn status(&self, url: &str) -> Result<Option<LoadJob>> {
        match self.jobs.get_by_id(url).await {
            Ok(job) => Ok(Some(job)),
            Err(dao::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The jobs a worker may take now: queued ones (oldest first), and loading ones whose
    /// heartbeat is older than the lease.
    pub async fn claimable(&self) -> Result<Vec<LoadJob>> {
        let by = |status: &str| Filter::from([("status".to_owned(), json!(status))]);
        let mut jobs = self.jobs.find_all(&by(QUEUED)).await?;
        jobs.sort_by_key(|j| j.queued_at);
        let stale =
            self.clock.now() - i64::try_from(self.settings.lease.as_secs()).unwrap_or(i64::MAX);
        let mut loading = self.jobs.find_all(&by(LOADING)).await?;
        loading.retain(|j| j.heartbeat < stale);
        jobs.extend(loading);
        Ok(jobs)
    }

    /// Takes the next attempt of `job`; `None` when another worker has it.
    pub async fn claim(&self, job: &LoadJob) -> Result<Option<LoadJob>> {
        let attempt = job.attempt + 1;
        let lease = JobLease {
            id: format!("{}#{attempt}", job.url),
            url: job.url.clone(),
            at: self.clock.now(),
        };
        match self.leases.insert(&lease).await {
            Ok(()) => {}
            Err(dao::Error::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut current = self.jobs.get_by_id(&job.url).await?;
        if current.attempt >= attempt || !(current.status == QUEUED || current.status == LOADING) {
            return Ok(None);
        }
        current.attempt = attempt;
        current.status = LOADING.into();
        current.progress = 0.0;
        current.error = None;
        current.heartbeat = self.clock.now();
        self.jobs.update(&current).await?;
        if attempt > 1 {
            let _ = self
                .leases
                .delete(&format!("{}#{}", job.url, attempt - 1))
                .await;
        }
        Ok(Some(current))
    }

    /// Writes progress and the heartbeat, unless another worker took the job over (then
    /// `false`: the caller stops).
    async fn beat(&self, job: &LoadJob, progress: f64) -> Result<bool> {
        let mut current = self.jobs.get_by_id(&job.url).await?;
        if current.attempt != job.attempt || current.status != LOADING {
            return Ok(false);
        }
        current.progress = progress;
        current.heartbeat = self.clock.now();
        self.jobs.update(&current).await?;
        Ok(true)
    }

    /// Runs a claimed job to `done` or `fail`, writing progress about every `beat`.
    pub async fn run(&self, job: LoadJob, beat: Duration) -> Result<()> {
        let key =
            ObjectKey::parse(job.key.clone()).map_err(|e| Error::BadRequest(e.to_string()))?;
        let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
        let sink = progress.clone();
        let mut report = move |p: f64| sink.store(p.to_bits(), Ordering::Relaxed);
        let load = self.loader.load(&key, &mut report);
        tokio::pin!(load);
        let mut ticker = tokio::time::interval(beat);
        ticker.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut load => break outcome,
                _ = ticker.tick() => {
                    let p = f64::from_bits(progress.load(Ordering::Relaxed));
                    if !self.beat(&job, p).await? {
                        tracing::warn!(url = %job.url, "load taken over by another worker");
                        return Ok(());
                    }
                }
            }
        };
        let mut current = self.jobs.get_by_id(&job.url).await?;
        if current.attempt != job.attempt || current.status != LOADING {
            return Ok(());
        }
        match outcome {
            Ok(loaded) => {
                let record = self.record_of(&job, &loaded).await?;
                current.package_id = Some(record.id.clone());
                self.records.upsert(&record).await?;
                self.index
                    .put(&record)
                    .await
                    .map_err(|e| Error::Index(e.0))?;
                current.status = DONE.into();
                current.progress = 1.0;
                current.error = None;
                tracing::info!(url = %job.url, id = %record.id, rows = loaded.count_of_rows(), "package loaded");
            }
            Err(e) => {
                if let LoadError::Storage(cause) = &e {
                    tracing::error!(url = %job.url, error = %cause, "package load failed on storage");
                } else {
                    tracing::info!(url = %job.url, error = %e, "package invalid");
                }
                current.status = FAIL.into();
                current.error = Some(e.to_string());
            }
        }
        current.heartbeat = self.clock.now();
        self.jobs.update(&current).await?;
        let _ = self
            .leases
            .delete(&format!("{}#{}", job.url, job.attempt))
            .await;
        Ok(())
    }

    async fn record_of(&self, job: &LoadJob, loaded: &Loaded) -> Result<PackageRecord> {
        let name = loaded.descriptor.name.clone();
        let id = format!("{}:{name}", job.owner);
        let mut package = loaded.final_descriptor.clone();
        package.insert("owner".into(), json!(job.owner));
        package.insert("private".into(), json!(true));
        package.insert("count_of_rows".into(), json!(loaded.count_of_rows()));
        let author = package
            .get("author")
            .and_then(Value::as_str)
            .map(mask_author);
        match &author {
            Some(a) => package.insert("author".into(), json!(a)),
            None => package.remove("author"),
        };
        let existing = match self.records.get_by_id(&id).await {
            Ok(r) => Some(r),
            Err(dao::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        // A tombstone's parameters are gone, but its events still go out.
        if let Some(params) = existing
            .as_ref()
            .filter(|p| !p.deleted)
            .and_then(|p| p.package.get("defaultParams"))
        {
            package.insert("defaultParams".into(), params.clone());
        }
        let mut record = PackageRecord {
            id,
            model: build_model(loaded),
            package,
            origin_url: job.url.clone(),
            dataset: name,
            author,
            loading_status: DONE.into(),
            loaded: true,
            objects_prefix: job
                .key
                .rsplit_once('/')
                .map(|(dir, _)| dir.to_owned())
                .unwrap_or_default(),
            last_update: self.clock.now() as f64,
            deleted: false,
            outbox: existing.map(|p| p.outbox).unwrap_or_default(),
            outbox_pending: false,
        };
        record.outbox_pending = !record.outbox.is_empty();
        let mut payload = record.summary();
        payload["count_of_rows"] = json!(loaded.count_of_rows());
        record.push_event(PACKAGE_LOADED, payload);
        Ok(record)
    }

    async fn owned(&self, userid: &str, id: &str) -> Result<PackageRecord> {
        let record = match self.records.get_by_id(id).await {
            Ok(r) if !r.deleted => r,
            Ok(_) | Err(dao::Error::NotFound { .. }) => return Err(not_found(id)),
            Err(e) => return Err(e.into()),
        };
        if record.owner() != userid {
            return Err(Error::Forbidden(format!(
                "package {id} belongs to another user"
            )));
        }
        Ok(record)
    }

    /// The record of `id` (tombstones are not found).
    pub async fn get(&self, id: &str) -> Result<PackageRecord> {
        match self.records.get_by_id(id).await {
            Ok(r) if !r.deleted => Ok(r),
            Ok(_) | Err(dao::Error::NotFound { .. }) => Err(not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// The record of `id` when `userid` owns it.
    pub async fn get_owned(&self, userid: &str, id: &str) -> Result<PackageRecord> {
        self.owned(userid, id).await
    }

    /// `/package/publish`: sets visibility; the new `published` (= not private).
    pub async fn publish(&self, userid: &str, id: &str, how: Publish) -> Result<bool> {
        let mut record = self.owned(userid, id).await?;
        let private = match how {
            Publish::True => false,
            Publish::False => true,
            Publish::Toggle => !record.private(),
        };
        record.package.insert("private".into(), json!(private));
        record.last_update = self.clock.now() as f64;
        let mut payload = record.summary();
        payload["published"] = json!(!private);
        record.push_event(PACKAGE_PUBLISHED, payload);
        self.records.update(&record).await?;
        self.index
            .put(&record)
            .await
            .map_err(|e| Error::Index(e.0))?;
        Ok(!private)
    }

    /// `/package/update_params`: `body` MUST hold a string `params` (else `BadRequest`);
    /// it becomes `package.defaultParams` whole, as the original's.
    pub async fn update_params(
        &self,
        userid: &str,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<()> {
        if !matches!(body.get("params"), Some(Value::String(_))) {
            return Err(Error::BadRequest(
                "No 'params' key or bad params value.".into(),
            ));
        }
        let mut record = self.owned(userid, id).await?;
        record
            .package
            .insert("defaultParams".into(), Value::Object(body));
        record.last_update = self.clock.now() as f64;
        self.records.update(&record).await?;
        self.index
            .put(&record)
            .await
            .map_err(|e| Error::Index(e.0))?;
        Ok(())
    }

    /// `/package/delete`: removes the record (a tombstone until its event is out) and the
    /// index entry; with `purge`, every stored object of the package too.
    pub async fn delete(&self, userid: &str, id: &str, purge: bool) -> Result<()> {
        let record = self.owned(userid, id).await?;
        self.remove(record, purge).await
    }

    /// `conductor packages remove`: deletes `id` whoever owns it; whether it existed.
    pub async fn remove_any(&self, id: &str, purge: bool) -> Result<bool> {
        match self.get(id).await {
            Ok(record) => self.remove(record, purge).await.map(|()| true),
            Err(Error::PackageNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn remove(&self, mut record: PackageRecord, purge: bool) -> Result<()> {
        record.deleted = true;
        record.last_update = self.clock.now() as f64;
        let mut payload = record.summary();
        payload["purged"] = json!(purge);
        record.push_event(PACKAGE_DELETED, payload);
        self.records.update(&record).await?;
        self.index
            .remove(&record.id)
            .await
            .map_err(|e| Error::Index(e.0))?;
        if purge {
            // Where the package was uploaded (which need not be its name).
            let dir = if record.objects_prefix.is_empty() {
                format!("{}/{}", record.owner(), record.dataset)
            } else {
                record.objects_prefix.clone()
            };
            let prefix = format!("{dir}/");
            let objects = self.store.list(&prefix).await.map_err(Error::Objects)?;
            for object in objects {
                self.store
                    .delete(&object.key)
                    .await
                    .map_err(Error::Objects)?;
            }
        }
        tracing::info!(id = %record.id, purge, "package deleted");
        Ok(())
    }

    /// `/search/package`.
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<Value>> {
        self.index
            .search(query)
            .await
            .map_err(|e| Error::Index(e.0))
    }

    /// `/package/stats`.
    pub async fn stats(&self) -> Result<PackageStats> {
        self.index.stats().await.map_err(|e| Error::Index(e.0))
    }

    /// `conductor reindex`: rebuilds the index from the stored records; how many.
    pub async fn reindex(&self) -> Result<usize> {
        let records = self.records.find_all(&Filter::new()).await?;
        self.index.clear().await.map_err(|e| Error::Index(e.0))?;
        let mut n = 0;
        for record in records.iter().filter(|r| !r.deleted) {
            self.index
                .put(record)
                .await
                .map_err(|e| Error::Index(e.0))?;
            n += 1;
        }
        Ok(n)
    }

    /// Publishes the events waiting in records' outboxes, then removes them (and the
    /// tombstones whose events are out); how many were published. At least once: a crash
    /// between publishing and the write publishes again, with the same `event_id`.
    pub async fn relay(&self, publisher: &dyn EventPublisher) -> Result<usize> {
        let pending = self
            .records
            .find_all(&Filter::from([("outbox_pending".to_owned(), json!(true))]))
            .await?;
        let mut sent = 0;
        for record in pending {
            let mut done = Vec::new();
            for event in &record.outbox {
                let event_type = EventType::try_from(event.event_type.as_str())
                    .map_err(|e| Error::Events(e.to_string()))?;
                let mut out = Event::new(
                    self.settings.topic.clone(),
                    event_type,
                    record.id.clone(),
                    event.payload.clone(),
                    event.event_id.clone(),
                );
                out.headers
                    .insert("event_id".into(), event.event_id.clone());
                publisher
                    .publish(out)
                    .await
                    .map_err(|e| Error::Events(e.to_string()))?;
                done.push(event.event_id.clone());
                sent += 1;
            }
            // Re-read: a change since then may have queued more.
            let mut current = match self.records.get_by_id(&record.id).await {
                Ok(r) => r,
                Err(dao::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            current.outbox.retain(|e| !done.contains(&e.event_id));
            current.outbox_pending = !current.outbox.is_empty();
            if current.deleted && !current.outbox_pending {
                match self.records.delete(&current.id).await {
                    Ok(()) | Err(dao::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                self.records.update(&current).await?;
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_masked() {
        assert_eq!(
            mask_author("Ada Lovelace <ada@example.org>"),
            "Ada Lovelace <ada@not.shown>"
        );
        assert_eq!(mask_author("Ada"), "Ada");
    }

    async fn core(dir: &std::path::Path) -> Packages {
        let store = tessera_embedded::EmbeddedStore::open(dir.join("db.sqlite")).unwrap();
        let objects =
            tessera_embedded::LocalObjectStore::open(&tessera_embedded::LocalObjectsConfig {
                objects_root: dir.join("objects"),
                ..tessera_embedded::LocalObjectsConfig::default()
            })
            .unwrap();
        let factory: &dyn tessera_kit::dao::DaoFactory = &store;
        Packages::new(
            tessera_kit::dao::JsonDao::open(factory, LoadJob::spec("jobs"))
                .await
                .unwrap(),
            tessera_kit::dao::JsonDao::open(factory, JobLease::spec("leases"))
                .await
                .unwrap(),
            tessera_kit::dao::JsonDao::open(factory, PackageRecord::spec("packages"))
                .await
                .unwrap(),
            Arc::new(crate::search::MockPackageIndex::new()),
            Arc::new(objects),
            Arc::new(crate::SystemClock),
            PackagesSettings {
                url_prefixes: vec!["http://ds".into()],
                lease: Duration::from_secs(30),
                topic: Topic::try_from("t").unwrap(),
            },
        )
    }

    #[tokio::test]
    async fn one_worker_wins_each_attempt_and_a_running_job_is_not_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let packages = Arc::new(core(dir.path()).await);
        let url = "http://ds/u1/p/datapackage.json";
        assert!(matches!(
            packages.upload("u2", url).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            packages
                .upload("u1", "http://elsewhere/u1/p/datapackage.json")
                .await,
            Err(Error::BadRequest(_))
        ));
        let job = packages.upload("u1", url).await.unwrap();
        assert_eq!(job.status, QUEUED);
        // Many workers claim the same job at once: exactly one gets it.
        let claims = futures::future::join_all((0..8).map(|_| {
            let (packages, job) = (packages.clone(), job.clone());
            async move { packages.claim(&job).await.unwrap() }
        }))
        .await;
        let won: Vec<_> = claims.into_iter().flatten().collect();
        assert_eq!(won.len(), 1);
        assert_eq!((won[0].status.as_str(), won[0].attempt), (LOADING, 1));
        // Uploading again while it runs changes nothing; a fresh job is not claimable.
        assert_eq!(packages.upload("u1", url).await.unwrap().status, LOADING);
        assert!(packages.claimable().await.unwrap().is_empty());
        assert!(packages.claim(&job).await.unwrap().is_none());
    }

    #[test]
    fn publish_values() {
        assert_eq!(Publish::parse("TRUE"), Some(Publish::True));
        assert_eq!(Publish::parse("Toggle"), Some(Publish::Toggle));
        assert_eq!(Publish::parse("yes"), None);
    }
}
