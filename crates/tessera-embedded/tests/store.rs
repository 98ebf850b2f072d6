//! Behaviour beyond the contract suites: constraint mapping, filters, leases, sharing a
//! file between two stores (a stand-in for two processes), concurrency and bad records.

// Test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_embedded::{EmbeddedOptions, EmbeddedStore, Error};
use tessera_kit::dao::{
    CollectionSpec, DaoFactory, Document, DocumentDao, Error as DaoError, Filter,
};
use tessera_kit::events::{
    ConsumerIdentity, Delivery, Error as EventError, Event, EventBus, EventPublisher, EventSource,
    EventType, Topic,
};

const WAIT: Duration = Duration::from_secs(30);

fn doc(v: Value) -> Document {
    v.as_object().cloned().unwrap()
}

fn topic(s: &str) -> Topic {
    Topic::try_from(s).unwrap()
}

fn event(t: &Topic, n: i64) -> Event {
    Event::new(
        t.clone(),
        EventType::try_from("made").unwrap(),
        format!("k{n}"),
        json!({ "n": n }),
        "corr",
    )
}

fn identity(group: &str, instance: &str) -> ConsumerIdentity {
    ConsumerIdentity {
        service_name: group.into(),
        instance_id: instance.into(),
    }
}

fn n_of(d: &Delivery) -> i64 {
    d.event.as_ref().unwrap().payload["n"].as_i64().unwrap()
}

async fn next(src: &mut Box<dyn EventSource>) -> Delivery {
    tokio::time::timeout(WAIT, src.next())
        .await
        .expect("an event arrives")
        .unwrap()
}

/// Whether `src` stays without a delivery for a while (used only where a delivery would be
/// a bug, so a slow machine can only make the test pass, never fail).
async fn stays_idle(src: &mut Box<dyn EventSource>) -> bool {
    tokio::time::timeout(Duration::from_millis(400), src.next())
        .await
        .is_err()
}

fn open(path: &Path) -> EmbeddedStore {
    EmbeddedStore::open(path).unwrap()
}

