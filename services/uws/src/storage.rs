//! The local file-system provider of the storage port.
//!
//! Every operation starts from a descriptor of `root_dir` opened at start and walks down one
//! component at a time with `O_NOFOLLOW`, so a symlink planted anywhere in a workspace (by a
//! job running as the user) is never followed: not on the way to a file, not at the file
//! itself (files are written to a temporary name and renamed over the old entry, so a
//! symlink or hard link there is replaced, not written through; a workspace being created
//! stays mode 0700 and uws's own until it is filled, so nothing can be planted in it and its
//! files are created at their names with `O_EXCL`), not by a chown (`fchown`
//! on the open descriptor, `AT_SYMLINK_NOFOLLOW` for links). Workspace paths are exactly
//! `<account>/<id>`, so nothing is ever made, changed or re-owned outside a workspace,
//! and never `root_dir` itself. Symlink sources must resolve inside `dataset_roots`.
//!
//! Users map to OS accounts by name (`getent passwd`, which honours NSS), made with
//! `useradd` when `create_users` is on; accounts below `min_uid` (root, system accounts) are
//! refused. In `service` mapping every user's files belong to the account running uws.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::RngCore;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use tessera_workspaces::model::{CurrentDetails, Named};
use tessera_workspaces::storage::{Account, Entry, Error, Result, Scan, Storage};

use crate::config::{AccountMapping, StorageConfig};

/// The local file-system storage.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    root_fd: OwnedFd,
    dataset_roots: Vec<PathBuf>,
    mapping: AccountMapping,
    create_users: bool,
    min_uid: u32,
    accounts: Mutex<HashMap<String, Account>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let what = what.into();
    move |e| Error::Io {
        what,
        source: e.into(),
    }
}

fn std_io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens the directory `name` in `dir`, refusing symlinks.
fn open_dir(dir: BorrowedFd<'_>, name: &str) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
}

fn chown_fd(fd: BorrowedFd<'_>, account: &Account) -> std::result::Result<(), Errno> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(account.uid)),
        Some(rustix::fs::Gid::from_raw(account.gid)),
    )
}

fn chown_link(
    dir: BorrowedFd<'_>,
    name: &str,
    account: &Account,
) -> std::result::Result<(), Errno> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(account.uid)),
        Some(rustix::fs::Gid::from_raw(account.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

/// Creates the new regular file `name` in `dir` (never through a symlink), owned by
/// `account`; `shown` names it in errors.
fn create_owned(
    dir: BorrowedFd<'_>,
    name: &str,
    account: &Account,
    shown: &str,
) -> Result<OwnedFd> {
    create_at(dir, name, account, shown).map_err(io(format!("creating {shown}")))
}

/// Creates the new regular file `name` in `dir` owned by `account`, or the error of the
/// create (`EXIST` when anything, a symlink included, is there).
fn create_at(
    dir: BorrowedFd<'_>,
    name: &str,
    account: &Account,
    shown: &str,
) -> std::result::Result<OwnedFd, Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    if let Err(e) = chown_fd(fd.as_fd(), account) {
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        tracing::warn!(error = %e, file = shown, "owning a new file failed");
        return Err(e);
    }
    Ok(fd)
}

/// Opens (making it when missing) the directory `name` in `dir`, owned by `account`.
fn open_or_make(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    account: &Account,
) -> std::result::Result<OwnedFd, Errno> {
    match open_dir(dir, name) {
        Err(Errno::NOENT) => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            let fd = open_dir(dir, name)?;
            chown_fd(fd.as_fd(), account)?;
            Ok(fd)
        }
        other => other,
    }
}

/// A workspace path: exactly two plain components.
fn workspace_parts(path: &str) -> Result<(&str, &str)> {
    let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains('\0');
    match path.split_once('/') {
        Some((user, id)) if plain(user) && plain(id) && !id.contains('/') => Ok((user, id)),
        _ => Err(Error::Refused(path.to_owned())),
    }
}

fn tmp_name() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(".uws-tmp-{hex}")
}

fn name_str(name: &CStr) -> Option<&str> {
    name.to_str().ok().filter(|n| *n != "." && *n != "..")
}

