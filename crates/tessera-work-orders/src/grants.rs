//! The embedded access store: download and upload grants kept in a collection, answering
//! the [`AccessCheck`] port the way the auth service's claims API does (wps.md §5).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_kit::dao::{self, Dao, Filter};
use uuid::Uuid;

use crate::datetime;
use crate::error::{Error, Result};
use crate::ports::{AccessCheck, AccessCheckError, Clock};

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    /// Download a dataset (`resource_id` is the dataset accession).
    Download,
    /// Upload to a research data upload box (`resource_id` is the box UUID).
    Upload,
}

impl GrantKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Upload => "upload",
        }
    }
}

/// One access grant (collection `grants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant id.
    pub id: Uuid,
    /// Who is granted access.
    pub user_id: Uuid,
    /// Download or upload.
    pub kind: GrantKind,
    /// The dataset accession, or the box UUID in its hyphenated lower-case form.
    pub resource_id: String,
    /// From when the grant counts.
    #[serde(with = "datetime::millis")]
    pub valid_from: DateTime<Utc>,
    /// Until when the grant counts (exclusive).
    #[serde(with = "datetime::millis")]
    pub valid_until: DateTime<Utc>,
}

impl Grant {
    /// Whether the grant counts at `now`: `valid_from <= now < valid_until`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// Grants over a [`Dao<Grant>`], with the clock that decides which are valid.
#[derive(Clone)]
pub struct GrantStore {
    dao: Arc<dyn Dao<Grant>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for GrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantStore").finish_non_exhaustive()
    }
}

impl GrantStore {
    /// A store over `dao`, judging validity by `clock`.
    pub fn new(dao: Arc<dyn Dao<Grant>>, clock: Arc<dyn Clock>) -> Self {
        Self { dao, clock }
    }

    /// Stores a new grant and returns it. MUST fail with [`Error::Validation`] when
    /// `valid_until` is not after `valid_from`, when a download resource is empty, or when an
    /// upload resource is not a UUID (stored in its lower-case hyphenated form).
    pub async fn add(
        &self,
        user_id: Uuid,
        kind: GrantKind,
        resource_id: &str,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    ) -> Result<Grant> {
        let (valid_from, valid_until) = (
            datetime::truncate_ms(valid_from),
            datetime::truncate_ms(valid_until),
        );
        if valid_until <= valid_from {
            return Err(Error::Validation(
                "valid_until must be after valid_from".to_owned(),
            ));
        }
        let resource_id = match kind {
            GrantKind::Download if resource_id.is_empty() => {
                return Err(Error::Validation("dataset id must not be empty".to_owned()));
            }
            GrantKind::Download => resource_id.to_owned(),
            GrantKind::Upload => Uuid::parse_str(resource_id)
                .map_err(|_| {
                    Error::Validation(format!("upload box id {resource_id:?} is not a UUID"))
                })?
                .to_string(),
        };
        let grant = Grant {
            id: Uuid::new_v4(),
            user_id,
            kind,
            resource_id,
            valid_from,
            valid_until,
        };
        self.dao.insert(&grant).await?;
        tracing::info!(grant_id = %grant.id, %user_id, kind = kind.as_str(),
            resource_id = %grant.resource_id, "access granted");
        Ok(grant)
    }

    /// Every grant (of `user_id` when given), valid or not, ordered by user, kind, resource
    /// and start.
    pub async fn list(&self, user_id: Option<Uuid>) -> Result<Vec<Grant>> {
        let mut filter = Filter::new();
        if let Some(user_id) = user_id {
            filter.insert("user_id".into(), json!(user_id.to_string()));
        }
        let mut grants = self.dao.find_all(&filter).await?;
        grants.sort_by(|a, b| {
            (a.user_id, a.kind.as_str(), &a.resource_id, a.valid_from).cmp(&(
                b.user_id,
                b.kind.as_str(),
                &b.resource_id,
                b.valid_from,
            ))
        });
        Ok(grants)
    }

