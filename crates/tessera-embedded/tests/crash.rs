//! Crash safety: a child process (this test binary re-executed with [`CHILD_ENV`] set) inserts
//! documents, publishes events and consumes them with commits, printing every acknowledged
//! write after the call returned. The parent SIGKILLs it mid-stream, reopens the file and
//! checks that everything acknowledged is there, intact and once, and that the consumer
//! group resumes right after its last commit. Several rounds share one file.

// Test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_embedded::{EmbeddedOptions, EmbeddedStore};
use tessera_kit::dao::{CollectionSpec, DaoFactory, Filter};
use tessera_kit::events::{ConsumerIdentity, Event, EventBus, EventPublisher, EventType, Topic};

/// Set (to the database path) in the child process.
const CHILD_ENV: &str = "TESSERA_EMBEDDED_CRASH_CHILD_DB";
/// The round number, in the child process.
const ROUND_ENV: &str = "TESSERA_EMBEDDED_CRASH_ROUND";
const GROUP: &str = "crash-consumer";
const TOPIC: &str = "crash";
const ROUNDS: u32 = 3;
/// Acknowledged documents and commits after which the child is killed.
const KILL_AFTER_DOCS: usize = 200;
const KILL_AFTER_COMMITS: usize = 20;
/// The child stops by itself after this many documents (a kill that never came).
const CHILD_MAX_DOCS: usize = 20_000;

fn spec() -> CollectionSpec {
    CollectionSpec::new("crash_docs", "id").unique("email")
}

fn topic() -> Topic {
    Topic::try_from(TOPIC).unwrap()
}

/// The filler of document `k`, long enough that a write spans several pages.
fn blob(k: u64) -> String {
    "x".repeat(3000 + usize::try_from(k % 700).unwrap())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The child's body; a no-op unless this binary was started as the child.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    // Ends the harness's "test crash_child ... " line, so that our lines start clean.
    say("");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // A short lease, so that the parent's consumer takes over soon after the kill.
        let options = EmbeddedOptions {
            lease_ttl: Duration::from_millis(1000),
            ..EmbeddedOptions::default()
        };
        let store = EmbeddedStore::open_with(&path, options).unwrap();
        let consumer = {
            let store = store.clone();
            tokio::spawn(async move {
                let identity = ConsumerIdentity {
                    service_name: GROUP.into(),
                    instance_id: format!("child-{round}"),
                };
                let mut src = store.subscribe(&identity, &[topic()]).await.unwrap();
                let mut first = true;
                loop {
                    let d = src.next().await.unwrap();
                    if first {
                        say(&format!("FIRST {}", d.offset));
                        first = false;
                    }
                    src.commit(&d).await.unwrap();
                    say(&format!("COMMIT {}", d.offset));
                }
            })
        };
        let dao = store.document_dao(spec()).await.unwrap();
        for k in 0..u64::try_from(CHILD_MAX_DOCS).unwrap() {
            let id = format!("{round}-{k:06}");
            let doc = json!({
                "id": id, "round": round, "k": k, "email": format!("{id}@crash"), "blob": blob(k)
            });
            dao.insert(doc.as_object().cloned().unwrap()).await.unwrap();
            say(&format!("DOC {id}"));
            let event = Event::new(
                topic(),
                EventType::try_from("made").unwrap(),
                id.clone(),
                json!({"id": id, "k": k, "blob": blob(k)}),
                format!("corr-{id}"),
            );
            let event_id = event.event_id().unwrap().to_owned();
            store.publish(event).await.unwrap();
            say(&format!("EVENT {event_id} {id}"));
        }
        consumer.abort();
    });
}

/// What the child acknowledged in one round.
#[derive(Debug, Default)]
struct Acks {
    docs: Vec<String>,
    events: Vec<(String, String)>,
    commits: Vec<i64>,
    first: Option<i64>,
}

impl Acks {
    fn take(&mut self, line: &str) {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("DOC"), Some(id), None) => self.docs.push(id.to_owned()),
            (Some("EVENT"), Some(event_id), Some(id)) => {
                self.events.push((event_id.to_owned(), id.to_owned()));
            }
            (Some("COMMIT"), Some(offset), None) => self.commits.push(offset.parse().unwrap()),
            (Some("FIRST"), Some(offset), None) => self.first = Some(offset.parse().unwrap()),
            // The test harness's own output.
            _ => {}
        }
    }
}

/// Runs one child until it has acknowledged enough, kills it and collects every complete
/// line it wrote.
fn run_child(path: &Path, round: u32) -> Acks {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acks = Acks::default();
    let mut killed = false;
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line cut short by the kill was not fully acknowledged; ignore it.
        let Some(complete) = line.strip_suffix('\n') else {
            continue;
        };
        acks.take(complete);
        if !killed
            && acks.docs.len() >= KILL_AFTER_DOCS + 37 * usize::try_from(round).unwrap()
            && acks.commits.len() >= KILL_AFTER_COMMITS
        {
            // SIGKILL on Unix: no destructor, no flush, no lease release.
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the child stopped before it was killed ({status}); acks: {} docs, {} commits",
        acks.docs.len(),
        acks.commits.len()
    );
    acks
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acked_docs = BTreeSet::new();
    let mut acked_events = BTreeMap::new();
    // Where the child's consumer must start: right after the group's committed offset.
    let mut expected_first: Option<i64> = Some(1);

    for round in 0..ROUNDS {
        let acks = run_child(&path, round);
        assert!(acks.commits.windows(2).all(|w| w[0] < w[1]));
        if let Some(want) = expected_first {
            assert_eq!(
                acks.first,
                Some(want),
                "round {round}: the child's consumer resumes after the last commit"
            );
        }
        acked_docs.extend(acks.docs.iter().cloned());
        acked_events.extend(acks.events.iter().cloned());

        expected_first = Some(rt.block_on(verify_round(
            &path,
            round,
            &acks,
            &acked_docs,
            &acked_events,
        )));
    }
}

