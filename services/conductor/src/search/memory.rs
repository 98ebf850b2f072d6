//! [`Model`]: the in-memory read model of the package index that [`super::SqliteIndex`]
//! answers searches from: each entry's result document, visibility and sort keys, an
//! inverted index of its words, and the order of browsing (newest first), rebuilt lazily.
//!
//! A search touches only the entries holding one of its words (or walks the browsing order
//! and stops at the page's end), so it costs microseconds where SQL over FTS5 with JSON
//! filters cost milliseconds (see the README's figures).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tessera_conductor::search::SearchQuery;

/// One indexed package.
#[derive(Debug)]
pub struct Entry {
    /// The package id.
    pub id: String,
    /// The result document ([`super::result_doc`]).
    pub doc: Value,
    /// `package.owner`.
    pub owner: String,
    /// Public and loaded.
    pub public: bool,
    /// `last_update`.
    pub last_update: f64,
    /// The words of its text ([`super::words_of`]).
    pub words: Vec<String>,
}

impl Entry {
    /// An entry for the result document `doc`.
    pub fn new(doc: Value, words: Vec<String>) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let package = doc.get("package");
        let private = package
            .and_then(|p| p.get("private"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let loaded = doc.get("loaded").and_then(Value::as_bool).unwrap_or(true);
        Self {
            id: text(doc.get("id")),
            owner: text(package.and_then(|p| p.get("owner"))),
            public: !private && loaded,
            last_update: doc
                .get("last_update")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            words,
            doc,
        }
    }

    fn visible(&self, userid: Option<&str>) -> bool {
        self.public || userid.is_some_and(|u| u == self.owner)
    }

    fn newer(&self, other: &Self) -> Ordering {
        other
            .last_update
            .total_cmp(&self.last_update)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The browsing order and the inverted index over it, rebuilt after changes.
#[derive(Debug, Default)]
struct Built {
    /// Every entry, newest first.
    order: Vec<Arc<Entry>>,
    /// Word → positions in `order`, ascending.
    postings: HashMap<String, Vec<u32>>,
}

/// The read model.
#[derive(Debug, Default)]
pub struct Model {
    entries: HashMap<String, Arc<Entry>>,
    built: Option<Built>,
}

impl Model {
    /// Adds or replaces an entry.
    pub fn put(&mut self, entry: Entry) {
        self.entries.insert(entry.id.clone(), Arc::new(entry));
        self.built = None;
    }

    /// Removes an entry; whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        let removed = self.entries.remove(id).is_some();
        if removed {
            self.built = None;
        }
        removed
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether [`Model::build`] must run before [`Model::search`].
    pub fn needs_build(&self) -> bool {
        self.built.is_none()
    }

    /// Rebuilds the browsing order and the inverted index.
    pub fn build(&mut self) {
        let mut order: Vec<Arc<Entry>> = self.entries.values().cloned().collect();
        order.sort_by(|a, b| a.newer(b));
        let mut postings: HashMap<String, Vec<u32>> = HashMap::new();
        for (position, entry) in order.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            for word in &entry.words {
                postings.entry(word.clone()).or_default().push(position);
            }
        }
        self.built = Some(Built { order, postings });
    }

    /// The page of `query` (see the port's contract): the entries holding the most of its
    /// words first, then newest first. Call [`Model::build`] first when
    /// [`Model::needs_build`] (else nothing is found).
    pub fn search(&self, query: &SearchQuery) -> Vec<Value> {
        let Some(built) = &self.built else {
            return Vec::new();
        };
        let userid = query.userid.as_deref();
        let admits = |e: &Entry| {
            e.visible(userid)
                && query
                    .filters
                    .iter()
                    .all(|(path, values)| match path.get(&e.doc) {
                        Some(Value::Array(items)) => items.iter().any(|i| values.contains(i)),
                        Some(v) => values.contains(v),
                        None => false,
                    })
        };
        let page = |positions: &mut dyn Iterator<Item = u32>| -> Vec<Value> {
            positions
                .map(|p| &built.order[p as usize])
                .filter(|e| admits(e))
                .skip(query.from)
                .take(query.size)
                .map(|e| e.doc.clone())
                .collect()
        };
        let mut words = query.words();
        words.sort();
        words.dedup();
        let lists: Vec<&[u32]> = words
            .iter()
            .filter_map(|w| built.postings.get(w).map(Vec::as_slice))
            .collect();
        match (words.len(), lists.len()) {
            // Browsing, or one word: walk in order and stop at the page's end.
            (0, _) => page(&mut (0..u32::try_from(built.order.len()).unwrap_or(u32::MAX))),
            (_, 0) => Vec::new(),
            (_, 1) => page(&mut lists[0].iter().copied()),
            _ => {
                // Several words: count the words each entry holds.
                let mut counts: HashMap<u32, u32> = HashMap::new();
                for list in &lists {
                    for p in *list {
                        *counts.entry(*p).or_insert(0) += 1;
                    }
                }
                let mut hits: Vec<(u32, u32)> = counts
                    .into_iter()
                    .filter(|(p, _)| admits(&built.order[*p as usize]))
                    .map(|(p, n)| (n, p))
                    .collect();
                let rank = |a: &(u32, u32), b: &(u32, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
                let end = query.from.saturating_add(query.size).min(hits.len());
                if query.from >= end {
                    return Vec::new();
                }
                if end < hits.len() {
                    hits.select_nth_unstable_by(end - 1, rank);
                    hits.truncate(end);
                }
                hits.sort_by(rank);
                hits[query.from..]
                    .iter()
                    .map(|(_, p)| built.order[*p as usize].doc.clone())
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(id: &str, words: &[&str], updated: f64, private: bool) -> Entry {
        Entry::new(
            json!({"id": id, "package": {"owner": "o", "private": private}, "loaded": true,
                   "last_update": updated}),
            words.iter().map(|w| (*w).to_owned()).collect(),
        )
    }

    fn ids(model: &Model, q: &str, from: usize, size: usize) -> Vec<String> {
        let query = SearchQuery {
            q: Some(q.into()),
            filters: Vec::new(),
            userid: None,
            from,
            size,
        };
        model
            .search(&query)
            .iter()
            .map(|d| d["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn more_words_rank_first_then_newer_then_id() {
        let mut model = Model::default();
        model.put(entry("a", &["roads", "budget"], 1.0, false));
        model.put(entry("b", &["roads"], 3.0, false));
        model.put(entry("c", &["budget"], 2.0, false));
        model.put(entry("d", &["roads", "budget"], 1.0, false));
        model.put(entry("e", &["roads", "budget"], 9.0, true));
        assert!(
            model
                .search(&SearchQuery {
                    q: None,
                    filters: Vec::new(),
                    userid: None,
                    from: 0,
                    size: 9
                })
                .is_empty(),
            "nothing before a build"
        );
        model.build();
        assert_eq!(
            ids(&model, "roads budget roads", 0, 9),
            ["a", "d", "b", "c"]
        );
        assert_eq!(ids(&model, "roads budget", 1, 2), ["d", "b"]);
        assert_eq!(ids(&model, "roads budget", 4, 2), Vec::<String>::new());
        assert_eq!(ids(&model, "roads", 0, 9), ["b", "a", "d"]);
        assert_eq!(ids(&model, "roads nothing", 0, 9), ["b", "a", "d"]);
        assert_eq!(ids(&model, "nothing", 0, 9), Vec::<String>::new());
        assert!(model.remove("b"));
        assert!(!model.remove("b"));
        assert!(model.needs_build());
        model.build();
        assert_eq!(ids(&model, "roads", 0, 9), ["a", "d"]);
        assert_eq!(model.len(), 4);
        model.clear();
        assert!(model.is_empty());
    }
}
