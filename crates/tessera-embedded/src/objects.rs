//! [`LocalObjectStore`]: the object storage protocol on a local directory, the zero-setup
//! default beside the SQLite file.
//!
//! # Layout under `objects_root`
//! - `data/<key>`: one file per object (a key's `/` are directories);
//! - `tmp/<pid>-<uuid>.part`: uploads in progress;
//! - `presign.key`: the random HMAC key of presigned URLs when `objects_signing_key` is
//!   empty (mode 0600), so that every process on the root signs alike.
//!
//! # Guarantees
//! - **Atomic writes**: an upload goes to a temp file, is checked (length, MD5), fsynced,
//!   renamed over the key, and the directory fsynced. A reader sees the old object or the
//!   new one, never a part; a crash (even SIGKILL) leaves at most a temp file, which
//!   [`LocalObjectStore::purge_stale_uploads`] removes ([`STALE_UPLOAD_AGE`] at open). A
//!   refused or failed upload (also one whose future is dropped) removes its temp file.
//! - **Confinement**: keys are [`ObjectKey`]s (no `..`, no absolute path, no backslash, no
//!   control character), so every path stays under `data/`.
//! - A key cannot be both an object and the directory of others (`a` and `a/b`), which S3
//!   allows: such a put is `InvalidRequest`.
//! - **Presigned URLs** point at `objects_public_url`, where a service mounts the actix
//!   scope of feature `http` (`objects_http`): `<url>/<key>?expires=<unix>&signature=<hex>`,
//!   the signature an HMAC-SHA256 over the method, key, expiry and, for uploads, the
//!   `Content-MD5`, `Content-Type` and `Content-Length` the client must send.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_config::Secret;
use tessera_kit::objects::{
    self, ByteRange, ByteStream, ContentMd5, GetObject, ObjectKey, ObjectMeta, ObjectStore,
    PresignPut, PresignedRequest, PutRequest, UploadCheck, check_content_type, check_expiry,
    check_prefix,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{Error, Result};

/// The default objects directory, relative to the working directory.
pub const DEFAULT_OBJECTS_ROOT: &str = ".tessera/objects";
/// The default public URL of the presign scope (`tessera dev` mounts it there).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080/objects";
/// Temp files older than this are leftovers of crashed uploads (a live upload touches its
/// file with every chunk).
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(3600);
/// Bytes per chunk of a download.
const READ_CHUNK: usize = 256 << 10;

fn default_root() -> PathBuf {
    PathBuf::from(DEFAULT_OBJECTS_ROOT)
}

fn default_public_url() -> String {
    DEFAULT_PUBLIC_URL.to_owned()
}

/// Where the local objects live (`#[serde(flatten)]` into a service config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalObjectsConfig {
    /// The directory of the local object store; created when missing.
    #[serde(default = "default_root")]
    pub objects_root: PathBuf,
    /// The URL where a service mounts the presign scope; presigned URLs start with it.
    #[serde(default = "default_public_url")]
    pub objects_public_url: String,
    /// The HMAC key of presigned URLs; empty for a random one kept in
    /// `<objects_root>/presign.key`.
    #[serde(default)]
    pub objects_signing_key: Secret,
}

impl Default for LocalObjectsConfig {
    fn default() -> Self {
        Self {
            objects_root: default_root(),
            objects_public_url: default_public_url(),
            objects_signing_key: Secret::default(),
        }
    }
}

/// The object storage protocol on a local directory. Cheap to clone.
#[derive(Clone)]
pub struct LocalObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    data: PathBuf,
    tmp: PathBuf,
    signing_key: Vec<u8>,
    public_url: String,
}

impl std::fmt::Debug for LocalObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjectStore")
            .field("data", &self.inner.data)
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads or creates the random signing key file (32 bytes, hex, mode 0600).
fn signing_key_file(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().as_bytes().to_vec()),
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(io_err(path)(err)),
    }
    let key: [u8; 32] = rand::random();
    let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
            Ok(text.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .map(|text| text.trim().as_bytes().to_vec())
            .map_err(io_err(path)),
        Err(err) => Err(io_err(path)(err)),
    }
}

