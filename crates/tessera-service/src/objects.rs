//! Object storage from the flattened config fragments: S3 (`tessera-s3`) when `s3_bucket`
//! is set, else the local directory of `tessera-embedded`, whose presigned URLs a service
//! serves itself by mounting [`Objects::local`]'s scope
//! (`tessera_embedded::objects_http::objects_scope`) at `objects_public_url`.

use std::fmt;
use std::sync::Arc;

use tessera_embedded::{LocalObjectStore, LocalObjectsConfig};
use tessera_kit::objects::ObjectStore;
use tessera_s3::{S3Config, S3ObjectStore};

use crate::error::{Error, Result};

/// Which object store a process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectsKind {
    /// S3 at `s3_endpoint_url`, bucket `s3_bucket`.
    S3,
    /// The local directory `objects_root`.
    Local,
}

/// The opened object store.
#[derive(Clone)]
pub struct Objects {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The local store, whose presign scope the service must mount; `None` on S3.
    pub local: Option<LocalObjectStore>,
    /// Which one it is.
    pub kind: ObjectsKind,
}

impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Whether objects go to S3 (`s3_bucket` set).
pub fn uses_s3(s3: &S3Config) -> bool {
    !s3.s3_bucket.trim().is_empty()
}

/// Opens the object store: S3 when `s3_bucket` is set, else the local directory. A bad
/// setting names its key.
pub async fn open_objects(
    prefix: &str,
    s3: &S3Config,
    local: &LocalObjectsConfig,
) -> Result<Objects> {
    if uses_s3(s3) {
        let store = S3ObjectStore::new(s3).map_err(|e| {
            let message = e.to_string();
            let key = [
                "s3_endpoint_url",
                "s3_access_key_id",
                "s3_secret_access_key",
                "s3_region",
                "s3_bucket",
            ]
            .into_iter()
            .find(|key| message.contains(key))
            .unwrap_or("s3_bucket");
            Error::config(prefix, key, message)
        })?;
        return Ok(Objects {
            store: Arc::new(store),
            local: None,
            kind: ObjectsKind::S3,
        });
    }
    let store = LocalObjectStore::from_config(local)
        .await
        .map_err(|e| Error::config(prefix, "objects_root", crate::lifecycle::chain(&e)))?;
    Ok(Objects {
        store: Arc::new(store.clone()),
        local: Some(store),
        kind: ObjectsKind::Local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_without_a_bucket_and_s3_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalObjectsConfig {
            objects_root: dir.path().join("objects"),
            ..LocalObjectsConfig::default()
        };
        let objects = open_objects("svc", &S3Config::default(), &local)
            .await
            .unwrap();
        assert_eq!(objects.kind, ObjectsKind::Local);
        assert!(objects.local.is_some());

        let s3 = S3Config {
            s3_bucket: "data".into(),
            ..S3Config::default()
        };
        match open_objects("svc", &s3, &local).await {
            Err(Error::Config { key, env, .. }) => {
                assert_eq!(key, "s3_access_key_id");
                assert_eq!(env, "SVC_S3_ACCESS_KEY_ID");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
