//! The storage port: where workspaces live and whose files they are. The local file system
//! provider lives in the service; a test fake implements it for domain tests.
//!
//! Names handed to the port are [`EntryName`]s: relative, without `..`, without empty or `.`
//! components, so they cannot climb out of a workspace.

use std::fmt;

use async_trait::async_trait;

use crate::model::CurrentDetails;

/// Errors of the storage port.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user has no account on the storage system and none could be made.
    #[error("no storage account for {0}")]
    NoAccount(String),
    /// A symlink source does not exist.
    #[error("symlink source not found: {0}")]
    SourceNotFound(String),
    /// A symlink source lies outside the configured dataset roots.
    #[error("symlink source not allowed: {0}")]
    SourceNotAllowed(String),
    /// A path that would leave the workspace (a symlink on the way, a bad workspace path).
    #[error("refused path {0}")]
    Refused(String),
    /// The file system failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The OS account a user's files belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account name (the first component of `file_path`).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// A file or symlink name inside a workspace, checked once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName(String);

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// It contains `..` (the original's substring test).
    DoubleDots,
    /// Absolute, empty, or with an empty, `.` or NUL component.
    Invalid,
}

impl EntryName {
    /// Checks `raw`: no `..` anywhere, not absolute, no empty, `.` or NUL parts.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.contains("..") {
            return Err(NameError::DoubleDots);
        }
        if raw.is_empty()
            || raw.starts_with('/')
            || raw.contains('\0')
            || raw.split('/').any(|part| part.is_empty() || part == ".")
        {
            return Err(NameError::Invalid);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something to put into a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file (replaced atomically if it exists).
    File {
        /// Where.
        name: EntryName,
        /// What.
        content: Vec<u8>,
    },
    /// A symbolic link to a source the port has checked with [`Storage::check_source`].
    Symlink {
        /// Where.
        name: EntryName,
        /// The checked absolute source.
        source: String,
    },
}

/// What a scan of a workspace found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of regular files, dot-files included, symlinks not followed.
    pub disk_space: i64,
    /// Files and symlinks, dot-names skipped, sorted.
    pub details: CurrentDetails,
}

/// Where workspaces live.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// The OS account of `username` (making it when configured). MUST return `NoAccount`
    /// when there is none.
    async fn account(&self, username: &str) -> Result<Account>;

    /// Checks a symlink source: it MUST lie inside a configured dataset root (else
    /// `SourceNotAllowed`) and exist (else `SourceNotFound`); returns it resolved.
    async fn check_source(&self, source: &str) -> Result<String>;

    /// Creates the workspace directory `path` (`<account>/<id>`) owned by `account`, then
    /// `entries`. MUST refuse a `path` that is not two plain components, and MUST NOT leave
    /// the directory behind when it fails.
    async fn create(&self, path: &str, account: &Account, entries: Vec<Entry>) -> Result<()>;

    /// Writes `entries` into the existing workspace `path`, owned by `account`. MUST NOT
    /// follow a symlink on the way or at the end (an existing symlink is replaced).
    async fn write(&self, path: &str, account: &Account, entries: Vec<Entry>) -> Result<()>;

    /// Whether `path` is a usable workspace directory (exists, a directory, not a symlink).
    async fn is_valid(&self, path: &str) -> bool;

    /// What is in `path`.
    async fn scan(&self, path: &str) -> Result<Scan>;

    /// Removes `path` and everything in it, never following symlinks. MUST refuse when
    /// `account` does not own it.
    async fn delete(&self, path: &str, account: &Account) -> Result<()>;

    /// Copies `from` into a new workspace directory `to` owned by `account`: dot-names
    /// skipped, symlinks copied as links, never followed.
    async fn copy(&self, from: &str, to: &str, account: &Account) -> Result<()>;

    /// The content of the small regular file `name` in the job folder `.<job_id>/` of the
    /// workspace `path`, at most `max` bytes; `None` when there is no such regular file.
    /// The folder belongs to the job's account, so this MUST NOT follow a symlink anywhere
    /// on the way and MUST NOT block on what is not a regular file (a FIFO).
    async fn read_job_file(
        &self,
        path: &str,
        job_id: i64,
        name: &str,
        max: usize,
    ) -> Result<Option<Vec<u8>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_climb_or_are_absolute_are_refused() {
        assert_eq!(EntryName::parse("a/../b"), Err(NameError::DoubleDots));
        assert_eq!(EntryName::parse("..."), Err(NameError::DoubleDots));
        assert_eq!(EntryName::parse("/etc/passwd"), Err(NameError::Invalid));
        assert_eq!(EntryName::parse(""), Err(NameError::Invalid));
        assert_eq!(EntryName::parse("a//b"), Err(NameError::Invalid));
        assert_eq!(EntryName::parse("./a"), Err(NameError::Invalid));
        assert_eq!(EntryName::parse("a\0b"), Err(NameError::Invalid));
        assert_eq!(
            EntryName::parse("dir/file.txt").map(|n| n.parts().count()),
            Ok(2)
        );
    }
}
