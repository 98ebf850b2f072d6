//! The event translator through the real subscriber on the embedded bus (wps.md §4).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use serde_json::{Value, json};
use tessera_embedded::EmbeddedStore;
use tessera_kit::dao;
use tessera_kit::events::{Event, EventPublisher, EventType, Topic};
use tessera_kit::subscriber::{Outcome, Subscriber};
use tessera_work_orders::{Daos, WorkPackageType};
use uuid::Uuid;
use wps::{Core, Overrides, WpsConfig, prepare_core};

struct Fixture {
    core: Core,
    store: EmbeddedStore,
    daos: Daos,
    _dir: tempfile::TempDir,
}

async fn fixture(adjust: impl FnOnce(&mut WpsConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys = common::Keys::generate();
    let mut config = common::config(&keys, &dir.path().join("wps.sqlite"));
    adjust(&mut config);
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let daos = Daos::open(&store, &config.embedded_collections())
        .await
        .unwrap();
    let core = prepare_core(
        config,
        Overrides {
            store: Some(store.clone()),
            ..Overrides::default()
        },
    )
    .await
    .unwrap();
    Fixture {
        core,
        store,
        daos,
        _dir: dir,
    }
}

fn event(topic: &str, event_type: &str, key: &str, payload: Value) -> Event {
    Event::new(
        Topic::try_from(topic).unwrap(),
        EventType::try_from(event_type).unwrap(),
        key,
        payload,
        Uuid::new_v4().to_string(),
    )
}

fn dataset_payload(accession: &str, files: &[(&str, &str)]) -> Value {
    json!({
        "accession": accession, "title": "Title", "stage": "download",
        "description": null, "dac_alias": "DAC", "dac_email": "dac@example.org",
        "files": files.iter().map(|(a, e)| json!({
            "accession": a, "description": "a file", "file_extension": e
        })).collect::<Vec<_>>(),
        "extra": "allowed",
    })
}

/// Waits (boundedly) until the dataset `id` is stored.
async fn wait_for_dataset(daos: &Daos, id: &str) -> bool {
    for _ in 0..250 {
        if daos.datasets.get_by_id(id).await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

impl Fixture {
    async fn publish(&self, event: Event) {
        self.store.publish(event).await.unwrap();
    }

    async fn subscriber(&self) -> Subscriber {
        self.core.subscriber().await.unwrap()
    }
}

fn not_found<T: std::fmt::Debug>(r: dao::Result<T>) -> bool {
    matches!(r, Err(dao::Error::NotFound { .. }))
}

#[tokio::test]
async fn datasets_are_upserted_replaced_and_deleted_idempotently() {
    let f = fixture(|_| {}).await;
    let mut sub = f.subscriber().await;
    let created = event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD1",
        dataset_payload("GHGAD1", &[("GHGAF2", ".csv"), ("GHGAF1", ".json")]),
    );
    // The same event twice, as after a redelivery.
    f.publish(created.clone()).await;
    f.publish(created).await;
    for _ in 0..2 {
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
    }
    let stored = f.daos.datasets.get_by_id("GHGAD1").await.unwrap();
    assert_eq!(stored.stage, WorkPackageType::Download);
    assert_eq!(stored.title, "Title");
    assert_eq!(stored.description, None);
    let files: Vec<(&str, &str)> = stored
        .files
        .iter()
        .map(|f| (f.accession.as_str(), f.extension.as_str()))
        .collect();
    assert_eq!(files, [("GHGAF2", ".csv"), ("GHGAF1", ".json")]);

    // The last write wins.
    f.publish(event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD1",
        dataset_payload("GHGAD1", &[("GHGAF3", ".bam")]),
    ))
    .await;
    assert_eq!(
        sub.run_once().await.unwrap(),
        Outcome::Handled { retries: 0 }
    );
    let stored = f.daos.datasets.get_by_id("GHGAD1").await.unwrap();
    assert_eq!(stored.files.len(), 1);

    // Deleting twice is fine.
    for _ in 0..2 {
        f.publish(event(
            "metadata-datasets",
            "dataset_deleted",
            "GHGAD1",
            json!({"accession": "GHGAD1"}),
        ))
        .await;
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
        assert!(not_found(f.daos.datasets.get_by_id("GHGAD1").await));
    }

    // Other types on the topic are skipped.
    f.publish(event(
        "metadata-datasets",
        "dataset_changed",
        "X",
        json!({}),
    ))
    .await;
    assert!(matches!(
        sub.run_once().await.unwrap(),
        Outcome::Skipped { .. }
    ));
}

#[tokio::test]
async fn upload_boxes_and_accession_maps_follow_the_outbox() {
    let f = fixture(|_| {}).await;
    let mut sub = f.subscriber().await;
    let (box_id, fub_id) = (Uuid::new_v4(), Uuid::new_v4());
    let rdub = json!({
        "id": box_id, "version": 1, "state": "open", "title": "Box", "description": "d",
        "last_changed": "2026-01-01T00:00:00Z", "changed_by": Uuid::new_v4(),
        "file_upload_box_id": fub_id, "file_upload_box_version": 0,
        "file_upload_box_state": "open", "file_count": 0, "size": 0, "storage_alias": "HD01",
    });
    for _ in 0..2 {
        f.publish(event(
            "upload-boxes",
            "upserted",
            &box_id.to_string(),
            rdub.clone(),
        ))
        .await;
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
    }
    let stored = f
        .daos
        .upload_boxes
        .get_by_id(&box_id.to_string())
        .await
        .unwrap();
    assert_eq!(stored.file_upload_box_id, fub_id);
    assert_eq!(stored.title, "Box");
    assert_eq!(stored.description.as_deref(), Some("d"));

    let file_id = Uuid::new_v4();
    f.publish(event(
        "file-accession-mappings",
        "upserted",
        "GHGAF1",
        json!({"accession": "GHGAF1", "file_id": file_id}),
    ))
    .await;
    assert_eq!(
        sub.run_once().await.unwrap(),
        Outcome::Handled { retries: 0 }
    );
    assert_eq!(
        f.daos
            .accession_maps
            .get_by_id("GHGAF1")
            .await
            .unwrap()
            .file_id,
        file_id
    );

    // Deletions go by key; the payload is ignored; missing documents are fine.
    for _ in 0..2 {
        f.publish(event(
            "upload-boxes",
            "deleted",
            &box_id.to_string(),
            json!({}),
        ))
        .await;
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
        f.publish(event(
            "file-accession-mappings",
            "deleted",
            "GHGAF1",
            Value::Null,
        ))
        .await;
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
    }
    assert!(not_found(
        f.daos.upload_boxes.get_by_id(&box_id.to_string()).await
    ));
    assert!(not_found(f.daos.accession_maps.get_by_id("GHGAF1").await));
}

#[tokio::test]
async fn invalid_events_go_to_the_dead_letter_topic_and_later_ones_are_handled() {
    let f = fixture(|c| {
        c.kafka_enable_dlq = true;
        c.kafka_max_retries = 1;
    })
    .await;
    let mut sub = f.subscriber().await;
    let mut bad_dataset = dataset_payload("GHGAD9", &[("GHGAF1", ".json"), ("XYZ1", ".csv")]);
    let mut no_description = dataset_payload("GHGAD8", &[]);
    no_description
        .as_object_mut()
        .unwrap()
        .remove("description");
    bad_dataset["files"][0]["accession"] = json!("GHGAF1");
    let invalid = [
        event(
            "metadata-datasets",
            "dataset_created",
            "GHGAD9",
            bad_dataset,
        ),
        event(
            "metadata-datasets",
            "dataset_created",
            "GHGAD8",
            no_description,
        ),
        event("metadata-datasets", "dataset_deleted", "GHGAD8", json!({})),
        event(
            "upload-boxes",
            "upserted",
            "x",
            json!({"id": "nope", "title": "t"}),
        ),
        event("upload-boxes", "deleted", "not-a-uuid", json!({})),
        event(
            "file-accession-mappings",
            "upserted",
            "GHGAF1",
            json!({"accession": "GHGAF1", "file_id": "c232ab00-9414-11ec-b3c8-9f68deced846"}),
        ),
    ];
    let count = invalid.len();
    for e in invalid {
        f.publish(e).await;
    }
    f.publish(event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD1",
        dataset_payload("GHGAD1", &[("GHGAF1", ".json")]),
    ))
    .await;
    for _ in 0..count {
        match sub.run_once().await.unwrap() {
            Outcome::DeadLettered { error } => assert_eq!(error.class, "ValidationError"),
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }
    assert_eq!(
        sub.run_once().await.unwrap(),
        Outcome::Handled { retries: 0 }
    );
    assert!(f.daos.datasets.get_by_id("GHGAD1").await.is_ok());
    assert!(not_found(f.daos.datasets.get_by_id("GHGAD9").await));

    let dead = f
        .store
        .event_log()
        .tail(&[Topic::try_from("dlq").unwrap()], 1, 100)
        .await
        .unwrap();
    assert_eq!(dead.len(), count);
    let first = dead[0].event.as_ref().unwrap();
    assert_eq!(first.headers["original_topic"], "metadata-datasets");
    assert_eq!(first.headers["service"], "wps");
    assert_eq!(first.headers["exc_class"], "ValidationError");
    assert!(
        first.headers["exc_msg"].contains("XYZ1"),
        "{:?}",
        first.headers
    );
    assert_eq!(first.key, "GHGAD9");
}

#[tokio::test]
async fn without_a_dead_letter_topic_a_bad_event_stops_the_consumer() {
    let f = fixture(|c| c.kafka_enable_dlq = false).await;
    let mut sub = f.subscriber().await;
    f.publish(event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD9",
        dataset_payload("GHGAD9", &[("NOTAFILE", ".json")]),
    ))
    .await;
    assert!(sub.run_once().await.is_err());
    // The event stays uncommitted: a new member of the group sees it again.
    drop(sub);
    let mut again = f.subscriber().await;
    assert!(again.run_once().await.is_err());
}

