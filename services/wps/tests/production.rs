//! The production path against real servers: documents in MongoDB, events from Kafka,
//! configured only through `WPS_*` variables.
//!
//! Start the servers with `scripts/test-infra up mongo kafka` and
//! `eval "$(scripts/test-infra env)"`. Without `TESSERA_TEST_MONGO_URL` and
//! `TESSERA_TEST_KAFKA_SERVERS` the tests that need them print SKIPPED and pass, unless
//! `TESSERA_REQUIRE_INFRA=1`. Each test uses a fresh database, fresh topics and a fresh
//! consumer group, and drops the database at the end. Start-up errors against unreachable
//! servers need no server and always run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::Keys;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Bson, Document as BsonDocument, doc};
use serde_json::{Value, json};
use tessera_crypt::Crypt4ghKeyPair;
use tessera_kafka::{KafkaBus, KafkaConfig, TopicLayout};
use tessera_kit::dao::{DaoFactory, Filter};
use tessera_kit::events::{Event, EventPublisher, EventType, Topic};
use tessera_mongodb::{MongoConfig, MongoDaoFactory};
use tessera_work_orders::{Collections, Daos, Dataset, DatasetFile, GrantKind, WorkPackageType};
use uuid::Uuid;
use wps::prepare::Storage;
use wps::run::{Parts, start};
use wps::{Overrides, WpsConfig, prepare_core};

/// How long anything asynchronous may take before the test gives up (a join on the test
/// broker alone takes about half the 10 s session timeout).
const WAIT: Duration = Duration::from_secs(120);

const DATASET: &str = "GHGAD00000000000007";
const FILE1: &str = "GHGAF00000000000071";
const FILE2: &str = "GHGAF00000000000072";
const FILE3: &str = "GHGAF00000000000073";

/// The servers: (MongoDB URL, Kafka brokers), or `None` after saying so.
fn servers() -> Option<(String, Vec<String>)> {
    let mongo = std::env::var("TESSERA_TEST_MONGO_URL").unwrap_or_default();
    let kafka = std::env::var("TESSERA_TEST_KAFKA_SERVERS").unwrap_or_default();
    if mongo.trim().is_empty() || kafka.trim().is_empty() {
        assert!(
            std::env::var("TESSERA_REQUIRE_INFRA").as_deref() != Ok("1"),
            "TESSERA_REQUIRE_INFRA=1 but TESSERA_TEST_MONGO_URL or TESSERA_TEST_KAFKA_SERVERS \
             is not set (scripts/test-infra up; eval \"$(scripts/test-infra env)\")"
        );
        println!(
            "SKIPPED (set TESSERA_TEST_MONGO_URL and TESSERA_TEST_KAFKA_SERVERS; \
             scripts/test-infra up mongo kafka)"
        );
        return None;
    }
    let brokers = kafka.split(',').map(|s| s.trim().to_owned()).collect();
    Some((mongo.trim().to_owned(), brokers))
}

