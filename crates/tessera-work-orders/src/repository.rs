//! The work package repository: every business rule of the WPS (wps.md §1, §2, §4) over
//! the DAO protocol and the crate's ports.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_kit::dao::{self, Filter};
use uuid::Uuid;

use crate::collections::Daos;
use crate::datetime::truncate_ms;
use crate::error::{Error, Result};
use crate::models::{
    AccessionMap, BoxWithExpiration, BoxWotRequest, CreationResponse, Dataset,
    DatasetWithExpiration, FileMap, UploadBox, UserContext, WorkPackage,
    WorkPackageCreationRequest, WorkPackageDetails, WorkPackageSummary, WorkPackageType,
};
use crate::ports::{AccessCheck, Clock, Opaque, SystemClock, TokenCrypto, WorkOrderSigner};
use crate::tokens::{self, WorkOrder};
use crate::validation::{
    box_work_order, is_uuid4, package_id_errors, validate_creation_request, validate_file_accession,
};

/// The repository's settings (flat keys, as in the original's `WorkPackageConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepositoryConfig {
    /// How many days a work package (and its access token) stays valid at most.
    pub work_package_valid_days: u32,
    /// Seconds from `iat` to `exp` of a work order token (a constant 30 in the original).
    pub wot_lifetime_secs: u32,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self {
            work_package_valid_days: 30,
            wot_lifetime_secs: 30,
        }
    }
}

/// The files of `dataset` a request asks for: all of them when `file_ids` is `None`,
/// otherwise those whose accession is listed, in the dataset's order; unknown ids are
/// dropped.
pub fn select_files(dataset: &Dataset, file_ids: Option<&[String]>) -> FileMap {
    dataset
        .files
        .iter()
        .filter(|f| file_ids.is_none_or(|ids| ids.contains(&f.accession)))
        .map(|f| (f.accession.clone(), f.extension.clone()))
        .collect()
}

/// Logs a refusal and returns it as [`Error::Access`].
fn denied(detail: &str) -> Error {
    tracing::warn!(detail, "work package access refused");
    Error::access(detail)
}

/// The WPS core. Cheap to share behind an `Arc`; every method is safe to call concurrently.
pub struct WorkPackageRepository {
    daos: Daos,
    access: Arc<dyn AccessCheck>,
    crypto: Arc<dyn TokenCrypto>,
    signer: Arc<dyn WorkOrderSigner>,
    clock: Arc<dyn Clock>,
    config: RepositoryConfig,
}

