//! The package search port ([`PackageIndex`]) and its query ([`SearchQuery`]): what
//! `/search/package` and `/package/stats` need from a search engine. Providers: SQLite FTS5
//! beside the embedded store and a MongoDB text index (in the service); both pass
//! [`suite`] (feature `testsuite`).

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::packages::PackageRecord;

/// The top-level fields a filter may start with, and the fields a result holds.
pub const RESULT_FIELDS: [&str; 6] = [
    "id",
    "model",
    "package",
    "origin_url",
    "loaded",
    "last_update",
];

/// The text fields `q` searches (under `package.`).
pub const TEXT_FIELDS: [&str; 7] = [
    "title",
    "author",
    "owner",
    "description",
    "regionCode",
    "countryCode",
    "cityCode",
];

/// The largest page.
pub const MAX_SIZE: usize = 1000;

/// A search failure of the provider.
#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct IndexError(pub String);

/// A dotted path below one of [`RESULT_FIELDS`], e.g. `package.countryCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses a filter key. MUST refuse a first segment outside [`RESULT_FIELDS`] and
    /// segments that are not `[A-Za-z0-9_-]+`.
    pub fn parse(key: &str) -> Option<Self> {
        let segments: Vec<String> = key.split('.').map(str::to_owned).collect();
        let ok = RESULT_FIELDS.contains(&segments[0].as_str())
            && segments.len() <= 8
            && segments.iter().all(|s| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            });
        ok.then_some(Self(segments))
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// `a.b.c`.
    pub fn dotted(&self) -> String {
        self.0.join(".")
    }

    /// The value at this path of a record's JSON.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(doc, |v, s| v.get(s))
    }
}

/// A search: the words of `q` (any of them matches; better matches first), filters (each
/// path equal to one of its values, or holding one in a list; all filters hold), the
/// asking user (who also sees their private packages), and the page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Free text over [`TEXT_FIELDS`].
    pub q: Option<String>,
    /// Path to accepted values.
    pub filters: Vec<(FieldPath, Vec<Value>)>,
    /// The asking user, when signed in.
    pub userid: Option<String>,
    /// Results to skip.
    pub from: usize,
    /// Results to return (at most [`MAX_SIZE`]).
    pub size: usize,
}

impl SearchQuery {
    /// The words of `q`: letters and digits, lower-cased, at most 16.
    pub fn words(&self) -> Vec<String> {
        let mut words = self.words_unbounded();
        words.truncate(16);
        words
    }

    /// Every word of `q` (providers index a record's text with this).
    pub fn words_unbounded(&self) -> Vec<String> {
        self.q
            .as_deref()
            .unwrap_or("")
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    /// Whether `record` is visible to the asking user and matches every filter (what the
    /// providers compute natively; the contract suite checks them against it).
    pub fn admits(&self, record: &Value) -> bool {
        let package = record.get("package");
        let private = package
            .and_then(|p| p.get("private"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let loaded = record
            .get("loaded")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let owner = package.and_then(|p| p.get("owner")).and_then(Value::as_str);
        let visible =
            (!private && loaded) || self.userid.as_deref().is_some_and(|u| Some(u) == owner);
        visible
            && self
                .filters
                .iter()
                .all(|(path, values)| match path.get(record) {
                    Some(Value::Array(items)) => items.iter().any(|i| values.contains(i)),
                    Some(v) => values.contains(v),
                    None => false,
                })
    }
}

/// `/package/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PackageStats {
    /// Indexed packages.
    pub num_packages: u64,
    /// The sum of their `package.count_of_rows`.
    pub num_records: u64,
    /// Distinct `package.countryCode` values.
    pub num_countries: u64,
}

/// A search index of package records.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PackageIndex: Send + Sync + fmt::Debug {
    /// Indexes `record`, replacing the entry with its id.
    async fn put(&self, record: &PackageRecord) -> Result<(), IndexError>;

    /// Removes the entry of `id`; whether there was one.
    async fn remove(&self, id: &str) -> Result<bool, IndexError>;

    /// The records [`SearchQuery::admits`] that match `q` (every record without `q`),
    /// each restricted to [`RESULT_FIELDS`]. Order: MUST be stable: with `q`, better
    /// matches first; then `last_update` descending, then `id` ascending. MUST skip `from`
    /// and return at most `size`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Value>, IndexError>;

    /// Counts over every entry (private ones too, as the original's aggregations).
    async fn stats(&self) -> Result<PackageStats, IndexError>;

    /// Removes every entry.
    async fn clear(&self) -> Result<(), IndexError>;
}

/// The contract suite every [`PackageIndex`] provider runs against itself.
#[cfg(feature = "testsuite")]
pub mod suite {
    use serde_json::json;

    use super::*;

