//! The service on MongoDB (`TESSERA_TEST_MONGO_URL`, e.g. from `scripts/test-infra up
//! mongo`): users, tokens, workspaces and shares go through the other store provider and
//! survive a restart. Without the variable the test prints `SKIPPED: …` and passes, unless
//! `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::App;
use serde_json::json;
use tessera_test_support::infra;
use tessera_workspaces::WorkspaceStatus;

#[tokio::test]
async fn records_live_in_mongodb() {
    let Some(url) = infra::server(infra::MONGO_URL) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.server.mongo.mongo_dsn = url.into();
    config.server.mongo.db_name = format!("uws-test-{}", std::process::id());
    config.server.mongo.mongo_timeout = Some(10);
    let app = App::start(
        tempfile::tempdir().unwrap(),
        config.clone(),
        uws::Overrides::default(),
    )
    .await;
    assert!(!dir.path().join("uws.sqlite").exists(), "nothing embedded");
    let alice = app.login("alice", "Alice", "A").await;
    let bob = app.login("bob", "Bob", "B").await;
    let id = app
        .create(&alice, &json!({"name": "w", "description": "d", "workspace_details": {"files": [{"name": "f.txt", "content": "abc"}]}}))
        .await;
    app.wait_for(id, |w| w.is_some_and(|w| w.disk_space == 3))
        .await;
    let bob_id = app.user_id(&alice, "bob").await;
    let (status, body) = app
        .post_json(
            "/shared_workspaces/",
            Some(&alice),
            &json!({"original_workspace_id": id, "shared_user_ids": [bob_id]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let copy = body["data"]["shared_workspaces"][0]["shared_workspace_id"]["id"]
        .as_i64()
        .unwrap();
    app.wait_for(copy, |w| {
        w.is_some_and(|w| w.status == WorkspaceStatus::Idle)
    })
    .await;
    app.stop().await;

    let again = App::start(
        tempfile::tempdir().unwrap(),
        config,
        uws::Overrides::default(),
    )
    .await;
    let (status, body) = again.get(&format!("/workspaces/{id}/"), Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["workspaces"][0]["disk_space"], 3);
    let (_, body) = again
        .get("/shared_workspaces/?is_accepted=false", Some(&bob))
        .await;
    assert_eq!(
        body["data"]["shared_workspaces"][0]["shared_workspace_id"]["id"],
        copy
    );
    let (status, _) = again
        .put_json(
            &format!("/shared_workspaces/{copy}/accept/"),
            Some(&bob),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    again.stop().await;
}