impl fmt::Debug for WorkPackageRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkPackageRepository")
            .field("daos", &self.daos)
            .field("access", &Opaque("AccessCheck"))
            .field("crypto", &Opaque("TokenCrypto"))
            .field("signer", &Opaque("WorkOrderSigner"))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WorkPackageRepository {
    /// A repository on the system clock.
    pub fn new(
        config: RepositoryConfig,
        daos: Daos,
        access: Arc<dyn AccessCheck>,
        crypto: Arc<dyn TokenCrypto>,
        signer: Arc<dyn WorkOrderSigner>,
    ) -> Self {
        Self {
            daos,
            access,
            crypto,
            signer,
            clock: Arc::new(SystemClock),
            config,
        }
    }

    /// The same repository on another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    fn now_ms(&self) -> DateTime<Utc> {
        truncate_ms(self.clock.now())
    }

    /// Creates a work package (wps.md §1.1) and returns its id, the access token sealed for
    /// the user, and its expiry. Checks, in this order:
    /// 1. the key ([`Error::Key`], 422), then the cross-field rule ([`Error::Validation`]);
    /// 2. `auth.id` MUST be a UUID4, else 403 "Invalid user ID";
    /// 3. download: access check ("Failed to check dataset access permission" on error,
    ///    "Missing dataset access permission" on none), the dataset ("Cannot determine
    ///    dataset files"), the file selection ("No existing files have been specified");
    ///    upload: access check ("Failed to check upload box access permission", "Missing
    ///    upload box access permission"), the box ("Cannot find research data upload box
    ///    details").
    ///
    /// `expires` is the earlier of `created + work_package_valid_days` and the access expiry,
    /// both in milliseconds; only the token's SHA-256 is stored.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %auth.id, package_type = %request.package_type))]
    pub async fn create(
        &self,
        request: WorkPackageCreationRequest,
        auth: &UserContext,
    ) -> Result<CreationResponse> {
        let key = self
            .crypto
            .normalise_key(&request.user_public_crypt4gh_key)?;
        validate_creation_request(&request)?;
        // A non-v4 UUID was a 500 in the original (edge); refusing it like any bad id is
        // the intended behaviour.
        let user_id = match Uuid::parse_str(&auth.id) {
            Ok(id) if is_uuid4(&id) => id,
            _ => return Err(denied("Invalid user ID")),
        };

        let created = self.now_ms();
        let mut record = WorkPackage {
            id: Uuid::new_v4(),
            package_type: request.package_type,
            dataset_id: None,
            files: FileMap::new(),
            research_data_upload_box_id: None,
            file_upload_box_id: None,
            created,
            expires: created,
            user_id,
            full_user_name: auth.full_name(),
            email: auth.email.clone(),
            user_public_crypt4gh_key: key,
            token_hash: String::new(),
        };
        let access_expiry = match request.package_type {
            WorkPackageType::Download => {
                let dataset_id = request.dataset_id.clone().unwrap_or_default();
                let expiry = match self
                    .access
                    .check_download_access(user_id, &dataset_id)
                    .await
                {
                    Ok(Some(expiry)) => expiry,
                    Ok(None) => return Err(denied("Missing dataset access permission")),
                    Err(e) => {
                        tracing::error!(error = %e, "download access check failed");
                        return Err(denied("Failed to check dataset access permission"));
                    }
                };
                let dataset = match self.daos.datasets.get_by_id(&dataset_id).await {
                    Ok(dataset) => dataset,
                    Err(dao::Error::NotFound { .. }) => {
                        return Err(denied("Cannot determine dataset files"));
                    }
                    Err(e) => return Err(e.into()),
                };
                record.files = select_files(&dataset, request.file_ids.as_deref());
                if record.files.is_empty() {
                    return Err(denied("No existing files have been specified"));
                }
                record.dataset_id = Some(dataset_id);
                expiry
            }
            WorkPackageType::Upload => {
                let box_id = request
                    .research_data_upload_box_id
                    .ok_or_else(|| Error::Internal("validated upload without a box".into()))?;
                let expiry = match self.access.check_upload_access(user_id, box_id).await {
                    Ok(Some(expiry)) => expiry,
                    Ok(None) => return Err(denied("Missing upload box access permission")),
                    Err(e) => {
                        tracing::error!(error = %e, "upload access check failed");
                        return Err(denied("Failed to check upload box access permission"));
                    }
                };
                let upload_box = match self.daos.upload_boxes.get_by_id(&box_id.to_string()).await {
                    Ok(b) => b,
                    Err(dao::Error::NotFound { .. }) => {
                        return Err(denied("Cannot find research data upload box details"));
                    }
                    Err(e) => return Err(e.into()),
                };
                record.research_data_upload_box_id = Some(box_id);
                record.file_upload_box_id = Some(upload_box.file_upload_box_id);
                expiry
            }
        };

        // The original answered sub-millisecond access expiries unrounded but stored them
        // rounded (edge); answering what is stored keeps later reads consistent.
        let valid_until = record
            .created
            .checked_add_signed(TimeDelta::days(i64::from(
                self.config.work_package_valid_days,
            )))
            .unwrap_or(access_expiry);
        record.expires = truncate_ms(valid_until.min(access_expiry));

        let token = tokens::generate_access_token()?;
        record.token_hash = tokens::hash_token(&token);
        // Sealing before the insert leaves no unusable package behind when sealing fails.
        let sealed = self.crypto.seal(&record.user_public_crypt4gh_key, &token)?;
        self.daos.work_packages.insert(&record).await?;
        tracing::info!(work_package_id = %record.id, expires = %record.expires, "work package created");
        Ok(CreationResponse {
            id: record.id,
            token: sealed,
            expires: record.expires,
        })
    }

    /// Loads a package; a missing one is 403 "Work package not found". A stored package that
    /// breaks the type/id rule is [`Error::Internal`].
    async fn load(&self, id: Uuid) -> Result<WorkPackage> {
        let wp = match self.daos.work_packages.get_by_id(&id.to_string()).await {
            Ok(wp) => wp,
            Err(dao::Error::NotFound { .. }) => return Err(denied("Work package not found")),
            Err(e) => return Err(e.into()),
        };
        let errors = package_id_errors(
            wp.package_type,
            wp.dataset_id.as_deref(),
            wp.research_data_upload_box_id,
        );
        if !errors.is_empty() {
            return Err(Error::Internal(format!(
                "stored work package {id} is invalid: {}",
                errors.join("; ")
            )));
        }
        Ok(wp)
    }

    /// The shared check of every access-token endpoint (wps.md §1.2), in this order, each
    /// failure a 403: "Work package not found"; "Invalid work package access token" (the
    /// token's SHA-256 differs); "Work package has expired" (not `created <= now <
    /// expires`); the live access re-check ("Failed to check dataset access permission" /
    /// "Failed to check upload box access permission" on error, "Download access has been
    /// revoked" / "Upload access has been revoked" on none).
    #[tracing::instrument(level = "debug", skip_all, fields(work_package_id = %id))]
    pub async fn get(&self, id: Uuid, token: &str) -> Result<WorkPackage> {
        let wp = self.load(id).await?;
        if !tokens::token_matches(token, &wp.token_hash) {
            return Err(denied("Invalid work package access token"));
        }
        let now = self.now_ms();
        if !(wp.created <= now && now < wp.expires) {
            return Err(denied("Work package has expired"));
        }
        let (checked, failed, revoked) = match (
            wp.package_type,
            wp.dataset_id.as_deref(),
            wp.research_data_upload_box_id,
        ) {
            (WorkPackageType::Download, Some(dataset_id), _) => (
                self.access
                    .check_download_access(wp.user_id, dataset_id)
                    .await,
                "Failed to check dataset access permission",
                "Download access has been revoked",
            ),
            (WorkPackageType::Upload, _, Some(box_id)) => (
                self.access.check_upload_access(wp.user_id, box_id).await,
                "Failed to check upload box access permission",
                "Upload access has been revoked",
            ),
            _ => {
                return Err(Error::Internal(format!(
                    "stored work package {id} is invalid"
                )));
            }
        };
        match checked {
            Ok(Some(_)) => Ok(wp),
            Ok(None) => Err(denied(revoked)),
            Err(e) => {
                tracing::error!(error = %e, "access re-check failed");
                Err(denied(failed))
            }
        }
    }

    /// `GET /work-packages/{id}` (wps.md §1.3), after [`Self::get`].
    pub async fn details(&self, id: Uuid, token: &str) -> Result<WorkPackageDetails> {
        Ok(WorkPackageDetails::from(&self.get(id, token).await?))
    }

    /// A download work order token for `accession`, sealed for the package's key (wps.md
    /// §1.4). After [`Self::get`], 403s in this order: "Work package type must be DOWNLOAD to
    /// obtain a download access WOT"; "File is not contained in work package"; "File not
    /// available for download" (no accession map).
    #[tracing::instrument(level = "debug", skip_all, fields(work_package_id = %id, accession))]
    pub async fn download_wot(&self, id: Uuid, accession: &str, token: &str) -> Result<String> {
        let wp = self.get(id, token).await?;
        if wp.package_type != WorkPackageType::Download {
            return Err(denied(
                "Work package type must be DOWNLOAD to obtain a download access WOT",
            ));
        }
        if !wp.files.contains(accession) {
            return Err(denied("File is not contained in work package"));
        }
        let map = match self.daos.accession_maps.get_by_id(accession).await {
            Ok(map) => map,
            Err(dao::Error::NotFound { .. }) => {
                return Err(denied("File not available for download"));
            }
            Err(e) => return Err(e.into()),
        };
        let order = WorkOrder::Download {
            file_id: map.file_id,
            accession: accession.to_owned(),
        };
        self.issue(&order, &wp.user_public_crypt4gh_key)
    }

    /// An upload-path work order token, sealed for the package's key (wps.md §1.5). The
    /// request rule comes first ([`Error::Validation`]), then [`Self::get`], then 403
    /// "Specified box ID is incorrect." when `box_id` is not the package's research data
    /// upload box (download packages fail here too). The token names the package's
    /// **file** upload box, not `box_id`.
    #[tracing::instrument(level = "debug", skip_all, fields(work_package_id = %id, %box_id, work_type = ?request.work_type))]
    pub async fn upload_wot(
        &self,
        id: Uuid,
        box_id: Uuid,
        request: &BoxWotRequest,
        token: &str,
    ) -> Result<String> {
        box_work_order(request, Uuid::nil())?;
        let wp = self.get(id, token).await?;
        if wp.research_data_upload_box_id != Some(box_id) {
            return Err(denied("Specified box ID is incorrect."));
        }
        let file_upload_box_id = wp.file_upload_box_id.ok_or_else(|| {
            Error::Internal(format!("work package {id} has no file upload box id"))
        })?;
        let order = box_work_order(request, file_upload_box_id)?;
        self.issue(&order, &wp.user_public_crypt4gh_key)
    }

    /// Signs `order` for `key` with integer `iat` (now) and `exp = iat + lifetime`, and
    /// seals the JWS for `key`.
    fn issue(&self, order: &WorkOrder, key: &str) -> Result<String> {
        let iat = self.clock.now().timestamp();
        let claims = order.claims(key, iat, i64::from(self.config.wot_lifetime_secs));
        let jws = self.signer.sign(&claims)?;
        Ok(self.crypto.seal(key, &jws)?)
    }

    /// The datasets `user_id` may download, with expiry, in the access API's order, skipping
    /// datasets not stored here (wps.md §1.6). 403 "Not authorized to get datasets" when
    /// `user_id` (lower-case hyphenated) is not exactly `auth.id`; 403 "Failed to fetch
    /// accessible datasets with expiration" when the access API fails.
    pub async fn user_datasets(
        &self,
        user_id: Uuid,
        auth: &UserContext,
    ) -> Result<Vec<DatasetWithExpiration>> {
        if user_id.to_string() != auth.id {
            return Err(denied("Not authorized to get datasets"));
        }
        let listed = match self.access.list_download_access(user_id).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::error!(error = %e, "listing download access failed");
                return Err(denied(
                    "Failed to fetch accessible datasets with expiration",
                ));
            }
        };
        let mut out = Vec::with_capacity(listed.len());
        for (dataset_id, expires) in listed {
            match self.daos.datasets.get_by_id(&dataset_id).await {
                Ok(dataset) => out.push(DatasetWithExpiration::new(dataset, expires)),
                Err(dao::Error::NotFound { .. }) => {
                    tracing::debug!(dataset_id, "dataset not stored here, skipped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// The research data upload boxes `user_id` may upload to, as [`Self::user_datasets`]
    /// with the details "Not authorized to get upload boxes" and "Failed to fetch accessible
    /// upload boxes with expiration".
    pub async fn user_boxes(
        &self,
        user_id: Uuid,
        auth: &UserContext,
    ) -> Result<Vec<BoxWithExpiration>> {
        if user_id.to_string() != auth.id {
            return Err(denied("Not authorized to get upload boxes"));
        }
        let listed = match self.access.list_upload_access(user_id).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::error!(error = %e, "listing upload access failed");
                return Err(denied(
                    "Failed to fetch accessible upload boxes with expiration",
                ));
            }
        };
        let mut out = Vec::with_capacity(listed.len());
        for (box_id, expires) in listed {
            match self.daos.upload_boxes.get_by_id(&box_id.to_string()).await {
                Ok(upload_box) => out.push(BoxWithExpiration::new(upload_box, expires)),
                Err(dao::Error::NotFound { .. }) => {
                    tracing::debug!(%box_id, "upload box not stored here, skipped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// The caller's own packages (expired ones too), oldest first, without token hashes,
    /// keys or personal data. 403 "Not authorized to get work packages" when `user_id` is
    /// not exactly `auth.id`.
    pub async fn list_user_packages(
        &self,
        user_id: Uuid,
        auth: &UserContext,
    ) -> Result<Vec<WorkPackageSummary>> {
        if user_id.to_string() != auth.id {
            return Err(denied("Not authorized to get work packages"));
        }
        let mut filter = Filter::new();
        filter.insert("user_id".into(), json!(user_id.to_string()));
        let mut packages = self.daos.work_packages.find_all(&filter).await?;
        packages.sort_by_key(|p| (p.created, p.id));
        Ok(packages.iter().map(WorkPackageSummary::from).collect())
    }

    /// Deletes a package whose access token the caller holds: 403 "Work package not found"
    /// or "Invalid work package access token". Expired or revoked packages can be deleted.
    pub async fn delete_package(&self, id: Uuid, token: &str) -> Result<()> {
        let wp = self.load(id).await?;
        if !tokens::token_matches(token, &wp.token_hash) {
            return Err(denied("Invalid work package access token"));
        }
        self.remove(id).await
    }

    /// Deletes a package of the authenticated user. Someone else's package MUST look like a
    /// missing one: 403 "Work package not found".
    pub async fn delete_package_as_user(&self, id: Uuid, auth: &UserContext) -> Result<()> {
        let wp = self.load(id).await?;
        if wp.user_id.to_string() != auth.id {
            return Err(denied("Work package not found"));
        }
        self.remove(id).await
    }

    async fn remove(&self, id: Uuid) -> Result<()> {
        match self.daos.work_packages.delete(&id.to_string()).await {
            Ok(()) => {
                tracing::info!(work_package_id = %id, "work package deleted");
                Ok(())
            }
            Err(dao::Error::NotFound { .. }) => Err(denied("Work package not found")),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every package that expired at least `retention` ago and returns how many.
    /// Packages deleted concurrently are not counted.
    pub async fn purge_expired(&self, retention: TimeDelta) -> Result<usize> {
        let now = self.clock.now();
        let mut purged = 0;
        for wp in self.daos.work_packages.find_all(&Filter::new()).await? {
            let due = wp
                .expires
                .checked_add_signed(retention)
                .is_some_and(|t| t <= now);
            if !due {
                continue;
            }
            match self.daos.work_packages.delete(&wp.id.to_string()).await {
                Ok(()) => purged += 1,
                Err(dao::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if purged > 0 {
            tracing::info!(purged, "expired work packages purged");
        }
        Ok(purged)
    }

    /// Stores a dataset announced by the metadata service, replacing any previous version.
    /// MUST fail with [`Error::InvalidEvent`] (storing nothing) when a file accession does
    /// not start with `GHGAF`.
    pub async fn upsert_dataset(&self, dataset: &Dataset) -> Result<()> {
        for file in &dataset.files {
            validate_file_accession(&file.accession)?;
        }
        self.daos.datasets.upsert(dataset).await?;
        tracing::info!(dataset_id = %dataset.id, "dataset upserted");
        Ok(())
    }

    /// Deletes a dataset; a missing one is fine.
    pub async fn delete_dataset(&self, accession: &str) -> Result<()> {
        ignore_missing(self.daos.datasets.delete(accession).await)?;
        tracing::info!(dataset_id = accession, "dataset deleted");
        Ok(())
    }

    /// Stores a research data upload box, replacing any previous version.
    pub async fn upsert_upload_box(&self, upload_box: &UploadBox) -> Result<()> {
        self.daos.upload_boxes.upsert(upload_box).await?;
        tracing::info!(box_id = %upload_box.id, "upload box upserted");
        Ok(())
    }

    /// Deletes a research data upload box; a missing one is fine.
    pub async fn delete_upload_box(&self, box_id: Uuid) -> Result<()> {
        ignore_missing(self.daos.upload_boxes.delete(&box_id.to_string()).await)?;
        tracing::info!(%box_id, "upload box deleted");
        Ok(())
    }

    /// Stores an accession map, replacing any previous one for the accession.
    pub async fn upsert_accession_map(&self, map: &AccessionMap) -> Result<()> {
        self.daos.accession_maps.upsert(map).await?;
        tracing::info!(accession = %map.accession, file_id = %map.file_id, "accession map upserted");
        Ok(())
    }

    /// Deletes the accession map of `accession`; a missing one is fine.
    pub async fn delete_accession_map(&self, accession: &str) -> Result<()> {
        ignore_missing(self.daos.accession_maps.delete(accession).await)?;
        tracing::info!(accession, "accession map deleted");
        Ok(())
    }
}

fn ignore_missing(r: dao::Result<()>) -> Result<()> {
    match r {
        Ok(()) | Err(dao::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
