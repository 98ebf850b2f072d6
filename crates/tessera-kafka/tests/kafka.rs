//! The provider against a real broker (`TESSERA_TEST_KAFKA_SERVERS`, e.g. tansu from
//! `scripts/test-infra up kafka`): the kit's contract suite, the wire format, malformed
//! records and consumer groups. Without the variable these tests print `SKIPPED: …` and pass,
//! unless `TESSERA_REQUIRE_INFRA=1`. Config errors and an unreachable broker need no server.

// Test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use tessera_kafka::bus::TopicLayout;
use tessera_kafka::{CompressionType, Error, KafkaBus, KafkaConfig, KafkaSource};
use tessera_kit::events::{
    ConsumerIdentity, Delivery, Event, EventPublisher, EventSource, EventType, Topic,
};
use tessera_test_support::infra;

const WAIT: Duration = Duration::from_secs(30);

/// The brokers to test against, or `None` (after saying so) when there are none.
fn servers() -> Option<Vec<String>> {
    let servers = infra::server(infra::KAFKA_SERVERS)?;
    Some(servers.split(',').map(|s| s.trim().to_owned()).collect())
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn topic(name: &str) -> Topic {
    Topic::try_from(format!("{name}-{}", suffix())).unwrap()
}

fn identity(service: &str, instance: &str) -> ConsumerIdentity {
    ConsumerIdentity {
        service_name: service.to_owned(),
        instance_id: instance.to_owned(),
    }
}

fn event(topic: &Topic, key: &str, n: i64) -> Event {
    Event::new(
        topic.clone(),
        EventType::try_from("made").unwrap(),
        key,
        json!({"n": n}),
        uuid::Uuid::new_v4().to_string(),
    )
}

async fn next(source: &mut dyn EventSource) -> Delivery {
    tokio::time::timeout(WAIT, source.next())
        .await
        .expect("a record arrives in time")
        .expect("the source delivers")
}

fn n_of(d: &Delivery) -> i64 {
    d.event.as_ref().unwrap().payload["n"].as_i64().unwrap()
}

fn raw_config(servers: &[String]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", servers.join(","));
    c
}

/// A group as the broker describes it: its state and its members' client ids and whether
/// each has partitions assigned. `None` while the broker does not list it.
#[derive(Debug)]
struct GroupView {
    state: String,
    /// (member id, client id, has an assignment)
    members: Vec<(String, String, bool)>,
}

async fn describe_group(raw: &Arc<BaseConsumer>, group: &str) -> Option<GroupView> {
    let (raw, group) = (Arc::clone(raw), group.to_owned());
    blocking(move || {
        let list = raw.fetch_group_list(Some(&group), WAIT).unwrap();
        list.groups()
            .iter()
            .find(|g| g.name() == group)
            .map(|g| GroupView {
                state: g.state().to_owned(),
                members: g
                    .members()
                    .iter()
                    .map(|m| {
                        let assigned = m.assignment().is_some_and(|a| !a.is_empty());
                        (m.id().to_owned(), m.client_id().to_owned(), assigned)
                    })
                    .collect(),
            })
    })
    .await
}

/// Runs a blocking rdkafka call off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_contract() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers), "suite", "1")
        .await
        .unwrap();
    let started = Instant::now();
    tessera_kit::testsuite::event_suite(Arc::new(bus)).await;
    println!("event suite took {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "current_thread")]
async fn event_contract_on_a_single_threaded_runtime() {
    let Some(servers) = servers() else { return };
    let mut config = KafkaConfig::new(servers);
    config.kafka_compression_type = Some(CompressionType::Lz4);
    let bus = KafkaBus::connect(&config, "suite", "2").await.unwrap();
    tessera_kit::testsuite::event_suite(Arc::new(bus)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_key_and_value_are_hexkit_records_on_the_wire() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers.clone()), "wire", "1")
        .await
        .unwrap();
    let t = topic("wire");
    let mut sent = event(&t, "key-ü", 7);
    sent.payload = json!({"text": "grüße", "list": [1, null, {"x": 1.5}]});
    sent.headers.insert("custom".into(), "wert ü".into());
    sent.headers.insert("empty".into(), String::new());
    sent.headers.remove("event_id");
    bus.publish(sent.clone()).await.unwrap();

    // Through the provider: identical, plus the event_id publish set.
    let group = format!("wire-{}", suffix());
    let mut source = bus
        .source(&identity(&group, "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let got = next(&mut source).await;
    let got_event = got.event.clone().unwrap();
    let event_id = got_event.event_id().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&event_id).is_ok(), "{event_id}");
    sent.headers.insert("event_id".into(), event_id.clone());
    assert_eq!(got_event, sent);
    source.close().await.unwrap();

    // With a plain client, assigned rather than subscribed (no group join): the record.
    let raw: BaseConsumer = raw_config(&servers)
        .set("group.id", format!("raw-{}", suffix()))
        .create()
        .unwrap();
    let name = t.to_string();
    let (key, value, headers) = blocking(move || {
        let metadata = raw.fetch_metadata(Some(&name), WAIT).unwrap();
        let mut partitions = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            partitions
                .add_partition_offset(&name, p.id(), Offset::Beginning)
                .unwrap();
        }
        raw.assign(&partitions).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "the raw consumer gets the record"
            );
            if let Some(msg) = raw.poll(Duration::from_millis(200)) {
                let msg = msg.unwrap();
                let headers: Vec<(String, Vec<u8>)> = msg
                    .headers()
                    .unwrap()
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect();
                return (
                    msg.key().unwrap().to_vec(),
                    msg.payload().unwrap().to_vec(),
                    headers,
                );
            }
        }
    })
    .await;
    assert_eq!(key, "key-ü".as_bytes());
    let value: serde_json::Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(value, sent.payload);
    let headers: BTreeMap<String, String> = headers
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(headers["type"], "made");
    assert_eq!(headers["correlation_id"], sent.correlation_id().unwrap());
    assert_eq!(headers["event_id"], event_id);
    assert_eq!(headers["custom"], "wert ü");
    assert_eq!(headers["empty"], "");
    assert_eq!(headers.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_are_service_dot_instance() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers.clone()), "idsvc", "inst-7")
        .await
        .unwrap();
    assert_eq!(bus.client_id(), "idsvc.inst-7");
    let t = topic("ids");
    bus.publish(event(&t, "k", 0)).await.unwrap();
    let group = format!("idgroup-{}", suffix());
    let mut source = bus.source(&identity(&group, "a1"), &[t]).await.unwrap();
    assert_eq!(source.group(), group);
    assert_eq!(source.client_id(), format!("{group}.a1"));
    let d = next(&mut source).await;
    // tansu lists a group only once it has committed offsets.
    source.commit(&d).await.unwrap();

    let raw = Arc::new(raw_config(&servers).create().unwrap());
    let view = describe_group(&raw, &group)
        .await
        .expect("the group is listed");
    // Brokers name a member `<client.id>-<uuid>`. tansu reports no client id in
    // DescribeGroups, Kafka does.
    let [(member_id, client_id, _)] = view.members.as_slice() else {
        panic!("one member: {view:?}");
    };
    assert!(member_id.starts_with(&format!("{group}.a1-")), "{view:?}");
    assert!(
        client_id.is_empty() || *client_id == format!("{group}.a1"),
        "{view:?}"
    );
    source.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_arrive_as_errors_and_can_be_committed() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers.clone()), "bad", "1")
        .await
        .unwrap();
    let t = topic("bad");
    bus.ensure_topics(std::slice::from_ref(&t)).await.unwrap();
    let raw: FutureProducer = raw_config(&servers).create().unwrap();
    let with_type = || {
        OwnedHeaders::new().insert(Header {
            key: "type",
            value: Some("made"),
        })
    };
    let records: Vec<(OwnedHeaders, &[u8], &str)> = vec![
        (OwnedHeaders::new(), br#"{"n": 1}"#, "no \"type\" header"),
        (with_type(), b"not json", "value is not json"),
        (
            with_type().insert(Header {
                key: "correlation_id",
                value: Some(b"\xff".as_slice()),
            }),
            br#"{"n": 2}"#,
            "header \"correlation_id\" is not utf-8",
        ),
    ];
    for (headers, value, _) in &records {
        let record = FutureRecord::to(t.as_str())
            .key("k")
            .payload(*value)
            .headers(headers.clone());
        raw.send(record, Duration::from_secs(5)).await.unwrap();
    }
    bus.publish(event(&t, "k", 3)).await.unwrap();

    let group = format!("bad-{}", suffix());
    let mut source = bus
        .source(&identity(&group, "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    for (_, _, reason) in &records {
        let d = next(&mut source).await;
        let err = d.event.as_ref().unwrap_err();
        assert!(err.contains(reason), "{err:?} should say {reason:?}");
        assert_eq!(d.topic, t);
        source.commit(&d).await.unwrap();
    }
    let good = next(&mut source).await;
    assert_eq!(n_of(&good), 3);
    source.close().await.unwrap();

    // The bad records were committed: the group resumes at the good one.
    let mut again = bus.source(&identity(&group, "2"), &[t]).await.unwrap();
    assert_eq!(next(&mut again).await.offset, good.offset);
    again.close().await.unwrap();
}

/// Reads until `count` records arrived across both members, committing each, and returns
/// what each member got.
async fn drain_pair(
    a: &mut KafkaSource,
    b: &mut KafkaSource,
    count: usize,
) -> (Vec<Delivery>, Vec<Delivery>) {
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + WAIT;
    while got_a.len() + got_b.len() < count {
        let d = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                d = a.next() => (true, d.unwrap()),
                d = b.next() => (false, d.unwrap()),
            }
        })
        .await
        .unwrap_or_else(|_| {
            let got = |v: &[Delivery]| -> Vec<(i32, i64, i64)> {
                v.iter().map(|d| (d.partition, d.offset, n_of(d))).collect()
            };
            panic!(
                "all {count} records arrive in time; a got {:?}, b got {:?}",
                got(&got_a),
                got(&got_b)
            )
        });
        if d.0 {
            a.commit(&d.1).await.unwrap();
            got_a.push(d.1);
        } else {
            b.commit(&d.1).await.unwrap();
            got_b.push(d.1);
        }
    }
    (got_a, got_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_of_a_group_split_partitions_without_duplicates() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers.clone()), "pair", "0")
        .await
        .unwrap()
        .with_topic_layout(TopicLayout {
            partitions: 3,
            replication: 1,
        });
    let t = topic("pair");
    let group = format!("pair-{}", suffix());
    for n in 0..30 {
        bus.publish(event(&t, &format!("key-{n}"), n))
            .await
            .unwrap();
    }
    // A alone reads and commits the first batch.
    let mut a = bus
        .source(&identity(&group, "a"), std::slice::from_ref(&t))
        .await
        .unwrap();
    for _ in 0..30 {
        let d = next(&mut a).await;
        a.commit(&d).await.unwrap();
    }

    // B joins. Both poll (which drives the rebalance) until the group is stable with two
    // members; a record that arrives meanwhile would be a redelivery.
    let mut b = bus
        .source(&identity(&group, "b"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let raw: Arc<BaseConsumer> = Arc::new(raw_config(&servers).create().unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the group settles with two members"
        );
        let polled = tokio::time::timeout(Duration::from_millis(500), async {
            tokio::select! {
                d = a.next() => d,
                d = b.next() => d,
            }
        })
        .await;
        if let Ok(d) = polled {
            panic!("a committed record came again: {d:?}");
        }
        // tansu reports no assignments, Kafka does.
        let view = describe_group(&raw, &group).await;
        if view.is_some_and(|v| {
            v.state == "Stable"
                && v.members.len() == 2
                && (v.members.iter().all(|m| m.2) || v.members.iter().all(|m| !m.2))
        }) {
            break;
        }
    }

    // A second batch is split between A and B, each record exactly once.
    for n in 30..60 {
        bus.publish(event(&t, &format!("key-{n}"), n))
            .await
            .unwrap();
    }
    let (got_a, got_b) = drain_pair(&mut a, &mut b, 30).await;
    let parts = |got: &[Delivery]| -> BTreeSet<i32> { got.iter().map(|d| d.partition).collect() };
    let (parts_a, parts_b) = (parts(&got_a), parts(&got_b));
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members get records: {parts_a:?} {parts_b:?}"
    );
    assert!(parts_a.is_disjoint(&parts_b), "{parts_a:?} {parts_b:?}");
    let mut ns: Vec<i64> = got_a.iter().chain(&got_b).map(n_of).collect();
    ns.sort_unstable();
    assert_eq!(
        ns,
        (30..60).collect::<Vec<_>>(),
        "every record exactly once"
    );

    // Nothing more is pending for the group.
    let extra = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::select! {
            d = a.next() => d,
            d = b.next() => d,
        }
    })
    .await;
    assert!(extra.is_err(), "no record is delivered twice: {extra:?}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_next_loses_no_record_and_drop_leaves_the_group() {
    let Some(servers) = servers() else { return };
    let bus = KafkaBus::connect(&KafkaConfig::new(servers), "cancel", "1")
        .await
        .unwrap();
    let t = topic("cancel");
    let group = format!("cancel-{}", suffix());
    let mut source = bus
        .source(&identity(&group, "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    // Give up on next() many times while the record is on its way.
    bus.publish(event(&t, "k", 0)).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let mut cancelled = 0;
    let got = loop {
        assert!(
            Instant::now() < deadline,
            "the record arrives despite cancelled calls"
        );
        match tokio::time::timeout(Duration::from_millis(5), source.next()).await {
            Ok(d) => break d.unwrap(),
            Err(_) => cancelled += 1,
        }
    };
    assert!(cancelled > 0, "some calls were cancelled");
    assert_eq!(n_of(&got), 0);
    // Dropped without commit or close: the next member of the group sees the record again.
    drop(source);
    let mut source = bus.source(&identity(&group, "2"), &[t]).await.unwrap();
    assert_eq!(n_of(&next(&mut source).await), 0);
    source.close().await.unwrap();
    assert!(matches!(
        source.next().await,
        Err(tessera_kit::events::Error::Closed)
    ));
}

#[tokio::test]
async fn config_errors_name_the_key() {
    let mut config = KafkaConfig::new(["127.0.0.1:1"]);
    config.kafka_compression_type = Some(CompressionType::Zstd);
    let err = KafkaBus::connect(&config, "svc", "1").await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Config {
                key: "kafka_compression_type",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("kafka_compression_type"), "{err}");

    let err = KafkaBus::connect(&KafkaConfig::default(), "svc", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                key: "kafka_servers",
                ..
            }
        ),
        "{err:?}"
    );

    let mut config = KafkaConfig::new(["127.0.0.1:1"]);
    config.kafka_max_message_size = 10;
    let err = KafkaBus::connect(&config, "svc", "1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                key: "kafka_max_message_size",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn connect_fails_when_no_broker_answers() {
    // Port 1 on loopback: nothing listens there.
    let err = KafkaBus::connect(&KafkaConfig::new(["127.0.0.1:1"]), "svc", "1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}
