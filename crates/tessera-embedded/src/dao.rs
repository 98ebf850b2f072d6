//! The DAO protocol on SQLite: one table `c_<collection>` per collection, holding the id
//! and the JSON document, and one unique expression index per unique field.
//!
//! A unique index covers `(json_type(doc, '$."f"'), json_extract(doc, '$."f"'))`, so that
//! `1`, `true` and `"1"` stay distinct values as they are in JSON. Documents without the
//! field (or with `null`) never conflict with each other. Removing a field from a spec's
//! unique fields leaves its index in place (drop `ux/<collection>/<field>` to release it).

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, TransactionBehavior, ffi};
use serde_json::Value;
use tessera_kit::dao::{
    self, CollectionSpec, DaoFactory, Document, DocumentDao, Error as DaoError, Filter,
};

use crate::EmbeddedStore;
use crate::error::Error;
use crate::pool::{Inner, quote_ident};

/// Table name of a collection; the prefix keeps collections apart from internal tables.
fn table_name(collection: &str) -> String {
    format!("c_{collection}")
}

/// Index name of a unique field; `/` cannot occur in collection or field names.
fn index_name(collection: &str, field: &str) -> String {
    format!("ux/{collection}/{field}")
}

/// Index name of a (non-unique) indexed field.
fn lookup_index_name(collection: &str, field: &str) -> String {
    format!("ix/{collection}/{field}")
}

/// Whether `field` can be spelled inside a JSON path literal as it is.
fn plain_field(field: &str) -> bool {
    !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn json_type_expr(field: &str) -> String {
    format!("json_type(doc, '$.\"{field}\"')")
}

fn json_value_expr(field: &str) -> String {
    format!("json_extract(doc, '$.\"{field}\"')")
}

/// SQL text of one collection, built once per DAO so that cached statements are reused.
#[derive(Debug)]
struct Sql {
    get: String,
    insert: String,
    upsert: String,
    update: String,
    delete: String,
    select: String,
}

impl Sql {
    fn new(collection: &str) -> Self {
        let t = quote_ident(&table_name(collection));
        Self {
            get: format!("SELECT doc FROM {t} WHERE id = ?1"),
            insert: format!("INSERT INTO {t} (id, doc) VALUES (?1, ?2)"),
            upsert: format!(
                "INSERT INTO {t} (id, doc) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
            ),
            update: format!("UPDATE {t} SET doc = ?2 WHERE id = ?1"),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            select: format!("SELECT doc FROM {t}"),
        }
    }
}

/// Creates the table and the unique indexes of `spec`. Blocking.
fn create_collection(conn: &mut Connection, spec: &CollectionSpec) -> Result<(), DaoError> {
    let table = table_name(&spec.name);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::from)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL) \
         WITHOUT ROWID",
        quote_ident(&table)
    ))
    .map_err(Error::from)?;
    for field in &spec.unique_fields {
        let sql = format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}, {})",
            quote_ident(&index_name(&spec.name, field)),
            quote_ident(&table),
            json_type_expr(field),
            json_value_expr(field),
        );
        if let Err(err) = tx.execute_batch(&sql) {
            return Err(match err.sqlite_error_code() {
                Some(ErrorCode::ConstraintViolation) => DaoError::InvalidSpec(format!(
                    "cannot make {field:?} unique in collection {:?}: stored documents share \
                     a value",
                    spec.name
                )),
                _ => Error::from(err).into(),
            });
        }
    }
    for field in &spec.indexed_fields {
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({}, {})",
            quote_ident(&lookup_index_name(&spec.name, field)),
            quote_ident(&table),
            json_type_expr(field),
            json_value_expr(field),
        ))
        .map_err(Error::from)?;
    }
    tx.commit().map_err(Error::from)?;
    Ok(())
}

/// The DAO of one collection.
#[derive(Debug)]
pub(crate) struct EmbeddedDao {
    inner: Arc<Inner>,
    spec: CollectionSpec,
    sql: Arc<Sql>,
}

impl EmbeddedDao {
    fn encode(&self, doc: &Document) -> Result<(String, String), DaoError> {
        let id = self.spec.id_of(doc)?;
        let text = serde_json::to_string(doc).map_err(|e| self.invalid(e))?;
        Ok((id, text))
    }

