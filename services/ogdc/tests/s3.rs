//! Outputs in S3 (`TESSERA_TEST_S3_URL`, moto from `scripts/test-infra up s3`): the local
//! executor zips a `temporary` output into the bucket, and `/output` hands out a presigned
//! URL valid 2 h with `INTERNAL_S3_ENDPOINT_URL` replaced by `PUBLIC_S3_ENDPOINT_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tessera_test_support::infra;

#[tokio::test]
async fn temporary_outputs_go_to_s3_and_urls_name_the_public_host() {
    let Some(url) = infra::server(infra::S3_URL) else {
        return;
    };
    let bucket = std::env::var(infra::S3_BUCKET).unwrap_or_else(|_| "tessera-test".into());
    // The same server under another name, as users would reach it.
    let public = url.replace("127.0.0.1", "localhost");
    let (internal, public_for_config) = (url.clone(), public.clone());
    let app = common::spawn(move |config, _| {
        config.internal_s3_endpoint_url = internal;
        config.public_s3_endpoint_url = public_for_config;
        config.s3_bucket = bucket;
        config.s3_secret_key_id = "testing".into();
        config.s3_secret_key_key = "testing".into();
    })
    .await;
    let input = common::input_server("s.txt", "to s3").await;
    app.recipe(
        "s",
        &common::meta("to s3", &input, "temporary"),
        "cp /input_dir/s.txt /output_dir/\n",
    );
    let admin = app.admin().await;
    let (_, body) = app.submit(&admin, "s").await;
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    let (status, body) = app.get(&format!("/output/{name}"), &admin).await;
    assert_eq!(status, 200, "{body}");
    let data_url = body["data_url"].as_str().unwrap();
    assert!(data_url.starts_with(&format!("{public}/")), "{data_url}");
    assert!(
        data_url.contains(&format!("/{name}/to-s3.zip?")),
        "{data_url}"
    );
    assert!(data_url.contains("X-Amz-Expires=7200"), "{data_url}");
    assert_eq!(app.zip_files(&admin, &name).await["s.txt"], "to s3");
    app.running.stop().await.unwrap();
}
