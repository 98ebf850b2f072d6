//! [`SqliteIndex`]: the package index in a SQLite file (the embedded store's, so one file
//! holds everything): a table of entries with the columns searches filter and sort on, and
//! an FTS5 table of their text ranked by bm25. Calls run on `spawn_blocking`, over a
//! writer connection and a few reader connections (WAL readers never wait).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, params, params_from_iter, types::Value as Sql};
use serde_json::Value;
use tessera_conductor::PackageRecord;
use tessera_conductor::search::{IndexError, PackageIndex, PackageStats, SearchQuery};

use super::{country_of, result_doc, rows_of, text_of};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conductor_package_index (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    public INTEGER NOT NULL,
    last_update REAL NOT NULL,
    rows INTEGER NOT NULL,
    country TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conductor_package_index_order
    ON conductor_package_index (last_update DESC, id);
CREATE VIRTUAL TABLE IF NOT EXISTS conductor_package_fts
    USING fts5(id UNINDEXED, body, tokenize = 'unicode61');
";

/// The package index in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteIndex {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
}

fn failed(e: impl std::fmt::Display) -> IndexError {
    IndexError(e.to_string())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

impl SqliteIndex {
    /// Opens (creating) the index tables in the file at `path`. Blocking.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let writer = open(path).map_err(failed)?;
        writer.execute_batch(SCHEMA).map_err(failed)?;
        let readers = (0..4)
            .map(|_| open(path).map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(failed)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, IndexError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| failed("the writer lock is poisoned"))?;
            f(&mut conn).map_err(failed)
        })
        .await
        .map_err(failed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, IndexError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            // The first free reader, else wait for one picked by the thread.
            let conn = readers.iter().find_map(|r| r.try_lock().ok()).map_or_else(
                || {
                    let i = thread_index() % readers.len();
                    readers[i]
                        .lock()
                        .map_err(|_| failed("a reader lock is poisoned"))
                },
                Ok,
            )?;
            f(&conn).map_err(failed)
        })
        .await
        .map_err(failed)?
    }
}

fn thread_index() -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    usize::try_from(h.finish() % 1024).unwrap_or(0)
}

/// `$."a"."b"`: a JSON path SQLite reads whatever the segment's characters.
fn json_path(segments: &[String]) -> String {
    let mut out = String::from("$");
    for s in segments {
        out.push_str(".\"");
        out.push_str(s);
        out.push('"');
    }
    out
}

#[async_trait]
impl PackageIndex for SqliteIndex {
    async fn put(&self, record: &PackageRecord) -> Result<(), IndexError> {
        let doc = result_doc(record).to_string();
        let (id, owner) = (record.id.clone(), record.owner().to_owned());
        let public = !record.private() && record.loaded;
        let (updated, rows, country, text) = (
            record.last_update,
            rows_of(record),
            country_of(record),
            text_of(record),
        );
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO conductor_package_index (id, owner, public, last_update, rows, country, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET owner = ?2, public = ?3, last_update = ?4,
                     rows = ?5, country = ?6, doc = ?7",
                params![id, owner, public, updated, rows, country, doc],
            )?;
            tx.execute("DELETE FROM conductor_package_fts WHERE id = ?1", params![id])?;
            tx.execute(
                "INSERT INTO conductor_package_fts (id, body) VALUES (?1, ?2)",
                params![id, text],
            )?;
            tx.commit()
        })
        .await
    }

    async fn remove(&self, id: &str) -> Result<bool, IndexError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM conductor_package_index WHERE id = ?1",
                params![id],
            )?;
            tx.execute(
                "DELETE FROM conductor_package_fts WHERE id = ?1",
                params![id],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Value>, IndexError> {
        let words = query.words();
        let mut args: Vec<Sql> = Vec::new();
        let mut sql = String::from("SELECT d.doc FROM conductor_package_index d");
        if !words.is_empty() {
            let expr = words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" OR ");
            sql.push_str(
                " JOIN (SELECT id, bm25(conductor_package_fts) AS rank FROM conductor_package_fts
                   WHERE conductor_package_fts MATCH ?) f ON f.id = d.id",
            );
            args.push(Sql::Text(expr));
        }
        sql.push_str(" WHERE (d.public = 1 OR d.owner = ?)");
        args.push(Sql::Text(query.userid.clone().unwrap_or_default()));
        if query.userid.is_none() {
            sql.push_str(" AND d.public = 1");
        }
        for (path, values) in &query.filters {
            let mut alternatives = Vec::new();
            let mut value_args = Vec::new();
            for value in values {
                match value {
                    Value::String(s) => {
                        alternatives.push("(j.type = 'text' AND j.value = ?)");
                        value_args.push(Sql::Text(s.clone()));
                    }
                    Value::Number(n) => {
                        alternatives.push("(j.type IN ('integer', 'real') AND j.value = ?)");
                        value_args.push(Sql::Real(n.as_f64().unwrap_or(f64::NAN)));
                    }
                    Value::Bool(b) => {
                        alternatives.push("(j.type = ?)");
                        value_args.push(Sql::Text(if *b { "true" } else { "false" }.into()));
                    }
                    Value::Null => alternatives.push("(j.type = 'null')"),
                    _ => {}
                }
            }
            if alternatives.is_empty() {
                sql.push_str(" AND 0");
                continue;
            }
            sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(d.doc, ?) j WHERE ");
            args.push(Sql::Text(json_path(path.segments())));
            args.extend(value_args);
            sql.push_str(&alternatives.join(" OR "));
            sql.push(')');
        }
        sql.push_str(" ORDER BY ");
        if !words.is_empty() {
            sql.push_str("f.rank, ");
        }
        sql.push_str("d.last_update DESC, d.id LIMIT ? OFFSET ?");
        args.push(Sql::Integer(i64::try_from(query.size).unwrap_or(i64::MAX)));
        args.push(Sql::Integer(i64::try_from(query.from).unwrap_or(i64::MAX)));
        let docs = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(args), |row| row.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .await?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(failed))
            .collect()
    }

    async fn stats(&self) -> Result<PackageStats, IndexError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(rows), 0), COUNT(DISTINCT country)
                 FROM conductor_package_index",
                [],
                |row| {
                    let n = |i: usize| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok(PackageStats {
                        num_packages: n(0)?,
                        num_records: n(1)?,
                        num_countries: n(2)?,
                    })
                },
            )
        })
        .await
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.write(|conn| {
            conn.execute_batch(
                "DELETE FROM conductor_package_index; DELETE FROM conductor_package_fts;",
            )
        })
        .await
    }
}
