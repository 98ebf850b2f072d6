//! The DAO protocol: typed access to one collection of documents.
//!
//! Providers implement the untyped [`DocumentDao`] (JSON objects) and [`DaoFactory`];
//! services use the typed [`Dao<T>`] that [`JsonDao`] builds on top of them, so that the
//! serde mapping is written once and every provider stores the same document shape.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A stored document: a JSON object that holds its id under [`CollectionSpec::id_field`].
pub type Document = Map<String, Value>;

/// Equality filter: every named field must equal the given value.
pub type Filter = BTreeMap<String, Value>;

/// Errors of the DAO protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No document with that id exists.
    #[error("no document with id {id:?} in collection {collection:?}")]
    NotFound { collection: String, id: String },
    /// A document with that id, or with the same value of a unique field, exists.
    #[error("a document with the same {field} already exists in collection {collection:?}")]
    AlreadyExists { collection: String, field: String },
    /// `find_one` matched more than one document.
    #[error("more than one document in collection {collection:?} matches the filter")]
    MultipleHits { collection: String },
    /// The document could not be mapped to or from its stored form.
    #[error("invalid document for collection {collection:?}: {reason}")]
    InvalidDocument { collection: String, reason: String },
    /// The collection specification is not usable (bad name, bad field).
    #[error("invalid collection spec: {0}")]
    InvalidSpec(String),
    /// The storage backend failed (connection, I/O, timeout).
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// Result with the DAO [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a provider should store a field whose JSON form is a string but whose value has a
/// richer native type (MongoDB stores UUIDs as BSON binary subtype 4 and datetimes as BSON
/// dates). Providers without such types ignore the hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A hyphenated UUID string.
    Uuid,
    /// An RFC 3339 datetime string (stored with millisecond precision where the backend
    /// has native dates).
    DateTime,
}

/// What a DAO is for: a collection name, the field that holds the id, the unique fields and
/// the native-type hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpec {
    /// The collection name: `[A-Za-z0-9_.-]`, 1 to 120 characters.
    pub name: String,
    /// The model field that holds the id (MongoDB stores it as `_id`).
    pub id_field: String,
    /// Fields whose values must be unique across the collection (one index each). Documents
    /// that lack the field or hold `null` in it never clash with each other (a provider whose
    /// unique indexes count `null` must make them partial).
    pub unique_fields: Vec<String>,
    /// Fields that queries filter on often (one non-unique index each): lookups by such a
    /// field stay cheap as the collection grows.
    pub indexed_fields: Vec<String>,
    /// Native-type hints, by top-level field name (the id field included).
    pub field_kinds: BTreeMap<String, FieldKind>,
}

impl CollectionSpec {
    /// A spec for `name` with the id in `id_field`, no unique fields and no hints.
    pub fn new(name: impl Into<String>, id_field: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id_field: id_field.into(),
            unique_fields: Vec::new(),
            indexed_fields: Vec::new(),
            field_kinds: BTreeMap::new(),
        }
    }

    /// Adds a unique field.
    #[must_use]
    pub fn unique(mut self, field: impl Into<String>) -> Self {
        self.unique_fields.push(field.into());
        self
    }

    /// Adds a (non-unique) indexed field.
    #[must_use]
    pub fn index(mut self, field: impl Into<String>) -> Self {
        self.indexed_fields.push(field.into());
        self
    }

    /// Adds a native-type hint.
    #[must_use]
    pub fn kind(mut self, field: impl Into<String>, kind: FieldKind) -> Self {
        self.field_kinds.insert(field.into(), kind);
        self
    }

    /// Checks the name and the field names; providers call this before creating anything.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 120
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !name_ok {
            return Err(Error::InvalidSpec(format!(
                "collection name {:?} must be 1 to 120 characters of [A-Za-z0-9_.-]",
                self.name
            )));
        }
        let field_ok = |f: &str| {
            !f.is_empty()
                && !f.starts_with('$')
                && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        for field in std::iter::once(&self.id_field)
            .chain(&self.unique_fields)
            .chain(&self.indexed_fields)
        {
            if !field_ok(field) {
                return Err(Error::InvalidSpec(format!(
                    "field name {field:?} must be non-empty [A-Za-z0-9_]"
                )));
            }
        }
        Ok(())
    }

    /// The id of `doc` as a string: a JSON string as it is, a number in its JSON form.
    pub fn id_of(&self, doc: &Document) -> Result<String> {
        match doc.get(&self.id_field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(Error::InvalidDocument {
                collection: self.name.clone(),
                reason: format!("field {:?} must hold a non-empty string id", self.id_field),
            }),
        }
    }
}

