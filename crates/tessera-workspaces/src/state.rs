//! Every record in memory, written through to the DAO protocol.
//!
//! uws reads far more than it writes (every request authenticates, the portal polls the
//! listing), so reads are served from memory and never wait on the store. Writes go to the
//! store first and change memory only when the store took them, one at a time
//! (`Records::lock`), so a failed write changes nothing and a read-modify-write never saves a
//! stale row over a newer one (§A10.14). One uws process owns a store.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tessera_kit::dao::{self, CollectionSpec, Dao, DaoFactory, Filter, JsonDao};
use tokio::sync::{Mutex, MutexGuard};

use crate::model::{Job, Share, Token, User, Workspace};

/// The collections, by the original's table names.
pub mod collections {
    /// Users.
    pub const USERS: &str = "auth_user";
    /// API tokens.
    pub const TOKENS: &str = "authtoken_token";
    /// Workspaces.
    pub const WORKSPACES: &str = "user_workspaces_server_workspace";
    /// Jobs.
    pub const JOBS: &str = "user_workspaces_server_job";
    /// Shares.
    pub const SHARES: &str = "user_workspaces_server_sharedworkspacemapping";
}

/// The records, in memory.
#[derive(Debug, Default)]
pub struct Tables {
    /// Users by id.
    pub users: BTreeMap<i64, User>,
    /// Tokens by key.
    pub tokens: HashMap<String, Token>,
    /// Workspaces by id.
    pub workspaces: BTreeMap<i64, Workspace>,
    /// Jobs by id.
    pub jobs: BTreeMap<i64, Job>,
    /// Shares by the copy's workspace id.
    pub shares: BTreeMap<i64, Share>,
    next_user: i64,
    next_workspace: i64,
    next_job: i64,
}

impl Tables {
    /// A fresh user id.
    pub fn user_id(&mut self) -> i64 {
        self.next_user += 1;
        self.next_user
    }

    /// A fresh workspace id.
    pub fn workspace_id(&mut self) -> i64 {
        self.next_workspace += 1;
        self.next_workspace
    }

    /// A fresh job id.
    pub fn job_id(&mut self) -> i64 {
        self.next_job += 1;
        self.next_job
    }

    /// The user with `username`.
    pub fn user_named(&self, username: &str) -> Option<&User> {
        self.users.values().find(|u| u.username == username)
    }
}

/// The DAOs and the in-memory tables.
pub struct Records {
    /// Users.
    pub users: Arc<dyn Dao<User>>,
    /// Tokens.
    pub tokens: Arc<dyn Dao<Token>>,
    /// Workspaces.
    pub workspaces: Arc<dyn Dao<Workspace>>,
    /// Jobs.
    pub jobs: Arc<dyn Dao<Job>>,
    /// Shares.
    pub shares: Arc<dyn Dao<Share>>,
    tables: RwLock<Tables>,
    writes: Mutex<()>,
    generation: AtomicU64,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl Records {
    /// Opens the collections on `factory` and loads them.
    pub async fn open(factory: &dyn DaoFactory) -> dao::Result<Self> {
        use collections::*;
        let users: Arc<dyn Dao<User>> =
            JsonDao::open(factory, CollectionSpec::new(USERS, "id").unique("username")).await?;
        let tokens: Arc<dyn Dao<Token>> =
            JsonDao::open(factory, CollectionSpec::new(TOKENS, "key")).await?;
        let workspaces: Arc<dyn Dao<Workspace>> =
            JsonDao::open(factory, CollectionSpec::new(WORKSPACES, "id")).await?;
        let jobs: Arc<dyn Dao<Job>> =
            JsonDao::open(factory, CollectionSpec::new(JOBS, "id")).await?;
        let shares: Arc<dyn Dao<Share>> =
            JsonDao::open(factory, CollectionSpec::new(SHARES, "shared_workspace_id")).await?;
        let all = Filter::new();
        let mut tables = Tables::default();
        for u in users.find_all(&all).await? {
            tables.next_user = tables.next_user.max(u.id);
            tables.users.insert(u.id, u);
        }
        for t in tokens.find_all(&all).await? {
            tables.tokens.insert(t.key.clone(), t);
        }
        for w in workspaces.find_all(&all).await? {
            tables.next_workspace = tables.next_workspace.max(w.id);
            tables.workspaces.insert(w.id, w);
        }
        for j in jobs.find_all(&all).await? {
            tables.next_job = tables.next_job.max(j.id);
            tables.jobs.insert(j.id, j);
        }
        for s in shares.find_all(&all).await? {
            tables.shares.insert(s.shared_workspace_id, s);
        }
        Ok(Self {
            users,
            tokens,
            workspaces,
            jobs,
            shares,
            tables: RwLock::new(tables),
            writes: Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Reads the tables.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the tables (after the store took the change).
    pub fn apply<R>(&self, change: impl FnOnce(&mut Tables) -> R) -> R {
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = change(&mut tables);
        self.generation.fetch_add(1, Ordering::Release);
        result
    }

    /// Changes with every [`Records::apply`]: what was read at one generation is still
    /// true while it lasts (answers may be cached against it).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Serialises writes: hold it from reading a row to applying its change.
    pub async fn lock(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().await
    }
}
