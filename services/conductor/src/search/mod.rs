//! The providers of the package search port
//! ([`PackageIndex`](tessera_conductor::PackageIndex)): [`SqliteIndex`] (entries in the
//! embedded store's file, searched in an in-memory read model, [`memory`]; the default) and
//! [`MongoIndex`] (a collection with a multikey index on the words of the text fields, with
//! `mongo_dsn`). Both pass `tessera_conductor::search::suite`.

pub mod memory;
mod mongo;
mod sqlite;

pub use mongo::MongoIndex;
pub use sqlite::SqliteIndex;

use serde_json::{Map, Value};
use tessera_conductor::PackageRecord;
use tessera_conductor::search::{RESULT_FIELDS, SearchQuery, TEXT_FIELDS};

/// A record as search answers it: only [`RESULT_FIELDS`].
pub fn result_doc(record: &PackageRecord) -> Value {
    let mut doc = Map::new();
    doc.insert("id".into(), Value::String(record.id.clone()));
    doc.insert("model".into(), record.model.clone());
    doc.insert("package".into(), Value::Object(record.package.clone()));
    doc.insert(
        "origin_url".into(),
        Value::String(record.origin_url.clone()),
    );
    doc.insert("loaded".into(), Value::Bool(record.loaded));
    doc.insert("last_update".into(), serde_json::json!(record.last_update));
    debug_assert_eq!(doc.len(), RESULT_FIELDS.len());
    Value::Object(doc)
}

/// The text `q` searches: the text fields of `package`, strings and lists of strings.
pub fn text_of(record: &PackageRecord) -> String {
    let mut out = String::new();
    for field in TEXT_FIELDS {
        match record.package.get(field) {
            Some(Value::String(s)) => {
                out.push_str(s);
                out.push(' ');
            }
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    out.push_str(s);
                    out.push(' ');
                }
            }
            _ => {}
        }
    }
    out
}

/// The words of a record's text, as [`SearchQuery::words`] splits a query.
pub fn words_of(record: &PackageRecord) -> Vec<String> {
    let mut words = SearchQuery {
        q: Some(text_of(record)),
        filters: Vec::new(),
        userid: None,
        from: 0,
        size: 0,
    }
    .words_unbounded();
    words.sort();
    words.dedup();
    words
}

/// `package.count_of_rows` as an integer.
pub fn rows_of(record: &PackageRecord) -> i64 {
    record
        .package
        .get("count_of_rows")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `package.countryCode` when a string.
pub fn country_of(record: &PackageRecord) -> Option<String> {
    record
        .package
        .get("countryCode")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
