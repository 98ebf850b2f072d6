//! [`MongoIndex`]: the package index in a MongoDB collection. Each entry holds the result
//! document (`doc`), the visibility and sort fields, and `words`, the lower-cased words of
//! its text, under a multikey index: a query matches entries holding any of its words
//! (the same words the SQLite provider's FTS5 matches), newest first.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use serde_json::Value;
use tessera_conductor::PackageRecord;
use tessera_conductor::search::{IndexError, PackageIndex, PackageStats, SearchQuery};
use tessera_mongodb::MongoConfig;

use super::{country_of, result_doc, rows_of, words_of};

/// The package index in a MongoDB collection.
#[derive(Debug, Clone)]
pub struct MongoIndex {
    collection: Collection<Document>,
}

fn failed(e: impl std::fmt::Display) -> IndexError {
    IndexError(e.to_string())
}

impl MongoIndex {
    /// Connects and creates the collection's indexes.
    pub async fn connect(config: &MongoConfig, collection: &str) -> Result<Self, IndexError> {
        let client = mongodb::Client::with_uri_str(config.mongo_dsn.expose())
            .await
            .map_err(failed)?;
        let collection = client
            .database(&config.db_name)
            .collection::<Document>(collection);
        for keys in [
            doc! {"words": 1},
            doc! {"last_update": -1, "_id": 1},
            doc! {"owner": 1},
        ] {
            collection
                .create_index(
                    IndexModel::builder()
                        .keys(keys)
                        .options(IndexOptions::default())
                        .build(),
                )
                .await
                .map_err(failed)?;
        }
        Ok(Self { collection })
    }
}

fn to_bson(value: &Value) -> Result<Bson, IndexError> {
    bson::to_bson(value).map_err(failed)
}

#[async_trait]
impl PackageIndex for MongoIndex {
    async fn put(&self, record: &PackageRecord) -> Result<(), IndexError> {
        let entry = doc! {
            "_id": &record.id,
            "owner": record.owner(),
            "public": !record.private() && record.loaded,
            "last_update": record.last_update,
            "rows": rows_of(record),
            "country": country_of(record),
            "words": words_of(record),
            "doc": to_bson(&result_doc(record))?,
        };
        self.collection
            .replace_one(doc! {"_id": &record.id}, entry)
            .upsert(true)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<bool, IndexError> {
        let result = self
            .collection
            .delete_one(doc! {"_id": id})
            .await
            .map_err(failed)?;
        Ok(result.deleted_count > 0)
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Value>, IndexError> {
        let mut and = vec![match &query.userid {
            Some(user) => doc! {"$or": [{"public": true}, {"owner": user}]},
            None => doc! {"public": true},
        }];
        let words = query.words();
        if !words.is_empty() {
            and.push(doc! {"words": {"$in": words}});
        }
        for (path, values) in &query.filters {
            let values = values
                .iter()
                .filter(|v| !v.is_object() && !v.is_array())
                .map(to_bson)
                .collect::<Result<Vec<_>, _>>()?;
            and.push(doc! {format!("doc.{}", path.dotted()): {"$in": values}});
        }
        let options = FindOptions::builder()
            .sort(doc! {"last_update": -1, "_id": 1})
            .skip(u64::try_from(query.from).unwrap_or(u64::MAX))
            .limit(i64::try_from(query.size).unwrap_or(i64::MAX))
            .projection(doc! {"doc": 1})
            .build();
        if query.size == 0 {
            return Ok(Vec::new());
        }
        let cursor = self
            .collection
            .find(doc! {"$and": and})
            .with_options(options)
            .await
            .map_err(failed)?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(failed)?;
        docs.into_iter()
            .map(|d| {
                let inner = d.get_document("doc").map_err(failed)?.clone();
                let value = Bson::Document(inner).into_relaxed_extjson();
                Ok(value)
            })
            .collect()
    }

    async fn stats(&self) -> Result<PackageStats, IndexError> {
        let mut cursor = self
            .collection
            .find(doc! {})
            .projection(doc! {"rows": 1, "country": 1})
            .await
            .map_err(failed)?;
        let (mut packages, mut records) = (0u64, 0u64);
        let mut countries = std::collections::BTreeSet::new();
        while let Some(d) = cursor.try_next().await.map_err(failed)? {
            packages += 1;
            records += d
                .get("rows")
                .and_then(|b| b.as_i64().or_else(|| b.as_i32().map(i64::from)))
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0);
            if let Ok(country) = d.get_str("country") {
                countries.insert(country.to_owned());
            }
        }
        Ok(PackageStats {
            num_packages: packages,
            num_records: records,
            num_countries: countries.len() as u64,
        })
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.collection.delete_many(doc! {}).await.map_err(failed)?;
        Ok(())
    }
}