impl LocalObjectStore {
    /// Opens (creating) the store under `config.objects_root` and removes leftovers of
    /// crashed uploads older than [`STALE_UPLOAD_AGE`]. Blocking: call it before the runtime
    /// starts or use [`LocalObjectStore::from_config`].
    pub fn open(config: &LocalObjectsConfig) -> Result<Self> {
        let root = &config.objects_root;
        let data = root.join("data");
        let tmp = root.join("tmp");
        for dir in [&data, &tmp] {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let signing_key = if config.objects_signing_key.is_empty() {
            signing_key_file(&root.join("presign.key"))?
        } else {
            config.objects_signing_key.expose().as_bytes().to_vec()
        };
        let public_url = config.objects_public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "objects_public_url {:?} must start with http:// or https://",
                config.objects_public_url
            )));
        }
        let store = Self {
            inner: Arc::new(Inner {
                data,
                tmp,
                signing_key,
                public_url,
            }),
        };
        store.purge_stale_uploads(STALE_UPLOAD_AGE)?;
        Ok(store)
    }

    /// [`LocalObjectStore::open`] off the async runtime.
    pub async fn from_config(config: &LocalObjectsConfig) -> Result<Self> {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::open(&config)).await?
    }

    /// Removes temp files of uploads not written to for `older_than` (left by crashed
    /// processes); returns how many. Blocking.
    pub fn purge_stale_uploads(&self, older_than: Duration) -> Result<usize> {
        let tmp = &self.inner.tmp;
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(tmp).map_err(io_err(tmp))? {
            let entry = entry.map_err(io_err(tmp))?;
            let modified = entry.metadata().and_then(|m| m.modified());
            let stale = modified
                .map(|m| now.duration_since(m).unwrap_or_default() >= older_than)
                .unwrap_or(false);
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The number of uploads in progress or left behind (temp files).
    pub fn pending_uploads(&self) -> Result<usize> {
        let tmp = &self.inner.tmp;
        Ok(std::fs::read_dir(tmp).map_err(io_err(tmp))?.count())
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        // ObjectKey has no `..`, no leading `/` and no backslash: the path stays under data/.
        self.inner.data.join(key.as_str())
    }

    /// The HMAC of one presigned request's canonical form, not finalised.
    fn mac(&self, canonical: &str) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.inner.signing_key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(canonical.as_bytes());
        mac
    }

    fn signature(&self, canonical: &str) -> Vec<u8> {
        self.mac(canonical).finalize().into_bytes().to_vec()
    }

    fn presign(
        &self,
        method: &'static str,
        key: &ObjectKey,
        bound: Option<(&ContentMd5, &str, u64)>,
        expires_in: Duration,
    ) -> objects::Result<PresignedRequest> {
        let secs = check_expiry(expires_in)?;
        let expires_at = Utc::now() + chrono::Duration::seconds(secs as i64);
        let expires = expires_at.timestamp();
        let headers: Vec<(String, String)> = match bound {
            Some((md5, content_type, length)) => vec![
                ("Content-MD5".to_owned(), md5.to_base64()),
                ("Content-Type".to_owned(), content_type.to_owned()),
                ("Content-Length".to_owned(), length.to_string()),
            ],
            None => Vec::new(),
        };
        let canonical = canonical(method, key.as_str(), expires, &headers_of(&headers));
        let signature = hex(&self.signature(&canonical));
        Ok(PresignedRequest {
            method,
            // Key characters are all valid in a URL path: no encoding needed.
            url: format!(
                "{}/{key}?expires={expires}&signature={signature}",
                self.inner.public_url
            ),
            headers,
            expires_at,
        })
    }

    /// Checks a presigned request as the scope received it: the signature over the method,
    /// key, expiry and (uploads) the bound headers as sent, then the expiry.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        query: &PresignQuery,
        bound: &BoundHeaders,
    ) -> Result<(), Refusal> {
        let (Some(expires), Some(signature)) = (query.expires, query.signature.as_deref()) else {
            return Err(Refusal::Unsigned);
        };
        let Some(signature) = unhex(signature) else {
            return Err(Refusal::BadSignature);
        };
        // Constant-time comparison.
        self.mac(&canonical(method, key, expires, bound))
            .verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        if Utc::now().timestamp() > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// The query of a presigned URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PresignQuery {
    pub expires: Option<i64>,
    pub signature: Option<String>,
}