    /// Deletes the grant `id`; `Ok(false)` when there is none.
    pub async fn revoke(&self, id: Uuid) -> Result<bool> {
        match self.dao.delete(&id.to_string()).await {
            Ok(()) => {
                tracing::info!(grant_id = %id, "access revoked");
                Ok(true)
            }
            Err(dao::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's grants of `kind` valid now, as resource id to the latest `valid_until`,
    /// sorted by resource id (as the auth service sorts them).
    async fn valid_grants(
        &self,
        user_id: Uuid,
        kind: GrantKind,
        resource_id: Option<&str>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, AccessCheckError> {
        let mut filter = Filter::new();
        filter.insert("user_id".into(), json!(user_id.to_string()));
        filter.insert("kind".into(), json!(kind.as_str()));
        if let Some(resource_id) = resource_id {
            filter.insert("resource_id".into(), json!(resource_id));
        }
        let grants = self
            .dao
            .find_all(&filter)
            .await
            .map_err(|e| AccessCheckError::with_source("grant store failed", e))?;
        let now = self.clock.now();
        let mut latest = BTreeMap::new();
        for grant in grants.into_iter().filter(|g| g.is_valid_at(now)) {
            let until = latest.entry(grant.resource_id).or_insert(grant.valid_until);
            *until = (*until).max(grant.valid_until);
        }
        Ok(latest)
    }
}

#[async_trait]
impl AccessCheck for GrantStore {
    async fn check_download_access(
        &self,
        user_id: Uuid,
        dataset_id: &str,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        let latest = self
            .valid_grants(user_id, GrantKind::Download, Some(dataset_id))
            .await?;
        Ok(latest.get(dataset_id).copied())
    }

    async fn list_download_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, AccessCheckError> {
        let latest = self
            .valid_grants(user_id, GrantKind::Download, None)
            .await?;
        Ok(latest.into_iter().collect())
    }

    async fn check_upload_access(
        &self,
        user_id: Uuid,
        box_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        let key = box_id.to_string();
        let latest = self
            .valid_grants(user_id, GrantKind::Upload, Some(&key))
            .await?;
        Ok(latest.get(&key).copied())
    }

    async fn list_upload_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, AccessCheckError> {
        let latest = self.valid_grants(user_id, GrantKind::Upload, None).await?;
        latest
            .into_iter()
            .map(|(id, until)| {
                Uuid::parse_str(&id)
                    .map(|id| (id, until))
                    .map_err(|e| AccessCheckError::with_source("stored box id is not a UUID", e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ManualClock, MemoryDocumentDao, dao};
    use chrono::{TimeDelta, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn store() -> (GrantStore, Arc<ManualClock>, Arc<MemoryDocumentDao>) {
        let clock = Arc::new(ManualClock::new(t0()));
        let (inner, typed) = dao::<Grant>("grants");
        (GrantStore::new(typed, clock.clone()), clock, inner)
    }

    #[tokio::test]
    async fn check_uses_only_valid_grants_and_the_latest_expiry() {
        let (store, clock, _) = store();
        let user = Uuid::new_v4();
        let day = TimeDelta::days(1);
        store
            .add(user, GrantKind::Download, "DS1", t0() - day, t0() + day)
            .await
            .unwrap();
        store
            .add(user, GrantKind::Download, "DS1", t0() - day, t0() + day * 5)
            .await
            .unwrap();
        // Not yet valid, and already expired: both ignored.
        store
            .add(user, GrantKind::Download, "DS1", t0() + day, t0() + day * 9)
            .await
            .unwrap();
        store
            .add(user, GrantKind::Download, "DS2", t0() - day * 3, t0())
            .await
            .unwrap();
        assert_eq!(
            store.check_download_access(user, "DS1").await.unwrap(),
            Some(t0() + day * 5)
        );
        assert_eq!(
            store.check_download_access(user, "DS2").await.unwrap(),
            None
        );
        assert_eq!(
            store
                .check_download_access(Uuid::new_v4(), "DS1")
                .await
                .unwrap(),
            None
        );
        // An upload grant is not a download grant.
        let b = Uuid::new_v4();
        store
            .add(user, GrantKind::Upload, &b.to_string(), t0(), t0() + day)
            .await
            .unwrap();
        assert_eq!(
            store
                .check_download_access(user, &b.to_string())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.check_upload_access(user, b).await.unwrap(),
            Some(t0() + day)
        );
        clock.set(t0() + day * 2);
        assert_eq!(
            store.check_download_access(user, "DS1").await.unwrap(),
            Some(t0() + day * 9),
            "the later grant counts once it starts"
        );
        assert_eq!(store.check_upload_access(user, b).await.unwrap(), None);
    }

    #[tokio::test]
    async fn lists_are_sorted_by_resource_and_typed() {
        let (store, _, _) = store();
        let user = Uuid::new_v4();
        let until = t0() + TimeDelta::days(1);
        for ds in ["DS3", "DS1", "DS2"] {
            store
                .add(user, GrantKind::Download, ds, t0(), until)
                .await
                .unwrap();
        }
        let boxes = [Uuid::new_v4(), Uuid::new_v4()];
        for b in boxes {
            store
                .add(
                    user,
                    GrantKind::Upload,
                    &b.to_string().to_uppercase(),
                    t0(),
                    until,
                )
                .await
                .unwrap();
        }
        let listed = store.list_download_access(user).await.unwrap();
        assert_eq!(
            listed.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
            ["DS1", "DS2", "DS3"]
        );
        let mut want = boxes.to_vec();
        want.sort_by_key(|b| b.to_string());
        let listed = store.list_upload_access(user).await.unwrap();
        assert_eq!(listed.iter().map(|(b, _)| *b).collect::<Vec<_>>(), want);
        assert!(listed.iter().all(|(_, u)| *u == until));
        assert!(
            store
                .list_upload_access(Uuid::new_v4())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn add_validates_and_revoke_removes() {
        let (store, _, _) = store();
        let user = Uuid::new_v4();
        let until = t0() + TimeDelta::days(1);
        assert!(matches!(
            store
                .add(user, GrantKind::Download, "DS1", until, t0())
                .await,
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            store.add(user, GrantKind::Download, "", t0(), until).await,
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            store.add(user, GrantKind::Upload, "box", t0(), until).await,
            Err(Error::Validation(_))
        ));
        let g = store
            .add(user, GrantKind::Download, "DS1", t0(), until)
            .await
            .unwrap();
        assert_eq!(
            store.list(Some(user)).await.unwrap(),
            std::slice::from_ref(&g)
        );
        assert!(store.list(Some(Uuid::new_v4())).await.unwrap().is_empty());
        assert!(store.revoke(g.id).await.unwrap());
        assert!(!store.revoke(g.id).await.unwrap());
        assert_eq!(
            store.check_download_access(user, "DS1").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn storage_failures_are_access_check_errors() {
        let (store, _, inner) = store();
        inner.fail(true);
        assert!(
            store
                .check_download_access(Uuid::new_v4(), "DS1")
                .await
                .is_err()
        );
        assert!(store.list_upload_access(Uuid::new_v4()).await.is_err());
    }
}
