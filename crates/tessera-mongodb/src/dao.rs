//! The DAO protocol on MongoDB: one collection per spec, one partial unique index per unique
//! field, and the document shape of [`crate::convert`].
//!
//! Each unique index is named like MongoDB's default (`<field>_1`) and covers only documents
//! whose field holds a non-null value, so documents without it never clash. A duplicate key
//! error (code 11000) names its index, which gives the field of `AlreadyExists`. Every write
//! is a single-document operation, so a rejected write leaves nothing behind.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{Bson, Document as BsonDocument, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use tessera_kit::dao::{
    self, CollectionSpec, DaoFactory, Document, DocumentDao, Error as DaoError, Filter,
};

use crate::config::MongoConfig;
use crate::convert::{self, ID};
use crate::error::{Error, Result};

/// MongoDB's duplicate key error.
const DUPLICATE_KEY: i32 = 11000;
/// An index of that name exists with other options or keys.
const INDEX_CONFLICTS: [i32; 2] = [85, 86];
/// Every BSON type but null and undefined: a partial index over `$type` in this list skips
/// documents without the field or with null (`$ne: null` is not allowed in partial indexes).
const NON_NULL_TYPES: [&str; 18] = [
    "double",
    "string",
    "object",
    "array",
    "binData",
    "objectId",
    "bool",
    "date",
    "regex",
    "dbPointer",
    "javascript",
    "symbol",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
];

fn index_name(field: &str) -> String {
    format!("{field}_1")
}

/// Name of the (non-unique) index of an indexed field; apart from the unique ones, so that
/// a field may be both without the two clashing.
fn lookup_index_name(field: &str) -> String {
    format!("{field}_lookup")
}

/// Hands out [`DocumentDao`]s over one database. Cheap to clone; clones share the client's
/// connection pool.
#[derive(Clone)]
pub struct MongoDaoFactory {
    db: Database,
    timeout: Option<Duration>,
}

// By hand, so that no part of the client's options (the DSN's credentials) can reach a log.
impl fmt::Debug for MongoDaoFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoDaoFactory")
            .field("db_name", &self.db.name())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MongoDaoFactory {
    /// Connects to `config.mongo_dsn` and checks with a ping that the server answers, so that
    /// a misconfigured service fails at start-up rather than at its first request.
    pub async fn connect(config: &MongoConfig) -> Result<Self> {
        if config.db_name.is_empty() {
            return Err(Error::EmptyDbName);
        }
        let timeout = match config.mongo_timeout {
            Some(0) => return Err(Error::ZeroTimeout),
            secs => secs.map(Duration::from_secs),
        };
        let mut options = ClientOptions::parse(config.mongo_dsn.expose())
            .await
            .map_err(|e| Error::Dsn(Box::new(e)))?;
        if let Some(t) = timeout {
            options.server_selection_timeout = Some(t);
            options.connect_timeout = Some(t);
        }
        let client = Client::with_options(options).map_err(|e| Error::Dsn(Box::new(e)))?;
        let factory = Self {
            db: client.database(&config.db_name),
            timeout,
        };
        factory
            .ping()
            .await
            .map_err(|e| Error::Unreachable(Box::new(e)))?;
        Ok(factory)
    }

    /// The database the DAOs use.
    pub fn db_name(&self) -> &str {
        self.db.name()
    }

    /// Asks the server whether it is there (for health checks).
    pub async fn ping(&self) -> Result<()> {
        let ping = async {
            self.db
                .run_command(doc! {"ping": 1})
                .await
                .map_err(Error::driver)
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, ping)
                .await
                .map_err(|_| Error::Timeout(t))?,
            None => ping.await,
        }
        .map(drop)
    }
}

#[async_trait]
impl DaoFactory for MongoDaoFactory {
    async fn document_dao(&self, spec: CollectionSpec) -> Result<Arc<dyn DocumentDao>, DaoError> {
        spec.validate()?;
        let dao = MongoDao {
            coll: self.db.collection(&spec.name),
            timeout: self.timeout,
            spec,
        };
        dao.timed(dao.create_indexes()).await?;
        Ok(Arc::new(dao))
    }
}

/// The DAO of one collection.
struct MongoDao {
    coll: Collection<BsonDocument>,
    spec: CollectionSpec,
    timeout: Option<Duration>,
}

