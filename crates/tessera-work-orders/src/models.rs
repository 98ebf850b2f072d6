//! Stored documents (wps.md §3), request and answer shapes (§1), and the user context.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::datetime;

/// What a work package is for; also a dataset's stage. Lower-case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkPackageType {
    /// Download files of a dataset.
    Download,
    /// Upload files into a research data upload box.
    Upload,
}

impl WorkPackageType {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Upload => "upload",
        }
    }
}

impl fmt::Display for WorkPackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `work_type` claim of a work order token. Lower-case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkType {
    /// Download one file.
    Download,
    /// Start a new file upload in a box.
    Create,
    /// Upload parts of an existing file upload.
    Upload,
    /// Complete a file upload.
    Close,
    /// Delete a file upload.
    Delete,
    /// View a file upload box.
    View,
}

impl WorkType {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Create => "create",
            Self::Upload => "upload",
            Self::Close => "close",
            Self::Delete => "delete",
            Self::View => "view",
        }
    }
}

impl fmt::Display for WorkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The work types a box work order token request may ask for (`download` is not one: a
/// request with it fails schema validation, a 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxWorkType {
    /// See [`WorkType::Create`].
    Create,
    /// See [`WorkType::Upload`].
    Upload,
    /// See [`WorkType::Close`].
    Close,
    /// See [`WorkType::Delete`].
    Delete,
    /// See [`WorkType::View`].
    View,
}

impl From<BoxWorkType> for WorkType {
    fn from(t: BoxWorkType) -> Self {
        match t {
            BoxWorkType::Create => Self::Create,
            BoxWorkType::Upload => Self::Upload,
            BoxWorkType::Close => Self::Close,
            BoxWorkType::Delete => Self::Delete,
            BoxWorkType::View => Self::View,
        }
    }
}

/// A work package's files: accession to extension, in the dataset's order. Serialises as a
/// JSON object whose keys keep that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMap(Vec<(String, String)>);

impl FileMap {
    /// An empty map (upload packages).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the extension of `accession`; a known accession keeps its position.
    pub fn insert(&mut self, accession: impl Into<String>, extension: impl Into<String>) {
        let (accession, extension) = (accession.into(), extension.into());
        match self.0.iter_mut().find(|(a, _)| *a == accession) {
            Some(entry) => entry.1 = extension,
            None => self.0.push((accession, extension)),
        }
    }

    /// The extension of `accession`.
    pub fn get(&self, accession: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(a, _)| a == accession)
            .map(|(_, e)| e.as_str())
    }

    /// Whether `accession` is one of the files.
    pub fn contains(&self, accession: &str) -> bool {
        self.get(accession).is_some()
    }

    /// `(accession, extension)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(a, e)| (a.as_str(), e.as_str()))
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<A: Into<String>, E: Into<String>> FromIterator<(A, E)> for FileMap {
    fn from_iter<I: IntoIterator<Item = (A, E)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (a, e) in iter {
            map.insert(a, e);
        }
        map
    }
}

impl Serialize for FileMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (a, e) in &self.0 {
            map.serialize_entry(a, e)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FileMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FileMapVisitor;
        impl<'de> Visitor<'de> for FileMapVisitor {
            type Value = FileMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of accessions to extensions")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<FileMap, M::Error> {
                let mut map = FileMap::new();
                while let Some((a, e)) = access.next_entry::<String, String>()? {
                    map.insert(a, e);
                }
                Ok(map)
            }
        }
        d.deserialize_map(FileMapVisitor)
    }
}

/// A file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    /// The file accession (`GHGAF…`).
    pub accession: String,
    /// The file extension with its leading dot.
    pub extension: String,
}

/// A dataset as announced by the metadata service (collection `datasets`, id = accession).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The dataset accession.
    pub id: String,
    /// The dataset's stage; not checked at creation (as in the original).
    pub stage: WorkPackageType,
    /// The title.
    pub title: String,
    /// The description, if any.
    pub description: Option<String>,
    /// The files, in the dataset's order.
    pub files: Vec<DatasetFile>,
}