#[tokio::test]
async fn the_spawned_consumer_applies_events_and_stops_on_request() {
    let f = fixture(|_| {}).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = f.core.spawn_consumer(stopped).await.unwrap();
    f.publish(event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD1",
        dataset_payload("GHGAD1", &[("GHGAF1", ".json")]),
    ))
    .await;
    assert!(
        wait_for_dataset(&f.daos, "GHGAD1").await,
        "the consumer never stored the dataset"
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_consumer_failure_ends_the_running_service_with_an_error() {
    // Without the dead-letter topic (on by default), a failed event stops the consumer.
    let f = fixture(|c| c.kafka_enable_dlq = false).await;
    f.publish(event(
        "metadata-datasets",
        "dataset_created",
        "GHGAD9",
        dataset_payload("GHGAD9", &[("NOTAFILE", ".json")]),
    ))
    .await;
    let Fixture { core, _dir, .. } = f;
    let running = wps::run::start(core, wps::Parts::CONSUMER).await.unwrap();
    assert!(running.url().is_none());
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), running.wait())
        .await
        .expect("the consumer kept running after a failed event");
    assert!(matches!(result, Err(wps::Error::Events(_))), "{result:?}");
}

#[actix_web::test]
async fn start_dev_serves_and_consumes_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let keys = common::Keys::generate();
    let config = common::config(&keys, &dir.path().join("dev.sqlite"));
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let daos = Daos::open(&store, &config.embedded_collections())
        .await
        .unwrap();
    let running = wps::start_dev(config, store.clone()).await.unwrap();
    let url = running.url().unwrap();
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    store
        .publish(event(
            "metadata-datasets",
            "dataset_created",
            "GHGAD1",
            dataset_payload("GHGAD1", &[("GHGAF1", ".json")]),
        ))
        .await
        .unwrap();
    assert!(
        wait_for_dataset(&daos, "GHGAD1").await,
        "the dev consumer never stored the dataset"
    );
    running.stop().await.unwrap();
    assert!(reqwest::get(format!("{url}/health")).await.is_err());
}

