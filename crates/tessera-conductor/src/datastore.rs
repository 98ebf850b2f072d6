//! [`Datastore`]: the upload authorization of `/datastore/authorize` and the prefixes of
//! `/datastore/info`.
//!
//! A request names a package (`metadata.owner`, `metadata.name`) and its files by relative
//! path (`filedata`); each file gets a presigned PUT for `<owner>/<name>/<path>` that binds
//! its `Content-MD5`, `Content-Type` and `Content-Length`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tessera_kit::objects::{ContentMd5, ObjectKey, ObjectStore, PresignPut, check_content_type};

use crate::model::PermissionClaims;
use crate::{DATASTORE_SERVICE, Error, Result, UPLOAD_PERMISSION};

/// The content type bound when a file names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// The most files one request may name.
pub const MAX_FILES: usize = 1000;

/// One file of an upload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The path inside the package, as sent.
    pub path: String,
    /// The object key `<owner>/<name>/<path>`.
    pub key: ObjectKey,
    /// The `md5` field (base64 of the 16-byte digest), as sent.
    pub md5_text: String,
    /// The digest.
    pub md5: ContentMd5,
    /// The `name` field.
    pub name: String,
    /// The exact length in bytes.
    pub length: u64,
    /// The `type` field, when sent.
    pub content_type: Option<String>,
}

/// A parsed `/datastore/authorize` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    /// `metadata.owner`.
    pub owner: String,
    /// `metadata.name`.
    pub name: String,
    /// `filedata`, by path.
    pub files: Vec<FileSpec>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadRequest(message.into())
}

/// Checks one segment of a key taken from the request (owner or package name).
fn check_segment(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') || value == "." || value == ".." {
        return Err(bad(format!(
            "metadata.{what} must be a non-empty name without /"
        )));
    }
    Ok(())
}

/// Checks a file path: relative, no empty, `.` or `..` segment, no backslash.
fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(bad("a file path is empty"));
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad(format!("file path {path:?} must be relative")));
    }
    if path
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(bad(format!(
            "file path {path:?} has an empty, . or .. segment"
        )));
    }
    Ok(())
}

impl UploadRequest {
    /// Parses the body (raw JSON, whatever the content type). MUST return `BadRequest`
    /// for bad JSON, a missing or bad owner or name, a missing or bad `filedata`, a file
    /// without `length`, `md5` or `name`, an `md5` that is not base64 of 16 bytes, and a
    /// path that is absolute or has `..`.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let metadata = value
            .get("metadata")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no metadata object"))?;
        let text = |map: &Map<String, Value>, key: &str| {
            map.get(key).and_then(Value::as_str).map(str::to_owned)
        };
        let owner = text(metadata, "owner").ok_or_else(|| bad("no metadata.owner"))?;
        let name = text(metadata, "name").ok_or_else(|| bad("no metadata.name"))?;
        check_segment("owner", &owner)?;
        check_segment("name", &name)?;
        let filedata = value
            .get("filedata")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no filedata object"))?;
        if filedata.len() > MAX_FILES {
            return Err(bad(format!("more than {MAX_FILES} files")));
        }
        let mut files = Vec::with_capacity(filedata.len());
        for (path, file) in filedata {
            check_path(path)?;
            let file = file
                .as_object()
                .ok_or_else(|| bad(format!("file {path:?} is not an object")))?;
            let field = |key: &str| bad(format!("file {path:?} has no valid {key}"));
            let length = file
                .get("length")
                .and_then(Value::as_u64)
                .ok_or_else(|| field("length"))?;
            let md5_text = text(file, "md5").ok_or_else(|| field("md5"))?;
            let md5 = ContentMd5::from_base64(&md5_text).map_err(|_| {
                bad(format!(
                    "file {path:?}: md5 must be the base64 of a 16-byte digest"
                ))
            })?;
            let file_name = text(file, "name").ok_or_else(|| field("name"))?;
            let content_type = match file.get("type") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => {
                    check_content_type(t).map_err(|e| bad(format!("file {path:?}: {e}")))?;
                    Some(t.clone())
                }
                Some(_) => return Err(field("type")),
            };
            let key = ObjectKey::parse(format!("{owner}/{name}/{path}"))
                .map_err(|e| bad(e.to_string()))?;
            files.push(FileSpec {
                path: path.clone(),
                key,
                md5_text,
                md5,
                name: file_name,
                length,
                content_type,
            });
        }
        Ok(Self { owner, name, files })
    }
}

