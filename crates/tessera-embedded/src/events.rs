//! The event-bus protocol on SQLite: a durable append-only log, per-(group, topic)
//! committed offsets, and one lease per consumer group.
//!
//! - `tessera_events`: one row per event; `seq` is the offset (partition 0). Commits are
//!   serialised by SQLite, so a reader never sees seq `n + 1` without seq `n`.
//! - `tessera_offsets`: the last committed seq of each group and topic; it never moves
//!   backwards.
//! - `tessera_group_leases`: who may consume for a group, and until when. A member takes
//!   the lease when it is free, its own or expired, renews it every third of the TTL from
//!   a background task, and deletes it on close or drop. A member whose lease was taken
//!   over (it stalled longer than the TTL) gets [`Error::LeaseLost`] from `commit`, drops
//!   what it had buffered and waits for the lease again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;
use tessera_kit::events::{
    self, ConsumerIdentity, Delivery, Event, EventBus, EventPublisher, EventSource, EventType,
    Topic,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::EmbeddedStore;
use crate::error::{Error, Result};
use crate::pool::Inner;

/// Rows fetched per topic and poll.
const BATCH: usize = 256;
/// The first and the longest wait between polls of an idle source.
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(200);
/// The longest wait between attempts to take a group's lease.
const LEASE_POLL_MAX: Duration = Duration::from_millis(500);

const INSERT: &str = "INSERT INTO tessera_events (topic, type, key, payload, headers, created) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const COLUMNS: &str = "seq, topic, type, key, payload, headers, created";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn text_col(row: &Row<'_>, i: usize, name: &str) -> std::result::Result<String, String> {
    match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => std::str::from_utf8(t)
            .map(str::to_owned)
            .map_err(|_| format!("stored {name} is not utf-8")),
        Ok(other) => Err(format!(
            "stored {name} is {} instead of text",
            other.data_type().to_string().to_lowercase()
        )),
        Err(err) => Err(format!("stored {name} is unreadable: {err}")),
    }
}

/// Decodes a row of [`COLUMNS`]; a broken record becomes the reason it is broken.
fn decode_event(row: &Row<'_>) -> std::result::Result<Event, String> {
    let topic = Topic::try_from(text_col(row, 1, "topic")?).map_err(|e| e.to_string())?;
    let event_type = EventType::try_from(text_col(row, 2, "type")?).map_err(|e| e.to_string())?;
    let key = text_col(row, 3, "key")?;
    let payload: Value = serde_json::from_str(&text_col(row, 4, "payload")?)
        .map_err(|e| format!("payload is not json: {e}"))?;
    let headers: BTreeMap<String, String> = serde_json::from_str(&text_col(row, 5, "headers")?)
        .map_err(|e| format!("headers are not a json object of strings: {e}"))?;
    Ok(Event {
        topic,
        event_type,
        key,
        payload,
        headers,
    })
}

