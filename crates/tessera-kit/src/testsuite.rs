//! Contract suites: every provider runs these against itself (embedded always, real
//! servers when the test infrastructure is up), so that all providers behave the same.
//!
//! Each suite panics with a message naming the broken rule. Names of collections, topics
//! and groups carry a random suffix, so the suites can run against a shared server.

// Test code shipped as a feature: panicking on a broken contract is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dao::{CollectionSpec, DaoFactory, Document, Error as DaoError, FieldKind, Filter};
use crate::events::{
    ConsumerIdentity, Delivery, Event, EventBus, EventHandler, EventSource, EventType,
    HandlerError, Subscription, Topic,
};
use crate::subscriber::{Outcome, Subscriber, SubscriberConfig};

mod objects;
pub use objects::{
    LARGE_MEMORY_BOUND, ObjectSuiteOptions, SendPresigned, body, generated, generated_md5, md5_of,
    object_large_suite, object_suite, presign_interop_suite,
};

/// How long a suite waits for one event before it calls the provider broken.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn doc(v: Value) -> Document {
    v.as_object().cloned().expect("test documents are objects")
}

fn filter(pairs: &[(&str, Value)]) -> Filter {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The DAO contract.
pub async fn dao_suite(factory: &dyn DaoFactory) {
    let name = format!("people_{}", suffix());
    let spec = CollectionSpec::new(name.clone(), "id")
        .unique("email")
        .kind("ref", FieldKind::Uuid)
        .kind("since", FieldKind::DateTime);
    let dao = factory.document_dao(spec.clone()).await.unwrap();
    assert_eq!(dao.spec(), &spec, "a DAO reports the spec it was made for");

    let ada = doc(json!({
        "id": "ada", "email": "ada@example.org", "team": "math", "age": 36, "active": true,
        "ref": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "since": "1843-07-01T10:11:12.345Z",
        "tags": ["a", "b"], "nested": {"x": [1, {"y": null}]}, "note": null
    }));
    let bob = doc(json!({
        "id": "bob", "email": "bob@example.org", "team": "math", "age": 40, "active": false,
        "ref": "16fd2706-8baf-433b-82eb-8c7fada847da", "since": "1900-01-01T00:00:00Z"
    }));
    dao.insert(ada.clone()).await.unwrap();
    dao.insert(bob.clone()).await.unwrap();

    // get_by_id returns exactly what was stored; datetimes compare as instants.
    let got = dao.get_by_id("ada").await.unwrap();
    assert_same_doc(&got, &ada);
    assert!(
        matches!(
            dao.get_by_id("nobody").await,
            Err(DaoError::NotFound { .. })
        ),
        "get_by_id of a missing id is NotFound"
    );

    // Duplicate id and duplicate unique value: AlreadyExists, nothing stored.
    let dup_id = doc(json!({"id": "ada", "email": "other@example.org"}));
    assert!(
        matches!(
            dao.insert(dup_id).await,
            Err(DaoError::AlreadyExists { .. })
        ),
        "insert with a taken id is AlreadyExists"
    );
    let dup_email = doc(json!({"id": "cy", "email": "ada@example.org"}));
    assert!(
        matches!(
            dao.insert(dup_email.clone()).await,
            Err(DaoError::AlreadyExists { .. })
        ),
        "insert with a taken unique value is AlreadyExists"
    );
    assert!(
        matches!(dao.get_by_id("cy").await, Err(DaoError::NotFound { .. })),
        "a rejected insert stores nothing"
    );
    assert_same_doc(&dao.get_by_id("ada").await.unwrap(), &ada);

    // find_one / find_all by equality on fields.
    let found = dao
        .find_one(&filter(&[("email", json!("bob@example.org"))]))
        .await
        .unwrap()
        .expect("find_one by a unique field finds the document");
    assert_same_doc(&found, &bob);
    assert!(
        dao.find_one(&filter(&[("email", json!("nobody@example.org"))]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        matches!(
            dao.find_one(&filter(&[("team", json!("math"))])).await,
            Err(DaoError::MultipleHits { .. })
        ),
        "find_one with several hits is MultipleHits"
    );
    let ids = |docs: Vec<Document>| -> Vec<String> {
        docs.iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(dao.find_all(&Filter::new()).await.unwrap()),
        ["ada", "bob"]
    );
    assert_eq!(
        ids(dao
            .find_all(&filter(&[("team", json!("math")), ("age", json!(40))]))
            .await
            .unwrap()),
        ["bob"]
    );
    assert_eq!(
        ids(dao
            .find_all(&filter(&[("active", json!(true))]))
            .await
            .unwrap()),
        ["ada"]
    );
    assert_eq!(
        ids(dao
            .find_all(&filter(&[(
                "ref",
                json!("16fd2706-8baf-433b-82eb-8c7fada847da")
            )]))
            .await
            .unwrap()),
        ["bob"],
        "a UUID-kind field filters by its string form"
    );
    assert!(
        dao.find_all(&filter(&[("team", json!("art"))]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(dao
            .find_all(&filter(&[("id", json!("bob"))]))
            .await
            .unwrap()),
        ["bob"],
        "the id field filters like any other"
    );

    // upsert: inserts, then replaces; respects unique values of other documents.
    let cy = doc(json!({"id": "cy", "email": "cy@example.org", "team": "art"}));
    dao.upsert(cy.clone()).await.unwrap();
    assert_same_doc(&dao.get_by_id("cy").await.unwrap(), &cy);
    let cy2 = doc(json!({"id": "cy", "email": "cy2@example.org"}));
    dao.upsert(cy2.clone()).await.unwrap();
    assert_same_doc(&dao.get_by_id("cy").await.unwrap(), &cy2);
    assert!(
        dao.find_all(&filter(&[("team", json!("art"))]))
            .await
            .unwrap()
            .is_empty(),
        "upsert replaces the whole document"
    );
    assert!(
        matches!(
            dao.upsert(doc(json!({"id": "cy", "email": "bob@example.org"})))
                .await,
            Err(DaoError::AlreadyExists { .. })
        ),
        "upsert that takes another document's unique value is AlreadyExists"
    );
    assert_same_doc(&dao.get_by_id("cy").await.unwrap(), &cy2);

    // update: NotFound for a missing id, replaces otherwise.
    assert!(matches!(
        dao.update(doc(json!({"id": "dan", "email": "dan@example.org"})))
            .await,
        Err(DaoError::NotFound { .. })
    ));
    assert!(
        matches!(dao.get_by_id("dan").await, Err(DaoError::NotFound { .. })),
        "update of a missing id stores nothing"
    );
    let bob2 = doc(json!({"id": "bob", "email": "bob@example.org", "age": 41}));
    dao.update(bob2.clone()).await.unwrap();
    assert_same_doc(&dao.get_by_id("bob").await.unwrap(), &bob2);
    assert!(matches!(
        dao.update(doc(json!({"id": "bob", "email": "ada@example.org"})))
            .await,
        Err(DaoError::AlreadyExists { .. })
    ));

    // Documents without a unique field, or with null in it, do not clash.
    dao.insert(doc(json!({"id": "n1"}))).await.unwrap();
    dao.insert(doc(json!({"id": "n2"}))).await.unwrap();
    dao.insert(doc(json!({"id": "n3", "email": null})))
        .await
        .unwrap();
    dao.insert(doc(json!({"id": "n4", "email": null})))
        .await
        .unwrap();
    for id in ["n1", "n2", "n3", "n4"] {
        dao.delete(id).await.unwrap();
    }

    // A document without an id is rejected, not stored under some made-up id.
    assert!(matches!(
        dao.insert(doc(json!({"email": "noid@example.org"}))).await,
        Err(DaoError::InvalidDocument { .. })
    ));

    // delete: NotFound for a missing id.
    dao.delete("cy").await.unwrap();
    assert!(matches!(
        dao.get_by_id("cy").await,
        Err(DaoError::NotFound { .. })
    ));
    assert!(matches!(
        dao.delete("cy").await,
        Err(DaoError::NotFound { .. })
    ));
    // The freed unique value can be taken again.
    dao.insert(doc(json!({"id": "cy3", "email": "cy2@example.org"})))
        .await
        .unwrap();

    // Asking again for the same collection is harmless and sees the same data.
    let again = factory.document_dao(spec.clone()).await.unwrap();
    assert_same_doc(&again.get_by_id("ada").await.unwrap(), &ada);

    // Collections are isolated.
    let other = factory
        .document_dao(CollectionSpec::new(format!("other_{}", suffix()), "id"))
        .await
        .unwrap();
    assert!(matches!(
        other.get_by_id("ada").await,
        Err(DaoError::NotFound { .. })
    ));
    other
        .insert(doc(json!({"id": "ada", "email": "ada@example.org"})))
        .await
        .unwrap();

    // Ids with odd characters round-trip.
    let odd = doc(json!({"id": "a/b c?'\"ü", "email": "odd@example.org"}));
    dao.insert(odd.clone()).await.unwrap();
    assert_same_doc(&dao.get_by_id("a/b c?'\"ü").await.unwrap(), &odd);

    // A bad spec is refused.
    assert!(matches!(
        factory
            .document_dao(CollectionSpec::new("bad name", "id"))
            .await,
        Err(DaoError::InvalidSpec(_))
    ));
}

/// Compares documents, reading `since`-style datetime strings as instants (providers with
/// native dates may print them differently).
fn assert_same_doc(got: &Document, want: &Document) {
    let norm = |d: &Document| -> Document {
        d.iter()
            .map(|(k, v)| {
                let v = match v.as_str().map(chrono::DateTime::parse_from_rfc3339) {
                    Some(Ok(t)) => json!(t.timestamp_millis()),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    };
    assert_eq!(norm(got), norm(want), "stored and loaded documents differ");
}

async fn next(source: &mut Box<dyn EventSource>) -> Delivery {
    tokio::time::timeout(EVENT_WAIT, source.next())
        .await
        .expect("an event arrives in time")
        .expect("the source delivers")
}

fn event(topic: &Topic, ty: &str, key: &str, n: i64) -> Event {
    Event::new(
        topic.clone(),
        EventType::try_from(ty).unwrap(),
        key,
        json!({"n": n, "text": "grüße"}),
        uuid::Uuid::new_v4().to_string(),
    )
}

fn identity(group: &str) -> ConsumerIdentity {
    ConsumerIdentity {
        service_name: group.to_owned(),
        instance_id: "suite".to_owned(),
    }
}

fn payload_n(d: &Delivery) -> i64 {
    d.event.as_ref().expect("a valid event").payload["n"]
        .as_i64()
        .unwrap()
}

/// The event-bus contract: publishing, consumer groups, commits and resumption, and the
/// subscriber's dead-letter path through the real provider.
pub async fn event_suite(bus: Arc<dyn EventBus>) {
    let s = suffix();
    let topic = Topic::try_from(format!("suite-{s}")).unwrap();

    // Publish three events with one key (so their order is kept on partitioned brokers).
    let mut sent = Vec::new();
    for n in 0..3 {
        let mut e = event(&topic, "made", "k1", n);
        e.headers.insert("custom".into(), format!("v{n}"));
        bus.publish(e.clone()).await.unwrap();
        sent.push(e);
    }
    // An event without event_id gets one.
    let mut bare = event(&topic, "made", "k1", 3);
    bare.headers.remove("event_id");
    bus.publish(bare.clone()).await.unwrap();

    // A new group starts at the earliest event and sees everything, in order, intact.
    let g1 = format!("g1-{s}");
    let mut src = bus
        .subscribe(&identity(&g1), std::slice::from_ref(&topic))
        .await
        .unwrap();
    for want in &sent {
        let d = next(&mut src).await;
        assert_eq!(d.topic, topic);
        assert_eq!(
            d.event.as_ref().unwrap(),
            want,
            "an event arrives as it was sent"
        );
    }
    let d3 = next(&mut src).await;
    let e3 = d3.event.as_ref().unwrap();
    assert_eq!(payload_n(&d3), 3);
    assert!(
        e3.event_id().is_some_and(|id| !id.is_empty()),
        "publish sets a missing event_id"
    );

    // Commit the second event only, leave, and come back: the group resumes after it.
    src.commit(&d3).await.unwrap();
    src.close().await.unwrap();
    drop(src);
    let mut src = bus
        .subscribe(&identity(&g1), std::slice::from_ref(&topic))
        .await
        .unwrap();
    bus.publish(event(&topic, "made", "k1", 4)).await.unwrap();
    let d = next(&mut src).await;
    assert_eq!(
        payload_n(&d),
        4,
        "a group resumes right after its last commit"
    );
    src.commit(&d).await.unwrap();
    src.close().await.unwrap();
    drop(src);

    // Commit in the middle: uncommitted events are delivered again.
    let g2 = format!("g2-{s}");
    let mut src = bus
        .subscribe(&identity(&g2), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let first = next(&mut src).await;
    let _second = next(&mut src).await;
    src.commit(&first).await.unwrap();
    src.close().await.unwrap();
    drop(src);
    let mut src = bus
        .subscribe(&identity(&g2), std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(
        payload_n(&next(&mut src).await),
        1,
        "events after the last commit are delivered again"
    );
    src.close().await.unwrap();
    drop(src);

    // A subscriber whose handler always fails dead-letters with the failure headers; a
    // different group on the DLQ topic sees the copy.
    let dlq = Topic::try_from(format!("dlq-{s}")).unwrap();
    let service = format!("svc-{s}");
    let handler = Arc::new(FailingHandler {
        topic: topic.clone(),
    });
    let config = SubscriberConfig {
        max_retries: 1,
        retry_backoff: Duration::from_millis(10),
        enable_dlq: true,
        dlq_topic: dlq.clone(),
    };
    let mut sub = Subscriber::subscribe(bus.clone(), identity(&service), config, handler)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(EVENT_WAIT, sub.run_once())
        .await
        .expect("the subscriber gets an event in time")
        .unwrap();
    assert!(matches!(outcome, Outcome::DeadLettered { .. }));
    let mut dlq_src = bus
        .subscribe(
            &identity(&format!("dlq-reader-{s}")),
            std::slice::from_ref(&dlq),
        )
        .await
        .unwrap();
    let dead = next(&mut dlq_src).await;
    let dead = dead.event.as_ref().unwrap();
    assert_eq!(dead.payload, sent[0].payload);
    assert_eq!(dead.headers["exc_class"], "AlwaysFails");
    assert_eq!(dead.headers["original_topic"], topic.as_str());
    assert_eq!(
        dead.headers["original_event_id"],
        sent[0].event_id().unwrap()
    );
    assert_eq!(dead.headers["service"], service);
    dlq_src.close().await.unwrap();
    // Stop in between records: run_until returns once shutdown completes.
    tokio::time::timeout(EVENT_WAIT, sub.run_until(async {}))
        .await
        .expect("run_until honours shutdown")
        .unwrap();
}

#[derive(Debug)]
struct FailingHandler {
    topic: Topic,
}

#[async_trait::async_trait]
impl EventHandler for FailingHandler {
    fn subscriptions(&self) -> Vec<Subscription> {
        vec![Subscription {
            topic: self.topic.clone(),
            event_types: vec![EventType::try_from("made").unwrap()],
        }]
    }

    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        Err(HandlerError::new("AlwaysFails", "by design"))
    }
}
