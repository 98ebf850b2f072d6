//! The service on MongoDB (`TESSERA_TEST_MONGO_URL`, e.g. from `scripts/test-infra up
//! mongo`): users and runs through the other storage provider, the admin bootstrapped once,
//! one success for concurrent creations of a name. Without the variable the test prints
//! `SKIPPED: …` and passes, unless `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::json;
use tessera_test_support::infra;

#[tokio::test]
async fn users_and_runs_live_in_mongodb() {
    let Some(url) = infra::server(infra::MONGO_URL) else {
        return;
    };
    let db = format!("ogdc-test-{}", common::free_port());
    let mongo = move |config: &mut ogdc::OgdcConfig, _: &std::path::Path| {
        config.mongo.mongo_dsn = url.as_str().into();
        config.mongo.db_name = db.clone();
        config.mongo.mongo_timeout = Some(10);
    };
    let app = common::spawn(mongo.clone()).await;
    assert!(
        !app.dir.path().join("data/store/ogdc.sqlite").exists(),
        "nothing embedded"
    );
    let admin = app.admin().await;
    let results = futures::future::join_all((0..6).map(|_| app.create_user("dora", "pw"))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );

    let input = common::input_server("m.txt", "mongo").await;
    app.recipe(
        "m",
        &common::meta("on mongo", &input, "temporary"),
        "cp /input_dir/m.txt /output_dir/\n",
    );
    let dora = app.token("dora", "pw").await;
    let (status, body) = app.submit(&dora, "m").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&dora, &name).await, "Succeeded");
    let (_, runs) = app.get("/runs", &admin).await;
    assert_eq!(runs[0]["owner"], json!("dora"));
    app.running.stop().await.unwrap();

    // A second start on the same database keeps the users (admin not re-synced).
    let app = common::spawn(move |config, dir| {
        mongo(config, dir);
        config.admin_password = "changed".into();
    })
    .await;
    let response = app
        .client
        .post(format!("{}/token", app.url))
        .form(&[("username", "admin"), ("password", "changed")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the admin password is not re-synced"
    );
    app.token("admin", common::ADMIN_PASSWORD).await;
    app.token("dora", "pw").await;
    app.running.stop().await.unwrap();
}