/// The part of a research data upload box the WPS keeps (collection `uploadBoxes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBox {
    /// The research data upload box id (what upload access is granted on).
    pub id: Uuid,
    /// The file upload box id (what the connector and upload WOTs name).
    pub file_upload_box_id: Uuid,
    /// The title.
    pub title: String,
    /// The description, if any.
    #[serde(default)]
    pub description: Option<String>,
}

/// Which file id a file accession stands for (collection `accessionMaps`, id = accession).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessionMap {
    /// The file accession.
    #[serde(rename = "id")]
    pub accession: String,
    /// The file's id in the file services.
    pub file_id: Uuid,
}

/// A stored work package (collection `workPackages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkPackage {
    /// The package id (UUID4).
    pub id: Uuid,
    /// Download or upload.
    #[serde(rename = "type")]
    pub package_type: WorkPackageType,
    /// The dataset (download packages only).
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// Accession to extension, in dataset order (empty for upload packages).
    #[serde(default)]
    pub files: FileMap,
    /// The research data upload box (upload packages only).
    #[serde(default)]
    pub research_data_upload_box_id: Option<Uuid>,
    /// The box's file upload box (upload packages only).
    #[serde(default)]
    pub file_upload_box_id: Option<Uuid>,
    /// When the package was made, in milliseconds.
    #[serde(with = "datetime::millis")]
    pub created: DateTime<Utc>,
    /// When the package stops working, in milliseconds.
    #[serde(with = "datetime::millis")]
    pub expires: DateTime<Utc>,
    /// The owner.
    pub user_id: Uuid,
    /// `title + " " + name`, or `name`.
    pub full_user_name: String,
    /// The owner's e-mail address.
    pub email: String,
    /// The owner's public Crypt4GH key, normalised base64.
    pub user_public_crypt4gh_key: String,
    /// Lower-case hex SHA-256 of the access token.
    pub token_hash: String,
}

/// `GET /work-packages/{id}` (wps.md §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkPackageDetails {
    /// Download or upload.
    #[serde(rename = "type")]
    pub package_type: WorkPackageType,
    /// Accession to extension (`{}` for upload packages).
    pub files: FileMap,
    /// The research data upload box (upload packages).
    pub research_data_upload_box_id: Option<Uuid>,
    /// The file upload box (upload packages).
    pub file_upload_box_id: Option<Uuid>,
    /// Creation time.
    #[serde(with = "datetime::pydantic")]
    pub created: DateTime<Utc>,
    /// Expiry time.
    #[serde(with = "datetime::pydantic")]
    pub expires: DateTime<Utc>,
}

impl From<&WorkPackage> for WorkPackageDetails {
    fn from(wp: &WorkPackage) -> Self {
        Self {
            package_type: wp.package_type,
            files: wp.files.clone(),
            research_data_upload_box_id: wp.research_data_upload_box_id,
            file_upload_box_id: wp.file_upload_box_id,
            created: wp.created,
            expires: wp.expires,
        }
    }
}

/// A package in the owner's list: no token hash, key or personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkPackageSummary {
    /// The package id.
    pub id: Uuid,
    /// Download or upload.
    #[serde(rename = "type")]
    pub package_type: WorkPackageType,
    /// The dataset (download packages).
    pub dataset_id: Option<String>,
    /// Accession to extension.
    pub files: FileMap,
    /// The research data upload box (upload packages).
    pub research_data_upload_box_id: Option<Uuid>,
    /// The file upload box (upload packages).
    pub file_upload_box_id: Option<Uuid>,
    /// Creation time.
    #[serde(with = "datetime::pydantic")]
    pub created: DateTime<Utc>,
    /// Expiry time.
    #[serde(with = "datetime::pydantic")]
    pub expires: DateTime<Utc>,
}

impl From<&WorkPackage> for WorkPackageSummary {
    fn from(wp: &WorkPackage) -> Self {
        Self {
            id: wp.id,
            package_type: wp.package_type,
            dataset_id: wp.dataset_id.clone(),
            files: wp.files.clone(),
            research_data_upload_box_id: wp.research_data_upload_box_id,
            file_upload_box_id: wp.file_upload_box_id,
            created: wp.created,
            expires: wp.expires,
        }
    }
}

