//! [`SqliteIndex`]: the package index kept in a SQLite file (the embedded store's, so one
//! file holds everything) and searched in memory.
//!
//! SQLite holds the truth: an entry per package (its result document, words and stats
//! columns) stamped with a sequence number, the ids removed since, and a meta row (`epoch`,
//! bumped by a clear; `seq`, bumped by every change). Each process keeps a
//! [`Model`](super::memory::Model) of it: its own changes apply at once, and before a search
//! it catches up with other processes' (at most every 100 ms, reading only the rows whose
//! `seq` is newer; a new epoch reloads everything). Calls to SQLite run on
//! `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;
use tessera_conductor::PackageRecord;
use tessera_conductor::search::{IndexError, PackageIndex, PackageStats, SearchQuery};

use super::memory::{Entry, Model};
use super::{country_of, result_doc, rows_of, words_of};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conductor_search_entries (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    country TEXT,
    words TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conductor_search_entries_seq ON conductor_search_entries (seq);
CREATE TABLE IF NOT EXISTS conductor_search_removed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conductor_search_meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO conductor_search_meta (id, epoch, seq) VALUES (0, 0, 0);
";

/// How stale another process's changes may be when a search starts.
const CATCH_UP: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    model: Model,
    epoch: i64,
    seq: i64,
}

/// The package index in a SQLite file, searched in memory.
#[derive(Debug, Clone)]
pub struct SqliteIndex {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    state: Arc<RwLock<State>>,
    checked: Arc<tokio::sync::Mutex<Instant>>,
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
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

/// What a catch-up read: the meta row, and the entries and removals after a `seq`.
struct Delta {
    epoch: i64,
    seq: i64,
    full: bool,
    entries: Vec<Entry>,
    removed: Vec<String>,
}

fn entry_of(doc: &str, words: &str) -> rusqlite::Result<Entry> {
    let doc: Value = serde_json::from_str(doc)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Entry::new(
        doc,
        words
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    ))
}

