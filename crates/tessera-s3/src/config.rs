//! The configuration fragment services flatten into their own config.

use serde::{Deserialize, Serialize};
use tessera_config::Secret;

/// The region when none is configured (what MinIO, Ceph and moto expect by default).
pub const DEFAULT_REGION: &str = "us-east-1";

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

/// Where the objects live (`#[serde(flatten)]` into a service config; the `s3_*` keys of
/// GHGA hexkit's `S3Config`, plus the bucket, region and addressing style).
///
/// Services treat an empty `s3_bucket` as "use the local file-system store".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Config {
    /// The S3 endpoint without the bucket, e.g. `https://s3.eu-central-1.amazonaws.com` or
    /// `http://minio:9000`; empty for AWS in `s3_region`.
    #[serde(default)]
    pub s3_endpoint_url: String,
    /// The SigV4 signing region.
    #[serde(default = "default_region")]
    pub s3_region: String,
    /// The bucket that holds the objects (it must exist).
    #[serde(default)]
    pub s3_bucket: String,
    /// The access key id.
    #[serde(default)]
    pub s3_access_key_id: String,
    /// The secret access key.
    #[serde(default)]
    pub s3_secret_access_key: Secret,
    /// A session token for temporary credentials; empty for none.
    #[serde(default)]
    pub s3_session_token: Secret,
    /// Address the bucket as `https://<bucket>.<endpoint host>/` (AWS's default) instead of
    /// `https://<endpoint host>/<bucket>/` (path style: MinIO, Ceph, moto, s3s-fs).
    #[serde(default)]
    pub s3_virtual_hosted_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            s3_endpoint_url: String::new(),
            s3_region: default_region(),
            s3_bucket: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::default(),
            s3_session_token: Secret::default(),
            s3_virtual_hosted_style: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_keys_and_hides_the_secrets() {
        let config: S3Config = serde_json::from_str(
            r#"{"s3_endpoint_url": "http://h:9000", "s3_bucket": "b", "s3_access_key_id": "AK",
                "s3_secret_access_key": "very-secret", "s3_session_token": "tok-secret"}"#,
        )
        .unwrap();
        assert_eq!(config.s3_region, "us-east-1");
        assert_eq!(config.s3_secret_access_key.expose(), "very-secret");
        assert!(!config.s3_virtual_hosted_style);
        let shown = format!("{config:?}") + &serde_json::to_string(&config).unwrap();
        assert!(
            !shown.contains("very-secret") && !shown.contains("tok-secret"),
            "{shown}"
        );
    }

    #[test]
    fn every_key_is_listed_and_all_are_optional() {
        let defaults = serde_json::to_value(S3Config::default()).unwrap();
        assert_eq!(
            defaults,
            serde_json::json!({
                "s3_endpoint_url": "", "s3_region": "us-east-1", "s3_bucket": "",
                "s3_access_key_id": "", "s3_secret_access_key": "", "s3_session_token": "",
                "s3_virtual_hosted_style": false
            })
        );
        assert_eq!(
            serde_json::from_str::<S3Config>("{}").unwrap(),
            S3Config::default()
        );
        assert!(serde_json::from_str::<S3Config>(r#"{"s3_virtual_hosted_style": "yes"}"#).is_err());
    }
}
