//! The object storage protocol: named byte sequences (objects) under validated keys, streamed
//! in and out, with presigned URLs that let a plain HTTP client upload or download one object
//! without credentials.
//!
//! Providers implement [`ObjectStore`]; services hold it as `Arc<dyn ObjectStore>`. Bodies
//! are `futures` byte streams ([`ByteStream`]) so that objects of any size pass in bounded
//! memory.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use md5::{Digest, Md5};

/// Any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the object storage protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key breaks the rules of [`ObjectKey`].
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// No object has that key.
    #[error("no object with key {key:?}")]
    NotFound { key: String },
    /// The uploaded bytes do not match the declared length or MD5; nothing was stored.
    #[error("upload of {key:?} refused: {reason}")]
    PreconditionFailed { key: String, reason: String },
    /// The requested byte range does not overlap the object.
    #[error("range {start}.. is outside object {key:?} of {size} bytes")]
    InvalidRange { key: String, start: u64, size: u64 },
    /// An argument other than the key is unusable (an expiry too long, a bad content type).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The caller's body stream failed; nothing was stored.
    #[error("reading the upload body failed")]
    Body(#[source] BoxError),
    /// The storage backend failed (connection, I/O, an unexpected answer).
    #[error("object storage backend failed")]
    Backend(#[source] BoxError),
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}

/// Result with the object storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream of byte chunks: an upload body or a download.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The longest key, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// The longest presigned URL lifetime (SigV4's limit: seven days).
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validated object key: 1 to 1024 bytes of `/`-separated segments, each non-empty, not
/// `.` or `..`, of ASCII letters, digits and `-_.+=,@:`.
///
/// The rules keep every key a relative path that cannot leave a directory (no `..`, no
/// leading `/`, no backslash, no NUL or other control character) and the same string on
/// every provider (no character that S3, object_store, URLs or file systems encode
/// differently).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `key` against the rules.
    pub fn parse(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let invalid = |reason| Error::InvalidKey {
            key: key.clone(),
            reason,
        };
        if key.is_empty() {
            return Err(invalid("it is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(invalid("it is longer than 1024 bytes"));
        }
        if let Some(c) = key.chars().find(|c| !is_key_char(*c) && *c != '/') {
            return Err(invalid(if c == '\\' {
                "it contains a backslash"
            } else if c.is_control() {
                "it contains a control character"
            } else {
                "it contains a character outside [A-Za-z0-9/-_.+=,@:]"
            }));
        }
        for segment in key.split('/') {
            match segment {
                "" => return Err(invalid("it has an empty segment (leading, trailing or //)")),
                "." | ".." => return Err(invalid("it has a . or .. segment")),
                _ => {}
            }
        }
        Ok(Self(key))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '=' | ',' | '@' | ':')
}

/// Whether `prefix` could start a valid key: what [`ObjectStore::list`] accepts (empty for
/// every object).
pub fn check_prefix(prefix: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidKey {
        key: prefix.to_owned(),
        reason,
    };
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_KEY_LEN {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    if !prefix.chars().all(|c| is_key_char(c) || c == '/') {
        return Err(invalid(
            "it contains a character outside [A-Za-z0-9/-_.+=,@:]",
        ));
    }
    // A prefix may end in a partial segment (`a/b` matches `a/bc`), so only the complete
    // segments before the last `/` must be valid.
    let complete = prefix.rsplit_once('/').map_or("", |(head, _)| head);
    if prefix.starts_with('/') || (!complete.is_empty() && ObjectKey::parse(complete).is_err()) {
        return Err(invalid("it has an empty, . or .. segment"));
    }
    Ok(())
}

impl TryFrom<&str> for ObjectKey {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Self::parse(value)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(value)
    }
}

impl std::str::FromStr for ObjectKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The MD5 digest of an object's bytes, as HTTP's `Content-MD5` carries it (base64).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentMd5(pub [u8; 16]);

impl ContentMd5 {
    /// Parses the base64 form of a `Content-MD5` header.
    pub fn from_base64(value: &str) -> Result<Self> {
        let bytes = BASE64
            .decode(value.trim())
            .map_err(|_| Error::InvalidRequest(format!("Content-MD5 {value:?} is not base64")))?;
        let digest: [u8; 16] = bytes
            .try_into()
            .map_err(|_| Error::InvalidRequest(format!("Content-MD5 {value:?} is not 16 bytes")))?;
        Ok(Self(digest))
    }

    /// The base64 form, as in a `Content-MD5` header.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Lower-case hex, as in a single-part S3 ETag.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ContentMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentMd5({})", self.to_base64())
    }
}

/// What an upload must be: the store refuses it ([`Error::PreconditionFailed`]) when the
/// body's length or MD5 differ, and stores nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    /// The exact number of bytes of the body.
    pub length: u64,
    /// The MD5 of the body, when the caller knows it.
    pub md5: Option<ContentMd5>,
    /// The media type to store with the object (providers that keep it: S3).
    pub content_type: Option<String>,
}

