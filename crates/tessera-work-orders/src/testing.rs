//! Test doubles for stateful ports (feature `mock`): an in-memory [`DocumentDao`] and a
//! clock that tests set by hand. Call-shaped ports have mockall mocks instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_kit::dao::{
    self, CollectionSpec, Dao, Document, DocumentDao, Filter, JsonDao, Model, matches,
};

use crate::ports::Clock;

/// A [`DocumentDao`] over a map, in id order. `fail(true)` makes every call a backend error.
#[derive(Debug)]
pub struct MemoryDocumentDao {
    spec: CollectionSpec,
    docs: Mutex<BTreeMap<String, Document>>,
    failing: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
struct Injected;

impl MemoryDocumentDao {
    /// An empty collection for `spec`.
    pub fn new(spec: CollectionSpec) -> Self {
        Self {
            spec,
            docs: Mutex::new(BTreeMap::new()),
            failing: AtomicBool::new(false),
        }
    }

    /// Makes every later call fail (or work again).
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// A copy of every stored document, in id order.
    pub fn documents(&self) -> Vec<Document> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Document>> {
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> dao::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(dao::Error::backend(Injected))
        } else {
            Ok(())
        }
    }

    fn not_found(&self, id: &str) -> dao::Error {
        dao::Error::NotFound {
            collection: self.spec.name.clone(),
            id: id.to_owned(),
        }
    }
}

#[async_trait]
impl DocumentDao for MemoryDocumentDao {
    fn spec(&self) -> &CollectionSpec {
        &self.spec
    }

    async fn get_by_id(&self, id: &str) -> dao::Result<Document> {
        self.check()?;
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| self.not_found(id))
    }

    async fn find_one(&self, filter: &Filter) -> dao::Result<Option<Document>> {
        dao::at_most_one(&self.spec.name, self.find_all(filter).await?)
    }

    async fn find_all(&self, filter: &Filter) -> dao::Result<Vec<Document>> {
        self.check()?;
        Ok(self
            .lock()
            .values()
            .filter(|d| matches(d, filter))
            .cloned()
            .collect())
    }

    async fn insert(&self, doc: Document) -> dao::Result<()> {
        self.check()?;
        let id = self.spec.id_of(&doc)?;
        let mut docs = self.lock();
        if docs.contains_key(&id) {
            return Err(dao::Error::AlreadyExists {
                collection: self.spec.name.clone(),
                field: self.spec.id_field.clone(),
            });
        }
        docs.insert(id, doc);
        Ok(())
    }

    async fn upsert(&self, doc: Document) -> dao::Result<()> {
        self.check()?;
        let id = self.spec.id_of(&doc)?;
        self.lock().insert(id, doc);
        Ok(())
    }

    async fn update(&self, doc: Document) -> dao::Result<()> {
        self.check()?;
        let id = self.spec.id_of(&doc)?;
        let mut docs = self.lock();
        match docs.get_mut(&id) {
            Some(slot) => {
                *slot = doc;
                Ok(())
            }
            None => Err(self.not_found(&id)),
        }
    }

    async fn delete(&self, id: &str) -> dao::Result<()> {
        self.check()?;
        match self.lock().remove(id) {
            Some(_) => Ok(()),
            None => Err(self.not_found(id)),
        }
    }
}

/// An in-memory collection `name` (id field `id`) and the typed DAO over it.
pub fn dao<T: Model>(name: &str) -> (Arc<MemoryDocumentDao>, Arc<dyn Dao<T>>) {
    spec_dao(CollectionSpec::new(name, "id"))
}

/// An in-memory collection for `spec` and the typed DAO over it.
pub fn spec_dao<T: Model>(spec: CollectionSpec) -> (Arc<MemoryDocumentDao>, Arc<dyn Dao<T>>) {
    let inner = Arc::new(MemoryDocumentDao::new(spec));
    let typed: Arc<dyn Dao<T>> = Arc::new(JsonDao::<T>::new(inner.clone()));
    (inner, typed)
}

/// A clock that shows what it was last set to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