/// One authorized file, as `/datastore/authorize` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizedFile {
    /// The `md5` sent.
    pub md5: String,
    /// The `name` sent.
    pub name: String,
    /// The `length` sent.
    pub length: u64,
    /// The content type the URL binds (the `type` sent, else [`DEFAULT_CONTENT_TYPE`]).
    #[serde(rename = "type")]
    pub content_type: String,
    /// The URL without its query.
    pub upload_url: String,
    /// The URL's query, decoded, each name to its values (Python's `parse_qs`).
    pub upload_query: BTreeMap<String, Vec<String>>,
    /// The headers the upload must send exactly so.
    pub upload_headers: BTreeMap<String, String>,
}

/// The datastore: upload URLs on the object store and the public prefixes of objects.
pub struct Datastore {
    store: Arc<dyn ObjectStore>,
    expires_in: Duration,
    prefixes: Vec<String>,
}

impl fmt::Debug for Datastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datastore")
            .field("store", &self.store)
            .field("expires_in", &self.expires_in)
            .field("prefixes", &self.prefixes)
            .finish()
    }
}

/// Checks that a permission token lets its user upload packages of `owner`. MUST return
/// `Forbidden` for a token of another service, without the upload permission, or of
/// another user than `owner`.
pub fn check_upload(claims: &PermissionClaims, owner: &str) -> Result<()> {
    if claims.service != DATASTORE_SERVICE {
        return Err(Error::Forbidden(format!(
            "the token is for service {:?}, not {DATASTORE_SERVICE}",
            claims.service
        )));
    }
    let allowed = match claims.permissions.get(UPLOAD_PERMISSION) {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    };
    if !allowed {
        return Err(Error::Forbidden(format!(
            "the token lacks the {UPLOAD_PERMISSION} permission"
        )));
    }
    if claims.userid != owner {
        return Err(Error::Forbidden(
            "the token's user is not the package owner".to_owned(),
        ));
    }
    Ok(())
}