/// `POST /work-packages` body (wps.md §1.1). Unknown fields are refused. The key is raw
/// here; [`crate::WorkPackageRepository::create`] validates and normalises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPackageCreationRequest {
    /// Download or upload.
    #[serde(rename = "type")]
    pub package_type: WorkPackageType,
    /// The dataset (download).
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// The research data upload box (upload); the service checks it is a UUID4.
    #[serde(default)]
    pub research_data_upload_box_id: Option<Uuid>,
    /// The wanted file accessions; `None` means all files of the dataset.
    #[serde(default)]
    pub file_ids: Option<Vec<String>>,
    /// The user's public Crypt4GH key, raw base64 or armoured.
    pub user_public_crypt4gh_key: String,
}

/// `POST /work-packages` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationResponse {
    /// The new package's id.
    pub id: Uuid,
    /// The access token sealed for the user, padded standard base64.
    pub token: String,
    /// When the package expires.
    #[serde(with = "datetime::pydantic")]
    pub expires: DateTime<Utc>,
}

/// `POST …/boxes/{box_id}/work-order-tokens` body (wps.md §1.5). Extra fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxWotRequest {
    /// What the token is for.
    pub work_type: BoxWorkType,
    /// The new file's alias (`create`).
    #[serde(default)]
    pub alias: Option<String>,
    /// The file upload (`upload`, `close`, `delete`); the service checks it is a UUID4.
    #[serde(default)]
    pub file_id: Option<Uuid>,
}

/// An item of `GET /users/{id}/datasets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetWithExpiration {
    /// The dataset accession.
    pub id: String,
    /// The dataset's stage.
    pub stage: WorkPackageType,
    /// The title.
    pub title: String,
    /// The description, if any.
    pub description: Option<String>,
    /// The files.
    pub files: Vec<DatasetFile>,
    /// Until when the user may download it.
    #[serde(with = "datetime::pydantic")]
    pub expires: DateTime<Utc>,
}

impl DatasetWithExpiration {
    /// `dataset` with its access expiry.
    pub fn new(dataset: Dataset, expires: DateTime<Utc>) -> Self {
        Self {
            id: dataset.id,
            stage: dataset.stage,
            title: dataset.title,
            description: dataset.description,
            files: dataset.files,
            expires,
        }
    }
}

/// An item of `GET /users/{id}/boxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxWithExpiration {
    /// The research data upload box id.
    pub id: Uuid,
    /// The file upload box id.
    pub file_upload_box_id: Uuid,
    /// The title.
    pub title: String,
    /// The description, if any.
    pub description: Option<String>,
    /// Until when the user may upload to it.
    #[serde(with = "datetime::pydantic")]
    pub expires: DateTime<Utc>,
}

impl BoxWithExpiration {
    /// `upload_box` with its access expiry.
    pub fn new(upload_box: UploadBox, expires: DateTime<Utc>) -> Self {
        Self {
            id: upload_box.id,
            file_upload_box_id: upload_box.file_upload_box_id,
            title: upload_box.title,
            description: upload_box.description,
            expires,
        }
    }
}

/// The authenticated user, as the service's auth layer found it in the internal token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserContext {
    /// The `id` claim, as sent (compared exactly).
    pub id: String,
    /// The user's name.
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
    /// An academic title (`Dr.`, `Prof.`), if any.
    #[serde(default)]
    pub title: Option<String>,
}

