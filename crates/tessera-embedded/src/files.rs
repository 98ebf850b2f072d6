//! Owner-only files: the store holds e-mail addresses, grants and encrypted refresh
//! tokens, which other local users must not read.
//!
//! - A directory this creates is `0700`.
//! - An existing directory that group or others can enter is tightened to `0700` when it
//!   is the store's own (it holds nothing but the store's files); a directory shared with
//!   other files (a home directory, `/tmp`) is left alone with a warning, since the files
//!   themselves are private anyway.
//! - The database file is created `0600` before SQLite opens it; SQLite gives its `-wal`,
//!   `-shm` and `-journal` files the database file's mode. Existing files of the store
//!   with group or other bits are tightened to `0600`.
//!
//! Only on Unix; elsewhere the platform's defaults apply.

use std::path::Path;

use crate::{Error, Result};

/// The suffixes of SQLite's companion files.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes `path`'s directory and files private, creating the directory and an empty
/// database file when missing. Blocking.
#[cfg(unix)]
pub(crate) fn prepare(path: &Path) -> Result<()> {
    use std::fs::{DirBuilder, OpenOptions, Permissions};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    let dir_error = |dir: &Path| {
        let dir = dir.to_owned();
        move |source| Error::CreateDir { path: dir, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.is_dir() {
            let mode = std::fs::metadata(dir)
                .map_err(dir_error(dir))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                if holds_only_the_store(dir, path) {
                    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
                        .map_err(dir_error(dir))?;
                } else {
                    tracing::warn!(
                        dir = %dir.display(),
                        mode = format!("{:o}", mode & 0o7777),
                        "the embedded store's directory is shared and open to other users; its files are owner-only (0600)"
                    );
                }
            }
        } else {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(dir_error(dir))?;
        }
    }
    let file_error = |source| Error::CreateFile {
        path: path.to_owned(),
        source,
    };
    // An empty file is a valid new database; SQLite copies its mode to the companions.
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(file_error)?;
    let mut files = vec![path.to_owned()];
    files.extend(COMPANIONS.iter().map(|suffix| with_suffix(path, suffix)));
    for file in files {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&file, Permissions::from_mode(0o600)).map_err(|source| {
                Error::CreateFile {
                    path: file.clone(),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

/// Elsewhere: only the directory, with the platform's defaults.
#[cfg(not(unix))]
pub(crate) fn prepare(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`x.sqlite-wal`).
fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Whether `dir` holds nothing but the database at `path` and its companions.
#[cfg(unix)]
fn holds_only_the_store(dir: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.into_iter().all(|entry| {
        entry.is_ok_and(|entry| {
            let entry = entry.file_name();
            entry == name
                || COMPANIONS.iter().any(|suffix| {
                    let mut companion = name.to_owned();
                    companion.push(suffix);
                    entry == companion
                })
        })
    })
}
