//! Collection names, their specs (id field and native-type hints), and opening the DAOs.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_kit::dao::{CollectionSpec, Dao, DaoFactory, FieldKind, JsonDao};

use crate::grants::Grant;
use crate::models::{AccessionMap, Dataset, UploadBox, WorkPackage};

/// The collection names (flat config keys, as in the original's `WorkPackageConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Collections {
    /// Datasets announced by the metadata service.
    pub datasets_collection: String,
    /// Research data upload boxes.
    pub upload_boxes_collection: String,
    /// Work packages.
    pub work_packages_collection: String,
    /// File accession to file id maps.
    pub accession_maps_collection: String,
    /// Access grants of the embedded access store (not used with the HTTP access API).
    pub grants_collection: String,
}

impl Default for Collections {
    fn default() -> Self {
        Self {
            datasets_collection: "datasets".into(),
            upload_boxes_collection: "uploadBoxes".into(),
            work_packages_collection: "workPackages".into(),
            accession_maps_collection: "accessionMaps".into(),
            grants_collection: "grants".into(),
        }
    }
}

/// One [`CollectionSpec`] per collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpecs {
    /// `datasets`: id = accession.
    pub datasets: CollectionSpec,
    /// `uploadBoxes`: UUID ids.
    pub upload_boxes: CollectionSpec,
    /// `workPackages`: UUID ids and box ids, user id, datetimes.
    pub work_packages: CollectionSpec,
    /// `accessionMaps`: id = accession, UUID file id.
    pub accession_maps: CollectionSpec,
    /// `grants`: UUID ids and user ids, datetimes.
    pub grants: CollectionSpec,
}

/// The specs for `names`; every model keeps its id in the field `id`.
pub fn specs(names: &Collections) -> CollectionSpecs {
    CollectionSpecs {
        datasets: CollectionSpec::new(&names.datasets_collection, "id"),
        upload_boxes: CollectionSpec::new(&names.upload_boxes_collection, "id")
            .kind("id", FieldKind::Uuid)
            .kind("file_upload_box_id", FieldKind::Uuid),
        work_packages: CollectionSpec::new(&names.work_packages_collection, "id")
            .kind("id", FieldKind::Uuid)
            .kind("research_data_upload_box_id", FieldKind::Uuid)
            .kind("file_upload_box_id", FieldKind::Uuid)
            .kind("user_id", FieldKind::Uuid)
            .kind("created", FieldKind::DateTime)
            .kind("expires", FieldKind::DateTime),
        accession_maps: CollectionSpec::new(&names.accession_maps_collection, "id")
            .kind("file_id", FieldKind::Uuid),
        // Every token re-checks the user's grants: by index, not by a scan of all users'.
        grants: CollectionSpec::new(&names.grants_collection, "id")
            .index("user_id")
            .kind("id", FieldKind::Uuid)
            .kind("user_id", FieldKind::Uuid)
            .kind("valid_from", FieldKind::DateTime)
            .kind("valid_until", FieldKind::DateTime),
    }
}

/// The typed DAOs the repository works on.
#[derive(Clone)]
pub struct Daos {
    /// Datasets.
    pub datasets: Arc<dyn Dao<Dataset>>,
    /// Research data upload boxes.
    pub upload_boxes: Arc<dyn Dao<UploadBox>>,
    /// Work packages.
    pub work_packages: Arc<dyn Dao<WorkPackage>>,
    /// Accession maps.
    pub accession_maps: Arc<dyn Dao<AccessionMap>>,
}

impl fmt::Debug for Daos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daos").finish_non_exhaustive()
    }
}

impl Daos {
    /// Opens the four collections of `names` through `factory`.
    pub async fn open(
        factory: &dyn DaoFactory,
        names: &Collections,
    ) -> tessera_kit::dao::Result<Self> {
        let specs = specs(names);
        Ok(Self {
            datasets: JsonDao::open(factory, specs.datasets).await?,
            upload_boxes: JsonDao::open(factory, specs.upload_boxes).await?,
            work_packages: JsonDao::open(factory, specs.work_packages).await?,
            accession_maps: JsonDao::open(factory, specs.accession_maps).await?,
        })
    }
}

/// Opens the grants collection of `names` through `factory`.
pub async fn open_grants(
    factory: &dyn DaoFactory,
    names: &Collections,
) -> tessera_kit::dao::Result<Arc<dyn Dao<Grant>>> {
    JsonDao::open(factory, specs(names).grants).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_and_valid_specs() {
        let s = specs(&Collections::default());
        assert_eq!(s.datasets.name, "datasets");
        assert_eq!(s.upload_boxes.name, "uploadBoxes");
        assert_eq!(s.work_packages.name, "workPackages");
        assert_eq!(s.accession_maps.name, "accessionMaps");
        assert_eq!(s.grants.name, "grants");
        for spec in [
            &s.datasets,
            &s.upload_boxes,
            &s.work_packages,
            &s.accession_maps,
            &s.grants,
        ] {
            assert!(spec.validate().is_ok());
            assert_eq!(spec.id_field, "id");
        }
        assert_eq!(
            s.work_packages.field_kinds.get("created"),
            Some(&FieldKind::DateTime)
        );
        assert_eq!(
            s.work_packages.field_kinds.get("user_id"),
            Some(&FieldKind::Uuid)
        );
        assert!(!s.datasets.field_kinds.contains_key("id"));
    }

    #[test]
    fn names_come_from_config() {
        let names: Collections =
            serde_json::from_value(serde_json::json!({"work_packages_collection": "wp2"})).unwrap();
        assert_eq!(specs(&names).work_packages.name, "wp2");
        assert_eq!(specs(&names).datasets.name, "datasets");
    }
}