/// `parse_qs` of a query string: `+` is a space, `%XX` a byte, each name to its values in
/// order; empty values are dropped as Python drops them.
pub fn parse_query(query: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        if value.is_empty() {
            continue;
        }
        map.entry(percent_decode(name)).or_default().push(value);
    }
    map
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(hi), Some(lo)) => {
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Datastore {
    /// The datastore over `store`, with upload URLs valid for `expires_in` and the public
    /// object prefixes of `/datastore/info` (each gets `/<userid>` appended).
    pub fn new(store: Arc<dyn ObjectStore>, expires_in: Duration, prefixes: Vec<String>) -> Self {
        Self {
            store,
            expires_in,
            prefixes,
        }
    }

    /// `/datastore/info`: where the user's objects are.
    pub fn info(&self, userid: &str) -> Vec<String> {
        self.prefixes
            .iter()
            .map(|prefix| format!("{}/{userid}", prefix.trim_end_matches('/')))
            .collect()
    }

    /// `/datastore/authorize`: a presigned upload per file, after [`check_upload`].
    pub async fn authorize(
        &self,
        claims: &PermissionClaims,
        request: &UploadRequest,
    ) -> Result<BTreeMap<String, AuthorizedFile>> {
        check_upload(claims, &request.owner)?;
        let mut out = BTreeMap::new();
        for file in &request.files {
            let content_type = file
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
            let presigned = self
                .store
                .presign_put(
                    &file.key,
                    &PresignPut {
                        md5: file.md5,
                        content_type: content_type.clone(),
                        length: file.length,
                        expires_in: self.expires_in,
                    },
                )
                .await
                .map_err(Error::Objects)?;
            let (url, query) = presigned
                .url
                .split_once('?')
                .unwrap_or((presigned.url.as_str(), ""));
            out.insert(
                file.path.clone(),
                AuthorizedFile {
                    md5: file.md5_text.clone(),
                    name: file.name.clone(),
                    length: file.length,
                    content_type,
                    upload_url: url.to_owned(),
                    upload_query: parse_query(query),
                    upload_headers: presigned.headers.into_iter().collect(),
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(filedata: Value) -> Vec<u8> {
        json!({"metadata": {"owner": "u1", "name": "ds"}, "filedata": filedata})
            .to_string()
            .into_bytes()
    }

    fn file() -> Value {
        json!({"length": 3, "md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "name": "a.csv", "type": "text/csv"})
    }

    #[test]
    fn parses_a_request_into_keys() {
        let request = UploadRequest::parse(&body(json!({"data/a.csv": file()}))).unwrap();
        assert_eq!(request.owner, "u1");
        assert_eq!(request.files[0].key.as_str(), "u1/ds/data/a.csv");
        assert_eq!(request.files[0].content_type.as_deref(), Some("text/csv"));
    }

    #[test]
    fn refuses_traversal_bad_md5_and_missing_fields() {
        let cases = [
            (json!({"../x": file()}), ". or .."),
            (json!({"a/../../x": file()}), ". or .."),
            (json!({"/etc/passwd": file()}), "relative"),
            (json!({"": file()}), "empty"),
            (
                json!({"a": {"md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "name": "a"}}),
                "length",
            ),
            (json!({"a": {"length": 1, "name": "a"}}), "md5"),
            (
                json!({"a": {"length": 1, "md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}}),
                "name",
            ),
            (
                json!({"a": {"length": 1, "md5": "AAAA", "name": "a"}}),
                "16-byte",
            ),
            (
                json!({"a": {"length": -1, "md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "name": "a"}}),
                "length",
            ),
        ];
        for (filedata, why) in cases {
            let err = UploadRequest::parse(&body(filedata.clone())).unwrap_err();
            assert!(err.to_string().contains(why), "{filedata}: {err}");
        }
        for bad in [
            &b"not json"[..],
            br#"{"metadata": {"name": "x"}, "filedata": {}}"#,
            br#"{"metadata": {"owner": "a/b", "name": "x"}, "filedata": {}}"#,
            br#"{"metadata": {"owner": "a", "name": ".."}, "filedata": {}}"#,
            br#"{"metadata": {"owner": "a", "name": ""}, "filedata": {}}"#,
        ] {
            assert!(UploadRequest::parse(bad).is_err());
        }
    }

    #[test]
    fn query_decoding_is_parse_qs() {
        let q = parse_query("a=1&b=x%2Fy+z&a=2&empty=&X-Amz-Credential=AK%2F2026");
        assert_eq!(q["a"], ["1", "2"]);
        assert_eq!(q["b"], ["x/y z"]);
        assert!(!q.contains_key("empty"));
        assert_eq!(q["X-Amz-Credential"], ["AK/2026"]);
    }

    #[test]
    fn upload_checks_service_permission_and_owner() {
        let mut permissions = Map::new();
        permissions.insert(UPLOAD_PERMISSION.into(), json!(true));
        let claims = PermissionClaims {
            userid: "u1".into(),
            permissions: permissions.clone(),
            service: DATASTORE_SERVICE.into(),
            exp: 0,
        };
        check_upload(&claims, "u1").unwrap();
        assert!(check_upload(&claims, "u2").is_err());
        let other = PermissionClaims {
            service: "os.other".into(),
            ..claims.clone()
        };
        assert!(check_upload(&other, "u1").is_err());
        let none = PermissionClaims {
            permissions: Map::new(),
            ..claims
        };
        assert!(check_upload(&none, "u1").is_err());
    }
}