/// What `find_one` returns given the matches a provider found (fetching two is enough):
/// the only one, `None`, or `MultipleHits` for `collection`.
pub fn at_most_one<T>(collection: &str, mut hits: Vec<T>) -> Result<Option<T>> {
    if hits.len() > 1 {
        return Err(Error::MultipleHits {
            collection: collection.to_owned(),
        });
    }
    Ok(hits.pop())
}

/// Whether `doc` matches every equality condition of `filter` (a missing field equals
/// `null`). Providers that cannot express a filter natively use this as the final check.
pub fn matches(doc: &Document, filter: &Filter) -> bool {
    filter
        .iter()
        .all(|(field, want)| doc.get(field).unwrap_or(&Value::Null) == want)
}

/// Untyped access to one collection; what a provider implements.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait DocumentDao: Send + Sync + fmt::Debug {
    /// The spec this DAO was made for.
    fn spec(&self) -> &CollectionSpec;

    /// The document with this id. MUST return `NotFound` when there is none.
    async fn get_by_id(&self, id: &str) -> Result<Document>;

    /// The one document matching `filter`, or `None`. MUST return `MultipleHits` when more
    /// than one document matches.
    async fn find_one(&self, filter: &Filter) -> Result<Option<Document>>;

    /// Every document matching `filter` (all of them for an empty filter), in id order.
    async fn find_all(&self, filter: &Filter) -> Result<Vec<Document>>;

    /// Stores a new document. MUST return `AlreadyExists` (and store nothing) when the id or
    /// a unique field's value is taken.
    async fn insert(&self, doc: Document) -> Result<()>;

    /// Stores the document, replacing any with the same id. MUST return `AlreadyExists`
    /// when another document holds one of its unique values.
    async fn upsert(&self, doc: Document) -> Result<()>;

    /// Replaces the document with the same id. MUST return `NotFound` when there is none,
    /// and `AlreadyExists` when another document holds one of its unique values.
    async fn update(&self, doc: Document) -> Result<()>;

    /// Deletes the document with this id. MUST return `NotFound` when there is none.
    async fn delete(&self, id: &str) -> Result<()>;
}

/// Hands out a DAO per collection, creating the collection and its unique indexes.
#[async_trait]
pub trait DaoFactory: Send + Sync + fmt::Debug {
    /// A DAO for `spec`. Calling it again with the same spec MUST be harmless.
    async fn document_dao(&self, spec: CollectionSpec) -> Result<Arc<dyn DocumentDao>>;
}

/// A model stored through a [`Dao`].
pub trait Model: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Model for T {}

/// Typed access to one collection; what domain code uses.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Dao<T: Model>: Send + Sync {
    /// The model with this id. MUST return `NotFound` when there is none.
    async fn get_by_id(&self, id: &str) -> Result<T>;
    /// The one model whose fields equal `filter`. MUST return `MultipleHits` for several.
    async fn find_one(&self, filter: &Filter) -> Result<Option<T>>;
    /// Every model whose fields equal `filter`.
    async fn find_all(&self, filter: &Filter) -> Result<Vec<T>>;
    /// Stores a new model. MUST return `AlreadyExists` for a taken id or unique value.
    async fn insert(&self, model: &T) -> Result<()>;
    /// Stores the model, replacing any with the same id.
    async fn upsert(&self, model: &T) -> Result<()>;
    /// Replaces the model with the same id. MUST return `NotFound` when there is none.
    async fn update(&self, model: &T) -> Result<()>;
    /// Deletes the model with this id. MUST return `NotFound` when there is none.
    async fn delete(&self, id: &str) -> Result<()>;
}

/// The [`Dao`] every service uses: serde on top of a provider's [`DocumentDao`].
pub struct JsonDao<T> {
    inner: Arc<dyn DocumentDao>,
    _model: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for JsonDao<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonDao")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: Model> JsonDao<T> {
    /// Wraps a provider DAO.
    pub fn new(inner: Arc<dyn DocumentDao>) -> Self {
        Self {
            inner,
            _model: PhantomData,
        }
    }

