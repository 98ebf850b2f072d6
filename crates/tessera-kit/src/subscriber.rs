//! The subscriber loop: reads a consumer group's events from an [`EventSource`] and hands
//! them to an [`EventHandler`] with GHGA hexkit's semantics.
//!
//! - The consumer group is the service name; a position is committed only after the
//!   handler succeeded, the event was skipped, or it went to the dead-letter topic.
//! - A failing event is retried `max_retries` times, waiting `retry_backoff · 2^(n-1)`
//!   before retry `n`.
//! - Then, with the dead-letter queue enabled, a copy goes to `dlq_topic` with a new
//!   `event_id` and the failure headers; without it the loop stops with an error and the
//!   event stays uncommitted, so a restarted consumer sees it again.
//! - With the dead-letter queue enabled the loop also reads `retry-<service_name>`, where
//!   an operator replays dead-lettered events ([`dlq_to_retry`]); such an event is handled
//!   as if it came from its `original_topic`.
//! - Records without a valid `type`, without a `correlation_id`, or of a type the handler
//!   does not take are logged and skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::events::{
    ConsumerIdentity, Delivery, Error, Event, EventBus, EventHandler, EventPublisher, EventSource,
    EventType, HEADER_CORRELATION_ID, HEADER_EVENT_ID, HEADER_EXC_CLASS, HEADER_EXC_MSG,
    HEADER_ORIGINAL_EVENT_ID, HEADER_ORIGINAL_TOPIC, HEADER_SERVICE, HandlerError, Result, Topic,
};

/// The retry topic a service reads when its dead-letter queue is enabled.
pub fn retry_topic(service_name: &str) -> Result<Topic> {
    Topic::try_from(format!("retry-{service_name}"))
}