/// Appends one event in its own transaction; returns its seq. Blocking.
fn append(conn: &Connection, event: &Event) -> Result<i64> {
    let payload = serde_json::to_string(&event.payload)?;
    let headers = serde_json::to_string(&event.headers)?;
    conn.prepare_cached(INSERT)?.execute(params![
        event.topic.as_str(),
        event.event_type.as_str(),
        event.key,
        payload,
        headers,
        now_rfc3339(),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The next events after each topic's cursor, merged in seq order. Blocking.
fn fetch(conn: &Connection, cursors: &[(Topic, i64)]) -> Result<Vec<Delivery>> {
    // One read transaction, so that all topics are read from the same snapshot and the
    // merge cannot skip a seq committed between two queries.
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tessera_events WHERE topic = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    let mut all = Vec::new();
    // Seqs beyond the last row of a full batch may hide rows of that topic.
    let mut cutoff = i64::MAX;
    let batch = i64::try_from(BATCH).unwrap_or(i64::MAX);
    for (topic, after) in cursors {
        let mut rows = stmt.query(params![topic.as_str(), after, batch])?;
        let mut n = 0;
        let mut last = 0;
        while let Some(row) = rows.next()? {
            last = row.get(0)?;
            n += 1;
            all.push(Delivery {
                topic: topic.clone(),
                partition: 0,
                offset: last,
                event: decode_event(row),
            });
        }
        if n == BATCH {
            cutoff = cutoff.min(last);
        }
    }
    all.retain(|d| d.offset <= cutoff);
    all.sort_by_key(|d| d.offset);
    Ok(all)
}

/// Takes the lease of `group` when it is free, ours or expired, and returns the group's
/// committed offsets; `None` when another member holds it. Blocking.
fn try_acquire(
    conn: &mut Connection,
    group: &str,
    member: &str,
    ttl: Duration,
) -> Result<Option<HashMap<String, i64>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let holder: Option<(String, i64)> = tx
        .prepare_cached("SELECT owner, expires_ms FROM tessera_group_leases WHERE grp = ?1")?
        .query_row([group], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((owner, expires)) = holder
        && owner != member
        && expires > now
    {
        return Ok(None);
    }
    tx.prepare_cached(
        "INSERT INTO tessera_group_leases (grp, owner, expires_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (grp) DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms",
    )?
    .execute(params![group, member, now.saturating_add(ms(ttl))])?;
    let offsets = tx
        .prepare_cached("SELECT topic, committed FROM tessera_offsets WHERE grp = ?1")?
        .query_map([group], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<HashMap<String, i64>>>()?;
    tx.commit()?;
    Ok(Some(offsets))
}

/// Extends our lease; `false` when it is no longer ours. Blocking.
fn renew(conn: &Connection, group: &str, member: &str, ttl: Duration) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE tessera_group_leases SET expires_ms = ?3 WHERE grp = ?1 AND owner = ?2",
        )?
        .execute(params![group, member, now_ms().saturating_add(ms(ttl))])?;
    Ok(changed == 1)
}

/// Gives up our lease, if we hold it. Blocking.
fn release(conn: &Connection, group: &str, member: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM tessera_group_leases WHERE grp = ?1 AND owner = ?2")?
        .execute([group, member])?;
    Ok(())
}

/// Moves the group's offset for `topic` up to `offset`, if we still hold the lease, and
/// renews the lease. Blocking.
fn commit_offset(
    conn: &mut Connection,
    group: &str,
    member: &str,
    topic: &str,
    offset: i64,
    ttl: Duration,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let owner: Option<String> = tx
        .prepare_cached("SELECT owner FROM tessera_group_leases WHERE grp = ?1")?
        .query_row([group], |row| row.get(0))
        .optional()?;
    if owner.as_deref() != Some(member) {
        return Err(Error::LeaseLost {
            group: group.to_owned(),
        });
    }
    tx.prepare_cached(
        "INSERT INTO tessera_offsets (grp, topic, committed, updated) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (grp, topic) DO UPDATE \
         SET committed = max(committed, excluded.committed), updated = excluded.updated",
    )?
    .execute(params![group, topic, offset, now_rfc3339()])?;
    tx.prepare_cached("UPDATE tessera_group_leases SET expires_ms = ?2 WHERE grp = ?1")?
        .execute(params![group, now_ms().saturating_add(ms(ttl))])?;
    tx.commit()?;
    Ok(())
}

/// A held lease: renewed by a background task until dropped.
#[derive(Debug)]
struct Lease {
    lost: Arc<AtomicBool>,
    renewal: JoinHandle<()>,
}

impl Lease {
    fn start(inner: Arc<Inner>, group: String, member: String) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&lost);
        let ttl = inner.options.lease_ttl;
        let renewal = tokio::spawn(async move {
            let every = (ttl / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(every).await;
                let (g, m) = (group.clone(), member.clone());
                match inner.write(move |conn| renew(conn, &g, &m, ttl)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(group, "another member took over the consumer-group lease");
                        flag.store(true, Ordering::Release);
                        inner.notify_change();
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(group, error = %err, "cannot renew the consumer-group lease");
                    }
                }
            }
        });
        Self { lost, renewal }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// One member of a consumer group, reading some topics of the log. Made by
/// [`EventBus::subscribe`] on an [`EmbeddedStore`].
///
/// `next` first waits for the group's lease; holding it, it reads forward from an
/// in-memory cursor per topic that starts at the group's committed offsets.
#[derive(Debug)]
pub struct EmbeddedSource {
    inner: Arc<Inner>,
    group: String,
    member: String,
    topics: Vec<Topic>,
    cursors: HashMap<Topic, i64>,
    buffer: VecDeque<Delivery>,
    lease: Option<Lease>,
    /// Whether the lease row may be ours, so that close and drop must delete it.
    tried_lease: bool,
    changes: watch::Receiver<u64>,
    releases: watch::Receiver<u64>,
    closed: bool,
}

impl EmbeddedSource {
    fn new(inner: Arc<Inner>, identity: &ConsumerIdentity, topics: &[Topic]) -> Self {
        let mut topics = topics.to_vec();
        topics.sort();
        topics.dedup();
        let member = format!("{}/{}", identity.client_id(), uuid::Uuid::new_v4().simple());
        Self {
            changes: inner.changes.subscribe(),
            releases: inner.releases.subscribe(),
            inner,
            group: identity.service_name.clone(),
            member,
            topics,
            cursors: HashMap::new(),
            buffer: VecDeque::new(),
            lease: None,
            tried_lease: false,
            closed: false,
        }
    }

    /// This member's id in the lease table: `<client_id>/<random>`.
    pub fn member_id(&self) -> &str {
        &self.member
    }

    /// Waits until this member holds the group's lease, then resets the cursors to the
    /// group's committed offsets.
    async fn acquire(&mut self) -> Result<()> {
        let mut wait = POLL_MIN;
        let mut logged = false;
        loop {
            self.releases.borrow_and_update();
            self.tried_lease = true;
            let (group, member) = (self.group.clone(), self.member.clone());
            let ttl = self.inner.options.lease_ttl;
            let got = self
                .inner
                .write(move |conn| try_acquire(conn, &group, &member, ttl))
                .await?;
            if let Some(offsets) = got {
                self.cursors = self
                    .topics
                    .iter()
                    .map(|t| (t.clone(), offsets.get(t.as_str()).copied().unwrap_or(0)))
                    .collect();
                self.lease = Some(Lease::start(
                    Arc::clone(&self.inner),
                    self.group.clone(),
                    self.member.clone(),
                ));
                return Ok(());
            }
            if !logged {
                tracing::info!(group = %self.group, member = %self.member,
                    "another member holds the consumer-group lease, waiting");
                logged = true;
            }
            tokio::select! {
                _ = self.releases.changed() => {}
                () = tokio::time::sleep(wait) => wait = (wait * 2).min(LEASE_POLL_MAX),
            }
        }
    }
}

#[async_trait]
impl EventSource for EmbeddedSource {
    async fn next(&mut self) -> events::Result<Delivery> {
        let mut wait = POLL_MIN;
        loop {
            if self.closed {
                return Err(events::Error::Closed);
            }
            if self.lease.as_ref().is_none_or(Lease::is_lost) {
                self.lease = None;
                self.buffer.clear();
                self.acquire().await?;
                wait = POLL_MIN;
            }
            if let Some(delivery) = self.buffer.pop_front() {
                self.cursors.insert(delivery.topic.clone(), delivery.offset);
                return Ok(delivery);
            }
            self.changes.borrow_and_update();
            let cursors: Vec<(Topic, i64)> = self
                .topics
                .iter()
                .map(|t| (t.clone(), self.cursors.get(t).copied().unwrap_or(0)))
                .collect();
            let batch = self.inner.read(move |conn| fetch(conn, &cursors)).await?;
            if !batch.is_empty() {
                self.buffer.extend(batch);
                wait = POLL_MIN;
                continue;
            }
            tokio::select! {
                _ = self.changes.changed() => {}
                () = tokio::time::sleep(wait) => wait = (wait * 2).min(POLL_MAX),
            }
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> events::Result<()> {
        if self.closed {
            return Err(events::Error::Closed);
        }
        let (group, member) = (self.group.clone(), self.member.clone());
        let topic = delivery.topic.to_string();
        let offset = delivery.offset;
        let ttl = self.inner.options.lease_ttl;
        let result = self
            .inner
            .write(move |conn| commit_offset(conn, &group, &member, &topic, offset, ttl))
            .await;
        if let (Err(Error::LeaseLost { .. }), Some(lease)) = (&result, &self.lease) {
            lease.lost.store(true, Ordering::Release);
        }
        Ok(result?)
    }

    async fn close(&mut self) -> events::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.lease = None;
        self.buffer.clear();
        if self.tried_lease {
            let (group, member) = (self.group.clone(), self.member.clone());
            self.inner
                .write(move |conn| release(conn, &group, &member))
                .await?;
            self.inner.notify_release();
        }
        self.closed = true;
        Ok(())
    }
}

impl Drop for EmbeddedSource {
    fn drop(&mut self) {
        self.lease = None;
        if self.closed || !self.tried_lease {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let (group, member) = (self.group.clone(), self.member.clone());
        let release_now = move || {
            if let Err(err) = inner.write_now(|conn| release(conn, &group, &member)) {
                tracing::warn!(group, error = %err, "cannot release the consumer-group lease");
            }
            inner.notify_release();
        };
        // Off the runtime's worker threads; without a runtime this thread may block.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(release_now)),
            Err(_) => release_now(),
        }
    }
}

#[async_trait]
impl EventPublisher for EmbeddedStore {
    async fn publish(&self, event: Event) -> events::Result<()> {
        self.append(event).await.map(drop)
    }
}

#[async_trait]
impl EventBus for EmbeddedStore {
    async fn subscribe(
        &self,
        identity: &ConsumerIdentity,
        topics: &[Topic],
    ) -> events::Result<Box<dyn EventSource>> {
        Ok(Box::new(self.source(identity, topics)))
    }
}

impl EmbeddedStore {
    /// Publishes `event` like [`EventPublisher::publish`] (setting a missing `event_id`)
    /// and returns its seq, the offset consumers will see. Returns once committed.
    pub async fn append(&self, mut event: Event) -> events::Result<i64> {
        event.ensure_event_id();
        let seq = self.inner.write(move |conn| append(conn, &event)).await?;
        self.inner.notify_change();
        Ok(seq)
    }

    /// Like [`EventBus::subscribe`], without the box.
    pub fn source(&self, identity: &ConsumerIdentity, topics: &[Topic]) -> EmbeddedSource {
        EmbeddedSource::new(Arc::clone(&self.inner), identity, topics)
    }

    /// Read access to the log for operators; it touches no group's offsets or lease.
    pub fn event_log(&self) -> EventLog {
        EventLog {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// One record of the log as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    /// The position in the log; the offset consumers see.
    pub seq: i64,
    /// When it was appended (RFC 3339, UTC, milliseconds).
    pub created: String,
    /// The event, or why the record is not a valid event.
    pub event: std::result::Result<Event, String>,
}

/// Read-only access to the event log and the groups' offsets; see
/// [`EmbeddedStore::event_log`].
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl EventLog {
    /// Up to `limit` records with `seq >= from_seq` on `topics` (every topic when empty),
    /// in seq order.
    pub async fn tail(
        &self,
        topics: &[Topic],
        from_seq: i64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>> {
        let topics: Vec<String> = topics.iter().map(ToString::to_string).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.inner
            .read(move |conn| {
                let mut sql = format!("SELECT {COLUMNS} FROM tessera_events WHERE seq >= ?1");
                if !topics.is_empty() {
                    let marks: Vec<String> =
                        (0..topics.len()).map(|i| format!("?{}", i + 3)).collect();
                    sql.push_str(&format!(" AND topic IN ({})", marks.join(", ")));
                }
                sql.push_str(" ORDER BY seq LIMIT ?2");
                let mut values: Vec<rusqlite::types::Value> = vec![from_seq.into(), limit.into()];
                values.extend(topics.into_iter().map(rusqlite::types::Value::from));
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(LoggedEvent {
                        seq: row.get(0)?,
                        created: text_col(row, 6, "created").unwrap_or_default(),
                        event: decode_event(row),
                    });
                }
                Ok(out)
            })
            .await
    }

    /// The seq of the newest record, 0 for an empty log.
    pub async fn last_seq(&self) -> Result<i64> {
        self.inner
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT coalesce(max(seq), 0) FROM tessera_events",
                    [],
                    |row| row.get(0),
                )?)
            })
            .await
    }

    /// The committed offset of each topic of consumer group `group`.
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<String, i64>> {
        let group = group.to_owned();
        self.inner
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT topic, committed FROM tessera_offsets WHERE grp = ?1",
                )?;
                let rows = stmt.query_map([group], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}
