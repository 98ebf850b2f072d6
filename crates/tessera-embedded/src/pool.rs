//! The connections of one store: a writer behind a mutex and a few readers, the pragmas
//! that make the file safe to share between processes, and the internal schema.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How far an acknowledged write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit fsyncs the WAL before it returns, so acknowledged
    /// writes survive a process kill and a power loss or kernel crash.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit is in the WAL file (the OS page cache) when it
    /// returns, so acknowledged writes survive a process kill (SIGKILL) but the last ones
    /// may be lost on power loss. Faster; for tests and throwaway data.
    Process,
}

/// Tuning of an [`EmbeddedStore`](crate::EmbeddedStore); the defaults suit services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Reader connections (WAL readers run in parallel with each other and the writer).
    pub readers: usize,
    /// How long a statement waits for another process's write lock before failing.
    pub busy_timeout: Duration,
    /// How long a consumer-group lease lasts without renewal; a member renews it every
    /// third of this while it lives, so this is how long a group stalls after a member
    /// was killed.
    pub lease_ttl: Duration,
    /// See [`Durability`].
    pub durability: Durability,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            readers: 4,
            busy_timeout: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(10),
            durability: Durability::Full,
        }
    }
}

/// The layout version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tessera_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tessera_events_topic_seq ON tessera_events (topic, seq);
CREATE TABLE IF NOT EXISTS tessera_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    committed INTEGER NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tessera_group_leases (
    grp TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Shared state of a store: its connections and the in-process change signal.
pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) options: EmbeddedOptions,
    writer: Mutex<Connection>,
    /// Calls waiting for a group commit ([`Inner::write_grouped`]).
    group: Mutex<Group>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Bumped after every publish in this process, so that idle sources wake at once
    /// instead of at their next poll.
    pub(crate) changes: watch::Sender<u64>,
    /// Bumped after every lease release in this process, for members waiting for a lease.
    pub(crate) releases: watch::Sender<u64>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection leaves no transaction open (rusqlite rolls back
    // on drop), so the connection is still good.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn connect(path: &Path, options: &EmbeddedOptions) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Before anything that takes a lock, so that opening while another process writes
    // waits instead of failing.
    conn.busy_timeout(options.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(128);
    // Without the query planner stability guarantee, SQLite marks a statement whose plan
    // looked at a bound value (an equality on an indexed JSON expression does) as expired
    // as soon as that parameter is unbound or bound again, which rusqlite does each time a
    // cached statement is reused: every execution then parses and plans anew. Our
    // statements are equality lookups whose plan does not depend on the values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // WAL commits are appends to the -wal file. With NORMAL a commit is complete in the
    // page cache when it returns, which survives SIGKILL but not power loss; FULL adds an
    // fsync per commit and survives both. FULL is the default because the publisher
    // contract says "acknowledged means durable".
    let sync = match options.durability {
        Durability::Full => "FULL",
        Durability::Process => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}

impl Inner {
    /// Opens (creating when needed) the file and its schema. Blocking.
    pub(crate) fn open(path: &Path, options: EmbeddedOptions) -> Result<Self> {
        crate::files::prepare(path)?;
        let mut writer = connect(path, &options)?;
        // Switching a new file to WAL needs an exclusive lock, and SQLite does not run the
        // busy handler for it: when several processes create the file at once, retry.
        let deadline = Instant::now() + options.busy_timeout;
        let mode: String = loop {
            match writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
                Err(err)
                    if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::NotWal(mode));
        }
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        tx.execute_batch(SCHEMA)?;
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        let readers = (0..options.readers.max(1))
            .map(|_| {
                let conn = connect(path, &options)?;
                conn.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: path.to_owned(),
            options,
            writer: Mutex::new(writer),
            group: Mutex::default(),
            readers,
            next_reader: AtomicUsize::new(0),
            changes: watch::Sender::new(0),
            releases: watch::Sender::new(0),
        })
    }

    /// An idle reader, trying each once from the next in turn (returned as the index to
    /// wait for when none is idle).
    fn idle_reader(&self) -> Result<MutexGuard<'_, Connection>, usize> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        (0..n)
            .find_map(|i| self.readers[(start + i) % n].try_lock().ok())
            .ok_or(start % n)
    }

    /// Runs `f` on an idle reader, or waits for the next one in turn. Blocking.
    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        match self.idle_reader() {
            Ok(conn) => f(&conn),
            Err(next) => f(&lock(&self.readers[next])),
        }
    }

    /// Runs `f` on the writer. Blocking.
    fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut lock(&self.writer))
    }

    /// Runs `f` on a reader off the async runtime.
    pub(crate) async fn read<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let inner = Arc::clone(self);
        match tokio::task::spawn_blocking(move || inner.with_reader(f)).await {
            Ok(result) => result,
            Err(join) => Err(Error::Join(join).into()),
        }
    }

    /// Runs `f`, a point read, on an idle reader on the calling thread, or off the async
    /// runtime when every reader is busy.
    ///
    /// A WAL reader never waits for the writer, and a lookup by primary key or index is a
    /// B-tree descent: a few microseconds, less than handing the call to the blocking pool
    /// and back (two thread wake-ups). Scans, whose cost grows with the collection, go
    /// through [`Self::read`].
    pub(crate) async fn read_point<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        if let Ok(conn) = self.idle_reader() {
            return f(&conn);
        }
        self.read(f).await
    }

    /// Runs `f` on the writer off the async runtime.
    pub(crate) async fn write<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let inner = Arc::clone(self);
        match tokio::task::spawn_blocking(move || inner.with_writer(f)).await {
            Ok(result) => result,
            Err(join) => Err(Error::Join(join).into()),
        }
    }

    /// Runs `f`, one statement's worth of work, on the writer off the async runtime, in a
    /// transaction shared with the other calls waiting at the time (group commit): while
    /// one batch is being committed (`synchronous=FULL` waits for an fsync), new calls
    /// queue and form the next batch, so concurrent writers share one fsync instead of
    /// queueing for one each. Each call runs in its own savepoint, so a failing call
    /// (a unique-index clash) rolls back alone; every call returns after the commit that
    /// holds it, with its own result, or with the commit's error.
    pub(crate) async fn write_grouped<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let op: GroupOp = Box::new(move |conn: Result<&Connection, &rusqlite::Error>| {
            let done = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(Error::Sqlite(copy_failure(e)).into()),
            };
            Box::new(move |commit: Option<&rusqlite::Error>| {
                let done = match (done, commit) {
                    (Ok(_), Some(e)) => Err(Error::Sqlite(copy_failure(e)).into()),
                    (done, _) => done,
                };
                let _ = tx.send(done);
            }) as GroupDone
        });
        let lead = {
            let mut group = self.group.lock().unwrap_or_else(PoisonError::into_inner);
            group.queue.push(op);
            !std::mem::replace(&mut group.committing, true)
        };
        if lead {
            let inner = Arc::clone(self);
            tokio::task::spawn_blocking(move || inner.commit_groups());
        }
        match rx.await {
            Ok(result) => result,
            // The committer panicked: its writer is unusable for this call.
            Err(_) => Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the group committer stopped".into()),
            ))
            .into()),
        }
    }

    /// Commits the queued batches until the queue is empty. Blocking.
    fn commit_groups(&self) {
        // Should this loop ever unwind outside a call's own `catch_unwind`, the next call
        // must start a committer again, and the queued ones must get an error (their
        // senders dropped) instead of waiting for ever.
        let _unwinding = Unwinding(&self.group);
        let conn = lock(&self.writer);
        loop {
            let batch = {
                let mut group = self.group.lock().unwrap_or_else(PoisonError::into_inner);
                if group.queue.is_empty() {
                    group.committing = false;
                    return;
                }
                std::mem::take(&mut group.queue)
            };
            if !conn.is_autocommit() {
                // Left open by a call that panicked inside its savepoint.
                let _ = conn.execute_batch("ROLLBACK");
            }
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                // Not run: each call reports the failure to begin.
                for op in batch {
                    op(Err(&e))(None);
                }
                continue;
            }
            // A call that panics loses only itself: its work is rolled back, its sender is
            // dropped in the unwind, so it gets an error, and the batch goes on.
            let finishers: Vec<GroupDone> = batch
                .into_iter()
                .filter_map(|op| {
                    let run =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(Ok(&conn))));
                    if run.is_err() {
                        let _ = conn.execute_batch("ROLLBACK TO grouped; RELEASE grouped");
                    }
                    run.ok()
                })
                .collect();
            let commit = conn.execute_batch("COMMIT").err();
            if commit.is_some() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for finish in finishers {
                finish(commit.as_ref());
            }
        }
    }

    /// Runs `f` on the writer on the calling thread; for `Drop`, which cannot await.
    pub(crate) fn write_now<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        self.with_writer(f)
    }

    /// Wakes this process's idle sources.
    pub(crate) fn notify_change(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes this process's members waiting for a lease.
    pub(crate) fn notify_release(&self) {
        self.releases.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A queued call of [`Inner::write_grouped`]: runs its statement inside the batch's
/// transaction (or is handed the error that kept the transaction from starting) and
/// returns what to do once the commit is known.
type GroupOp = Box<dyn FnOnce(Result<&Connection, &rusqlite::Error>) -> GroupDone + Send>;
/// Delivers a call's result given the commit's error, if any.
type GroupDone = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// The calls waiting for the next group commit.
#[derive(Default)]
pub(crate) struct Group {
    queue: Vec<GroupOp>,
    /// A committer is running and will take what is queued.
    committing: bool,
}

/// Releases the committer's claim on [`Group`] when [`Inner::commit_groups`] unwinds.
struct Unwinding<'a>(&'a Mutex<Group>);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut group = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            group.committing = false;
            group.queue.clear();
        }
    }
}

/// Runs `f` in a savepoint, rolled back when `f` fails.
fn in_savepoint<T, E: From<Error>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("SAVEPOINT grouped")
        .map_err(|e| E::from(e.into()))?;
    let done = f(conn);
    let end = if done.is_ok() {
        "RELEASE grouped"
    } else {
        "ROLLBACK TO grouped; RELEASE grouped"
    };
    match (conn.execute_batch(end), done) {
        (Err(e), Ok(_)) => Err(E::from(e.into())),
        (_, done) => done,
    }
}

/// A copy of a commit's error for each call of the batch (rusqlite errors do not clone).
fn copy_failure(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