/// Turns a dead-lettered event back into one for `retry-<service_name>`: the failure
/// headers are dropped, `original_topic` is kept and a new `event_id` is set.
pub fn dlq_to_retry(dead: &Event, service_name: &str) -> Result<Event> {
    let original = dead
        .headers
        .get(HEADER_ORIGINAL_TOPIC)
        .ok_or_else(|| Error::Malformed("dead-lettered event has no original_topic".into()))?;
    let mut headers: BTreeMap<String, String> = dead
        .headers
        .iter()
        .filter(|(k, _)| {
            ![
                HEADER_EXC_CLASS,
                HEADER_EXC_MSG,
                HEADER_ORIGINAL_EVENT_ID,
                HEADER_SERVICE,
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.insert(HEADER_ORIGINAL_TOPIC.into(), original.clone());
    headers.insert(HEADER_EVENT_ID.into(), uuid::Uuid::new_v4().to_string());
    Ok(Event {
        topic: retry_topic(service_name)?,
        event_type: dead.event_type.clone(),
        key: dead.key.clone(),
        payload: dead.payload.clone(),
        headers,
    })
}

/// Retry and dead-letter settings (the `kafka_*` keys of a GHGA service).
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberConfig {
    /// Retries after the first failed attempt.
    pub max_retries: u32,
    /// The wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Whether failed events go to the dead-letter topic instead of stopping the loop.
    pub enable_dlq: bool,
    /// The dead-letter topic.
    pub dlq_topic: Topic,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded (after `retries` retries).
    Handled { retries: u32 },
    /// The record was not for this handler or not a valid event; it was committed.
    Skipped { reason: String },
    /// The handler failed every attempt; a copy went to the dead-letter topic.
    DeadLettered { error: HandlerError },
}

/// One consumer-group member running a handler.
#[derive(Debug)]
pub struct Subscriber {
    identity: ConsumerIdentity,
    config: SubscriberConfig,
    source: Box<dyn EventSource>,
    handler: Arc<dyn EventHandler>,
    publisher: Arc<dyn EventPublisher>,
    accepted: BTreeMap<Topic, BTreeSet<EventType>>,
    retry_topic: Option<Topic>,
}

impl Subscriber {
    /// Joins the group `identity.service_name` on `bus` for the handler's topics (and the
    /// retry topic when the dead-letter queue is enabled).
    pub async fn subscribe(
        bus: Arc<dyn EventBus>,
        identity: ConsumerIdentity,
        config: SubscriberConfig,
        handler: Arc<dyn EventHandler>,
    ) -> Result<Self> {
        let mut accepted: BTreeMap<Topic, BTreeSet<EventType>> = BTreeMap::new();
        for sub in handler.subscriptions() {
            accepted
                .entry(sub.topic)
                .or_default()
                .extend(sub.event_types);
        }
        let retry_topic = if config.enable_dlq {
            Some(retry_topic(&identity.service_name)?)
        } else {
            None
        };
        let topics: Vec<Topic> = accepted
            .keys()
            .cloned()
            .chain(retry_topic.clone())
            .collect();
        let source = bus.subscribe(&identity, &topics).await?;
        let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher(bus));
        Ok(Self {
            identity,
            config,
            source,
            handler,
            publisher,
            accepted,
            retry_topic,
        })
    }

    /// Waits for the next record, processes it and commits it. Returns an error (without
    /// committing) when the handler failed for good and no dead-letter topic is enabled, or
    /// when the backend failed.
    pub async fn run_once(&mut self) -> Result<Outcome> {
        let delivery = self.source.next().await?;
        self.process(delivery).await
    }

    /// Processes records until `shutdown` completes (between records, never in the middle
    /// of one) or an error stops the loop; then leaves the group.
    pub async fn run_until(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let result = loop {
            let delivery = tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                next = self.source.next() => next,
            };
            match delivery {
                Ok(delivery) => {
                    if let Err(err) = self.process(delivery).await {
                        break Err(err);
                    }
                }
                Err(err) => break Err(err),
            }
        };
        let closed = self.source.close().await;
        result.and(closed)
    }

    async fn process(&mut self, delivery: Delivery) -> Result<Outcome> {
        let outcome = match &delivery.event {
            Err(reason) => Outcome::Skipped {
                reason: format!("not a valid event: {reason}"),
            },
            Ok(event) => match self.routable(event) {
                Err(reason) => Outcome::Skipped { reason },
                Ok(event) => self.dispatch(event).await?,
            },
        };
        match &outcome {
            Outcome::Skipped { reason } => tracing::warn!(
                topic = %delivery.topic, partition = delivery.partition, offset = delivery.offset,
                reason = %reason, "skipping event"
            ),
            Outcome::Handled { retries } => tracing::debug!(
                topic = %delivery.topic, offset = delivery.offset, retries, "handled event"
            ),
            Outcome::DeadLettered { error } => tracing::error!(
                topic = %delivery.topic, offset = delivery.offset, error = %error,
                dlq_topic = %self.config.dlq_topic, "event sent to the dead-letter topic"
            ),
        }
        self.source.commit(&delivery).await?;
        Ok(outcome)
    }

    /// The event as the handler should see it, or why it is skipped.
    fn routable(&self, event: &Event) -> std::result::Result<Event, String> {
        let mut event = event.clone();
        if Some(&event.topic) == self.retry_topic.as_ref() {
            let original = event
                .headers
                .get(HEADER_ORIGINAL_TOPIC)
                .ok_or("retry event without an original_topic header")?;
            event.topic = Topic::try_from(original.as_str())
                .map_err(|e| format!("retry event with a bad original_topic: {e}"))?;
        }
        if event.correlation_id().is_none_or(str::is_empty) {
            return Err(format!(
                "event of type {} has no {HEADER_CORRELATION_ID} header",
                event.event_type
            ));
        }
        let takes = self
            .accepted
            .get(&event.topic)
            .is_some_and(|types| types.contains(&event.event_type));
        if !takes {
            return Err(format!(
                "event type {} on topic {} is not handled by {}",
                event.event_type, event.topic, self.identity.service_name
            ));
        }
        event.ensure_event_id();
        Ok(event)
    }

    // `&mut self` and `Instrument` (not `&self` and `span.enter()`) keep the loop's future
    // `Send`, so a subscriber can run in `tokio::spawn`.
    async fn dispatch(&mut self, event: Event) -> Result<Outcome> {
        let span = tracing::info_span!(
            "event",
            correlation_id = event.correlation_id().unwrap_or_default(),
            event_id = event.event_id().unwrap_or_default(),
            topic = %event.topic,
            event_type = %event.event_type,
        );
        tracing::Instrument::instrument(self.dispatch_in_span(event), span).await
    }

    async fn dispatch_in_span(&mut self, event: Event) -> Result<Outcome> {
        let mut retries = 0;
        let error = loop {
            match self.handler.handle(&event).await {
                Ok(()) => return Ok(Outcome::Handled { retries }),
                Err(err) if retries < self.config.max_retries => {
                    retries += 1;
                    let wait = self.config.retry_backoff * 2u32.saturating_pow(retries - 1);
                    tracing::warn!(error = %err, retry = retries, wait_ms = wait.as_millis() as u64,
                        "event handler failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(err) => break err,
            }
        };
        if !self.config.enable_dlq {
            return Err(Error::HandlerFailed {
                topic: event.topic.to_string(),
                event_id: event.event_id().unwrap_or_default().to_owned(),
                message: error.to_string(),
            });
        }
        self.publisher
            .publish(self.dead_letter(&event, &error))
            .await?;
        Ok(Outcome::DeadLettered { error })
    }

    fn dead_letter(&self, event: &Event, error: &HandlerError) -> Event {
        let mut headers = event.headers.clone();
        headers.insert(HEADER_EXC_CLASS.into(), error.class.clone());
        headers.insert(HEADER_EXC_MSG.into(), error.message.clone());
        headers.insert(HEADER_ORIGINAL_TOPIC.into(), event.topic.to_string());
        headers.insert(
            HEADER_ORIGINAL_EVENT_ID.into(),
            event.event_id().unwrap_or_default().to_owned(),
        );
        headers.insert(HEADER_SERVICE.into(), self.identity.service_name.clone());
        headers.insert(HEADER_EVENT_ID.into(), uuid::Uuid::new_v4().to_string());
        Event {
            topic: self.config.dlq_topic.clone(),
            event_type: event.event_type.clone(),
            key: event.key.clone(),
            payload: event.payload.clone(),
            headers,
        }
    }
}

/// Lets the subscriber publish dead letters through the bus it consumes from.
#[derive(Debug)]
struct BusPublisher(Arc<dyn EventBus>);

#[async_trait::async_trait]
impl EventPublisher for BusPublisher {
    async fn publish(&self, event: Event) -> Result<()> {
        self.0.publish(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{MockEventHandler, Subscription};
    use serde_json::json;
    use std::sync::Mutex;

    /// A single-partition in-memory bus: enough to unit-test the loop's decisions.
    #[derive(Debug, Default)]
    struct VecBus {
        log: Arc<Mutex<Vec<Event>>>,
        committed: Arc<Mutex<Vec<i64>>>,
    }

    #[derive(Debug)]
    struct VecSource {
        log: Arc<Mutex<Vec<Event>>>,
        committed: Arc<Mutex<Vec<i64>>>,
        topics: Vec<Topic>,
        pos: usize,
    }

    #[async_trait::async_trait]
    impl EventPublisher for VecBus {
        async fn publish(&self, event: Event) -> Result<()> {
            self.log.lock().unwrap().push(event);
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl EventBus for VecBus {
        async fn subscribe(
            &self,
            _identity: &ConsumerIdentity,
            topics: &[Topic],
        ) -> Result<Box<dyn EventSource>> {
            Ok(Box::new(VecSource {
                log: self.log.clone(),
                committed: self.committed.clone(),
                topics: topics.to_vec(),
                pos: 0,
            }))
        }
    }

    #[async_trait::async_trait]
    impl EventSource for VecSource {
        async fn next(&mut self) -> Result<Delivery> {
            let log = self.log.lock().unwrap();
            let (i, event) = log
                .iter()
                .enumerate()
                .skip(self.pos)
                .find(|(_, e)| self.topics.contains(&e.topic))
                .ok_or(Error::Closed)?;
            self.pos = i + 1;
            Ok(Delivery {
                topic: event.topic.clone(),
                partition: 0,
                offset: i as i64,
                event: Ok(event.clone()),
            })
        }
        async fn commit(&mut self, delivery: &Delivery) -> Result<()> {
            self.committed.lock().unwrap().push(delivery.offset);
            Ok(())
        }
        async fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn topic(s: &str) -> Topic {
        Topic::try_from(s).unwrap()
    }

    fn ev(t: &str, ty: &str) -> Event {
        Event::new(
            topic(t),
            EventType::try_from(ty).unwrap(),
            "k",
            json!({"a": 1}),
            "c0ffee00-0000-4000-8000-000000000000",
        )
    }

    fn config(max_retries: u32, enable_dlq: bool) -> SubscriberConfig {
        SubscriberConfig {
            max_retries,
            retry_backoff: Duration::from_millis(1),
            enable_dlq,
            dlq_topic: topic("dlq"),
        }
    }

    fn identity() -> ConsumerIdentity {
        ConsumerIdentity {
            service_name: "svc".into(),
            instance_id: "1".into(),
        }
    }

    fn handler(fail_times: usize) -> MockEventHandler {
        let mut h = MockEventHandler::new();
        h.expect_subscriptions().returning(|| {
            vec![Subscription {
                topic: topic("t"),
                event_types: vec![EventType::try_from("made").unwrap()],
            }]
        });
        let calls = Mutex::new(0usize);
        h.expect_handle().returning(move |_| {
            let mut c = calls.lock().unwrap();
            *c += 1;
            if *c <= fail_times {
                Err(HandlerError::new("Boom", "it broke"))
            } else {
                Ok(())
            }
        });
        h
    }

    #[tokio::test]
    async fn retries_then_succeeds_and_commits() {
        let bus = Arc::new(VecBus::default());
        bus.publish(ev("t", "made")).await.unwrap();
        let mut sub = Subscriber::subscribe(
            bus.clone(),
            identity(),
            config(2, false),
            Arc::new(handler(2)),
        )
        .await
        .unwrap();
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 2 }
        );
        assert_eq!(*bus.committed.lock().unwrap(), vec![0]);
    }

    #[tokio::test]
    async fn without_dlq_a_failure_stops_and_does_not_commit() {
        let bus = Arc::new(VecBus::default());
        bus.publish(ev("t", "made")).await.unwrap();
        let mut sub = Subscriber::subscribe(
            bus.clone(),
            identity(),
            config(1, false),
            Arc::new(handler(5)),
        )
        .await
        .unwrap();
        assert!(matches!(
            sub.run_once().await,
            Err(Error::HandlerFailed { .. })
        ));
        assert!(bus.committed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn with_dlq_a_failure_is_dead_lettered_with_headers_and_committed() {
        let bus = Arc::new(VecBus::default());
        let original = ev("t", "made");
        bus.publish(original.clone()).await.unwrap();
        let mut sub = Subscriber::subscribe(
            bus.clone(),
            identity(),
            config(0, true),
            Arc::new(handler(1)),
        )
        .await
        .unwrap();
        assert!(matches!(
            sub.run_once().await.unwrap(),
            Outcome::DeadLettered { .. }
        ));
        let log = bus.log.lock().unwrap().clone();
        let dead = &log[1];
        assert_eq!(dead.topic, topic("dlq"));
        assert_eq!(dead.headers["exc_class"], "Boom");
        assert_eq!(dead.headers["exc_msg"], "it broke");
        assert_eq!(dead.headers["original_topic"], "t");
        assert_eq!(dead.headers["service"], "svc");
        assert_eq!(
            dead.headers["original_event_id"],
            original.event_id().unwrap()
        );
        assert_ne!(dead.event_id(), original.event_id());
        assert_eq!(*bus.committed.lock().unwrap(), vec![0]);

        // Replayed through the retry topic, the event is handled as if from topic `t`.
        bus.publish(dlq_to_retry(dead, "svc").unwrap())
            .await
            .unwrap();
        assert_eq!(
            sub.run_once().await.unwrap(),
            Outcome::Handled { retries: 0 }
        );
    }

    #[tokio::test]
    async fn unknown_types_and_missing_correlation_ids_are_skipped() {
        let bus = Arc::new(VecBus::default());
        bus.publish(ev("t", "other")).await.unwrap();
        let mut no_corr = ev("t", "made");
        no_corr.headers.remove(HEADER_CORRELATION_ID);
        bus.publish(no_corr).await.unwrap();
        let mut h = MockEventHandler::new();
        h.expect_subscriptions().returning(|| {
            vec![Subscription {
                topic: topic("t"),
                event_types: vec![EventType::try_from("made").unwrap()],
            }]
        });
        h.expect_handle().never();
        let mut sub = Subscriber::subscribe(bus.clone(), identity(), config(0, false), Arc::new(h))
            .await
            .unwrap();
        assert!(matches!(
            sub.run_once().await.unwrap(),
            Outcome::Skipped { .. }
        ));
        assert!(matches!(
            sub.run_once().await.unwrap(),
            Outcome::Skipped { .. }
        ));
        assert_eq!(*bus.committed.lock().unwrap(), vec![0, 1]);
    }
}