fn suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// One test's servers and names: a fresh database, topics and consumer group.
struct Setup {
    mongo_url: String,
    brokers: Vec<String>,
    db_name: String,
    service_name: String,
    dataset_topic: String,
    box_topic: String,
    map_topic: String,
    keys: Keys,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Option<Self> {
        let (mongo_url, brokers) = servers()?;
        let id = suffix();
        Some(Self {
            mongo_url,
            brokers,
            db_name: format!("wps_test_{id}"),
            service_name: format!("wps-test-{id}"),
            dataset_topic: format!("metadata-datasets-{id}"),
            box_topic: format!("upload-boxes-{id}"),
            map_topic: format!("file-accession-mappings-{id}"),
            keys: Keys::generate(),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// The embedded store file the config names; nothing may create it.
    fn embedded_path(&self) -> std::path::PathBuf {
        self.dir.path().join("never.sqlite")
    }

    /// The `WPS_*` variables of a production deployment, as docker-compose sets them.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("WPS_MONGO_DSN", self.mongo_url.clone()),
            ("WPS_DB_NAME", self.db_name.clone()),
            (
                "WPS_KAFKA_SERVERS",
                serde_json::to_string(&self.brokers).unwrap(),
            ),
            ("WPS_MONGO_TIMEOUT", "30".into()),
            ("WPS_SERVICE_NAME", self.service_name.clone()),
            ("WPS_SERVICE_INSTANCE_ID", "1".into()),
            ("WPS_DATASET_CHANGE_TOPIC", self.dataset_topic.clone()),
            ("WPS_RESEARCH_DATA_UPLOAD_BOX_TOPIC", self.box_topic.clone()),
            ("WPS_ACCESSION_MAP_TOPIC", self.map_topic.clone()),
            (
                "WPS_WORK_PACKAGE_SIGNING_KEY",
                self.keys.signing_private.clone(),
            ),
            ("WPS_AUTH_KEY", self.keys.auth_public.clone()),
            (
                "WPS_EMBEDDED_DB_PATH",
                self.embedded_path().display().to_string(),
            ),
            ("WPS_PORT", "0".into()),
            ("WPS_LOG_LEVEL", "WARN".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The raw database, to look at the stored BSON.
    async fn raw(&self) -> mongodb::Database {
        mongodb::Client::with_uri_str(&self.mongo_url)
            .await
            .unwrap()
            .database(&self.db_name)
    }

    /// The typed collections, as the service opens them on MongoDB.
    async fn daos(&self) -> Daos {
        let factory = MongoDaoFactory::connect(&MongoConfig {
            mongo_dsn: self.mongo_url.as_str().into(),
            db_name: self.db_name.clone(),
            mongo_timeout: Some(30),
        })
        .await
        .unwrap();
        Daos::open(&factory as &dyn DaoFactory, &Collections::default())
            .await
            .unwrap()
    }

    /// A publisher as another service would have one; topics it creates get one partition,
    /// so that the order of all events is the order they were published in.
    async fn publisher(&self) -> KafkaBus {
        KafkaBus::connect(
            &KafkaConfig::new(self.brokers.clone()),
            "wps-test-publisher",
            &suffix(),
        )
        .await
        .unwrap()
        .with_topic_layout(TopicLayout {
            partitions: 1,
            replication: -1,
        })
    }

    fn event(&self, topic: &str, event_type: &str, key: &str, payload: Value) -> Event {
        Event::new(
            Topic::try_from(topic).unwrap(),
            EventType::try_from(event_type).unwrap(),
            key,
            payload,
            Uuid::new_v4().to_string(),
        )
    }

    fn dataset_event(&self, dataset: &Dataset) -> Event {
        let files: Vec<Value> = dataset
            .files
            .iter()
            .map(|f| json!({"accession": f.accession, "description": null, "file_extension": f.extension}))
            .collect();
        self.event(
            &self.dataset_topic,
            "dataset_created",
            &dataset.id,
            json!({
                "accession": dataset.id, "title": dataset.title, "stage": "download",
                "description": dataset.description, "dac_alias": "DAC",
                "dac_email": "dac@example.org", "files": files,
            }),
        )
    }

    fn deletion_event(&self, accession: &str) -> Event {
        self.event(
            &self.dataset_topic,
            "dataset_deleted",
            accession,
            json!({ "accession": accession }),
        )
    }

    /// Runs the `wps` binary with exactly `env` (no inherited `WPS_*`), in the temp dir.
    fn command(&self, env: &[(String, String)], args: &[&str]) -> Command {
        wps_command(self.dir.path(), env, args)
    }

    async fn drop_db(&self) {
        self.raw().await.drop().await.unwrap();
    }
}

fn wps_command(dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wps"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WPS_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args);
    cmd
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` every 20 ms until it holds or [`WAIT`] passes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_uuid_binary(value: Option<&Bson>, expected: Option<Uuid>) -> bool {
    match value {
        Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid => {
            expected.is_none_or(|u| b.bytes == u.as_bytes())
        }
        _ => false,
    }
}

fn dataset(id: &str, title: &str, files: &[(&str, &str)]) -> Dataset {
    Dataset {
        id: id.to_owned(),
        stage: WorkPackageType::Download,
        title: title.to_owned(),
        description: Some(format!("{title} of {id}")),
        files: files
            .iter()
            .map(|(accession, extension)| DatasetFile {
                accession: (*accession).to_owned(),
                extension: (*extension).to_owned(),
            })
            .collect(),
    }
}

async fn find_one(db: &mongodb::Database, collection: &str, filter: BsonDocument) -> BsonDocument {
    db.collection::<BsonDocument>(collection)
        .find_one(filter)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no document in {collection}"))
}

#[actix_web::test]
async fn events_from_kafka_are_stored_in_mongodb_and_served_as_packages_and_tokens() {
    let Some(setup) = Setup::new() else { return };
    let config = WpsConfig::load_from_env(setup.env()).unwrap();
    assert!(config.uses_mongo() && config.uses_kafka());
    let core = prepare_core(config, Overrides::default()).await.unwrap();
    assert_eq!(core.storage, Storage::Mongo);
    let running = start(core, Parts::ALL).await.unwrap();
    let url = running.url().unwrap();

    // Events, as the metadata service, the upload controller and the SRS publish them.
    let publisher = setup.publisher().await;
    let ds = dataset(
        DATASET,
        "A dataset",
        &[(FILE1, ".json"), (FILE2, ".csv"), (FILE3, ".bam")],
    );
    publisher.publish(setup.dataset_event(&ds)).await.unwrap();
    let (file1, file2) = (Uuid::new_v4(), Uuid::new_v4());
    for (accession, file_id) in [(FILE1, file1), (FILE2, file2)] {
        publisher
            .publish(setup.event(
                &setup.map_topic,
                "upserted",
                accession,
                json!({"accession": accession, "file_id": file_id}),
            ))
            .await
            .unwrap();
    }
    let (box_id, file_box_id) = (Uuid::new_v4(), Uuid::new_v4());
    publisher
        .publish(setup.event(
            &setup.box_topic,
            "upserted",
            &box_id.to_string(),
            json!({"id": box_id, "version": 1, "state": "open", "title": "Box",
                   "description": null, "last_changed": "2026-01-01T00:00:00Z",
                   "changed_by": Uuid::new_v4(), "file_upload_box_id": file_box_id,
                   "file_upload_box_version": 1, "file_upload_box_state": "open",
                   "file_count": 0, "size": 0, "storage_alias": "HD01"}),
        ))
        .await
        .unwrap();

    let daos = setup.daos().await;
    eventually("the consumer to store every event", || async {
        daos.datasets.get_by_id(DATASET).await.is_ok()
            && daos.accession_maps.get_by_id(FILE2).await.is_ok()
            && daos
                .upload_boxes
                .get_by_id(&box_id.to_string())
                .await
                .is_ok()
    })
    .await;
    assert_eq!(daos.datasets.get_by_id(DATASET).await.unwrap(), ds);

    // The grant store lives in MongoDB too (access_url is unset).
    let user = Uuid::new_v4();
    let now = Utc::now();
    running
        .core()
        .grants
        .add(
            user,
            GrantKind::Download,
            DATASET,
            now - TimeDelta::hours(1),
            now + TimeDelta::days(2),
        )
        .await
        .unwrap();

    // A download package and work order tokens over HTTP.
    let client = reqwest::Client::new();
    let pair = Crypt4ghKeyPair::generate();
    let resp = client
        .post(format!("{url}/work-packages"))
        .bearer_auth(setup.keys.token(&user.to_string()))
        .json(
            &json!({"type": "download", "dataset_id": DATASET, "file_ids": [FILE1, FILE3],
                      "user_public_crypt4gh_key": pair.public_key().to_base64()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let package_id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let wpat = pair
        .open_base64(created["token"].as_str().unwrap())
        .unwrap();

    let details: Value = client
        .get(format!("{url}/work-packages/{package_id}"))
        .bearer_auth(&wpat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(details["files"], json!({FILE1: ".json", FILE3: ".bam"}));
    assert_eq!(details["type"], "download");

    let resp = client
        .post(format!(
            "{url}/work-packages/{package_id}/files/{FILE1}/work-order-tokens"
        ))
        .bearer_auth(&wpat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sealed: String = resp.json().await.unwrap();
    let (_, claims) = setup.keys.verify_wot(&pair.open_base64(&sealed).unwrap());
    assert_eq!(claims["file_id"], json!(file1.to_string()));
    assert_eq!(claims["accession"], json!(FILE1));
    assert_eq!(claims["work_type"], json!("download"));

    // FILE3 has no accession map.
    let resp = client
        .post(format!(
            "{url}/work-packages/{package_id}/files/{FILE3}/work-order-tokens"
        ))
        .bearer_auth(&wpat)
        .send()
        .await
        .unwrap();
    common::assert_forbidden(resp, "File not available for download").await;

    // The stored BSON: hexkit's shape, in unprefixed collections of the database db_name.
    let raw = setup.raw().await;
    let mut names = raw.list_collection_names().await.unwrap();
    names.sort();
    for name in [
        "accessionMaps",
        "datasets",
        "grants",
        "uploadBoxes",
        "workPackages",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    assert!(names.iter().all(|n| !n.contains('.')), "{names:?}");

    let id_bson = Bson::Binary(mongodb::bson::Binary {
        subtype: BinarySubtype::Uuid,
        bytes: package_id.as_bytes().to_vec(),
    });
    let package = find_one(&raw, "workPackages", doc! {"_id": id_bson}).await;
    assert!(is_uuid_binary(package.get("_id"), Some(package_id)));
    assert!(package.get("id").is_none(), "the id is stored as _id only");
    assert!(is_uuid_binary(package.get("user_id"), Some(user)));
    assert!(matches!(package.get("created"), Some(Bson::DateTime(_))));
    assert!(matches!(package.get("expires"), Some(Bson::DateTime(_))));
    assert_eq!(package.get_str("type").unwrap(), "download");
    assert_eq!(package.get_str("dataset_id").unwrap(), DATASET);
    assert_eq!(package.get_str("token_hash").unwrap().len(), 64);
    assert_eq!(
        package.get("research_data_upload_box_id"),
        Some(&Bson::Null)
    );
    let files = package.get_document("files").unwrap();
    assert_eq!(files.get_str(FILE1).unwrap(), ".json");

    let stored = find_one(&raw, "datasets", doc! {"_id": DATASET}).await;
    assert_eq!(stored.get_str("title").unwrap(), "A dataset");
    assert_eq!(stored.get_array("files").unwrap().len(), 3);
    let map = find_one(&raw, "accessionMaps", doc! {"_id": FILE1}).await;
    assert!(is_uuid_binary(map.get("file_id"), Some(file1)));
    let upload_box = find_one(&raw, "uploadBoxes", doc! {}).await;
    assert!(is_uuid_binary(upload_box.get("_id"), Some(box_id)));
    assert!(is_uuid_binary(
        upload_box.get("file_upload_box_id"),
        Some(file_box_id)
    ));
    let grant = find_one(&raw, "grants", doc! {}).await;
    assert!(is_uuid_binary(grant.get("_id"), None));
    assert!(is_uuid_binary(grant.get("user_id"), Some(user)));
    assert!(matches!(grant.get("valid_until"), Some(Bson::DateTime(_))));

    assert!(
        !setup.embedded_path().exists(),
        "nothing may touch the embedded store"
    );
    running.stop().await.unwrap();
    setup.drop_db().await;
}

/// A `wps` child process, killed when the test ends early.
struct Proc(Child);

impl Proc {
    /// Fails the test with the process's log if it has exited.
    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.0.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the consumer exited with {status}:\n{log}");
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The dataset stream: 200 events over 23 accessions, upserting most of them several
/// times and deleting some in between or at the end. Returns the events' datasets
/// (`None` for a deletion) with their accession.
fn stream() -> Vec<(String, Option<Dataset>)> {
    (0..200u32)
        .map(|i| {
            let accession = format!("GHGAD{:014}", (i * 7) % 23);
            if i % 9 == 4 || (i >= 180 && i % 4 == 0) {
                (accession, None)
            } else {
                let files: Vec<(String, String)> = (0..=(i % 3))
                    .map(|n| (format!("GHGAF{i:010}{n:04}"), format!(".e{n}")))
                    .collect();
                let files: Vec<(&str, &str)> = files
                    .iter()
                    .map(|(a, e)| (a.as_str(), e.as_str()))
                    .collect();
                let ds = dataset(&accession, &format!("version {i}"), &files);
                (accession, Some(ds))
            }
        })
        .collect()
}

/// Every dataset stored, by accession.
async fn stored_datasets(daos: &Daos) -> BTreeMap<String, Dataset> {
    daos.datasets
        .find_all(&Filter::new())
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect()
}

#[tokio::test]
async fn a_killed_consumer_resumes_without_losing_or_breaking_events() {
    let Some(setup) = Setup::new() else { return };
    let env = setup.env();
    let publisher = setup.publisher().await;
    let topics: Vec<Topic> = [&setup.dataset_topic, &setup.box_topic, &setup.map_topic]
        .into_iter()
        .map(|t| Topic::try_from(t.as_str()).unwrap())
        .collect();
    publisher.ensure_topics(&topics).await.unwrap();

    let events = stream();
    let mut expected: BTreeMap<String, Dataset> = BTreeMap::new();
    for (accession, change) in &events {
        match change {
            Some(ds) => expected.insert(accession.clone(), ds.clone()),
            None => expected.remove(accession),
        };
    }
    assert!(
        expected.len() > 5 && expected.len() < 23,
        "the stream deletes some"
    );
    let to_event = |(accession, change): &(String, Option<Dataset>)| match change {
        Some(ds) => setup.dataset_event(ds),
        None => setup.deletion_event(accession),
    };
    let (first, rest) = events.split_at(150);
    for e in first {
        publisher.publish(to_event(e)).await.unwrap();
    }

    let consumer = |log: &str| {
        let log = File::create(setup.dir.path().join(log)).unwrap();
        Proc(
            setup
                .command(&env, &["consume-events"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let started = Instant::now();
    let mut first_run = consumer("first.log");
    let daos = setup.daos().await;
    // Ten datasets: well into the first 150 events, far from their end.
    while stored_datasets(&daos).await.len() < 10 {
        first_run.assert_running(&setup.dir.path().join("first.log"));
        assert!(
            started.elapsed() < WAIT,
            "the first consumer stored too little"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL: no clean leave of the group, no last commit.
    first_run.0.kill().unwrap();
    first_run.0.wait().unwrap();
    let at_kill = stored_datasets(&daos).await;
    println!(
        "killed the first consumer after {:?} with {} datasets stored",
        started.elapsed(),
        at_kill.len()
    );

    // The rest of the stream, and a last dataset that marks its end: with one partition,
    // once it is stored every event before it was handled.
    for e in rest {
        publisher.publish(to_event(e)).await.unwrap();
    }
    let end = dataset("GHGAD-END", "the end", &[("GHGAF-END", ".txt")]);
    publisher.publish(setup.dataset_event(&end)).await.unwrap();

    let restarted = Instant::now();
    let mut second_run = consumer("second.log");
    while daos.datasets.get_by_id("GHGAD-END").await.is_err() {
        second_run.assert_running(&setup.dir.path().join("second.log"));
        assert!(
            restarted.elapsed() < WAIT,
            "the restarted consumer never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the restarted consumer caught up in {:?}",
        restarted.elapsed()
    );
    let mut stored = stored_datasets(&daos).await;
    assert_eq!(stored.remove("GHGAD-END"), Some(end));
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same datasets survive"
    );
    assert_eq!(stored, expected, "every dataset holds its last version");
    drop(second_run);
    setup.drop_db().await;
}

#[tokio::test]
async fn migrate_db_on_mongodb_creates_the_collections_and_records_version_2() {
    let Some(setup) = Setup::new() else { return };
    let env = setup.env();
    let migrate = |env: &[(String, String)]| setup.command(env, &["migrate-db"]).output().unwrap();
    let output = migrate(&env);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["collection"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "datasets",
            "uploadBoxes",
            "workPackages",
            "accessionMaps",
            "grants",
            "wpsDbVersions"
        ]
    );
    let db_line = format!("mongodb database {}", setup.db_name);
    assert!(
        lines.iter().all(|l| l["db"] == db_line.as_str()),
        "{lines:?}"
    );
    assert!(lines[..5].iter().all(|l| l["status"] == "created"));
    assert_eq!(lines[5]["status"], "recorded");
    assert_eq!(lines[5]["recorded"], json!([1, 2]));

    let raw = setup.raw().await;
    let names = raw.list_collection_names().await.unwrap();
    for name in &names {
        assert_eq!(
            raw.collection::<BsonDocument>(name)
                .count_documents(doc! {"_id": {"$ne": 0}, "version": {"$exists": false}})
                .await
                .unwrap(),
            0,
            "no probe document is left in {name}"
        );
    }
    for name in [
        "datasets",
        "uploadBoxes",
        "workPackages",
        "accessionMaps",
        "grants",
        "wpsDbVersions",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    // hexkit's records; the lock document is gone.
    let versions = raw.collection::<BsonDocument>("wpsDbVersions");
    assert_eq!(versions.count_documents(doc! {"_id": 0}).await.unwrap(), 0);
    let mut records = Vec::new();
    let mut cursor = versions.find(doc! {}).await.unwrap();
    while cursor.advance().await.unwrap() {
        records.push(cursor.deserialize_current().unwrap());
    }
    let mut found: Vec<i64> = records
        .iter()
        .map(|r: &BsonDocument| {
            assert!(r.get_str("completed").unwrap().ends_with("+00:00"));
            assert!(!r.get_bool("backward").unwrap());
            assert!(
                r.get_i64("total_duration_ms").is_ok() || r.get_i32("total_duration_ms").is_ok()
            );
            r.get_i64("version")
                .or_else(|_| r.get_i32("version").map(i64::from))
                .unwrap()
        })
        .collect();
    found.sort_unstable();
    assert_eq!(found, [1, 2]);

    // Again: current, nothing recorded.
    let output = migrate(&env);
    assert!(output.status.success(), "{}", stderr(&output));
    let last: Value = serde_json::from_str(
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["status"], "current");
    assert_eq!(versions.count_documents(doc! {}).await.unwrap(), 2);

    // A newer database is refused.
    versions
        .insert_one(
            doc! {"version": 3, "completed": "2999-01-01T00:00:00.000000+00:00",
            "backward": false, "total_duration_ms": 1},
        )
        .await
        .unwrap();
    let output = migrate(&env);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("version 3"), "{}", stderr(&output));
    setup.drop_db().await;

    // Documents this service wrote before any migrate-db (native UUID ids): recorded.
    let native_id = Bson::Binary(mongodb::bson::Binary {
        subtype: BinarySubtype::Uuid,
        bytes: Uuid::new_v4().as_bytes().to_vec(),
    });
    raw.collection::<BsonDocument>("workPackages")
        .insert_one(doc! {"_id": native_id, "type": "download"})
        .await
        .unwrap();
    let output = migrate(&env);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[2]["collection"], "workPackages");
    assert_eq!(lines[2]["status"], "exists");
    assert_eq!(lines[1]["status"], "created");
    assert_eq!(lines[5]["recorded"], json!([1, 2]));
    setup.drop_db().await;

    // A database in the shape before version 2 (string ids) without a record is refused.
    raw.collection::<BsonDocument>("workPackages")
        .insert_one(doc! {"_id": Uuid::new_v4().to_string(), "type": "download"})
        .await
        .unwrap();
    let output = migrate(&env);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("string ids"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        versions.count_documents(doc! {}).await.unwrap(),
        0,
        "nothing recorded"
    );
    setup.drop_db().await;
}

/// The variables of a deployment whose servers are not there: closed ports on loopback.
fn unreachable_env(keys: &Keys, dir: &Path) -> Vec<(String, String)> {
    [
        ("WPS_WORK_PACKAGE_SIGNING_KEY", keys.signing_private.clone()),
        ("WPS_AUTH_KEY", keys.auth_public.clone()),
        (
            "WPS_EMBEDDED_DB_PATH",
            dir.join("wps.sqlite").display().to_string(),
        ),
        ("WPS_LOG_LEVEL", "OFF".into()),
        ("WPS_PORT", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A port on loopback that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_servers_fail_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let port = closed_port();

    // MongoDB: the library error, then the process.
    let mut env = unreachable_env(&keys, dir.path());
    env.push((
        "WPS_MONGO_DSN".into(),
        format!("mongodb://ada:s3cret@127.0.0.1:{port}/?appName=x"),
    ));
    env.push(("WPS_MONGO_TIMEOUT".into(), "2".into()));
    let config = WpsConfig::load_from_env(env.clone()).unwrap();
    let err = prepare_core(config, Overrides::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            wps::Error::Connect {
                key: "mongo_dsn",
                ..
            }
        ),
        "{err:?}"
    );
    let output = wps_command(dir.path(), &env, &["run-rest"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("mongo_dsn") && text.contains("WPS_MONGO_DSN"),
        "{text}"
    );
    assert!(
        text.contains(&format!("mongodb://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password stays out: {text}");

    // Kafka: the REST API alone never connects; the consumer fails at start.
    let mut env = unreachable_env(&keys, dir.path());
    env.push((
        "WPS_KAFKA_SERVERS".into(),
        format!(r#"["127.0.0.1:{port}"]"#),
    ));
    let output = wps_command(dir.path(), &env, &["consume-events"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("kafka_servers") && text.contains("WPS_KAFKA_SERVERS"),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[test]
fn settings_of_a_backend_that_is_not_selected_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    for (var, value, key) in [
        // Kafka meant, but its servers are missing: events would never arrive.
        ("WPS_KAFKA_SECURITY_PROTOCOL", "SSL", "kafka_servers"),
        ("WPS_KAFKA_COMPRESSION_TYPE", "gzip", "kafka_servers"),
        // MongoDB meant, but its DSN is missing: packages would stay in a local file.
        ("WPS_MONGO_TIMEOUT", "5", "mongo_dsn"),
        // Malformed values name their key.
        ("WPS_KAFKA_SERVERS", r#""kafka:9092""#, "kafka_servers"),
        ("WPS_KAFKA_SERVERS", r#"["a:1,b:2"]"#, "kafka_servers"),
        ("WPS_MONGO_DSN", "not-a-dsn", "mongo_dsn"),
    ] {
        let mut env = unreachable_env(&keys, dir.path());
        env.push((var.into(), value.into()));
        let output = wps_command(dir.path(), &env, &["run-rest"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{var}={value}: {}",
            stderr(&output)
        );
        let text = stderr(&output);
        assert!(text.contains(key), "{var}={value}: {text}");
    }
    let mut env = unreachable_env(&keys, dir.path());
    env.push(("WPS_KAFKA_SERVERS".into(), "[]".into()));
    let config = WpsConfig::load_from_env(env).unwrap();
    assert!(
        !config.uses_kafka(),
        "an empty list is the embedded event log"
    );
}

#[test]
fn serve_stops_the_rest_api_when_the_consumer_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let port = closed_port();
    let mut env = unreachable_env(&keys, dir.path());
    env.push((
        "WPS_KAFKA_SERVERS".into(),
        format!(r#"["127.0.0.1:{port}"]"#),
    ));
    env.push(("WPS_LOG_LEVEL".into(), "INFO".into()));
    let output = wps_command(dir.path(), &env, &["serve"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("kafka_servers") && text.contains("WPS_KAFKA_SERVERS"),
        "{text}"
    );
    // The REST API was listening, and stopped because its sibling failed.
    let logs = String::from_utf8_lossy(&output.stdout);
    let position = |needle: &str| {
        logs.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not logged: {logs}"))
    };
    assert!(position("http server listening") < position("part failed to start"));
    assert!(logs.contains(r#""part":"consumer""#), "{logs}");
}