/// Checks the file after round `round`; returns the seq the group must resume at.
async fn verify_round(
    path: &Path,
    round: u32,
    acks: &Acks,
    acked_docs: &BTreeSet<String>,
    acked_events: &BTreeMap<String, String>,
) -> i64 {
    let store = EmbeddedStore::open(path).unwrap();

    // Documents: every acknowledged one, each complete, at most one unacknowledged (the
    // insert in flight at the kill) per round.
    let dao = store.document_dao(spec()).await.unwrap();
    let docs = dao.find_all(&Filter::new()).await.unwrap();
    let mut stored = BTreeSet::new();
    for doc in &docs {
        let id = doc["id"].as_str().unwrap().to_owned();
        let (r, k) = id.split_once('-').unwrap();
        let k: u64 = k.parse().unwrap();
        let want = json!({
            "id": id, "round": r.parse::<u64>().unwrap(), "k": k,
            "email": format!("{id}@crash"), "blob": blob(k)
        });
        assert_eq!(
            &Value::Object(doc.clone()),
            &want,
            "a stored document is complete"
        );
        assert!(stored.insert(id), "no duplicate documents");
    }
    let missing: Vec<_> = acked_docs.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "round {round}: acknowledged documents lost: {missing:?}"
    );
    assert!(
        stored.len() - acked_docs.len() <= usize::try_from(round + 1).unwrap(),
        "at most one unacknowledged document per round"
    );
    for id in &acks.docs {
        assert_eq!(dao.get_by_id(id).await.unwrap()["id"], id.as_str());
    }

    // Events: every acknowledged one, each complete, no duplicate ids, and none without
    // its document (an event is published only after its document was acknowledged).
    let log = store.event_log();
    let records = log.tail(&[topic()], 0, usize::MAX).await.unwrap();
    let mut event_ids = BTreeMap::new();
    for record in &records {
        let event = record.event.as_ref().expect("every stored event decodes");
        let event_id = event.event_id().unwrap().to_owned();
        assert!(
            event_ids.insert(event_id.clone(), record.seq).is_none(),
            "no duplicate events"
        );
        if event.event_type.as_str() == "marker" {
            continue;
        }
        let id = event.payload["id"].as_str().unwrap();
        let k = event.payload["k"].as_u64().unwrap();
        assert_eq!(event.key, id);
        assert_eq!(event.payload, json!({"id": id, "k": k, "blob": blob(k)}));
        assert_eq!(event.correlation_id(), Some(format!("corr-{id}").as_str()));
        assert!(stored.contains(id), "an event's document exists");
        if let Some(acked_id) = acked_events.get(&event_id) {
            assert_eq!(acked_id, id);
        }
    }
    let missing: Vec<_> = acked_events
        .keys()
        .filter(|id| !event_ids.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: acknowledged events lost: {missing:?}"
    );

    // The group's offset is the last printed commit, or the one after it when the kill
    // came between a commit and its print.
    let committed = log.committed_offsets(GROUP).await.unwrap()[TOPIC];
    eprintln!(
        "round {round}: {} documents stored ({} acknowledged this round), {} events, \
         committed {committed}, last printed commit {:?}",
        stored.len(),
        acks.docs.len(),
        records.len(),
        acks.commits.last()
    );
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    let last_printed = *acks.commits.last().unwrap();
    let after_printed = seqs.iter().copied().find(|s| *s > last_printed);
    assert!(
        committed == last_printed || Some(committed) == after_printed,
        "round {round}: committed {committed}, last printed commit {last_printed}"
    );

    // A consumer of the group resumes exactly after the commit. A marker guarantees that
    // there is something after it.
    let marker = Event::new(
        topic(),
        EventType::try_from("marker").unwrap(),
        "marker",
        json!({"round": round}),
        "marker",
    );
    store.publish(marker).await.unwrap();
    let resume_at = log
        .tail(&[topic()], committed + 1, 1)
        .await
        .unwrap()
        .first()
        .unwrap()
        .seq;
    let identity = ConsumerIdentity {
        service_name: GROUP.into(),
        instance_id: "verifier".into(),
    };
    let mut src = store.subscribe(&identity, &[topic()]).await.unwrap();
    // Waits for the killed child's lease to expire.
    let d = tokio::time::timeout(Duration::from_secs(60), src.next())
        .await
        .expect("the group's lease frees up")
        .unwrap();
    assert_eq!(
        d.offset, resume_at,
        "round {round}: resume right after the commit"
    );
    src.close().await.unwrap();
    assert_eq!(
        log.committed_offsets(GROUP).await.unwrap()[TOPIC],
        committed,
        "reading without a commit leaves the offset"
    );
    resume_at
}