    fn record(
        owner: &str,
        name: &str,
        title: &str,
        country: &str,
        private: bool,
        updated: f64,
        rows: u64,
    ) -> PackageRecord {
        PackageRecord {
            id: format!("{owner}:{name}"),
            model: json!({"measures": {"amount": {"source": "amount"}}}),
            package: json!({"name": name, "title": title, "owner": owner, "private": private,
                "countryCode": country, "count_of_rows": rows, "keywords": ["budget", name]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
            origin_url: format!("http://x/{owner}/{name}/datapackage.json"),
            dataset: name.to_owned(),
            author: None,
            loading_status: "done".into(),
            loaded: true,
            objects_prefix: String::new(),
            last_update: updated,
            deleted: false,
            outbox: Vec::new(),
            outbox_pending: false,
        }
    }

    fn query(q: Option<&str>, userid: Option<&str>) -> SearchQuery {
        SearchQuery {
            q: q.map(str::to_owned),
            filters: Vec::new(),
            userid: userid.map(str::to_owned),
            from: 0,
            size: 100,
        }
    }

    fn ids(results: &[Value]) -> Vec<&str> {
        results.iter().filter_map(|r| r["id"].as_str()).collect()
    }

    /// Runs every case on `index`, which it clears first.
    ///
    /// # Panics
    /// When the provider breaks the contract.
    #[allow(clippy::unwrap_used, clippy::too_many_lines)]
    pub async fn run(index: &dyn PackageIndex) {
        index.clear().await.unwrap();
        assert_eq!(
            index.search(&query(None, None)).await.unwrap(),
            Vec::<Value>::new()
        );
        let records = [
            record(
                "alice",
                "budget-2020",
                "Berlin budget 2020",
                "DE",
                false,
                3.0,
                10,
            ),
            record("alice", "secret", "Secret spending", "DE", true, 4.0, 5),
            record(
                "bob",
                "roads",
                "Road spending in Paris",
                "FR",
                false,
                2.0,
                7,
            ),
            record("bob", "schools", "Schools budget", "FR", false, 2.0, 1),
        ];
        for r in &records {
            index.put(r).await.unwrap();
        }
        // Anonymous: public only, newest first, ties by id.
        let all = index.search(&query(None, None)).await.unwrap();
        assert_eq!(ids(&all), ["alice:budget-2020", "bob:roads", "bob:schools"]);
        let first = all[0].as_object().unwrap();
        let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "id",
                "last_update",
                "loaded",
                "model",
                "origin_url",
                "package"
            ]
        );
        assert_eq!(all[0]["package"]["countryCode"], "DE");
        // The owner also sees their private package; others do not.
        let alice = index.search(&query(None, Some("alice"))).await.unwrap();
        assert_eq!(
            ids(&alice),
            [
                "alice:secret",
                "alice:budget-2020",
                "bob:roads",
                "bob:schools"
            ]
        );
        let bob = index.search(&query(None, Some("bob"))).await.unwrap();
        assert!(!ids(&bob).contains(&"alice:secret"));
        // Text: any word, case-insensitive, over the text fields.
        let budget = index.search(&query(Some("BUDGET"), None)).await.unwrap();
        let mut found = ids(&budget);
        found.sort_unstable();
        assert_eq!(found, ["alice:budget-2020", "bob:schools"]);
        let spending = index
            .search(&query(Some("spending"), Some("alice")))
            .await
            .unwrap();
        let mut found = ids(&spending);
        found.sort_unstable();
        assert_eq!(found, ["alice:secret", "bob:roads"]);
        assert!(
            index
                .search(&query(Some("nothing-like-it"), None))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(&index.search(&query(Some("paris"), None)).await.unwrap()),
            ["bob:roads"]
        );
        // The owner field is searchable.
        assert_eq!(
            index.search(&query(Some("bob"), None)).await.unwrap().len(),
            2
        );
        // Filters: OR within, AND across; lists match any element.
        let mut q = query(None, None);
        q.filters = vec![(
            FieldPath::parse("package.countryCode").unwrap(),
            vec![json!("FR"), json!("XX")],
        )];
        assert_eq!(
            ids(&index.search(&q).await.unwrap()),
            ["bob:roads", "bob:schools"]
        );
        q.filters.push((
            FieldPath::parse("package.name").unwrap(),
            vec![json!("schools")],
        ));
        assert_eq!(ids(&index.search(&q).await.unwrap()), ["bob:schools"]);
        q.filters = vec![(
            FieldPath::parse("package.keywords").unwrap(),
            vec![json!("roads")],
        )];
        assert_eq!(ids(&index.search(&q).await.unwrap()), ["bob:roads"]);
        q.filters = vec![(
            FieldPath::parse("package.count_of_rows").unwrap(),
            vec![json!(7)],
        )];
        assert_eq!(ids(&index.search(&q).await.unwrap()), ["bob:roads"]);
        q.filters = vec![(
            FieldPath::parse("package.private").unwrap(),
            vec![json!(true)],
        )];
        assert!(index.search(&q).await.unwrap().is_empty());
        q.userid = Some("alice".into());
        assert_eq!(ids(&index.search(&q).await.unwrap()), ["alice:secret"]);
        // Paging.
        let mut page = query(None, None);
        page.from = 1;
        page.size = 1;
        assert_eq!(ids(&index.search(&page).await.unwrap()), ["bob:roads"]);
        page.from = 3;
        assert!(index.search(&page).await.unwrap().is_empty());
        // Replacing and removing.
        let mut public = records[1].clone();
        public.package.insert("private".into(), json!(false));
        index.put(&public).await.unwrap();
        assert_eq!(index.search(&query(None, None)).await.unwrap().len(), 4);
        let mut unloaded = records[3].clone();
        unloaded.loaded = false;
        index.put(&unloaded).await.unwrap();
        assert_eq!(index.search(&query(None, None)).await.unwrap().len(), 3);
        assert_eq!(
            index.search(&query(None, Some("bob"))).await.unwrap().len(),
            4
        );
        assert_eq!(
            index.stats().await.unwrap(),
            PackageStats {
                num_packages: 4,
                num_records: 23,
                num_countries: 2
            }
        );
        assert!(index.remove("bob:roads").await.unwrap());
        assert!(!index.remove("bob:roads").await.unwrap());
        assert_eq!(index.stats().await.unwrap().num_packages, 3);
        index.clear().await.unwrap();
        assert_eq!(index.stats().await.unwrap().num_packages, 0);
    }
}
