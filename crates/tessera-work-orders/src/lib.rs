//! The domain core of the Work Package Service (WPS): work packages, work order tokens and
//! the data they are made from (wps.md). It sees only `tessera-kit`'s DAO protocol and its
//! own ports; the service wires in the providers, the access API, Crypt4GH and JOSE.
//!
//! Layout:
//! - [`models`]: stored documents (datasets, upload boxes, accession maps, work packages),
//!   request and answer shapes, the user context.
//! - [`repository`]: [`WorkPackageRepository`], every business rule with its exact 403
//!   details, plus the event-side upserts and deletes.
//! - [`ports`]: [`AccessCheck`], [`TokenCrypto`], [`WorkOrderSigner`], [`Clock`].
//! - [`grants`]: [`GrantStore`], an [`AccessCheck`] over a grants collection for the
//!   embedded default.
//! - [`validation`]: pure request and event rules (422s, `GHGAF` accessions).
//! - [`tokens`]: access token generation and hashing, work order claims.
//! - [`collections`]: collection names, their specs, and opening the DAOs.
//! - [`datetime`]: millisecond storage and pydantic-style formatting.
//! - `testing` (feature `mock`): an in-memory `DocumentDao` and a manual clock.
//!
//! With feature `mock`, every port has a mockall mock (`MockAccessCheck`, …).

pub mod collections;
pub mod datetime;
pub mod error;
pub mod grants;
pub mod models;
pub mod ports;
pub mod repository;
#[cfg(any(test, feature = "mock"))]
pub mod testing;
pub mod tokens;
pub mod validation;

pub use collections::{CollectionSpecs, Collections, Daos, open_grants, specs};
pub use error::{Error, Result};
pub use grants::{Grant, GrantKind, GrantStore};
pub use models::{
    AccessionMap, BoxWithExpiration, BoxWorkType, BoxWotRequest, CreationResponse, Dataset,
    DatasetFile, DatasetWithExpiration, FileMap, UploadBox, UserContext, WorkPackage,
    WorkPackageCreationRequest, WorkPackageDetails, WorkPackageSummary, WorkPackageType, WorkType,
};
pub use ports::{
    AccessCheck, AccessCheckError, Clock, CryptoError, KeyError, SystemClock, TokenCrypto,
    WorkOrderSigner,
};
pub use repository::{RepositoryConfig, WorkPackageRepository};
pub use tokens::WorkOrder;