impl PutRequest {
    /// An upload of `length` bytes with no MD5 and no content type.
    pub fn new(length: u64) -> Self {
        Self {
            length,
            md5: None,
            content_type: None,
        }
    }

    /// Sets the expected MD5.
    #[must_use]
    pub fn md5(mut self, md5: ContentMd5) -> Self {
        self.md5 = Some(md5);
        self
    }

    /// Sets the content type.
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

/// The checks every provider runs on an upload while it streams: feed each item of the body
/// to [`UploadCheck::chunk`], then call [`UploadCheck::finish`]; an error means the provider
/// must discard what it wrote.
#[derive(Debug)]
pub struct UploadCheck<'a> {
    key: &'a ObjectKey,
    request: &'a PutRequest,
    hasher: Md5,
    total: u64,
}

impl<'a> UploadCheck<'a> {
    /// Starts checking; `InvalidRequest` for a bad content type.
    pub fn new(key: &'a ObjectKey, request: &'a PutRequest) -> Result<Self> {
        if let Some(content_type) = &request.content_type {
            check_content_type(content_type)?;
        }
        Ok(Self {
            key,
            request,
            hasher: Md5::new(),
            total: 0,
        })
    }

    fn refused(&self, reason: String) -> Error {
        Error::PreconditionFailed {
            key: self.key.to_string(),
            reason,
        }
    }

    /// One item of the body: a failing stream is `Body`, more bytes than declared is
    /// `PreconditionFailed`.
    pub fn chunk(&mut self, item: Result<Bytes>) -> Result<Bytes> {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(Error::Body(source)) => return Err(Error::Body(source)),
            Err(other) => return Err(Error::Body(Box::new(other))),
        };
        self.total += chunk.len() as u64;
        if self.total > self.request.length {
            return Err(self.refused(format!(
                "the body is longer than the declared {} bytes",
                self.request.length
            )));
        }
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    /// After the last chunk: the length, or `PreconditionFailed` when the body was short or
    /// its MD5 differs.
    pub fn finish(self) -> Result<u64> {
        if self.total != self.request.length {
            return Err(self.refused(format!(
                "the body has {} bytes, not the declared {}",
                self.total, self.request.length
            )));
        }
        let md5 = ContentMd5(self.hasher.clone().finalize().into());
        match self.request.md5 {
            Some(expected) if expected != md5 => Err(self.refused(format!(
                "the body's MD5 is {}, not the declared {}",
                md5.to_base64(),
                expected.to_base64()
            ))),
            _ => Ok(self.total),
        }
    }
}

/// What the store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// An opaque version tag that changes when the object does, if the provider has one.
    pub etag: Option<String>,
}

/// A byte range of a download: `start..end` (end exclusive), or from `start` to the end of
/// the object when `end` is `None`. An `end` beyond the object is clamped to its size, as
/// HTTP does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// `start..end`.
    pub fn new(start: u64, end: u64) -> Result<Self> {
        if end <= start {
            return Err(Error::InvalidRequest(format!(
                "range {start}..{end} is empty"
            )));
        }
        Ok(Self {
            start,
            end: Some(end),
        })
    }

    /// From `start` to the end of the object.
    pub fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// The range inside an object of `size` bytes, or `InvalidRange` when it starts at or
    /// after the end. Providers use this so that every one clamps and refuses alike.
    pub fn resolve(&self, key: &ObjectKey, size: u64) -> Result<Range<u64>> {
        if self.start >= size {
            return Err(Error::InvalidRange {
                key: key.to_string(),
                start: self.start,
                size,
            });
        }
        Ok(self.start..self.end.map_or(size, |end| end.min(size)))
    }
}

/// A download: the object's metadata, the byte range being returned and the bytes.
pub struct GetObject {
    pub meta: ObjectMeta,
    /// The bytes of the object that `body` yields.
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl fmt::Debug for GetObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetObject")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// What a presigned upload URL binds: the server refuses an upload whose `Content-MD5`,
/// `Content-Type` or `Content-Length` differ, or whose body does not match them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignPut {
    pub md5: ContentMd5,
    pub content_type: String,
    pub length: u64,
    /// How long the URL is valid, at most [`MAX_PRESIGN_EXPIRY`].
    pub expires_in: Duration,
}