impl LocalStorage {
    /// The provider for `config` (its `root_dir` must exist).
    pub fn new(config: &StorageConfig) -> std::io::Result<Self> {
        let root = config.root_dir.canonicalize()?;
        let root_fd = rustix::fs::open(&root, DIR_FLAGS, Mode::empty())?;
        let dataset_roots = config
            .dataset_roots
            .iter()
            .map(|r| r.canonicalize())
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                root_fd,
                dataset_roots,
                mapping: config.account_mapping,
                create_users: config.create_users,
                min_uid: config.min_uid,
                accounts: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        run: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || run(&inner))
            .await
            .map_err(|e| Error::Io {
                what: what.into(),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

/// `getent passwd <name>`: uid and gid.
async fn lookup(name: &str) -> Result<Option<(u32, u32)>> {
    let out = tokio::process::Command::new("getent")
        .args(["passwd", name])
        .output()
        .await
        .map_err(std_io("running getent"))?;
    if !out.status.success() {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    let parse = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
    Ok(parse(2).zip(parse(3)))
}

/// POSIX portable user names, which `useradd` accepts and a path component can hold.
fn valid_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        && name.len() <= 32
}

impl Inner {
    fn workspace(&self, path: &str) -> Result<OwnedFd> {
        let (user, id) = workspace_parts(path)?;
        let user_fd = open_dir(self.root_fd.as_fd(), user).map_err(|e| refused_or(e, path))?;
        open_dir(user_fd.as_fd(), id).map_err(|e| refused_or(e, path))
    }

    /// Writes `entries` below `ws`. In a `fresh` workspace (made by this call, not yet
    /// handed to its owner, so nobody else can have put anything in it) a file is created
    /// at its name directly; `O_EXCL` still refuses anything there (a name the request
    /// lists twice), which falls back to the temporary name and rename.
    fn write_entries(
        &self,
        ws: BorrowedFd<'_>,
        account: &Account,
        entries: Vec<Entry>,
        fresh: bool,
    ) -> Result<()> {
        for entry in entries {
            let name = match &entry {
                Entry::File { name, .. } | Entry::Symlink { name, .. } => name.clone(),
            };
            let parts: Vec<&str> = name.parts().collect();
            let Some((last, dirs)) = parts.split_last() else {
                return Err(Error::Refused(name.to_string()));
            };
            let mut parent: Option<OwnedFd> = None;
            for dir in dirs {
                let at = parent.as_ref().map_or(ws, AsFd::as_fd);
                let next = open_or_make(at, dir, 0o755, account)
                    .map_err(|e| refused_or(e, name.as_str()))?;
                parent = Some(next);
            }
            let at = parent.as_ref().map_or(ws, AsFd::as_fd);
            match entry {
                Entry::File { content, .. } => {
                    if fresh {
                        match create_at(at, last, account, name.as_str()) {
                            Ok(fd) => {
                                File::from(fd)
                                    .write_all(&content)
                                    .map_err(std_io(format!("writing {name}")))?;
                                continue;
                            }
                            Err(Errno::EXIST) => {}
                            Err(e) => return Err(io(format!("creating {name}"))(e)),
                        }
                    }
                    let tmp = tmp_name();
                    let fd = create_owned(at, &tmp, account, name.as_str())?;
                    let written = File::from(fd)
                        .write_all(&content)
                        .map_err(std_io(format!("writing {name}")))
                        .and_then(|()| {
                            rustix::fs::renameat(at, tmp.as_str(), at, *last).map_err(|e| {
                                if e == Errno::ISDIR || e == Errno::NOTEMPTY {
                                    Error::Refused(name.to_string())
                                } else {
                                    io(format!("renaming {name}"))(e)
                                }
                            })
                        });
                    if written.is_err() {
                        let _ = rustix::fs::unlinkat(at, tmp.as_str(), AtFlags::empty());
                    }
                    written?;
                }
                Entry::Symlink { source, .. } => {
                    match rustix::fs::statat(at, *last, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                            return Err(Error::Refused(name.to_string()));
                        }
                        Ok(_) => rustix::fs::unlinkat(at, *last, AtFlags::empty())
                            .map_err(io(format!("replacing {name}")))?,
                        Err(Errno::NOENT) => {}
                        Err(e) => return Err(io(format!("checking {name}"))(e)),
                    }
                    rustix::fs::symlinkat(source.as_str(), at, *last)
                        .map_err(io(format!("linking {name}")))?;
                    chown_link(at, last, account).map_err(io(format!("owning {name}")))?;
                }
            }
        }
        Ok(())
    }

    /// Makes the workspace directory `path`, mode 0700 and still uws's own: the caller
    /// fills it, then hands it over with [`Inner::hand_over`], so nobody else can put
    /// anything in it meanwhile.
    fn make_workspace(&self, path: &str, account: &Account) -> Result<OwnedFd> {
        let (user, id) = workspace_parts(path)?;
        if user != account.name {
            return Err(Error::Refused(path.to_owned()));
        }
        let user_fd = open_or_make(self.root_fd.as_fd(), user, 0o755, account)
            .map_err(|e| refused_or(e, path))?;
        rustix::fs::mkdirat(user_fd.as_fd(), id, Mode::from_raw_mode(0o700))
            .map_err(io(format!("creating {path}")))?;
        open_dir(user_fd.as_fd(), id).map_err(io(format!("opening {path}")))
    }

    /// Gives the filled workspace `ws` to `account`.
    fn hand_over(ws: BorrowedFd<'_>, path: &str, account: &Account) -> Result<()> {
        chown_fd(ws, account).map_err(io(format!("owning {path}")))
    }

    fn remove(&self, path: &str) {
        if let Err(e) = std::fs::remove_dir_all(self.root.join(path)) {
            tracing::error!(error = %e, %path, "cleaning up a workspace directory failed");
        }
    }

    fn scan_dir(
        &self,
        dir: BorrowedFd<'_>,
        prefix: &str,
        hidden: bool,
        scan: &mut Scan,
    ) -> Result<()> {
        let entries = Dir::read_from(dir).map_err(io(format!("reading {prefix}/")))?;
        for entry in entries {
            let entry = entry.map_err(io(format!("reading {prefix}/")))?;
            let Some(name) = name_str(entry.file_name()) else {
                continue;
            };
            let rel = format!("{prefix}/{name}");
            let is_hidden = hidden || name.starts_with('.');
            let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(format!("inspecting {rel}"))(e)),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    scan.disk_space += st.st_size;
                    if !is_hidden {
                        scan.details.files.push(Named { name: rel });
                    }
                }
                FileType::Symlink if !is_hidden => {
                    scan.details.symlinks.push(Named { name: rel });
                }
                FileType::Directory => {
                    if let Ok(sub) = open_dir(dir, name) {
                        self.scan_dir(sub.as_fd(), &rel, is_hidden, scan)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn copy_dir(&self, from: BorrowedFd<'_>, to: BorrowedFd<'_>, account: &Account) -> Result<()> {
        let entries = Dir::read_from(from).map_err(io("reading the original"))?;
        for entry in entries {
            let entry = entry.map_err(io("reading the original"))?;
            let Some(name) = name_str(entry.file_name()) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let st = match rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(format!("inspecting {name}"))(e)),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    let src = rustix::fs::openat(
                        from,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io(format!("opening {name}")))?;
                    let dst = create_owned(to, name, account, name)?;
                    let mut src = File::from(src);
                    let mut dst = File::from(dst);
                    let mut buf = Vec::new();
                    src.read_to_end(&mut buf)
                        .and_then(|_| dst.write_all(&buf))
                        .map_err(std_io(format!("copying {name}")))?;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(from, name, Vec::new())
                        .map_err(io(format!("reading link {name}")))?;
                    rustix::fs::symlinkat(target.as_c_str(), to, name)
                        .map_err(io(format!("linking {name}")))?;
                    chown_link(to, name, account).map_err(io(format!("owning {name}")))?;
                }
                FileType::Directory => {
                    let src = open_dir(from, name).map_err(io(format!("opening {name}")))?;
                    rustix::fs::mkdirat(to, name, Mode::from_raw_mode(0o755))
                        .map_err(io(format!("creating {name}")))?;
                    let dst = open_dir(to, name).map_err(io(format!("opening {name}")))?;
                    chown_fd(dst.as_fd(), account).map_err(io(format!("owning {name}")))?;
                    self.copy_dir(src.as_fd(), dst.as_fd(), account)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A symlink or non-directory on the way is a refusal, anything else an I/O error.
fn refused_or(e: Errno, path: &str) -> Error {
    if e == Errno::LOOP || e == Errno::NOTDIR {
        Error::Refused(path.to_owned())
    } else {
        io(format!("opening {path}"))(e)
    }
}

/// `path` without `.` and with no `..` at all, or `None`.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[async_trait]
impl Storage for LocalStorage {
    async fn account(&self, username: &str) -> Result<Account> {
        if let Some(account) = self
            .inner
            .accounts
            .lock()
            .ok()
            .and_then(|cache| cache.get(username).cloned())
        {
            return Ok(account);
        }
        let usable = match self.inner.mapping {
            AccountMapping::Os => valid_account_name(username),
            AccountMapping::Service => workspace_parts(&format!("{username}/0")).is_ok(),
        };
        if !usable {
            return Err(Error::NoAccount(username.to_owned()));
        }
        let account = match self.inner.mapping {
            AccountMapping::Service => Account {
                name: username.to_owned(),
                uid: rustix::process::geteuid().as_raw(),
                gid: rustix::process::getegid().as_raw(),
            },
            AccountMapping::Os => {
                let mut found = lookup(username).await?;
                if found.is_none() && self.inner.create_users {
                    let status = tokio::process::Command::new("useradd")
                        .args(["--no-create-home", "--user-group", "--", username])
                        .status()
                        .await
                        .map_err(std_io("running useradd"))?;
                    if !status.success() {
                        tracing::warn!(%username, %status, "useradd failed");
                    }
                    found = lookup(username).await?;
                }
                let Some((uid, gid)) = found else {
                    return Err(Error::NoAccount(username.to_owned()));
                };
                if uid < self.inner.min_uid {
                    tracing::warn!(%username, uid, "refusing to map a user to a system account");
                    return Err(Error::NoAccount(username.to_owned()));
                }
                Account {
                    name: username.to_owned(),
                    uid,
                    gid,
                }
            }
        };
        if let Ok(mut cache) = self.inner.accounts.lock() {
            cache.insert(username.to_owned(), account.clone());
        }
        Ok(account)
    }

    async fn check_source(&self, source: &str) -> Result<String> {
        let not_allowed = || Error::SourceNotAllowed(source.to_owned());
        let path = Path::new(source);
        if !path.is_absolute() {
            return Err(not_allowed());
        }
        let path = lexical(path).ok_or_else(not_allowed)?;
        let roots = &self.inner.dataset_roots;
        if !roots.iter().any(|r| path.starts_with(r)) {
            return Err(not_allowed());
        }
        let resolved = tokio::fs::canonicalize(&path)
            .await
            .map_err(|_| Error::SourceNotFound(source.to_owned()))?;
        if !roots.iter().any(|r| resolved.starts_with(r)) {
            return Err(not_allowed());
        }
        resolved.to_str().map(str::to_owned).ok_or_else(not_allowed)
    }

    async fn create(&self, path: &str, account: &Account, entries: Vec<Entry>) -> Result<()> {
        let (path, account) = (path.to_owned(), account.clone());
        self.blocking("create", move |inner| {
            let ws = inner.make_workspace(&path, &account)?;
            let written = inner
                .write_entries(ws.as_fd(), &account, entries, true)
                .and_then(|()| Inner::hand_over(ws.as_fd(), &path, &account));
            if written.is_err() {
                inner.remove(&path);
            }
            written
        })
        .await
    }

    async fn write(&self, path: &str, account: &Account, entries: Vec<Entry>) -> Result<()> {
        let (path, account) = (path.to_owned(), account.clone());
        self.blocking("write", move |inner| {
            let ws = inner.workspace(&path)?;
            inner.write_entries(ws.as_fd(), &account, entries, false)
        })
        .await
    }

    async fn is_valid(&self, path: &str) -> bool {
        let path = path.to_owned();
        self.blocking("check", move |inner| inner.workspace(&path).map(|_| ()))
            .await
            .is_ok()
    }

    async fn scan(&self, path: &str) -> Result<Scan> {
        let path = path.to_owned();
        self.blocking("scan", move |inner| {
            let ws = inner.workspace(&path)?;
            let mut scan = Scan {
                disk_space: 0,
                details: CurrentDetails::default(),
            };
            inner.scan_dir(ws.as_fd(), "", false, &mut scan)?;
            scan.details.files.sort();
            scan.details.symlinks.sort();
            Ok(scan)
        })
        .await
    }

    async fn delete(&self, path: &str, account: &Account) -> Result<()> {
        let (path, account) = (path.to_owned(), account.clone());
        self.blocking("delete", move |inner| {
            let (user, id) = workspace_parts(&path)?;
            let user_fd = match open_dir(inner.root_fd.as_fd(), user) {
                Err(Errno::NOENT) => return Ok(()),
                other => other.map_err(|e| refused_or(e, &path))?,
            };
            let st = match rustix::fs::statat(user_fd.as_fd(), id, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => return Ok(()),
                other => other.map_err(io(format!("inspecting {path}")))?,
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory
                || st.st_uid != account.uid
            {
                return Err(Error::Refused(path));
            }
            // std's remove_dir_all never follows symlinks and is safe against races.
            std::fs::remove_dir_all(inner.root.join(user).join(id))
                .map_err(std_io(format!("removing {path}")))
        })
        .await
    }

    async fn copy(&self, from: &str, to: &str, account: &Account) -> Result<()> {
        let (from, to, account) = (from.to_owned(), to.to_owned(), account.clone());
        self.blocking("copy", move |inner| {
            let src = inner.workspace(&from)?;
            let dst = inner.make_workspace(&to, &account)?;
            let copied = inner
                .copy_dir(src.as_fd(), dst.as_fd(), &account)
                .and_then(|()| Inner::hand_over(dst.as_fd(), &to, &account));
            if copied.is_err() {
                inner.remove(&to);
            }
            copied
        })
        .await
    }

    async fn read_job_file(
        &self,
        path: &str,
        job_id: i64,
        name: &str,
        max: usize,
    ) -> Result<Option<Vec<u8>>> {
        let (path, name) = (path.to_owned(), name.to_owned());
        self.blocking("read", move |inner| {
            let ws = inner.workspace(&path)?;
            let absent = |e: Errno| matches!(e, Errno::NOENT | Errno::LOOP | Errno::NOTDIR);
            let folder = match open_dir(ws.as_fd(), &format!(".{job_id}")) {
                Err(e) if absent(e) => return Ok(None),
                other => other.map_err(io(format!("opening {path}/.{job_id}")))?,
            };
            // NONBLOCK: a FIFO planted there opens at once (and is then not a regular file).
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(folder.as_fd(), name.as_str(), flags, Mode::empty()) {
                Err(e) if absent(e) => return Ok(None),
                other => other.map_err(io(format!("opening {path}/.{job_id}/{name}")))?,
            };
            let st = rustix::fs::fstat(&fd).map_err(io(format!("stat of {name}")))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Ok(None);
            }
            let mut content = Vec::new();
            File::from(fd)
                .take(max as u64)
                .read_to_end(&mut content)
                .map_err(std_io(format!("reading {name}")))?;
            Ok(Some(content))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths_are_two_plain_parts() {
        assert!(workspace_parts("alice/1").is_ok());
        for bad in [
            "",
            "alice",
            "/1",
            "alice/",
            "alice/1/2",
            "../1",
            "alice/..",
            ".x/1",
        ] {
            assert!(workspace_parts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn account_names_are_portable() {
        assert!(valid_account_name("alice"));
        assert!(valid_account_name("a_b-c.d1"));
        for bad in ["", "Alice", "-x", "../x", "a/b", "a b", "1abc"] {
            assert!(!valid_account_name(bad), "{bad}");
        }
    }

    #[test]
    fn lexical_refuses_parent_components() {
        assert_eq!(lexical(Path::new("/a/./b")), Some(PathBuf::from("/a/b")));
        assert_eq!(lexical(Path::new("/a/../b")), None);
    }
}
