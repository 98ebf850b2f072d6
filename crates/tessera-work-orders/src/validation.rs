//! Pure validation rules: the cross-field rules of requests (422s) and the domain rules of
//! event payloads.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::models::{BoxWorkType, BoxWotRequest, WorkPackageCreationRequest, WorkPackageType};
use crate::tokens::WorkOrder;

/// The prefix every file accession has (wps.md §3: `^GHGAF.+`).
pub const FILE_ACCESSION_PREFIX: &str = "GHGAF";

/// The type/id rule of a package or a creation request: the list of broken rules, empty when
/// all hold. A download needs a non-empty `dataset_id` and no box; an upload needs a box and
/// no dataset.
pub fn package_id_errors(
    package_type: WorkPackageType,
    dataset_id: Option<&str>,
    box_id: Option<Uuid>,
) -> Vec<&'static str> {
    let has_dataset = dataset_id.is_some_and(|d| !d.is_empty());
    let mut errors = Vec::new();
    match package_type {
        WorkPackageType::Download => {
            if !has_dataset {
                errors.push("dataset_id is required for download work packages");
            }
            if box_id.is_some() {
                errors.push(
                    "research_data_upload_box_id shouldn't be provided for download work packages",
                );
            }
        }
        WorkPackageType::Upload => {
            if box_id.is_none() {
                errors.push("research_data_upload_box_id is required for upload work packages");
            }
            if has_dataset {
                errors.push("dataset_id shouldn't be provided for upload work packages");
            }
        }
    }
    errors
}

/// The cross-field rule of `POST /work-packages` (wps.md §1.1). MUST fail with
/// [`Error::Validation`] carrying every broken rule joined with `"; "`.
pub fn validate_creation_request(request: &WorkPackageCreationRequest) -> Result<()> {
    let errors = package_id_errors(
        request.package_type,
        request.dataset_id.as_deref(),
        request.research_data_upload_box_id,
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors.join("; ")))
    }
}

/// The rule of a box work order token request (wps.md §1.5): `create` needs a non-empty
/// alias, `upload`/`close`/`delete` need a file id, `view` needs nothing. MUST fail with
/// [`Error::Validation`] and the original's message.
pub fn validate_box_wot_request(request: &BoxWotRequest) -> Result<()> {
    box_work_order(request, Uuid::nil()).map(|_| ())
}

/// The work order a valid box request asks for, in the file upload box
/// `file_upload_box_id`; fails as [`validate_box_wot_request`] does. Fields a work type does
/// not use are ignored.
pub fn box_work_order(request: &BoxWotRequest, file_upload_box_id: Uuid) -> Result<WorkOrder> {
    let box_id = file_upload_box_id;
    let file_id = || {
        request.file_id.ok_or_else(|| {
            Error::Validation("File ID is required for UPLOAD, CLOSE, DELETE work types".to_owned())
        })
    };
    Ok(match request.work_type {
        BoxWorkType::View => WorkOrder::View { box_id },
        BoxWorkType::Create => match request.alias.as_deref() {
            Some(alias) if !alias.is_empty() => WorkOrder::Create {
                alias: alias.to_owned(),
                box_id,
            },
            _ => {
                return Err(Error::Validation(
                    "File alias is required for CREATE work type".to_owned(),
                ));
            }
        },
        BoxWorkType::Upload => WorkOrder::Upload {
            file_id: file_id()?,
            box_id,
        },
        BoxWorkType::Close => WorkOrder::Close {
            file_id: file_id()?,
            box_id,
        },
        BoxWorkType::Delete => WorkOrder::Delete {
            file_id: file_id()?,
            box_id,
        },
    })
}

/// Whether `accession` is a file accession (`GHGAF` and at least one more character).
/// MUST fail with [`Error::InvalidEvent`] otherwise.
pub fn validate_file_accession(accession: &str) -> Result<()> {
    if accession.len() > FILE_ACCESSION_PREFIX.len() && accession.starts_with(FILE_ACCESSION_PREFIX)
    {
        Ok(())
    } else {
        Err(Error::InvalidEvent(format!(
            "file accession {accession:?} does not start with {FILE_ACCESSION_PREFIX}"
        )))
    }
}