    /// Asks `factory` for the collection of `spec` and wraps it.
    pub async fn open(factory: &dyn DaoFactory, spec: CollectionSpec) -> Result<Arc<dyn Dao<T>>> {
        let inner = factory.document_dao(spec).await?;
        Ok(Arc::new(Self::new(inner)))
    }

    fn invalid(&self, reason: impl fmt::Display) -> Error {
        Error::InvalidDocument {
            collection: self.inner.spec().name.clone(),
            reason: reason.to_string(),
        }
    }

    fn encode(&self, model: &T) -> Result<Document> {
        match serde_json::to_value(model).map_err(|e| self.invalid(e))? {
            Value::Object(doc) => Ok(doc),
            _ => Err(self.invalid("a model must serialise to a JSON object")),
        }
    }

    fn decode(&self, doc: Document) -> Result<T> {
        serde_json::from_value(Value::Object(doc)).map_err(|e| self.invalid(e))
    }
}

#[async_trait]
impl<T: Model> Dao<T> for JsonDao<T> {
    async fn get_by_id(&self, id: &str) -> Result<T> {
        let doc = self.inner.get_by_id(id).await?;
        self.decode(doc)
    }

    async fn find_one(&self, filter: &Filter) -> Result<Option<T>> {
        self.inner
            .find_one(filter)
            .await?
            .map(|d| self.decode(d))
            .transpose()
    }

    async fn find_all(&self, filter: &Filter) -> Result<Vec<T>> {
        let docs = self.inner.find_all(filter).await?;
        docs.into_iter().map(|d| self.decode(d)).collect()
    }

    async fn insert(&self, model: &T) -> Result<()> {
        let doc = self.encode(model)?;
        self.inner.insert(doc).await
    }

    async fn upsert(&self, model: &T) -> Result<()> {
        let doc = self.encode(model)?;
        self.inner.upsert(doc).await
    }

    async fn update(&self, model: &T) -> Result<()> {
        let doc = self.encode(model)?;
        self.inner.update(doc).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.inner.delete(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Item {
        id: String,
        n: i64,
    }

    #[test]
    fn at_most_one_refuses_several_hits() {
        assert_eq!(at_most_one::<i32>("c", vec![]).unwrap(), None);
        assert_eq!(at_most_one("c", vec![7]).unwrap(), Some(7));
        match at_most_one("c", vec![1, 2]) {
            Err(Error::MultipleHits { collection }) => assert_eq!(collection, "c"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spec_validation_rejects_bad_names() {
        assert!(CollectionSpec::new("items", "id").validate().is_ok());
        assert!(CollectionSpec::new("", "id").validate().is_err());
        assert!(CollectionSpec::new("a b", "id").validate().is_err());
        assert!(CollectionSpec::new("x", "$id").validate().is_err());
        assert!(
            CollectionSpec::new("x", "id")
                .unique("a.b")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn matches_treats_missing_as_null() {
        let doc = json!({"id": "1", "a": 2}).as_object().cloned().unwrap();
        let mut f = Filter::new();
        f.insert("a".into(), json!(2));
        assert!(matches(&doc, &f));
        f.insert("b".into(), Value::Null);
        assert!(matches(&doc, &f));
        f.insert("a".into(), json!("2"));
        assert!(!matches(&doc, &f));
    }

    #[tokio::test]
    async fn json_dao_maps_models_and_reports_bad_documents() {
        let mut inner = MockDocumentDao::new();
        let spec = CollectionSpec::new("items", "id");
        inner.expect_spec().return_const(spec);
        inner.expect_get_by_id().returning(|id| match id {
            "1" => Ok(json!({"id": "1", "n": 5}).as_object().cloned().unwrap()),
            _ => Ok(json!({"id": id, "n": "nope"}).as_object().cloned().unwrap()),
        });
        inner
            .expect_insert()
            .withf(|doc| doc.get("n") == Some(&json!(7)))
            .returning(|_| Ok(()));
        let dao: JsonDao<Item> = JsonDao::new(Arc::new(inner));
        assert_eq!(
            dao.get_by_id("1").await.unwrap(),
            Item {
                id: "1".into(),
                n: 5
            }
        );
        assert!(matches!(
            dao.get_by_id("2").await,
            Err(Error::InvalidDocument { .. })
        ));
        dao.insert(&Item {
            id: "3".into(),
            n: 7,
        })
        .await
        .unwrap();
    }
}
