//! A real S3 client (botocore's HTTP stack, `scripts/interop/s3_interop.py`) uploads a data
//! package's file with the URL, query and headers `/datastore/authorize` answers, against
//! moto and against s3s-fs (which checks SigV4 and the body's MD5): the right upload lands
//! with its type and MD5, a wrong MD5 or type is refused by s3s-fs.
//!
//! Needs `scripts/test-infra up s3 s3s` and the interop venv (`TESSERA_PYTHON`); a missing
//! piece skips, or fails under `TESSERA_REQUIRE_INFRA=1` / `TESSERA_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use conductor::{ConductorConfig, Overrides, prepare};
use md5::Digest as _;
use serde_json::{Value, json};
use tessera_service::Parts;
use tessera_test_support::infra;
use tessera_test_support::interop::{Oracle, botocore_send};

fn md5_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

struct Target {
    url: reqwest::Url,
    access_key: String,
    secret_key: String,
    checks_signatures: bool,
}

fn target(var: &str) -> Option<Target> {
    let url = infra::server(var)?;
    let s3s = var == infra::S3S_URL;
    Some(Target {
        url: reqwest::Url::parse(&url).unwrap(),
        access_key: if s3s {
            std::env::var(infra::S3S_ACCESS_KEY).unwrap()
        } else {
            "moto".into()
        },
        secret_key: if s3s {
            std::env::var(infra::S3S_SECRET_KEY).unwrap()
        } else {
            "moto".into()
        },
        checks_signatures: s3s,
    })
}

fn bucket() -> String {
    std::env::var(infra::S3_BUCKET).unwrap_or_else(|_| "tessera-test".into())
}