    fn invalid(&self, reason: impl std::fmt::Display) -> DaoError {
        DaoError::InvalidDocument {
            collection: self.spec.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn decode(&self, text: &str) -> Result<Document, DaoError> {
        decode_doc(&self.spec.name, text)
    }

    fn not_found(&self, id: &str) -> DaoError {
        DaoError::NotFound {
            collection: self.spec.name.clone(),
            id: id.to_owned(),
        }
    }

    /// Maps a failed write: constraint violations name the field that clashed.
    fn write_error(&self, err: Error) -> DaoError {
        let Error::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) = &err else {
            return err.into();
        };
        let field = match code.extended_code {
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY => self.spec.id_field.clone(),
            ffi::SQLITE_CONSTRAINT_UNIQUE => msg
                .as_deref()
                .and_then(|m| self.field_of_index_message(m))
                .unwrap_or_else(|| "unique field".to_owned()),
            _ => return err.into(),
        };
        DaoError::AlreadyExists {
            collection: self.spec.name.clone(),
            field,
        }
    }

    /// The field in "UNIQUE constraint failed: index 'ux/<collection>/<field>'".
    fn field_of_index_message(&self, msg: &str) -> Option<String> {
        let prefix = format!("index '{}", index_name(&self.spec.name, ""));
        let start = msg.find(&prefix)? + prefix.len();
        let rest = &msg[start..];
        let field = &rest[..rest.find('\'')?];
        plain_field(field).then(|| field.to_owned())
    }

    /// The SQL `WHERE` clause that narrows the rows to a superset of the filter's matches,
    /// with its parameters. Conditions are added only where SQL equality is exactly JSON
    /// equality; [`dao::matches`] decides in the end.
    ///
    /// The flag says whether a condition is on the id or an indexed field (unique or not),
    /// so that SQLite reads only the matching rows of that index.
    fn prefilter(&self, filter: &Filter) -> (String, Vec<SqlValue>, bool) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        let mut indexed = false;
        for (field, want) in filter {
            if !plain_field(field) {
                continue;
            }
            if *field == self.spec.id_field {
                let id = match want {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                params.push(SqlValue::Text(id));
                conds.push(format!("id = ?{}", params.len()));
                indexed = true;
                continue;
            }
            let has_index =
                self.spec.unique_fields.contains(field) || self.spec.indexed_fields.contains(field);
            let ty = json_type_expr(field);
            match want {
                Value::String(s) => {
                    indexed |= has_index;
                    params.push(SqlValue::Text(s.clone()));
                    conds.push(format!(
                        "{ty} = 'text' AND {} = ?{}",
                        json_value_expr(field),
                        params.len()
                    ));
                }
                Value::Bool(b) => conds.push(format!("{ty} = '{b}'")),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        indexed |= has_index;
                        params.push(SqlValue::Integer(i));
                        conds.push(format!(
                            "{ty} = 'integer' AND {} = ?{}",
                            json_value_expr(field),
                            params.len()
                        ));
                    }
                }
                // Missing fields equal null; arrays, objects and floats are compared in
                // Rust only.
                Value::Null | Value::Array(_) | Value::Object(_) => {}
            }
        }
        let mut sql = self.sql.select.clone();
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(" ORDER BY id");
        (sql, params, indexed)
    }

    /// The matching documents in id order, at most `max` of them. Decoding and the final
    /// check run on the reading thread too, and stop early. A query narrowed by an index
    /// reads like a point read (in place when a reader is idle); a scan goes to the
    /// blocking pool.
    async fn find(&self, filter: &Filter, max: usize) -> Result<Vec<Document>, DaoError> {
        let (sql, params, indexed) = self.prefilter(filter);
        let filter = filter.clone();
        let collection = self.spec.name.clone();
        let query = move |conn: &Connection| -> Result<Vec<Document>, DaoError> {
            let mut stmt = conn.prepare_cached(&sql).map_err(Error::from)?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params))
                .map_err(Error::from)?;
            let mut found = Vec::new();
            while let Some(row) = rows.next().map_err(Error::from)? {
                let text = row.get_ref(0).map_err(Error::from)?;
                let doc = decode_doc(&collection, text.as_str().unwrap_or_default())?;
                if dao::matches(&doc, &filter) {
                    found.push(doc);
                    if found.len() >= max {
                        break;
                    }
                }
            }
            Ok(found)
        };
        if indexed {
            self.inner.read_point(query).await
        } else {
            self.inner.read(query).await
        }
    }
}

fn decode_doc(collection: &str, text: &str) -> Result<Document, DaoError> {
    serde_json::from_str(text).map_err(|e| DaoError::InvalidDocument {
        collection: collection.to_owned(),
        reason: format!("stored document: {e}"),
    })
}

#[async_trait]
impl DocumentDao for EmbeddedDao {
    fn spec(&self) -> &CollectionSpec {
        &self.spec
    }