/// The headers an upload binds, as the client sent them (empty when absent; downloads bind
/// none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundHeaders {
    pub content_md5: String,
    pub content_type: String,
    pub content_length: String,
}

/// Why the scope refuses a presigned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL carries no expires and signature")]
    Unsigned,
    #[error("the signature does not match the request")]
    BadSignature,
    #[error("the URL has expired")]
    Expired,
}

fn headers_of(headers: &[(String, String)]) -> BoundHeaders {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    BoundHeaders {
        content_md5: get("content-md5"),
        content_type: get("content-type"),
        content_length: get("content-length"),
    }
}

/// What the signature covers; a newline cannot occur in a key or a header value.
fn canonical(method: &str, key: &str, expires: i64, bound: &BoundHeaders) -> String {
    if method == "PUT" {
        format!(
            "tessera-presign-v1\nPUT\n{key}\n{expires}\n{}\n{}\n{}",
            bound.content_md5, bound.content_type, bound.content_length
        )
    } else {
        format!("tessera-presign-v1\n{method}\n{key}\n{expires}")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A temp file that is removed when dropped unless it was renamed into place: a refused,
/// failed or cancelled upload leaves nothing behind.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(format!(
                "{}-{}.part",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            )),
            armed: true,
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn backend(err: impl Into<objects::BoxError>) -> objects::Error {
    objects::Error::backend(err)
}

fn not_found(key: &ObjectKey) -> objects::Error {
    objects::Error::NotFound {
        key: key.to_string(),
    }
}

fn meta_of(key: &ObjectKey, metadata: &std::fs::Metadata) -> ObjectMeta {
    let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    ObjectMeta {
        key: key.clone(),
        size: metadata.len(),
        last_modified: DateTime::<Utc>::from(modified),
        etag: Some(format!("{:x}-{nanos:x}", metadata.len())),
    }
}

/// Makes the directory entries durable: a rename is only on disk once its directory is.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Moves a complete temp file to `target`, creating its directories; fsyncs the directory.
fn install(temp: &mut TempFile, target: &Path, key: &ObjectKey) -> objects::Result<()> {
    let conflict = || {
        objects::Error::InvalidRequest(format!(
            "key {key} clashes with a directory of other objects on the local store"
        ))
    };
    let parent = target.parent().ok_or_else(conflict)?;
    // A concurrent delete may remove an emptied parent between mkdir and rename: retry.
    for _ in 0..3 {
        match std::fs::create_dir_all(parent) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotADirectory => return Err(conflict()),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => return Err(conflict()),
            Err(err) => return Err(backend(err)),
        }
        if target.is_dir() {
            return Err(conflict());
        }
        match std::fs::rename(&temp.path, target) {
            Ok(()) => {
                temp.armed = false;
                return sync_dir(parent).map_err(backend);
            }
            Err(err) if err.kind() == ErrorKind::NotFound => continue,
            Err(err) if err.kind() == ErrorKind::NotADirectory => return Err(conflict()),
            Err(err) => return Err(backend(err)),
        }
    }
    Err(backend(std::io::Error::other(format!(
        "the directory of {key} kept disappearing"
    ))))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> objects::Result<T> + Send + 'static,
) -> objects::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

