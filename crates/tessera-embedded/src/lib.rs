//! The zero-setup default provider of every Tessera service: the kit's DAO and event-bus
//! protocols on one SQLite file that several processes share at once (a REST process, a
//! consumer process and a CLI that publishes events).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tessera_embedded::EmbeddedStore;
//! use tessera_kit::{dao::DaoFactory, events::EventBus};
//!
//! let store = EmbeddedStore::open(".tessera/tessera.sqlite")?;
//! let factory: Arc<dyn DaoFactory> = Arc::new(store.clone());
//! let bus: Arc<dyn EventBus> = Arc::new(store);
//! # Ok(()) }
//! ```
//!
//! # How it works
//! - **Sharing**: the file runs in WAL mode, every write is one SQLite transaction, and no
//!   state that another process depends on lives in memory. Readers see every commit of
//!   every process. A write waits up to `busy_timeout` (10 s) for another process's lock.
//!   WAL needs shared memory, so the processes must run on one host (no network file
//!   systems).
//! - **Durability**: `synchronous=FULL` by default: a call returns after its commit was
//!   fsynced, so acknowledged writes survive SIGKILL and power loss. [`Durability::Process`]
//!   (`NORMAL`) still survives SIGKILL, because a WAL commit is in the OS page cache when it
//!   returns, but may lose the last commits on power loss.
//! - **In a process**: rusqlite blocks, so every call runs on `spawn_blocking` with one
//!   writer connection behind a mutex and a few reader connections (WAL readers do not
//!   block each other or the writer), all with cached prepared statements. DAO writes are
//!   **group-committed**: the calls that arrive while a commit waits for its fsync share
//!   the next transaction (each in a savepoint, so one failing call rolls back alone), and
//!   each returns after the commit that holds it.
//! - **Documents** (module `dao`): table `c_<collection>` (id, JSON text) per collection and
//!   a unique index `ux/<collection>/<field>` on the JSON type and value of each unique
//!   field (documents without the field, or with `null`, never clash). Equality filters are
//!   narrowed in SQL where that is exact and checked with [`tessera_kit::dao::matches`].
//! - **Events** ([`events`]): an append-only log `tessera_events` whose `seq` is the offset
//!   (partition 0), committed offsets per (group, topic) in `tessera_offsets`, and one
//!   **lease per consumer group** in `tessera_group_leases`. Of several members of a group,
//!   in one process or several and whatever their topics, only the lease holder consumes;
//!   the others wait in `next` until it closes (or is dropped) or its lease expires
//!   ([`EmbeddedOptions::lease_ttl`], renewed every third of it while the holder lives), then
//!   resume after the group's last commit. A member that lost its lease (it stalled past
//!   the TTL and another took over) gets [`Error::LeaseLost`] from `commit`. An idle `next`
//!   polls with a backoff from 5 to 200 ms, and wakes at once on a publish from the same
//!   process.
//! - **Privacy**: the file and its `-wal`/`-shm` are `0600`, a directory created for them
//!   `0700`; an existing directory open to others is tightened only when it holds nothing
//!   but the store (module `files`).
//! - **Operators**: [`EmbeddedStore::event_log`] reads the log without touching offsets.
//! - **Objects** ([`objects`]): [`LocalObjectStore`], the object storage protocol on a
//!   directory beside the database (atomic writes, confined keys, HMAC-presigned URLs), and
//!   with feature `http` the actix scope that serves those URLs ([`objects_http`]).
//!
//! Layout: `pool` (connections, pragmas, internal schema, [`EmbeddedOptions`]), `dao`,
//! [`events`], [`objects`], `objects_http`, `config` ([`EmbeddedConfig`]), `error`
//! ([`Error`]).

mod config;
mod dao;
mod error;
pub mod events;
mod files;
pub mod objects;
#[cfg(feature = "http")]
pub mod objects_http;
mod pool;

use std::path::Path;
use std::sync::Arc;

pub use config::{DEFAULT_DB_PATH, EmbeddedConfig};
pub use error::{Error, Result};
pub use events::{EmbeddedSource, EventLog, LoggedEvent};
pub use objects::{LocalObjectStore, LocalObjectsConfig};
pub use pool::{Durability, EmbeddedOptions};

use pool::Inner;

/// One SQLite file as a [`DaoFactory`](tessera_kit::dao::DaoFactory) and an
/// [`EventBus`](tessera_kit::events::EventBus). Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl EmbeddedStore {
    /// Opens the file at `path` with the default options, creating it and its directory
    /// when missing. Blocking: call it before the runtime starts or use
    /// [`EmbeddedStore::from_config`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Like [`EmbeddedStore::open`], with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner::open(path.as_ref(), options)?),
        })
    }

    /// Opens the configured file off the async runtime.
    pub async fn from_config(config: &EmbeddedConfig) -> Result<Self> {
        let path = config.embedded_db_path.clone();
        tokio::task::spawn_blocking(move || Self::open(path)).await?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &EmbeddedOptions {
        &self.inner.options
    }
}