    async fn get_by_id(&self, id: &str) -> Result<Document, DaoError> {
        let sql = Arc::clone(&self.sql);
        let key = id.to_owned();
        let text: Option<String> = self
            .inner
            .read_point(move |conn| -> Result<Option<String>, Error> {
                let mut stmt = conn.prepare_cached(&sql.get)?;
                let mut rows = stmt.query([key])?;
                Ok(match rows.next()? {
                    Some(row) => Some(row.get(0)?),
                    None => None,
                })
            })
            .await?;
        match text {
            Some(text) => self.decode(&text),
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
        let (id, text) = self.encode(&doc)?;
        let sql = Arc::clone(&self.sql);
        self.inner
            .write_grouped(move |conn| -> Result<usize, Error> {
                Ok(conn.prepare_cached(&sql.insert)?.execute([id, text])?)
            })
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    async fn upsert(&self, doc: Document) -> Result<(), DaoError> {
        let (id, text) = self.encode(&doc)?;
        let sql = Arc::clone(&self.sql);
        self.inner
            .write_grouped(move |conn| -> Result<usize, Error> {
                Ok(conn.prepare_cached(&sql.upsert)?.execute([id, text])?)
            })
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    async fn update(&self, doc: Document) -> Result<(), DaoError> {
        let (id, text) = self.encode(&doc)?;
        let sql = Arc::clone(&self.sql);
        let key = id.clone();
        let changed = self
            .inner
            .write_grouped(move |conn| -> Result<usize, Error> {
                Ok(conn.prepare_cached(&sql.update)?.execute([key, text])?)
            })
            .await
            .map_err(|e| self.write_error(e))?;
        if changed == 0 {
            return Err(self.not_found(&id));
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), DaoError> {
        let sql = Arc::clone(&self.sql);
        let key = id.to_owned();
        let changed = self
            .inner
            .write_grouped(move |conn| -> Result<usize, Error> {
                Ok(conn.prepare_cached(&sql.delete)?.execute([key])?)
            })
            .await?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }
}

#[async_trait]
impl DaoFactory for EmbeddedStore {
    async fn document_dao(&self, spec: CollectionSpec) -> Result<Arc<dyn DocumentDao>, DaoError> {
        spec.validate()?;
        let for_ddl = spec.clone();
        self.inner
            .write(move |conn| create_collection(conn, &for_ddl))
            .await?;
        Ok(Arc::new(EmbeddedDao {
            inner: Arc::clone(&self.inner),
            sql: Arc::new(Sql::new(&spec.name)),
            spec,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql`, one detail per line.
    fn plan(store: &EmbeddedStore, sql: &str, params: Vec<SqlValue>) -> String {
        store.inner.with_reader(|conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        })
    }

    /// A store in `dir` with the collection of `spec`, and its DAO as the concrete type.
    async fn open_dao(dir: &std::path::Path, spec: CollectionSpec) -> (EmbeddedStore, EmbeddedDao) {
        let store = EmbeddedStore::open(dir.join("s.sqlite")).unwrap();
        store.document_dao(spec.clone()).await.unwrap();
        let dao = EmbeddedDao {
            inner: Arc::clone(&store.inner),
            sql: Arc::new(Sql::new(&spec.name)),
            spec,
        };
        (store, dao)
    }

    #[tokio::test]
    async fn indexed_lookups_are_not_reprepared_on_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let (store, dao) = open_dao(
            dir.path(),
            CollectionSpec::new("grants", "id").index("user_id"),
        )
        .await;
        for (id, user) in [("g1", "u1"), ("g2", "u2")] {
            let doc = serde_json::json!({"id": id, "user_id": user, "kind": "download",
                "resource_id": "D1", "valid_from": "2020-01-01T00:00:00.000Z"});
            let Value::Object(doc) = doc else { panic!() };
            dao.insert(doc).await.unwrap();
        }
        let filter: Filter = [
            ("user_id".to_owned(), Value::from("u1")),
            ("kind".to_owned(), Value::from("download")),
            ("resource_id".to_owned(), Value::from("D1")),
        ]
        .into();
        let (sql, params, indexed) = dao.prefilter(&filter);
        assert!(indexed);
        // As `find` runs it: the cached statement back to the cache after each run.
        let reprepared = store.inner.with_reader(|conn| {
            for _ in 0..3 {
                let mut stmt = conn.prepare_cached(&sql).unwrap();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.clone()))
                    .unwrap();
                while rows.next().unwrap().is_some() {}
            }
            let stmt = conn.prepare_cached(&sql).unwrap();
            stmt.get_status(rusqlite::StatementStatus::RePrepare)
        });
        assert_eq!(reprepared, 0);
    }

    #[tokio::test]
    async fn lookups_use_the_primary_key_and_the_unique_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CollectionSpec::new("people", "id")
            .unique("email")
            .index("team");
        let (store, dao) = open_dao(dir.path(), spec).await;
        let sql = Sql::new("people");
        let by_id = plan(&store, &sql.get, vec![SqlValue::Text("a".into())]);
        assert!(by_id.contains("PRIMARY KEY"), "{by_id}");

        let filter: Filter = [("email".to_owned(), Value::from("a@x"))].into();
        let (sql, params, indexed) = dao.prefilter(&filter);
        assert!(indexed);
        let by_email = plan(&store, &sql, params);
        assert!(by_email.contains("ux/people/email"), "{by_email}");

        let filter: Filter = [("id".to_owned(), Value::from("a"))].into();
        let (sql, params, indexed) = dao.prefilter(&filter);
        assert!(indexed);
        let by_id_filter = plan(&store, &sql, params);
        assert!(by_id_filter.contains("PRIMARY KEY"), "{by_id_filter}");

        let filter: Filter = [("team".to_owned(), Value::from("red"))].into();
        let (sql, params, indexed) = dao.prefilter(&filter);
        assert!(indexed);
        let by_team = plan(&store, &sql, params);
        assert!(by_team.contains("ix/people/team"), "{by_team}");

        let filter: Filter = [("name".to_owned(), Value::from("Ada"))].into();
        let (_, _, indexed) = dao.prefilter(&filter);
        assert!(!indexed, "a scan");
    }
}
