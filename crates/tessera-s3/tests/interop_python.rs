//! A real S3 client (boto3/botocore, `scripts/interop/s3_interop.py`) against the S3
//! provider: it sends the provider's presigned URLs with its own HTTP stack, reads what they
//! uploaded (content type and ETag as bound), and writes objects the provider then serves.
//!
//! Needs the S3 servers (`scripts/test-infra up s3 s3s`) and the interop venv
//! (`TESSERA_PYTHON`); each missing piece skips, or fails under the matching
//! `TESSERA_REQUIRE_*=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tessera_kit::objects::{ObjectKey, ObjectStore};
use tessera_kit::testsuite::{ObjectSuiteOptions, md5_of, presign_interop_suite};
use tessera_s3::{S3Config, S3ObjectStore};
use tessera_test_support::infra;
use tessera_test_support::interop::{Oracle, botocore_send};

struct Server {
    store: S3ObjectStore,
    config: S3Config,
    options: ObjectSuiteOptions,
}

fn server(url_var: &str) -> Option<Server> {
    let url = infra::server(url_var)?;
    let s3s = url_var == infra::S3S_URL;
    let config = S3Config {
        s3_endpoint_url: url,
        s3_bucket: std::env::var(infra::S3_BUCKET).unwrap_or_else(|_| "tessera-test".into()),
        s3_access_key_id: if s3s {
            std::env::var(infra::S3S_ACCESS_KEY).unwrap()
        } else {
            "moto".into()
        },
        s3_secret_access_key: if s3s {
            std::env::var(infra::S3S_SECRET_KEY).unwrap().into()
        } else {
            "moto".into()
        },
        ..S3Config::default()
    };
    let options = ObjectSuiteOptions {
        verifies_signatures: s3s,
        checks_body_md5: s3s,
        discards_refused_body: false,
    };
    Some(Server {
        store: S3ObjectStore::new(&config).unwrap(),
        config,
        options,
    })
}

fn oracle(test: &str) -> Option<Oracle> {
    let oracle = Oracle::new("s3_interop.py");
    oracle.available(test).then_some(oracle)
}

fn credentials(config: &S3Config, key: &str) -> serde_json::Value {
    json!({
        "endpoint": config.s3_endpoint_url, "region": config.s3_region,
        "access_key": config.s3_access_key_id,
        "secret_key": config.s3_secret_access_key.expose(),
        "bucket": config.s3_bucket, "key": key,
    })
}

async fn boto3_reads_and_writes(url_var: &str, test: &str) {
    let Some(server) = server(url_var) else {
        return;
    };
    let Some(oracle) = oracle(test) else { return };
    let send = |request: &tessera_kit::objects::PresignedRequest, body: &[u8]| {
        botocore_send(
            &oracle,
            request.method,
            &request.url,
            &request.headers,
            body,
        )
    };
    presign_interop_suite(&server.store, server.options, &send).await;

    // An upload through a presigned URL, as boto3 sees it: the bound type, the MD5 as ETag.
    let key = ObjectKey::parse(format!("interop-{}/bound", uuid_like())).unwrap();
    let data = b"bound headers reach the server".to_vec();
    let request = server
        .store
        .presign_put(
            &key,
            &tessera_kit::objects::PresignPut {
                md5: md5_of(&data),
                content_type: "text/x-tessera".to_owned(),
                length: data.len() as u64,
                expires_in: Duration::from_secs(60),
            },
        )
        .await
        .unwrap();
    assert_eq!(send(&request, &data).0, 200);
    let head = oracle.run_with_request("head", &credentials(&server.config, key.as_str()));
    assert_eq!(head["size"], data.len());
    assert_eq!(head["content_type"], "text/x-tessera");
    assert_eq!(head["etag"], md5_of(&data).to_hex());

    // boto3 writes; the provider's presigned GET and its own get read it back.
    let other = ObjectKey::parse(format!("interop-{}/from-boto3", uuid_like())).unwrap();
    let mut request = credentials(&server.config, other.as_str());
    let b64 = base64::engine::general_purpose::STANDARD;
    request["body_b64"] = b64.encode(b"written by boto3").into();
    request["content_type"] = "text/plain".into();
    let put = oracle.run_with_request("put", &request);
    assert_eq!(put["etag"], md5_of(b"written by boto3").to_hex());
    let get = server
        .store
        .presign_get(&other, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(send(&get, &[]), (200, b"written by boto3".to_vec()));
    assert_eq!(server.store.head(&other).await.unwrap().size, 16);
    for k in [&key, &other] {
        server.store.delete(k).await.unwrap();
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_through_presigned_urls_on_s3s_fs() {
    boto3_reads_and_writes(infra::S3S_URL, "boto3_through_presigned_urls_on_s3s_fs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_through_presigned_urls_on_moto() {
    boto3_reads_and_writes(infra::S3_URL, "boto3_through_presigned_urls_on_moto").await;
}