/// Every file under `dir` as (key, metadata), for keys that start with `prefix`.
fn walk(data: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound || err.kind() == ErrorKind::NotADirectory => {
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Some(rel) = path.strip_prefix(data).ok().and_then(|p| p.to_str()) else {
            continue;
        };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            // Descend only where keys with the prefix can be.
            let as_dir = format!("{rel}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(data, &path, prefix, out)?;
            }
        } else if file_type.is_file()
            && rel.starts_with(prefix)
            && let Ok(key) = ObjectKey::parse(rel)
        {
            match entry.metadata() {
                Ok(metadata) => out.push(meta_of(&key, &metadata)),
                // Deleted meanwhile.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(
        &self,
        key: &ObjectKey,
        mut body: ByteStream,
        request: PutRequest,
    ) -> objects::Result<ObjectMeta> {
        let mut check = UploadCheck::new(key, &request)?;
        let mut temp = TempFile::new(&self.inner.tmp);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .await
            .map_err(backend)?;
        while let Some(item) = body.next().await {
            let chunk = check.chunk(item)?;
            file.write_all(&chunk).await.map_err(backend)?;
        }
        check.finish()?;
        file.sync_all().await.map_err(backend)?;
        drop(file);

        let target = self.path_of(key);
        let key = key.clone();
        blocking(move || {
            install(&mut temp, &target, &key)?;
            let metadata = std::fs::metadata(&target).map_err(backend)?;
            Ok(meta_of(&key, &metadata))
        })
        .await
    }

    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> objects::Result<GetObject> {
        let path = self.path_of(key);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err)
                if err.kind() == ErrorKind::NotFound || err.kind() == ErrorKind::NotADirectory =>
            {
                return Err(not_found(key));
            }
            Err(err) => return Err(backend(err)),
        };
        // The open handle keeps reading this version even if a put replaces the file.
        let metadata = file.metadata().await.map_err(backend)?;
        if !metadata.is_file() {
            return Err(not_found(key));
        }
        let meta = meta_of(key, &metadata);
        let range = match range {
            Some(range) => range.resolve(key, meta.size)?,
            None => 0..meta.size,
        };
        if range.start > 0 {
            file.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(backend)?;
        }
        let remaining = range.end - range.start;
        let body = futures::stream::unfold((file, remaining), |(mut file, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            let n = READ_CHUNK.min(usize::try_from(remaining).unwrap_or(READ_CHUNK));
            let mut buf = vec![0u8; n];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(backend(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the file is shorter than its size",
                    ))),
                    (file, 0),
                )),
                Ok(read) => {
                    buf.truncate(read);
                    Some((Ok(Bytes::from(buf)), (file, remaining - read as u64)))
                }
                Err(err) => Some((Err(backend(err)), (file, 0))),
            }
        })
        .boxed();
        Ok(GetObject { meta, range, body })
    }

    async fn head(&self, key: &ObjectKey) -> objects::Result<ObjectMeta> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(metadata) if metadata.is_file() => Ok(meta_of(key, &metadata)),
            Ok(_) => Err(not_found(key)),
            Err(err)
                if err.kind() == ErrorKind::NotFound || err.kind() == ErrorKind::NotADirectory =>
            {
                Err(not_found(key))
            }
            Err(err) => Err(backend(err)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> objects::Result<()> {
        let path = self.path_of(key);
        let data = self.inner.data.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err)
                    if err.kind() == ErrorKind::NotFound
                        || err.kind() == ErrorKind::NotADirectory =>
                {
                    return Ok(());
                }
                // A directory of other objects is not an object.
                Err(_) if path.is_dir() => return Ok(()),
                Err(err) => return Err(backend(err)),
            }
            // Remove the directories the key emptied (remove_dir fails on a non-empty one).
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == data || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> objects::Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        let data = self.inner.data.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let start = match prefix.rsplit_once('/') {
                Some((dir, _)) => data.join(dir),
                None => data.clone(),
            };
            let mut out = Vec::new();
            walk(&data, &start, &prefix, &mut out).map_err(backend)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> objects::Result<()> {
        let source = self.path_of(from);
        let target = self.path_of(to);
        let mut temp = TempFile::new(&self.inner.tmp);
        let (from, to) = (from.clone(), to.clone());
        blocking(move || {
            if !source.is_file() {
                return Err(not_found(&from));
            }
            match std::fs::copy(&source, &temp.path) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => return Err(not_found(&from)),
                Err(err) => return Err(backend(err)),
            }
            std::fs::File::open(&temp.path)
                .and_then(|f| f.sync_all())
                .map_err(backend)?;
            install(&mut temp, &target, &to)
        })
        .await
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        request: &PresignPut,
    ) -> objects::Result<PresignedRequest> {
        check_content_type(&request.content_type)?;
        self.presign(
            "PUT",
            key,
            Some((&request.md5, &request.content_type, request.length)),
            request.expires_in,
        )
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
    ) -> objects::Result<PresignedRequest> {
        self.presign("GET", key, None, expires_in)
    }
}