fn already_exists_field(result: Result<(), DaoError>) -> String {
    match result {
        Err(DaoError::AlreadyExists { field, .. }) => field,
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

async fn people(store: &EmbeddedStore) -> Arc<dyn DocumentDao> {
    store
        .document_dao(
            CollectionSpec::new("people", "id")
                .unique("email")
                .unique("handle"),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraint_violations_name_the_field_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let dao = people(&store).await;
    let ada = doc(json!({"id": "ada", "email": "a@x", "handle": "ada"}));
    dao.insert(ada.clone()).await.unwrap();

    let f = already_exists_field(
        dao.insert(doc(json!({"id": "ada", "email": "b@x", "handle": "b"})))
            .await,
    );
    assert_eq!(f, "id");
    let f = already_exists_field(
        dao.insert(doc(json!({"id": "b", "email": "a@x", "handle": "b"})))
            .await,
    );
    assert_eq!(f, "email");
    let f = already_exists_field(
        dao.insert(doc(json!({"id": "b", "email": "b@x", "handle": "ada"})))
            .await,
    );
    assert_eq!(f, "handle");
    assert!(matches!(
        dao.get_by_id("b").await,
        Err(DaoError::NotFound { .. })
    ));

    dao.insert(doc(json!({"id": "b", "email": "b@x", "handle": "b"})))
        .await
        .unwrap();
    let f = already_exists_field(
        dao.upsert(doc(json!({"id": "b", "email": "b@x", "handle": "ada"})))
            .await,
    );
    assert_eq!(f, "handle");
    let f = already_exists_field(
        dao.update(doc(json!({"id": "b", "email": "a@x", "handle": "b"})))
            .await,
    );
    assert_eq!(f, "email");
    assert_eq!(
        dao.get_by_id("b").await.unwrap(),
        doc(json!({"id": "b", "email": "b@x", "handle": "b"})),
        "a rejected upsert or update changes nothing"
    );
    assert_eq!(dao.get_by_id("ada").await.unwrap(), ada);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_but_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = open(&path);
    let dao = people(&store).await;
    // 100 pairs racing for one e-mail address each: group commit puts many of them in one
    // transaction, and a clash must roll back only the call that clashed.
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let dao = dao.clone();
            tokio::spawn(async move {
                let person = doc(json!({"id": format!("p{i}"), "email": format!("{}@x", i / 2), "handle": format!("h{i}")}));
                (i, dao.insert(person).await)
            })
        })
        .collect();
    let mut won = Vec::new();
    for call in calls {
        let (i, result) = call.await.unwrap();
        match result {
            Ok(()) => won.push(i),
            Err(DaoError::AlreadyExists { field, .. }) => assert_eq!(field, "email"),
            Err(other) => panic!("insert {i}: {other:?}"),
        }
    }
    assert_eq!(won.len(), 100, "{won:?}");
    let missing = dao.update(doc(json!({"id": "nobody", "email": "n@x", "handle": "n"})));
    let first = format!("p{}", won[0]);
    let deleted = dao.delete(&first);
    let (missing, deleted) = tokio::join!(missing, deleted);
    assert!(
        matches!(missing, Err(DaoError::NotFound { .. })),
        "{missing:?}"
    );
    deleted.unwrap();
    // Every acknowledged write is in the file, as another store on it sees.
    let other = people(&open(&path)).await;
    let stored = other.find_all(&Filter::new()).await.unwrap();
    assert_eq!(stored.len(), 99);
    for i in &won[1..] {
        assert_eq!(
            other.get_by_id(&format!("p{i}")).await.unwrap()["email"],
            json!(format!("{}@x", i / 2))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_values_compare_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let dao = people(&store).await;
    // 1, true, "1" and 1.0 are different JSON values; missing and null never clash.
    for (id, email) in [
        ("a", json!(1)),
        ("b", json!(true)),
        ("c", json!("1")),
        ("d", json!(1.5)),
        ("e", Value::Null),
        ("f", Value::Null),
    ] {
        dao.insert(doc(json!({"id": id, "email": email})))
            .await
            .unwrap();
    }
    dao.insert(doc(json!({"id": "g"}))).await.unwrap();
    dao.insert(doc(json!({"id": "h"}))).await.unwrap();
    for (id, email) in [("x", json!(1)), ("y", json!(true)), ("z", json!("1"))] {
        let f = already_exists_field(dao.insert(doc(json!({"id": id, "email": email}))).await);
        assert_eq!(f, "email");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_shared_value_unique_is_an_invalid_spec() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let plain = store
        .document_dao(CollectionSpec::new("things", "id"))
        .await
        .unwrap();
    plain
        .insert(doc(json!({"id": "1", "colour": "red"})))
        .await
        .unwrap();
    plain
        .insert(doc(json!({"id": "2", "colour": "red"})))
        .await
        .unwrap();
    let err = store
        .document_dao(CollectionSpec::new("things", "id").unique("colour"))
        .await
        .unwrap_err();
    assert!(matches!(err, DaoError::InvalidSpec(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_agree_with_the_reference_matcher() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let dao = store
        .document_dao(CollectionSpec::new("mixed.things-1", "id").unique("u"))
        .await
        .unwrap();
    let values = [
        json!(1),
        json!(-7),
        json!(1.0),
        json!(2.5),
        json!(true),
        json!(false),
        json!("1"),
        json!("true"),
        json!(""),
        json!(null),
        json!([1, 2]),
        json!({"a": 1}),
        json!(u64::MAX),
    ];
    let mut docs = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut d = doc(json!({"id": format!("d{i:02}"), "v": v, "u": i, "a.b": v, "we\"ird": v}));
        if i % 3 == 0 {
            d.remove("v");
        }
        dao.insert(d.clone()).await.unwrap();
        docs.push(d);
    }
    // A number id is stored under its JSON form.
    let numeric = doc(json!({"id": 42, "v": 1}));
    dao.insert(numeric.clone()).await.unwrap();
    docs.push(numeric.clone());
    assert_eq!(dao.get_by_id("42").await.unwrap(), numeric);

    let mut fields: Vec<&str> = vec!["v", "a.b", "we\"ird", "missing", "u"];
    fields.push("id");
    let mut wants: Vec<Value> = values.to_vec();
    wants.extend([json!("d03"), json!(42), json!("42"), json!(3)]);
    for field in &fields {
        for want in &wants {
            let filter: Filter = [((*field).to_owned(), want.clone())].into();
            let mut expected: Vec<Document> = docs
                .iter()
                .filter(|d| tessera_kit::dao::matches(d, &filter))
                .cloned()
                .collect();
            expected.sort_by_key(|d| match &d["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let got = dao.find_all(&filter).await.unwrap();
            assert_eq!(got, expected, "find_all {field} = {want}");
            let one = dao.find_one(&filter).await;
            match expected.len() {
                0 => assert_eq!(one.unwrap(), None),
                1 => assert_eq!(one.unwrap().as_ref(), expected.first()),
                _ => assert!(matches!(one, Err(DaoError::MultipleHits { .. }))),
            }
        }
    }
    // Two conditions at once.
    let filter: Filter = [("v".to_owned(), json!(true)), ("u".to_owned(), json!(4))].into();
    assert_eq!(dao.find_all(&filter).await.unwrap(), vec![docs[4].clone()]);
    let filter: Filter = [("v".to_owned(), json!(true)), ("u".to_owned(), json!(5))].into();
    assert!(dao.find_all(&filter).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let a = open(&path);
    let b = open(&path);

    let dao_a = people(&a).await;
    dao_a
        .insert(doc(json!({"id": "ada", "email": "a@x", "handle": "ada"})))
        .await
        .unwrap();
    let dao_b = people(&b).await;
    assert_eq!(dao_b.get_by_id("ada").await.unwrap()["email"], "a@x");
    let f = already_exists_field(
        dao_b
            .insert(doc(json!({"id": "bob", "email": "a@x", "handle": "bob"})))
            .await,
    );
    assert_eq!(f, "email");
    dao_b.delete("ada").await.unwrap();
    assert!(matches!(
        dao_a.get_by_id("ada").await,
        Err(DaoError::NotFound { .. })
    ));

    // Events published through one store reach a consumer of the other (by polling:
    // there is no in-process wake-up between them).
    let t = topic("shared");
    let mut src = b
        .subscribe(&identity("g", "b"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        let d = next(&mut src).await;
        src.commit(&d).await.unwrap();
        src.close().await.unwrap();
        d
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.publish(event(&t, 1)).await.unwrap();
    let d = waiter.await.unwrap();
    assert_eq!(n_of(&d), 1);
    assert_eq!(
        a.event_log().committed_offsets("g").await.unwrap()["shared"],
        d.offset
    );

    // A member of the same group in the other store resumes after that commit.
    a.publish(event(&t, 2)).await.unwrap();
    let mut src = a
        .subscribe(&identity("g", "a"), std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut src).await), 2);
    src.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_per_group_consumes_and_the_next_resumes_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = open(&path);
    let other_process = open(&path);
    let t = topic("work");
    for n in 0..4 {
        store.publish(event(&t, n)).await.unwrap();
    }
    let mut first = store
        .subscribe(&identity("g", "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let mut same_process = store
        .subscribe(&identity("g", "2"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let mut remote = other_process
        .subscribe(&identity("g", "3"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let d0 = next(&mut first).await;
    let d1 = next(&mut first).await;
    assert_eq!((n_of(&d0), n_of(&d1)), (0, 1));
    first.commit(&d0).await.unwrap();
    assert!(stays_idle(&mut same_process).await, "the lease is held");
    assert!(stays_idle(&mut remote).await, "the lease is held");

    // Another group is not affected.
    let mut other_group = store
        .subscribe(&identity("h", "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut other_group).await), 0);
    other_group.close().await.unwrap();

    first.close().await.unwrap();
    assert!(matches!(first.next().await, Err(EventError::Closed)));
    assert!(matches!(first.commit(&d1).await, Err(EventError::Closed)));
    first.close().await.unwrap();

    // One of the waiting members takes over, from the event after the commit.
    let (winner, mut loser) = tokio::select! {
        d = same_process.next() => (d.unwrap(), remote),
        d = remote.next() => (d.unwrap(), same_process),
    };
    assert_eq!(n_of(&winner), 1, "uncommitted events are delivered again");
    assert!(stays_idle(&mut loser).await);
    loser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_member_releases_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    // An hour-long lease: only the release lets the second member in.
    let options = EmbeddedOptions {
        lease_ttl: Duration::from_secs(3600),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path().join("s.sqlite"), options).unwrap();
    let t = topic("work");
    store.publish(event(&t, 0)).await.unwrap();
    let mut a = store
        .subscribe(&identity("g", "a"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let d = next(&mut a).await;
    a.commit(&d).await.unwrap();
    drop(a);
    store.publish(event(&t, 1)).await.unwrap();
    let mut b = store
        .subscribe(&identity("g", "b"), std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut b).await), 1);
}

#[test]
fn an_expired_lease_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let t = topic("work");
    // A member whose runtime dies without closing (like a killed process).
    let options = EmbeddedOptions {
        lease_ttl: Duration::from_millis(600),
        ..EmbeddedOptions::default()
    };
    let dying = EmbeddedStore::open_with(&path, options).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for n in 0..3 {
            dying.publish(event(&t, n)).await.unwrap();
        }
        let mut src = dying
            .subscribe(&identity("g", "a"), std::slice::from_ref(&t))
            .await
            .unwrap();
        let d = next(&mut src).await;
        src.commit(&d).await.unwrap();
        assert_eq!(n_of(&next(&mut src).await), 1);
        std::mem::forget(src);
    });
    drop(rt);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = open(&path);
        let mut src = store
            .subscribe(&identity("g", "b"), std::slice::from_ref(&t))
            .await
            .unwrap();
        assert_eq!(n_of(&next(&mut src).await), 1);
        src.close().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_lease_was_taken_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = open(&path);
    let t = topic("work");
    for n in 0..3 {
        store.publish(event(&t, n)).await.unwrap();
    }
    let mut src = store
        .subscribe(&identity("g", "a"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let d0 = next(&mut src).await;
    src.commit(&d0).await.unwrap();
    let d1 = next(&mut src).await;

    // Another member took the lease while this one stalled.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(10)).unwrap();
    raw.execute(
        "UPDATE tessera_group_leases SET owner = 'intruder', expires_ms = 9e15 WHERE grp = 'g'",
        [],
    )
    .unwrap();
    let err = src.commit(&d1).await.unwrap_err();
    let EventError::Backend(cause) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert!(matches!(
        cause.downcast_ref::<Error>(),
        Some(Error::LeaseLost { group }) if group == "g"
    ));
    assert_eq!(
        store.event_log().committed_offsets("g").await.unwrap()["work"],
        d0.offset,
        "the refused commit stored nothing"
    );

    // Once the intruder's lease ends, this member takes it back and resumes after the
    // last commit.
    raw.execute(
        "UPDATE tessera_group_leases SET expires_ms = 0 WHERE grp = 'g'",
        [],
    )
    .unwrap();
    assert_eq!(n_of(&next(&mut src).await), 1);
    src.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_merge_in_seq_order_with_offsets_per_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let (a, b, c) = (topic("a"), topic("b"), topic("c"));
    for n in 0..6 {
        let t = [&a, &b, &c][usize::try_from(n).unwrap() % 3];
        store.publish(event(t, n)).await.unwrap();
    }
    let mut src = store
        .subscribe(&identity("g", "1"), &[b.clone(), a.clone(), a.clone()])
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut src).await);
    }
    let ns: Vec<i64> = got.iter().map(n_of).collect();
    assert_eq!(ns, [0, 1, 3, 4]);
    assert!(got.windows(2).all(|w| w[0].offset < w[1].offset));
    // Commit topic a up to n=3 only; b stays uncommitted.
    src.commit(&got[2]).await.unwrap();
    src.close().await.unwrap();
    let mut src = store
        .subscribe(&identity("g", "1"), &[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut src).await), 1, "b starts over");
    assert_eq!(n_of(&next(&mut src).await), 4, "a resumes after 3");
    src.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_records_are_delivered_as_errors_and_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = open(&path);
    let t = topic("work");
    store.publish(event(&t, 0)).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(10)).unwrap();
    let insert = "INSERT INTO tessera_events (topic, type, key, payload, headers, created) \
                  VALUES ('work', ?1, 'k', ?2, ?3, 'now')";
    raw.execute(insert, ["not a type!", "{}", "{}"]).unwrap();
    raw.execute(insert, ["made", "{not json", "{}"]).unwrap();
    raw.execute(insert, ["made", "{}", "[1]"]).unwrap();
    raw.execute(
        "INSERT INTO tessera_events (topic, type, key, payload, headers, created) \
         VALUES ('work', 'made', 'k', x'00ff', '{}', 'now')",
        [],
    )
    .unwrap();
    store.publish(event(&t, 5)).await.unwrap();

    let mut src = store
        .subscribe(&identity("g", "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut src).await), 0);
    for want in ["event type", "payload is not json", "headers", "blob"] {
        let d = next(&mut src).await;
        let reason = d.event.as_ref().unwrap_err();
        assert!(reason.contains(want), "{reason:?} should mention {want:?}");
        src.commit(&d).await.unwrap();
    }
    let last = next(&mut src).await;
    assert_eq!(n_of(&last), 5);
    src.commit(&last).await.unwrap();
    src.close().await.unwrap();

    let logged = store
        .event_log()
        .tail(std::slice::from_ref(&t), 0, 100)
        .await
        .unwrap();
    assert_eq!(logged.len(), 6);
    assert_eq!(logged.iter().filter(|l| l.event.is_err()).count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_reads_without_touching_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let log = store.event_log();
    assert_eq!(log.last_seq().await.unwrap(), 0);
    assert!(log.tail(&[], 0, 10).await.unwrap().is_empty());
    let (a, b) = (topic("a"), topic("b"));
    let mut seqs = Vec::new();
    for n in 0..6 {
        let t = if n % 2 == 0 { &a } else { &b };
        seqs.push(store.append(event(t, n)).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log.last_seq().await.unwrap(), seqs[5]);

    let all = log.tail(&[], 0, 100).await.unwrap();
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), seqs);
    assert!(all.iter().all(|l| l.created.ends_with('Z')));
    let only_b = log
        .tail(std::slice::from_ref(&b), seqs[1], 2)
        .await
        .unwrap();
    assert_eq!(
        only_b.iter().map(|l| l.seq).collect::<Vec<_>>(),
        [seqs[1], seqs[3]],
        "from_seq is inclusive and limit caps"
    );
    let both = log
        .tail(&[a.clone(), b.clone()], seqs[4], 10)
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    let first = all[0].event.as_ref().unwrap();
    assert_eq!(first.payload, json!({"n": 0}));
    assert!(first.event_id().is_some());

    // Reading the log leaves a group's position alone.
    let mut src = store
        .subscribe(&identity("g", "1"), std::slice::from_ref(&a))
        .await
        .unwrap();
    let d = next(&mut src).await;
    src.commit(&d).await.unwrap();
    log.tail(std::slice::from_ref(&a), 0, 100).await.unwrap();
    assert_eq!(
        log.committed_offsets("g")
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [("a".to_owned(), seqs[0])]
    );
    assert!(log.committed_offsets("nobody").await.unwrap().is_empty());
    src.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_read_write_and_consume_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = open(&path);
    let second = open(&path);
    let t = topic("load");
    const TASKS: usize = 12;
    const EACH: usize = 25;
    let consumer = {
        let store = second.clone();
        let t = t.clone();
        tokio::spawn(async move {
            let mut src = store.subscribe(&identity("load", "c"), &[t]).await.unwrap();
            let mut seen = Vec::new();
            while seen.len() < TASKS * EACH {
                let d = next(&mut src).await;
                seen.push(d.event.as_ref().unwrap().key.clone());
                if seen.len() % 10 == 0 {
                    src.commit(&d).await.unwrap();
                }
            }
            src.close().await.unwrap();
            seen
        })
    };
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = if task % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let dao = people(&store).await;
            for i in 0..EACH {
                let id = format!("{task}-{i}");
                dao.insert(doc(
                    json!({"id": id, "email": format!("{id}@x"), "handle": id}),
                ))
                .await
                .unwrap();
                assert_eq!(dao.get_by_id(&id).await.unwrap()["handle"], id.as_str());
                let mut e = event(&t, 0);
                e.key = id.clone();
                store.publish(e).await.unwrap();
                let filter: Filter = [("email".to_owned(), json!(format!("{id}@x")))].into();
                assert!(dao.find_one(&filter).await.unwrap().is_some());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let dao = people(&store).await;
    let all = dao.find_all(&Filter::new()).await.unwrap();
    assert_eq!(all.len(), TASKS * EACH);
    let mut seen = consumer.await.unwrap();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), TASKS * EACH, "every event once");
}

#[test]
fn opening_reports_bad_paths_and_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "this is not a database\n".repeat(200)).unwrap();
    assert!(matches!(
        EmbeddedStore::open(file.join("sub/db.sqlite")),
        Err(Error::CreateDir { .. })
    ));
    let not_a_db = EmbeddedStore::open(&file);
    assert!(
        matches!(not_a_db, Err(Error::Sqlite(_))),
        "a file that is not a database is refused: {not_a_db:?}"
    );

    let path = dir.path().join("newer.sqlite");
    drop(EmbeddedStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    assert!(matches!(
        EmbeddedStore::open(&path),
        Err(Error::SchemaVersion { found: 99, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_config_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = tessera_embedded::EmbeddedConfig {
        embedded_db_path: dir.path().join("a/b/c.sqlite"),
    };
    let store = EmbeddedStore::from_config(&config).await.unwrap();
    assert_eq!(store.path(), config.embedded_db_path);
    assert!(config.embedded_db_path.exists());
}

#[test]
fn processes_may_create_the_file_at_the_same_time() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/fresh.sqlite");
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    EmbeddedStore::open(&path).map(drop)
                })
            })
            .collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_commit_never_moves_the_offset_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.sqlite"));
    let t = topic("work");
    for n in 0..4 {
        store.publish(event(&t, n)).await.unwrap();
    }
    let mut src = store
        .subscribe(&identity("g", "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    let d0 = next(&mut src).await;
    let _d1 = next(&mut src).await;
    let d2 = next(&mut src).await;
    src.commit(&d2).await.unwrap();
    src.commit(&d0).await.unwrap();
    assert_eq!(
        store.event_log().committed_offsets("g").await.unwrap()["work"],
        d2.offset
    );
    src.close().await.unwrap();
    let mut src = store
        .subscribe(&identity("g", "1"), std::slice::from_ref(&t))
        .await
        .unwrap();
    assert_eq!(n_of(&next(&mut src).await), 3);
    src.close().await.unwrap();
}