/// Whether `id` is a version-4 UUID (what the original's `UUID4` fields accept).
pub fn is_uuid4(id: &Uuid) -> bool {
    id.get_version_num() == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        package_type: WorkPackageType,
        dataset_id: Option<&str>,
        box_id: Option<Uuid>,
    ) -> WorkPackageCreationRequest {
        WorkPackageCreationRequest {
            package_type,
            dataset_id: dataset_id.map(str::to_owned),
            research_data_upload_box_id: box_id,
            file_ids: None,
            user_public_crypt4gh_key: "key".into(),
        }
    }

    fn message(r: Result<()>) -> String {
        match r {
            Err(Error::Validation(m)) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn creation_rules_give_the_exact_joined_messages() {
        let b = Some(Uuid::new_v4());
        use WorkPackageType::*;
        assert!(validate_creation_request(&request(Download, Some("DS1"), None)).is_ok());
        assert!(validate_creation_request(&request(Upload, None, b)).is_ok());
        assert_eq!(
            message(validate_creation_request(&request(Download, None, None))),
            "dataset_id is required for download work packages"
        );
        assert_eq!(
            message(validate_creation_request(&request(
                Download,
                Some(""),
                None
            ))),
            "dataset_id is required for download work packages",
            "an empty dataset id is not truthy"
        );
        assert_eq!(
            message(validate_creation_request(&request(Download, None, b))),
            "dataset_id is required for download work packages; \
             research_data_upload_box_id shouldn't be provided for download work packages"
        );
        assert_eq!(
            message(validate_creation_request(&request(Upload, None, None))),
            "research_data_upload_box_id is required for upload work packages"
        );
        assert_eq!(
            message(validate_creation_request(&request(
                Upload,
                Some("DS1"),
                None
            ))),
            "research_data_upload_box_id is required for upload work packages; \
             dataset_id shouldn't be provided for upload work packages"
        );
        assert_eq!(
            message(validate_creation_request(&request(Upload, Some("DS1"), b))),
            "dataset_id shouldn't be provided for upload work packages"
        );
        assert!(
            validate_creation_request(&request(Upload, Some(""), b)).is_ok(),
            "an empty dataset id is not truthy"
        );
    }

    #[test]
    fn box_request_rules_per_work_type() {
        let req = |work_type, alias: Option<&str>, file_id| BoxWotRequest {
            work_type,
            alias: alias.map(str::to_owned),
            file_id,
        };
        let f = Some(Uuid::new_v4());
        use BoxWorkType::*;
        assert!(validate_box_wot_request(&req(View, None, None)).is_ok());
        assert!(validate_box_wot_request(&req(Create, Some("a.txt"), None)).is_ok());
        for bad in [None, Some("")] {
            assert_eq!(
                message(validate_box_wot_request(&req(Create, bad, f))),
                "File alias is required for CREATE work type"
            );
        }
        for t in [Upload, Close, Delete] {
            assert!(validate_box_wot_request(&req(t, None, f)).is_ok());
            assert_eq!(
                message(validate_box_wot_request(&req(t, Some("a"), None))),
                "File ID is required for UPLOAD, CLOSE, DELETE work types"
            );
        }
    }

    #[test]
    fn box_work_order_uses_the_given_box_and_ignores_unused_fields() {
        let fub = Uuid::new_v4();
        let f = Uuid::new_v4();
        let req = BoxWotRequest {
            work_type: BoxWorkType::View,
            alias: Some("x".into()),
            file_id: Some(f),
        };
        assert_eq!(
            box_work_order(&req, fub).unwrap(),
            WorkOrder::View { box_id: fub }
        );
        let req = BoxWotRequest {
            work_type: BoxWorkType::Create,
            ..req
        };
        assert_eq!(
            box_work_order(&req, fub).unwrap(),
            WorkOrder::Create {
                alias: "x".into(),
                box_id: fub
            }
        );
        let req = BoxWotRequest {
            work_type: BoxWorkType::Close,
            ..req
        };
        assert_eq!(
            box_work_order(&req, fub).unwrap(),
            WorkOrder::Close {
                file_id: f,
                box_id: fub
            }
        );
    }

    #[test]
    fn file_accessions_need_the_ghgaf_prefix_and_more() {
        assert!(validate_file_accession("GHGAF0001").is_ok());
        for bad in ["GHGAF", "GHGAD0001", "ghgaf0001", "", "XGHGAF1"] {
            assert!(
                matches!(validate_file_accession(bad), Err(Error::InvalidEvent(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn uuid4_check() {
        assert!(is_uuid4(&Uuid::new_v4()));
        assert!(!is_uuid4(&Uuid::nil()));
        let v1 = Uuid::parse_str("c232ab00-9414-11ec-b3c8-9f68deced846").unwrap();
        assert!(!is_uuid4(&v1));
    }
}