/// A presigned request: what a plain HTTP client sends, without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    /// `PUT` or `GET`.
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send exactly so (the bound ones of an upload).
    pub headers: Vec<(String, String)>,
    /// After this instant the server refuses the URL.
    pub expires_at: DateTime<Utc>,
}

/// Checks a presign expiry: more than zero, at most [`MAX_PRESIGN_EXPIRY`], whole seconds
/// (both providers sign seconds).
pub fn check_expiry(expires_in: Duration) -> Result<u64> {
    let secs = expires_in.as_secs();
    if secs == 0 || expires_in > MAX_PRESIGN_EXPIRY || expires_in.subsec_nanos() != 0 {
        return Err(Error::InvalidRequest(format!(
            "a presigned URL must expire after 1 s to 7 days in whole seconds, not {expires_in:?}"
        )));
    }
    Ok(secs)
}

/// Checks a content type bound into a presigned upload: visible ASCII and spaces, not empty
/// (it travels as a header and inside signatures).
pub fn check_content_type(content_type: &str) -> Result<()> {
    if content_type.is_empty()
        || content_type.len() > 255
        || !content_type.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(Error::InvalidRequest(format!(
            "content type {content_type:?} must be 1 to 255 visible ASCII characters"
        )));
    }
    Ok(())
}