#[actix_web::test]
async fn by_default_a_malformed_event_is_dead_lettered_and_the_service_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let keys = common::Keys::generate();
    let config = common::config(&keys, &dir.path().join("dev.sqlite"));
    assert!(config.kafka_enable_dlq, "dead-lettering is the default");
    let store = EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let daos = Daos::open(&store, &config.embedded_collections())
        .await
        .unwrap();
    let running = wps::start_dev(config, store.clone()).await.unwrap();
    let url = running.url().unwrap();
    let mut no_description = dataset_payload("GHGAD8", &[("GHGAF8", ".json")]);
    no_description
        .as_object_mut()
        .unwrap()
        .remove("description");
    store
        .publish(event(
            "metadata-datasets",
            "dataset_created",
            "GHGAD8",
            no_description,
        ))
        .await
        .unwrap();
    store
        .publish(event(
            "metadata-datasets",
            "dataset_created",
            "GHGAD1",
            dataset_payload("GHGAD1", &[("GHGAF1", ".json")]),
        ))
        .await
        .unwrap();
    assert!(
        wait_for_dataset(&daos, "GHGAD1").await,
        "the event after the malformed one was never applied"
    );
    let dead = store
        .event_log()
        .tail(&[Topic::try_from("dlq").unwrap()], 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = dead[0].event.as_ref().unwrap();
    assert_eq!(letter.key, "GHGAD8");
    assert_eq!(
        letter.headers.get("original_topic").map(String::as_str),
        Some("metadata-datasets")
    );
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "the REST API and the consumer still run"
    );
    assert!(not_found(daos.datasets.get_by_id("GHGAD8").await));
    running.stop().await.unwrap();
}