impl fmt::Debug for MongoDao {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoDao")
            .field("db_name", &self.coll.namespace().db)
            .field("spec", &self.spec)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MongoDao {
    /// Runs `op` within the configured timeout.
    async fn timed<T>(&self, op: impl Future<Output = Result<T, DaoError>>) -> Result<T, DaoError> {
        match self.timeout {
            Some(t) => tokio::time::timeout(t, op)
                .await
                .map_err(|_| DaoError::from(Error::Timeout(t)))?,
            None => op.await,
        }
    }

    async fn create_indexes(&self) -> Result<(), DaoError> {
        for field in &self.spec.indexed_fields {
            if *field == self.spec.id_field || field == ID {
                continue;
            }
            let model = IndexModel::builder()
                .keys(doc! {field.as_str(): 1})
                .options(
                    IndexOptions::builder()
                        .name(lookup_index_name(field))
                        .build(),
                )
                .build();
            self.coll.create_index(model).await.map_err(Error::driver)?;
        }
        for field in &self.spec.unique_fields {
            if *field == self.spec.id_field || field == ID {
                continue;
            }
            let types: Vec<Bson> = NON_NULL_TYPES.iter().map(|t| Bson::from(*t)).collect();
            let options = IndexOptions::builder()
                .name(index_name(field))
                .unique(true)
                .partial_filter_expression(doc! {field.as_str(): {"$type": types}})
                .build();
            let model = IndexModel::builder()
                .keys(doc! {field.as_str(): 1})
                .options(options)
                .build();
            if let Err(err) = self.coll.create_index(model).await {
                let reason = match command_code(&err) {
                    Some(DUPLICATE_KEY) => "stored documents share a value",
                    Some(code) if INDEX_CONFLICTS.contains(&code) => {
                        "an index of the same name exists with other options (drop it to \
                         let this provider create its partial unique index)"
                    }
                    _ => return Err(Error::driver(err).into()),
                };
                return Err(DaoError::InvalidSpec(format!(
                    "cannot make {field:?} unique in collection {:?}: {reason}",
                    self.spec.name
                )));
            }
        }
        Ok(())
    }

    fn invalid(&self, reason: impl fmt::Display) -> DaoError {
        DaoError::InvalidDocument {
            collection: self.spec.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn not_found(&self, id: &str) -> DaoError {
        DaoError::NotFound {
            collection: self.spec.name.clone(),
            id: id.to_owned(),
        }
    }

    /// The stored form of `doc` and the filter that selects its id.
    fn encode(&self, doc: &Document) -> Result<(BsonDocument, BsonDocument), DaoError> {
        self.spec.id_of(doc)?;
        let stored = convert::encode_doc(&self.spec, doc).map_err(|r| self.invalid(r))?;
        let id = stored.get(ID).cloned().unwrap_or(Bson::Null);
        Ok((stored, doc! {ID: id}))
    }

    fn decode(&self, doc: &BsonDocument) -> Result<Document, DaoError> {
        convert::decode_doc(&self.spec, doc).map_err(|r| self.invalid(r))
    }

    /// The query selecting `id` as `get_by_id` and `delete` understand it, or `None` when no
    /// document can have that id.
    fn id_query(&self, id: &str) -> Option<BsonDocument> {
        match convert::id_candidates(&self.spec, id).as_slice() {
            [] => None,
            [one] => Some(doc! {ID: one.clone()}),
            many => Some(doc! {ID: {"$in": many.to_vec()}}),
        }
    }

    /// Maps a failed write: a duplicate key names the field whose index it hit.
    fn write_error(&self, err: mongodb::error::Error) -> DaoError {
        match duplicate_index(&err) {
            Some(index) => DaoError::AlreadyExists {
                collection: self.spec.name.clone(),
                field: self.field_of_index(&index),
            },
            None => Error::driver(err).into(),
        }
    }

    fn field_of_index(&self, index: &str) -> String {
        if index == "_id_" {
            return self.spec.id_field.clone();
        }
        self.spec
            .unique_fields
            .iter()
            .find(|f| index_name(f) == index)
            .cloned()
            .unwrap_or_else(|| format!("value of index {index}"))
    }

    /// The matching documents in id order, at most `max` of them.
    async fn find(&self, filter: &Filter, max: usize) -> Result<Vec<Document>, DaoError> {
        let Some(query) = convert::encode_filter(&self.spec, filter) else {
            return Ok(Vec::new());
        };
        self.timed(async {
            let mut cursor = self
                .coll
                .find(query.server)
                .sort(doc! {ID: 1})
                .await
                .map_err(Error::driver)?;
            let mut found = Vec::new();
            while cursor.advance().await.map_err(Error::driver)? {
                let raw = cursor.deserialize_current().map_err(Error::driver)?;
                let doc = self.decode(&raw)?;
                if dao::matches(&doc, &query.check) {
                    found.push(doc);
                    if found.len() >= max {
                        break;
                    }
                }
            }
            Ok(found)
        })
        .await
    }
}

/// The code of a failed command (not of a write).
fn command_code(err: &mongodb::error::Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

/// The index a duplicate key error names, from the server's message
/// (`E11000 duplicate key error collection: db.c index: email_1 dup key: { … }`).
fn duplicate_index(err: &mongodb::error::Error) -> Option<String> {
    let (code, message) = match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => (e.code, e.message.as_str()),
        ErrorKind::Command(e) => (e.code, e.message.as_str()),
        _ => return None,
    };
    if code != DUPLICATE_KEY {
        return None;
    }
    Some(index_in_message(message).unwrap_or_default().to_owned())
}

fn index_in_message(message: &str) -> Option<&str> {
    let rest = &message[message.find(" index: ")? + " index: ".len()..];
    rest.split_whitespace().next()
}

#[async_trait]
impl DocumentDao for MongoDao {
    fn spec(&self) -> &CollectionSpec {
        &self.spec
    }

    async fn get_by_id(&self, id: &str) -> Result<Document, DaoError> {
        let Some(query) = self.id_query(id) else {
            return Err(self.not_found(id));
        };
        let found = self
            .timed(async { Ok(self.coll.find_one(query).await.map_err(Error::driver)?) })
            .await?;
        match found {
            Some(doc) => self.decode(&doc),
            None => Err(self.not_found(id)),
        }
    }

    async fn find_one(&self, filter: &Filter) -> Result<Option<Document>, DaoError> {
        dao::at_most_one(&self.spec.name, self.find(filter, 2).await?)
    }

    async fn find_all(&self, filter: &Filter) -> Result<Vec<Document>, DaoError> {
        self.find(filter, usize::MAX).await
    }

    async fn insert(&self, doc: Document) -> Result<(), DaoError> {
        let (stored, _) = self.encode(&doc)?;
        self.timed(async {
            self.coll
                .insert_one(stored)
                .await
                .map_err(|e| self.write_error(e))
        })
        .await
        .map(drop)
    }

    async fn upsert(&self, doc: Document) -> Result<(), DaoError> {
        let (stored, by_id) = self.encode(&doc)?;
        self.timed(async {
            // Two concurrent upserts of a new id can both try to insert; the loser sees a
            // duplicate `_id` and, on retry, replaces the winner's document.
            let mut attempts = 0;
            loop {
                attempts += 1;
                match self
                    .coll
                    .replace_one(by_id.clone(), &stored)
                    .upsert(true)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => match self.write_error(e) {
                        DaoError::AlreadyExists { field, .. }
                            if field == self.spec.id_field && attempts < 3 => {}
                        other => return Err(other),
                    },
                }
            }
        })
        .await
    }

    async fn update(&self, doc: Document) -> Result<(), DaoError> {
        let (stored, by_id) = self.encode(&doc)?;
        let result = self
            .timed(async {
                self.coll
                    .replace_one(by_id, &stored)
                    .await
                    .map_err(|e| self.write_error(e))
            })
            .await?;
        if result.matched_count == 0 {
            return Err(self.not_found(&self.spec.id_of(&doc)?));
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), DaoError> {
        let Some(query) = self.id_query(id) else {
            return Err(self.not_found(id));
        };
        let result = self
            .timed(async { Ok(self.coll.delete_one(query).await.map_err(Error::driver)?) })
            .await?;
        if result.deleted_count == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_read_from_duplicate_key_messages() {
        assert_eq!(
            index_in_message(
                "E11000 duplicate key error collection: db.people index: email_1 dup key: \
                 { email: \"a@b\" }"
            ),
            Some("email_1")
        );
        assert_eq!(
            index_in_message(
                "Plan executor error during update :: caused by :: E11000 duplicate key error \
                 collection: db.c index: _id_ dup key: { _id: \"e\" }"
            ),
            Some("_id_")
        );
        assert_eq!(index_in_message("E11000 duplicate key error"), None);
    }

    #[tokio::test]
    async fn debug_output_hides_the_credentials() {
        let options = ClientOptions::parse("mongodb://alice:hunter2@127.0.0.1:1/")
            .await
            .unwrap();
        let factory = MongoDaoFactory {
            db: Client::with_options(options).unwrap().database("wps"),
            timeout: None,
        };
        let dao = MongoDao {
            coll: factory.db.collection("c"),
            spec: CollectionSpec::new("c", "id"),
            timeout: None,
        };
        for text in [format!("{factory:?}"), format!("{dao:?}")] {
            assert!(text.contains("wps") && !text.contains("hunter2"), "{text}");
        }
    }

    #[tokio::test]
    async fn connect_checks_the_config_before_dialling() {
        let config = |dsn: &str, db: &str, timeout| MongoConfig {
            mongo_dsn: dsn.into(),
            db_name: db.into(),
            mongo_timeout: timeout,
        };
        assert!(matches!(
            MongoDaoFactory::connect(&config("mongodb://127.0.0.1:1/", "", None)).await,
            Err(Error::EmptyDbName)
        ));
        assert!(matches!(
            MongoDaoFactory::connect(&config("mongodb://127.0.0.1:1/", "x", Some(0))).await,
            Err(Error::ZeroTimeout)
        ));
        assert!(matches!(
            MongoDaoFactory::connect(&config("postgres://127.0.0.1/", "x", Some(1))).await,
            Err(Error::Dsn(_))
        ));
        assert!(matches!(
            MongoDaoFactory::connect(&config("mongodb://127.0.0.1:1/", "x", Some(1))).await,
            Err(Error::Unreachable(_))
        ));
    }
}