async fn upload_through_the_service(var: &str, test: &str) {
    let Some(target) = target(var) else { return };
    let oracle = Oracle::new("s3_interop.py");
    if !oracle.available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The original's variables, as an operator sets them.
    let env: Vec<(String, String)> = [
        ("OS_BASE_URL", "http://127.0.0.1:9".to_owned()),
        (
            "OS_PRIVATE_KEY",
            conductor::keys::generate_private_key().unwrap(),
        ),
        ("OS_ACCESS_KEY_ID", target.access_key.clone()),
        ("OS_SECRET_ACCESS_KEY", target.secret_key.clone()),
        ("OS_S3_HOSTNAME", target.url.host_str().unwrap().to_owned()),
        ("OS_S3_PORT", target.url.port().unwrap().to_string()),
        ("OS_STORAGE_BUCKET_NAME", bucket()),
        ("USE_FAKE_S3", "1".to_owned()),
        ("ACCESS_KEY_EXPIRES_IN", "600".to_owned()),
        ("OS_PORT", "0".to_owned()),
        (
            "OS_EMBEDDED_DB_PATH",
            dir.path().join("db.sqlite").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config: ConductorConfig =
        tessera_service::load_config_from::<conductor::Core>(env).unwrap();
    let core = prepare(config, Overrides::default()).await.unwrap();
    let identity = core.identity.clone();
    let running = tessera_service::start(core, Parts::ALL).await.unwrap();
    let url = running.url().unwrap();
    let email = format!("uploader-{}@example.test", std::process::id());
    let (user, user_token) = identity
        .sign_in(&tessera_conductor::SignedIn {
            provider: "test".into(),
            subject: "s".into(),
            email,
            name: None,
            picture: None,
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let grant: Value = http
        .get(format!(
            "{url}/user/authorize?jwt={user_token}&service=os.datastore"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["token"].as_str().unwrap();
    let data = b"year,amount\n2026,42\n".to_vec();
    let name = format!("budget-{}", chrono::Utc::now().timestamp_micros());
    let body = json!({
        "metadata": {"owner": user.idhash, "name": name},
        "filedata": {"data/budget.csv": {
            "length": data.len(), "md5": md5_b64(&data), "name": "budget.csv", "type": "text/csv"
        }},
    });
    let r = http
        .post(format!("{url}/datastore/authorize"))
        .header("Auth-Token", token)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let file = &answer["filedata"]["data/budget.csv"];
    let key = format!("{}/{name}/data/budget.csv", user.idhash);
    assert_eq!(
        file["upload_url"],
        format!(
            "{}{}/{key}",
            target.url.as_str().trim_end_matches('/'),
            format_args!("/{}", bucket())
        )
    );
    assert!(
        file["upload_query"]["X-Amz-Signature"][0].is_string(),
        "{file}"
    );
    // The client rebuilds the URL from upload_url and upload_query, as os-packager does.
    let pairs: Vec<(String, String)> = file["upload_query"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(k, vs)| {
            vs.as_array()
                .unwrap()
                .iter()
                .map(move |v| (k.clone(), v.as_str().unwrap().to_owned()))
        })
        .collect();
    let put_url =
        reqwest::Url::parse_with_params(file["upload_url"].as_str().unwrap(), &pairs).unwrap();
    let headers = |md5: String, content_type: &str| {
        vec![
            ("Content-MD5".to_owned(), md5),
            ("Content-Type".to_owned(), content_type.to_owned()),
        ]
    };
    if target.checks_signatures {
        let (status, _) = botocore_send(
            &oracle,
            "PUT",
            put_url.as_str(),
            &headers(md5_b64(&data), "text/plain"),
            &data,
        );
        assert_eq!(status, 403, "a wrong type is refused");
        let other = b"year,amount\n2026,43\n";
        let (status, _) = botocore_send(
            &oracle,
            "PUT",
            put_url.as_str(),
            &headers(md5_b64(other), "text/csv"),
            other,
        );
        assert_eq!(status, 403, "a wrong MD5 is refused");
        let (status, _) = botocore_send(
            &oracle,
            "PUT",
            put_url.as_str(),
            &headers(md5_b64(&data), "text/csv"),
            other,
        );
        assert!(
            (400..500).contains(&status),
            "a body that does not match its MD5 is refused: {status}"
        );
    }
    let (status, reply) = botocore_send(
        &oracle,
        "PUT",
        put_url.as_str(),
        &headers(md5_b64(&data), "text/csv"),
        &data,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let head = oracle.run_with_request(
        "head",
        &json!({
            "endpoint": target.url.as_str().trim_end_matches('/'), "region": "us-east-1",
            "access_key": target.access_key, "secret_key": target.secret_key,
            "bucket": bucket(), "key": key,
        }),
    );
    assert_eq!(head["size"], data.len());
    assert_eq!(head["content_type"], "text/csv");
    let hex: String = md5::Md5::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(head["etag"], hex);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn boto3_uploads_with_the_authorized_url_on_moto() {
    upload_through_the_service(
        infra::S3_URL,
        "boto3_uploads_with_the_authorized_url_on_moto",
    )
    .await;
}

#[tokio::test]
async fn boto3_uploads_with_the_authorized_url_on_s3s_and_wrong_ones_are_refused() {
    upload_through_the_service(
        infra::S3S_URL,
        "boto3_uploads_with_the_authorized_url_on_s3s_and_wrong_ones_are_refused",
    )
    .await;
}

/// The embedded default: botocore sends the upload to the service's own presigned URL (the
/// local object store's scope); a wrong MD5, a wrong type or a body that does not match its
/// MD5 is refused and leaves nothing behind.
#[tokio::test]
async fn boto3_uploads_to_the_services_own_urls_and_wrong_ones_are_refused() {
    let oracle = Oracle::new("s3_interop.py");
    if !oracle.available("boto3_uploads_to_the_services_own_urls_and_wrong_ones_are_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut config = ConductorConfig {
        base_url: base.clone(),
        private_key: conductor::keys::generate_private_key().unwrap().into(),
        ..ConductorConfig::default()
    };
    config.http.port = port;
    config.embedded.embedded_db_path = dir.path().join("db.sqlite");
    config.objects.objects_root = dir.path().join("objects");
    config.objects.objects_public_url = format!("{base}/objects");
    let core = prepare(config, Overrides::default()).await.unwrap();
    let identity = core.identity.clone();
    let running = tessera_service::start(core, Parts::ALL).await.unwrap();
    let (user, _) = identity
        .sign_in(&tessera_conductor::SignedIn {
            provider: "test".into(),
            subject: "s".into(),
            email: "local@example.test".into(),
            name: None,
            picture: None,
        })
        .await
        .unwrap();
    let token = identity
        .authorize(&user.idhash, "os.datastore")
        .await
        .unwrap()
        .token;
    let data = b"id,value\n1,2\n".to_vec();
    let body = json!({
        "metadata": {"owner": user.idhash, "name": "local"},
        "filedata": {"a.csv": {"length": data.len(), "md5": md5_b64(&data), "name": "a.csv", "type": "text/csv"}},
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/datastore/authorize"))
        .header("Auth-Token", token)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = &answer["filedata"]["a.csv"];
    let pairs: Vec<(String, String)> = file["upload_query"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v[0].as_str().unwrap().to_owned()))
        .collect();
    let put_url =
        reqwest::Url::parse_with_params(file["upload_url"].as_str().unwrap(), &pairs).unwrap();
    let send = |md5: String, content_type: &str, body: &[u8]| {
        let headers = vec![
            ("Content-MD5".to_owned(), md5),
            ("Content-Type".to_owned(), content_type.to_owned()),
        ];
        botocore_send(&oracle, "PUT", put_url.as_str(), &headers, body).0
    };
    let other = b"id,value\n1,3\n";
    assert_eq!(send(md5_b64(&data), "text/plain", &data), 403, "wrong type");
    assert_eq!(send(md5_b64(other), "text/csv", other), 403, "wrong MD5");
    assert_eq!(
        send(md5_b64(&data), "text/csv", other),
        400,
        "body does not match its MD5"
    );
    let stored = dir
        .path()
        .join("objects/data")
        .join(&user.idhash)
        .join("local/a.csv");
    assert!(!stored.exists(), "nothing of a refused upload is kept");
    assert_eq!(send(md5_b64(&data), "text/csv", &data), 200);
    assert_eq!(std::fs::read(&stored).unwrap(), data);
    running.stop().await.unwrap();
}
