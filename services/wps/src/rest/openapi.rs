//! The OpenAPI document. The domain crate has no OpenAPI dependency, so the schemas here
//! mirror its wire shapes for documentation only; the API tests check the real bodies.

#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

/// Download or upload.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum WorkType {
    /// Download files of a dataset.
    Download,
    /// Upload files into a research data upload box.
    Upload,
}

/// What a box work order token is for.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum UploadWorkType {
    /// Start a new file upload (needs `alias`).
    Create,
    /// Upload parts of a file (needs `file_id`).
    Upload,
    /// Complete a file upload (needs `file_id`).
    Close,
    /// Delete a file upload (needs `file_id`).
    Delete,
    /// View the box.
    View,
}

/// `POST /work-packages` body; unknown fields are refused.
#[derive(Debug, ToSchema)]
pub struct WorkPackageCreationRequest {
    /// Download or upload.
    #[schema(rename = "type")]
    work_type: WorkType,
    /// The dataset accession (download packages only).
    dataset_id: Option<String>,
    /// The research data upload box (upload packages only), a UUID4.
    research_data_upload_box_id: Option<Uuid>,
    /// The file accessions to include; null means all files of the dataset.
    file_ids: Option<Vec<String>>,
    /// The user's Crypt4GH public key, base64 or armoured.
    user_public_crypt4gh_key: String,
}

/// `POST /work-packages` answer.
#[derive(Debug, ToSchema)]
pub struct WorkPackageCreationResponse {
    /// The work package id.
    id: Uuid,
    /// The access token, sealed for the user's key, standard base64.
    token: String,
    /// When the package expires (UTC, `Z`).
    expires: String,
}

/// `GET /work-packages/{id}` answer.
#[derive(Debug, ToSchema)]
pub struct WorkPackageDetails {
    /// Download or upload.
    #[schema(rename = "type")]
    work_type: WorkType,
    /// File accession to file extension, in dataset order (`{}` for upload packages).
    files: BTreeMap<String, String>,
    /// The research data upload box (upload packages).
    research_data_upload_box_id: Option<Uuid>,
    /// The file upload box (upload packages).
    file_upload_box_id: Option<Uuid>,
    /// Creation time (UTC, `Z`).
    created: String,
    /// Expiry time (UTC, `Z`).
    expires: String,
}

/// A work package of `GET /users/{user_id}/work-packages`.
#[derive(Debug, ToSchema)]
pub struct WorkPackageSummary {
    /// The work package id.
    id: Uuid,
    /// Download or upload.
    #[schema(rename = "type")]
    work_type: WorkType,
    /// The dataset (download packages).
    dataset_id: Option<String>,
    /// File accession to file extension.
    files: BTreeMap<String, String>,
    /// The research data upload box (upload packages).
    research_data_upload_box_id: Option<Uuid>,
    /// The file upload box (upload packages).
    file_upload_box_id: Option<Uuid>,
    /// Creation time (UTC, `Z`).
    created: String,
    /// Expiry time (UTC, `Z`).
    expires: String,
}

/// `POST …/boxes/{box_id}/work-order-tokens` body; unknown fields are ignored.
#[derive(Debug, ToSchema)]
pub struct WorkOrderTokenRequest {
    /// What the token is for.
    work_type: UploadWorkType,
    /// The new file's alias (`create`).
    alias: Option<String>,
    /// The file upload (`upload`, `close`, `delete`), a UUID4.
    file_id: Option<Uuid>,
}

/// A file of a dataset.
#[derive(Debug, ToSchema)]
pub struct DatasetFile {
    /// The file accession.
    accession: String,
    /// The file extension.
    extension: String,
}

/// A dataset the user may download, with the access expiry.
#[derive(Debug, ToSchema)]
pub struct DatasetWithExpiration {
    /// The dataset accession.
    id: String,
    /// The dataset's stage.
    stage: WorkType,
    /// The title.
    title: String,
    /// The description.
    description: Option<String>,
    /// The files.
    files: Vec<DatasetFile>,
    /// Until when the user may download it (UTC, `Z`).
    expires: String,
}

/// A research data upload box the user may upload to, with the access expiry.
#[derive(Debug, ToSchema)]
pub struct BoxWithExpiration {
    /// The research data upload box id.
    id: Uuid,
    /// The file upload box id.
    file_upload_box_id: Uuid,
    /// The title.
    title: String,
    /// The description.
    description: Option<String>,
    /// Until when the user may upload to it (UTC, `Z`).
    expires: String,
}

/// An error with a message.
#[derive(Debug, ToSchema)]
pub struct HttpError {
    /// What went wrong.
    detail: String,
}

/// One validation failure.
#[derive(Debug, ToSchema)]
pub struct ValidationErrorItem {
    /// Where: `["body", field]`, `["path", name]`, `["body", "file_ids", 0]` (list
    /// positions are integers).
    #[schema(schema_with = loc_schema)]
    loc: Vec<String>,
    /// What is wrong.
    msg: String,
    /// The error type (`missing`, `uuid_parsing`, `value_error`, …).
    #[schema(rename = "type")]
    kind: String,
}

/// `loc`: strings and integers, as FastAPI declares it.
fn loc_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(ObjectBuilder::new().schema_type(Type::Integer)),
        )
        .build()
}

/// Validation failures.
#[derive(Debug, ToSchema)]
pub struct HttpValidationError {
    /// Every failure.
    detail: Vec<ValidationErrorItem>,
}

/// The bearer scheme the routes refer to (FastAPI's name for it).
const BEARER: tessera_http::BearerScheme = tessera_http::BearerScheme("HTTPBearer");

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Work Package Service",
        description = "A service managing access to research data (GHGA's Work Package Service, wire-compatible)",
    ),
    paths(
        super::create_work_package,
        super::get_work_package,
        super::delete_work_package,
        super::create_download_wot,
        super::create_upload_wot,
        super::get_datasets,
        super::get_boxes,
        super::list_work_packages,
    ),
    modifiers(&BEARER),
)]
pub struct ApiDoc;

/// The OpenAPI document of the routes (the HTTP stack adds `/health`).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