#[cfg(test)]
mod tests {
    use tessera_kit::testsuite::body;

    use super::*;

    fn store(dir: &tempfile::TempDir) -> LocalObjectStore {
        LocalObjectStore::open(&LocalObjectsConfig {
            objects_root: dir.path().to_owned(),
            ..LocalObjectsConfig::default()
        })
        .unwrap()
    }

    fn key(k: &str) -> ObjectKey {
        ObjectKey::parse(k).unwrap()
    }

    #[tokio::test]
    async fn objects_are_files_under_data_and_nothing_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.put(&key("a/b/c.txt"), body(b"abc", 2), PutRequest::new(3))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("data/a/b/c.txt")).unwrap(),
            b"abc"
        );
        assert_eq!(s.pending_uploads().unwrap(), 0);
        let refused = s
            .put(&key("a/x"), body(b"abcd", 2), PutRequest::new(3))
            .await;
        assert!(matches!(
            refused,
            Err(objects::Error::PreconditionFailed { .. })
        ));
        assert_eq!(
            s.pending_uploads().unwrap(),
            0,
            "a refused upload leaves no temp file"
        );
        s.delete(&key("a/b/c.txt")).await.unwrap();
        assert!(
            !dir.path().join("data/a").exists(),
            "emptied directories are removed"
        );
    }

    #[tokio::test]
    async fn a_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let (tx, rx) = futures::channel::mpsc::channel::<objects::Result<Bytes>>(1);
        let put = {
            let s = s.clone();
            tokio::spawn(async move { s.put(&key("slow"), rx.boxed(), PutRequest::new(100)).await })
        };
        let mut tx = tx;
        futures::SinkExt::send(&mut tx, Ok(Bytes::from_static(b"0123456789")))
            .await
            .unwrap();
        while s.pending_uploads().unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        put.abort();
        let _ = put.await;
        assert_eq!(s.pending_uploads().unwrap(), 0);
        assert!(matches!(
            s.head(&key("slow")).await,
            Err(objects::Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_key_cannot_be_an_object_and_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.put(&key("a/b"), body(b"1", 1), PutRequest::new(1))
            .await
            .unwrap();
        let err = s.put(&key("a"), body(b"2", 1), PutRequest::new(1)).await;
        assert!(
            matches!(err, Err(objects::Error::InvalidRequest(_))),
            "{err:?}"
        );
        let err = s
            .put(&key("a/b/c"), body(b"2", 1), PutRequest::new(1))
            .await;
        assert!(
            matches!(err, Err(objects::Error::InvalidRequest(_))),
            "{err:?}"
        );
        assert!(matches!(
            s.head(&key("a")).await,
            Err(objects::Error::NotFound { .. })
        ));
        s.delete(&key("a")).await.unwrap();
        assert_eq!(s.list("").await.unwrap().len(), 1);
        assert_eq!(s.pending_uploads().unwrap(), 0);
    }

    #[test]
    fn stale_uploads_are_purged_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        std::fs::write(dir.path().join("tmp/1-x.part"), b"left").unwrap();
        assert_eq!(s.purge_stale_uploads(STALE_UPLOAD_AGE).unwrap(), 0);
        assert_eq!(s.purge_stale_uploads(Duration::ZERO).unwrap(), 1);
        assert_eq!(s.pending_uploads().unwrap(), 0);
    }

    #[test]
    fn the_signing_key_is_shared_through_the_root_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (store(&dir), store(&dir));
        assert_eq!(a.inner.signing_key, b.inner.signing_key);
        assert_eq!(a.inner.signing_key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("presign.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(store(&other).inner.signing_key, a.inner.signing_key);
    }

    #[tokio::test]
    async fn verify_checks_signature_binding_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let md5 = tessera_kit::testsuite::md5_of(b"abc");
        let request = PresignPut {
            md5,
            content_type: "text/plain".to_owned(),
            length: 3,
            expires_in: Duration::from_secs(60),
        };
        let presigned = s.presign_put(&key("k"), &request).await.unwrap();
        let query: PresignQuery = {
            let q = presigned.url.split_once('?').unwrap().1;
            let mut query = PresignQuery::default();
            for pair in q.split('&') {
                let (n, v) = pair.split_once('=').unwrap();
                match n {
                    "expires" => query.expires = Some(v.parse().unwrap()),
                    "signature" => query.signature = Some(v.to_owned()),
                    _ => panic!("unexpected {n}"),
                }
            }
            query
        };
        let bound = headers_of(&presigned.headers);
        assert_eq!(s.verify("PUT", "k", &query, &bound), Ok(()));
        assert_eq!(
            s.verify("PUT", "other", &query, &bound),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.verify("GET", "k", &query, &bound),
            Err(Refusal::BadSignature)
        );
        for changed in [
            BoundHeaders {
                content_type: "text/html".into(),
                ..bound.clone()
            },
            BoundHeaders {
                content_length: "4".into(),
                ..bound.clone()
            },
            BoundHeaders {
                content_md5: md5_of_other(),
                ..bound.clone()
            },
        ] {
            assert_eq!(
                s.verify("PUT", "k", &query, &changed),
                Err(Refusal::BadSignature)
            );
        }
        let later = PresignQuery {
            expires: query.expires.map(|e| e + 1),
            ..query.clone()
        };
        assert_eq!(
            s.verify("PUT", "k", &later, &bound),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.verify("PUT", "k", &PresignQuery::default(), &bound),
            Err(Refusal::Unsigned)
        );
        let garbage = PresignQuery {
            signature: Some("zz".into()),
            ..query.clone()
        };
        assert_eq!(
            s.verify("PUT", "k", &garbage, &bound),
            Err(Refusal::BadSignature)
        );

        // An expired but genuine URL: signed with an expiry in the past.
        let past = Utc::now().timestamp() - 1;
        let sig = hex(&s.signature(&canonical("GET", "k", past, &BoundHeaders::default())));
        let expired = PresignQuery {
            expires: Some(past),
            signature: Some(sig),
        };
        assert_eq!(
            s.verify("GET", "k", &expired, &BoundHeaders::default()),
            Err(Refusal::Expired)
        );
    }

    fn md5_of_other() -> String {
        tessera_kit::testsuite::md5_of(b"abd").to_base64()
    }

    #[test]
    fn a_public_url_must_be_http() {
        let dir = tempfile::tempdir().unwrap();
        let err = LocalObjectStore::open(&LocalObjectsConfig {
            objects_root: dir.path().to_owned(),
            objects_public_url: "ftp://x".to_owned(),
            ..LocalObjectsConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("objects_public_url"), "{err}");
    }
}