/// The object storage port.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Stores `body` under `key`, replacing any object there, and returns its metadata.
    ///
    /// MUST read the body as a stream (memory bounded whatever the size). MUST return
    /// `PreconditionFailed` and store nothing (the old object, if any, stays) when the body
    /// is not exactly `request.length` bytes or its MD5 differs from `request.md5`. MUST
    /// return `Body` and store nothing when the body stream yields an error. Readers MUST
    /// never see a partial object.
    async fn put(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        request: PutRequest,
    ) -> Result<ObjectMeta>;

    /// Streams the object, or the `range` of it.
    ///
    /// MUST return `NotFound` when there is no object, `InvalidRange` when the range starts
    /// at or after its end (see [`ByteRange::resolve`]).
    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> Result<GetObject>;

    /// The object's metadata. MUST return `NotFound` when there is no object.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta>;

    /// Removes the object. MUST succeed when there is none (deletes are idempotent, as S3's
    /// are).
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Every object whose key starts with `prefix` (a plain string prefix: `a/b` lists
    /// `a/b/c` and `a/bc`), in key order. MUST return `InvalidKey` when no key can start
    /// with `prefix` (see [`check_prefix`]).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Copies `from` to `to`, replacing any object at `to`. MUST return `NotFound` when
    /// `from` does not exist.
    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<()>;

    /// A URL a plain HTTP client can `PUT` the object to until the expiry, sending the
    /// returned headers. The server MUST refuse the upload when the client sends a different
    /// `Content-MD5`, `Content-Type` or `Content-Length`, after the expiry, or (except on
    /// servers that do not verify signatures) with a tampered URL. MUST return
    /// `InvalidRequest` for an expiry outside 1 s to 7 days or a bad content type.
    async fn presign_put(&self, key: &ObjectKey, request: &PresignPut) -> Result<PresignedRequest>;

    /// A URL a plain HTTP client can `GET` the object from until the expiry. MUST return
    /// `InvalidRequest` for an expiry outside 1 s to 7 days. Presigning does not check that
    /// the object exists (the server answers 404 later).
    async fn presign_get(&self, key: &ObjectKey, expires_in: Duration) -> Result<PresignedRequest>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_parse() {
        for key in [
            "a",
            "a/b/c.txt",
            "GHGA_001/x-y_z1+2=3,4@5:6",
            "..a/b..",
            ".hidden",
        ] {
            assert_eq!(ObjectKey::parse(key).unwrap().as_str(), key);
        }
        let long = "a".repeat(MAX_KEY_LEN);
        assert!(ObjectKey::parse(long).is_ok());
    }

    #[test]
    fn keys_that_could_escape_or_differ_are_refused() {
        let cases = [
            ("", "empty"),
            ("/abs", "empty segment"),
            ("a/", "empty segment"),
            ("a//b", "empty segment"),
            ("..", ". or .."),
            ("a/../b", ". or .."),
            ("./a", ". or .."),
            ("a\\b", "backslash"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("a b", "outside"),
            ("a%2e", "outside"),
            ("ü", "outside"),
            ("a?b", "outside"),
            // object_store refuses `~` (AWS advises against it).
            ("a~b", "outside"),
        ];
        for (key, why) in cases {
            let err = ObjectKey::parse(key).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidKey { reason, .. } if reason.contains(why)),
                "{key:?}: {err}"
            );
        }
        assert!(ObjectKey::parse("a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "a/b", "a/b/c.", "a/.."] {
            check_prefix(ok).unwrap();
        }
        for bad in ["/", "/a", "a//", "../", "a/../b", "a b", "a\\"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_md5_round_trips_and_refuses_garbage() {
        let md5 = ContentMd5::from_base64("1B2M2Y8AsgTpgAmY7PhCfg==").unwrap();
        assert_eq!(md5.to_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5.to_base64(), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert!(ContentMd5::from_base64("not base64!").is_err());
        assert!(ContentMd5::from_base64("AAAA").is_err());
    }

    #[test]
    fn ranges_clamp_and_refuse() {
        let key = ObjectKey::parse("k").unwrap();
        assert_eq!(
            ByteRange::new(2, 5).unwrap().resolve(&key, 10).unwrap(),
            2..5
        );
        assert_eq!(
            ByteRange::new(2, 50).unwrap().resolve(&key, 10).unwrap(),
            2..10
        );
        assert_eq!(ByteRange::from(9).resolve(&key, 10).unwrap(), 9..10);
        assert!(matches!(
            ByteRange::from(10).resolve(&key, 10),
            Err(Error::InvalidRange {
                start: 10,
                size: 10,
                ..
            })
        ));
        assert!(ByteRange::new(3, 3).is_err());
    }

    #[test]
    fn upload_check_counts_hashes_and_refuses() {
        let key = ObjectKey::parse("k").unwrap();
        let md5 = ContentMd5::from_base64("kAFQmDzST7DWlj99KOF/cg==").unwrap(); // "abc"
        let run = |request: PutRequest, items: Vec<Result<Bytes>>| {
            let mut check = UploadCheck::new(&key, &request)?;
            for item in items {
                check.chunk(item)?;
            }
            check.finish()
        };
        let ok = |b: &'static [u8]| Ok(Bytes::from_static(b));
        assert_eq!(
            run(PutRequest::new(3).md5(md5), vec![ok(b"a"), ok(b"bc")]).unwrap(),
            3
        );
        let cases = [
            (PutRequest::new(3).md5(md5), vec![ok(b"abd")], "MD5"),
            (
                PutRequest::new(2),
                vec![ok(b"abc")],
                "longer than the declared 2",
            ),
            (
                PutRequest::new(4),
                vec![ok(b"abc")],
                "has 3 bytes, not the declared 4",
            ),
        ];
        for (request, items, why) in cases {
            let err = run(request, items).unwrap_err();
            assert!(
                matches!(&err, Error::PreconditionFailed { reason, .. } if reason.contains(why)),
                "{err}"
            );
        }
        let failing = vec![ok(b"a"), Err(Error::Body("gone".into()))];
        assert!(matches!(
            run(PutRequest::new(3), failing),
            Err(Error::Body(_))
        ));
        let not_body = vec![Err(Error::InvalidRequest("x".into()))];
        assert!(matches!(
            run(PutRequest::new(3), not_body),
            Err(Error::Body(_))
        ));
        let bad_type = PutRequest::new(0).content_type("a\nb");
        assert!(matches!(
            run(bad_type, vec![]),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn expiry_and_content_type_rules() {
        assert_eq!(check_expiry(Duration::from_secs(60)).unwrap(), 60);
        assert!(check_expiry(Duration::ZERO).is_err());
        assert!(check_expiry(Duration::from_millis(1500)).is_err());
        assert!(check_expiry(MAX_PRESIGN_EXPIRY).is_ok());
        assert!(check_expiry(MAX_PRESIGN_EXPIRY + Duration::from_secs(1)).is_err());
        check_content_type("application/octet-stream; charset=x").unwrap();
        assert!(check_content_type("").is_err());
        assert!(check_content_type("a\nb").is_err());
    }

    proptest::proptest! {
        /// Whatever the input, an accepted key is a relative path of plain components that
        /// stays under any root, and parsing is the identity on it.
        #[test]
        fn accepted_keys_stay_under_the_root(raw in "[a-z./\\\\:@+=,~%\\x00\\n -]{0,24}") {
            if let Ok(key) = ObjectKey::parse(raw.clone()) {
                proptest::prop_assert_eq!(key.as_str(), raw.as_str());
                let root = std::path::Path::new("/root");
                let joined = root.join(key.as_str());
                proptest::prop_assert!(joined.starts_with(root));
                for component in std::path::Path::new(key.as_str()).components() {
                    proptest::prop_assert!(
                        matches!(component, std::path::Component::Normal(_)),
                        "{:?} in {:?}", component, raw
                    );
                }
                proptest::prop_assert!(!raw.contains('\\') && !raw.contains('\0'));
                proptest::prop_assert!(check_prefix(key.as_str()).is_ok());
            }
        }
    }
}