impl UserContext {
    /// `title + " " + name` when there is a (non-empty) title, else `name`.
    pub fn full_name(&self) -> String {
        match self.title.as_deref() {
            Some(title) if !title.is_empty() => format!("{title} {}", self.name),
            _ => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_map_keeps_insertion_order_through_json() {
        let map: FileMap = [("GHGAF3", ".c"), ("GHGAF1", ".a"), ("GHGAF2", ".b")]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, r#"{"GHGAF3":".c","GHGAF1":".a","GHGAF2":".b"}"#);
        let value = serde_json::to_value(&map).unwrap();
        let back: FileMap = serde_json::from_value(value).unwrap();
        assert_eq!(
            back.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            ["GHGAF3", "GHGAF1", "GHGAF2"]
        );
        assert_eq!(back.get("GHGAF1"), Some(".a"));
        assert!(!back.contains("GHGAF9"));
    }

    #[test]
    fn file_map_replaces_duplicates_in_place() {
        let map: FileMap = [("A", ".1"), ("B", ".2"), ("A", ".3")]
            .into_iter()
            .collect();
        assert_eq!(map.len(), 2);
        assert_eq!(map.iter().collect::<Vec<_>>(), [("A", ".3"), ("B", ".2")]);
    }

    #[test]
    fn full_name_uses_a_title_only_when_present() {
        let mut user = UserContext {
            id: "u".into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.org".into(),
            title: Some("Dr.".into()),
        };
        assert_eq!(user.full_name(), "Dr. Ada Lovelace");
        user.title = Some(String::new());
        assert_eq!(user.full_name(), "Ada Lovelace");
        user.title = None;
        assert_eq!(user.full_name(), "Ada Lovelace");
    }

    #[test]
    fn creation_request_refuses_unknown_fields_and_defaults_options() {
        let ok: WorkPackageCreationRequest = serde_json::from_value(json!({
            "type": "download", "dataset_id": "DS1", "user_public_crypt4gh_key": "k"
        }))
        .unwrap();
        assert_eq!(ok.package_type, WorkPackageType::Download);
        assert_eq!(ok.file_ids, None);
        assert!(
            serde_json::from_value::<WorkPackageCreationRequest>(json!({
                "type": "download", "user_public_crypt4gh_key": "k", "extra": 1
            }))
            .is_err()
        );
        assert!(
            serde_json::from_value::<WorkPackageCreationRequest>(json!({
                "type": "DOWNLOAD", "user_public_crypt4gh_key": "k"
            }))
            .is_err()
        );
    }

    #[test]
    fn box_request_ignores_extra_fields_and_refuses_download() {
        let req: BoxWotRequest =
            serde_json::from_value(json!({"work_type": "view", "other": true})).unwrap();
        assert_eq!(req.work_type, BoxWorkType::View);
        assert!(serde_json::from_value::<BoxWotRequest>(json!({"work_type": "download"})).is_err());
    }

    #[test]
    fn old_work_packages_without_box_fields_still_load() {
        let wp: WorkPackage = serde_json::from_value(json!({
            "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "type": "download",
            "dataset_id": "DS1", "files": {"GHGAF1": ".json"},
            "created": "2026-01-01T00:00:00Z", "expires": "2026-01-31T00:00:00.5+00:00",
            "user_id": "16fd2706-8baf-433b-82eb-8c7fada847da", "full_user_name": "Ada",
            "email": "ada@example.org", "user_public_crypt4gh_key": "k", "token_hash": "h"
        }))
        .unwrap();
        assert_eq!(wp.research_data_upload_box_id, None);
        assert_eq!(wp.file_upload_box_id, None);
        let stored = serde_json::to_value(&wp).unwrap();
        assert_eq!(stored["expires"], json!("2026-01-31T00:00:00.500Z"));
        assert_eq!(stored["type"], json!("download"));
    }

    #[test]
    fn details_serialise_like_the_original() {
        let wp = WorkPackageDetails {
            package_type: WorkPackageType::Download,
            files: [("GHGAF01", ".json")].into_iter().collect(),
            research_data_upload_box_id: None,
            file_upload_box_id: None,
            created: datetime::parse_rfc3339("2026-05-29T10:11:12.345Z").unwrap(),
            expires: datetime::parse_rfc3339("2026-06-28T10:11:12Z").unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&wp).unwrap(),
            r#"{"type":"download","files":{"GHGAF01":".json"},"research_data_upload_box_id":null,"file_upload_box_id":null,"created":"2026-05-29T10:11:12.345000Z","expires":"2026-06-28T10:11:12Z"}"#
        );
    }
}