/// Reads what changed since (`epoch`, `seq`) in one read transaction.
fn read_delta(conn: &mut Connection, epoch: i64, seq: i64) -> rusqlite::Result<Delta> {
    let tx = conn.transaction()?;
    let (now_epoch, now_seq): (i64, i64) = tx.query_row(
        "SELECT epoch, seq FROM conductor_search_meta WHERE id = 0",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let full = now_epoch != epoch;
    let since = if full { i64::MIN } else { seq };
    let mut delta = Delta {
        epoch: now_epoch,
        seq: now_seq,
        full,
        entries: Vec::new(),
        removed: Vec::new(),
    };
    if full || now_seq > seq {
        let mut stmt =
            tx.prepare_cached("SELECT doc, words FROM conductor_search_entries WHERE seq > ?1")?;
        let rows = stmt.query_map([since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (doc, words) = row?;
            delta.entries.push(entry_of(&doc, &words)?);
        }
        if !full {
            let mut stmt =
                tx.prepare_cached("SELECT id FROM conductor_search_removed WHERE seq > ?1")?;
            delta.removed = stmt
                .query_map([since], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
    }
    tx.commit()?;
    Ok(delta)
}

impl State {
    fn apply(&mut self, delta: Delta) {
        if delta.full {
            self.model.clear();
        }
        for entry in delta.entries {
            self.model.put(entry);
        }
        for id in &delta.removed {
            self.model.remove(id);
        }
        self.epoch = delta.epoch;
        self.seq = delta.seq;
    }

    /// Records one own change stamped (`epoch`, `seq`): the sequence advances only when no
    /// other process's change came between (those the next catch-up reads).
    fn advance(&mut self, epoch: i64, seq: i64) {
        if epoch == self.epoch && seq == self.seq + 1 {
            self.seq = seq;
        }
    }
}

impl SqliteIndex {
    /// Opens (creating) the index tables in the file at `path` and loads them. Blocking.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let writer = open(path).map_err(failed)?;
        writer.execute_batch(SCHEMA).map_err(failed)?;
        let mut reader = open(path).map_err(failed)?;
        let mut state = State {
            epoch: -1,
            ..State::default()
        };
        state.apply(read_delta(&mut reader, -1, 0).map_err(failed)?);
        Ok(Self {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            state: Arc::new(RwLock::new(state)),
            checked: Arc::new(tokio::sync::Mutex::new(Instant::now())),
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
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, IndexError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = reader
                .lock()
                .map_err(|_| failed("the reader lock is poisoned"))?;
            f(&mut conn).map_err(failed)
        })
        .await
        .map_err(failed)?
    }

    fn state(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>, IndexError> {
        self.state
            .write()
            .map_err(|_| failed("the index lock is poisoned"))
    }

    /// Reads other processes' changes when the last look is older than [`CATCH_UP`]
    /// (one look at a time; searches meanwhile use the model as it is).
    async fn catch_up(&self) -> Result<(), IndexError> {
        let Ok(mut checked) = self.checked.try_lock() else {
            return Ok(());
        };
        if checked.elapsed() < CATCH_UP {
            return Ok(());
        }
        let (epoch, seq) = {
            let state = self.state()?;
            (state.epoch, state.seq)
        };
        let delta = self.read(move |conn| read_delta(conn, epoch, seq)).await?;
        self.state()?.apply(delta);
        *checked = Instant::now();
        Ok(())
    }

    /// Bumps the meta row in `tx`: the new (`epoch`, `seq`).
    fn bump(tx: &rusqlite::Transaction<'_>, epoch: bool) -> rusqlite::Result<(i64, i64)> {
        let sql = if epoch {
            "UPDATE conductor_search_meta SET epoch = epoch + 1, seq = seq + 1 WHERE id = 0 RETURNING epoch, seq"
        } else {
            "UPDATE conductor_search_meta SET seq = seq + 1 WHERE id = 0 RETURNING epoch, seq"
        };
        tx.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
    }
}

#[async_trait]
impl PackageIndex for SqliteIndex {
    async fn put(&self, record: &PackageRecord) -> Result<(), IndexError> {
        let doc = result_doc(record);
        let words = words_of(record);
        let (id, text, joined) = (record.id.clone(), doc.to_string(), words.join(" "));
        let (rows, country) = (rows_of(record), country_of(record));
        let (epoch, seq) = self
            .write(move |conn| {
                let tx = conn.transaction()?;
                let (epoch, seq) = Self::bump(&tx, false)?;
                tx.execute(
                    "INSERT INTO conductor_search_entries (id, seq, rows, country, words, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET seq = ?2, rows = ?3, country = ?4,
                         words = ?5, doc = ?6",
                    params![id, seq, rows, country, joined, text],
                )?;
                tx.execute(
                    "DELETE FROM conductor_search_removed WHERE id = ?1",
                    params![id],
                )?;
                tx.commit()?;
                Ok((epoch, seq))
            })
            .await?;
        let mut state = self.state()?;
        if state.epoch == epoch {
            state.model.put(Entry::new(doc, words));
        }
        state.advance(epoch, seq);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<bool, IndexError> {
        let key = id.to_owned();
        let (existed, epoch, seq) = self
            .write(move |conn| {
                let tx = conn.transaction()?;
                let existed = tx
                    .query_row(
                        "SELECT 1 FROM conductor_search_entries WHERE id = ?1",
                        [&key],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !existed {
                    return Ok((false, 0, 0));
                }
                let (epoch, seq) = Self::bump(&tx, false)?;
                tx.execute("DELETE FROM conductor_search_entries WHERE id = ?1", [&key])?;
                tx.execute(
                    "INSERT OR REPLACE INTO conductor_search_removed (id, seq) VALUES (?1, ?2)",
                    params![key, seq],
                )?;
                tx.commit()?;
                Ok((true, epoch, seq))
            })
            .await?;
        if existed {
            let mut state = self.state()?;
            if state.epoch == epoch {
                state.model.remove(id);
            }
            state.advance(epoch, seq);
        }
        Ok(existed)
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Value>, IndexError> {
        self.catch_up().await?;
        if self
            .state
            .read()
            .map_err(|_| failed("the index lock is poisoned"))?
            .model
            .needs_build()
        {
            let mut state = self.state()?;
            if state.model.needs_build() {
                state.model.build();
            }
        }
        let state = self
            .state
            .read()
            .map_err(|_| failed("the index lock is poisoned"))?;
        Ok(state.model.search(query))
    }

    async fn stats(&self) -> Result<PackageStats, IndexError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(rows), 0), COUNT(DISTINCT country)
                 FROM conductor_search_entries",
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
        let (epoch, seq) = self
            .write(|conn| {
                let tx = conn.transaction()?;
                let stamp = Self::bump(&tx, true)?;
                tx.execute_batch(
                    "DELETE FROM conductor_search_entries; DELETE FROM conductor_search_removed;",
                )?;
                tx.commit()?;
                Ok(stamp)
            })
            .await?;
        let mut state = self.state()?;
        state.model.clear();
        state.epoch = epoch;
        state.seq = seq;
        Ok(())
    }
}
