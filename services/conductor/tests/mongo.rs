//! The service on MongoDB (`TESSERA_TEST_MONGO_URL`, e.g. from `scripts/test-infra up
//! mongo`): users, usernames and permission rows through the other storage provider.
//! Without the variable the test prints `SKIPPED: …` and passes, unless
//! `TESSERA_REQUIRE_INFRA=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use conductor::{ConductorConfig, Overrides, prepare};
use serde_json::{Value, json};
use tessera_conductor::{Error, SignedIn, idhash};
use tessera_test_support::infra;

#[tokio::test]
async fn users_and_permissions_live_in_mongodb() {
    let Some(url) = infra::server(infra::MONGO_URL) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConductorConfig {
        base_url: "http://127.0.0.1:9".into(),
        private_key: conductor::keys::generate_private_key().unwrap().into(),
        ..ConductorConfig::default()
    };
    config.embedded.embedded_db_path = dir.path().join("db.sqlite");
    config.objects.objects_root = dir.path().join("objects");
    config.mongo.mongo_dsn = url.into();
    config.mongo.db_name = format!(
        "conductor-test-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    config.mongo.mongo_timeout = Some(10);
    let core = prepare(config.clone(), Overrides::default()).await.unwrap();
    assert!(!dir.path().join("db.sqlite").exists(), "nothing embedded");
    let identity = &core.identity;
    let sign_in = |email: &str| SignedIn {
        provider: "test".into(),
        subject: email.into(),
        email: email.into(),
        name: None,
        picture: None,
    };
    let (alice, alice_token) = identity
        .sign_in(&sign_in("alice@example.test"))
        .await
        .unwrap();
    let (_, bob_token) = identity
        .sign_in(&sign_in("bob@example.test"))
        .await
        .unwrap();
    assert_eq!(alice.idhash, idhash("alice@example.test"));
    // Signing in again keeps the user.
    let (again, _) = identity
        .sign_in(&sign_in("alice@example.test"))
        .await
        .unwrap();
    assert_eq!(again.join_date, alice.join_date);
    identity
        .update_username(&alice_token, "alice")
        .await
        .unwrap();
    assert!(matches!(
        identity.update_username(&bob_token, "alice").await,
        Err(Error::UsernameTaken)
    ));
    identity.update_username(&bob_token, "bob").await.unwrap();
    let profile = identity.check(&alice_token).await.unwrap().unwrap();
    assert_eq!(profile.username.as_deref(), Some("alice"));
    // The seeded default row, a user's overlay, revocation.
    let grant = identity
        .authorize(&alice.idhash, "os.datastore")
        .await
        .unwrap();
    assert_eq!(
        Value::Object(grant.permissions),
        json!({"datapackage-upload": true})
    );
    let mut extra = serde_json::Map::new();
    extra.insert("datapackage-upload".into(), json!(false));
    identity
        .grant(&alice.idhash, "os.datastore", extra)
        .await
        .unwrap();
    let grant = identity
        .authorize(&alice.idhash, "os.datastore")
        .await
        .unwrap();
    assert_eq!(
        Value::Object(grant.permissions),
        json!({"datapackage-upload": false})
    );
    assert_eq!(
        identity
            .list_permissions(None, Some("os.datastore"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        identity
            .revoke(&alice.idhash, "os.datastore", &[])
            .await
            .unwrap()
            .is_none()
    );
    // A second process on the same database sees the same data and does not reseed twice.
    let core2 = prepare(config, Overrides::default()).await.unwrap();
    assert_eq!(
        core2
            .identity
            .list_permissions(None, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(core2.identity.check(&alice_token).await.unwrap().is_some());
}
