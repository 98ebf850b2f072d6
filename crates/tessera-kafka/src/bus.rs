//! [`KafkaBus`]: the idempotent producer behind [`EventPublisher`], the consumers behind
//! [`EventBus::subscribe`], and the admin client that creates missing topics.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tessera_kit::events::{
    self, ConsumerIdentity, Event, EventBus, EventPublisher, EventSource, Topic,
};

use crate::codec::{encode_headers, encode_payload};
use crate::config::KafkaConfig;
use crate::source::KafkaSource;
use crate::{Error, Result};

/// How long [`KafkaBus::connect`] waits for a broker to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `publish` waits for room in librdkafka's queue when it is full.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// How long topic creation may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How topics that do not exist yet are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// Partitions of a new topic; -1 for the broker's default (`num.partitions`).
    pub partitions: i32,
    /// Replicas of each partition; -1 for the broker's default.
    pub replication: i32,
}

impl Default for TopicLayout {
    /// The broker's defaults: what an auto-created topic would get.
    fn default() -> Self {
        Self {
            partitions: -1,
            replication: -1,
        }
    }
}

struct Clients {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

/// The event bus on Kafka: publishes with an idempotent producer and opens one consumer per
/// [`EventBus::subscribe`].
///
/// Topics a bus publishes to or subscribes to are created first when missing (with
/// [`TopicLayout`]); where the cluster forbids that, a warning is logged and the broker's
/// auto-creation or an operator must provide them.
pub struct KafkaBus {
    config: KafkaConfig,
    client_id: String,
    layout: TopicLayout,
    /// `Some` until dropped; see `Drop`.
    clients: Option<Clients>,
    /// Topics whose creation was tried (successfully or not): once per topic and bus, so
    /// that a cluster that forbids creation costs one failed request, not one per publish.
    tried_topics: Mutex<HashSet<String>>,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("servers", &self.config.kafka_servers)
            .field("client_id", &self.client_id)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Validates `config`, creates the producer (client id `<service_name>.<instance_id>`)
    /// and waits until a broker answered, at most [`CONNECT_TIMEOUT`].
    pub async fn connect(
        config: &KafkaConfig,
        service_name: &str,
        instance_id: &str,
    ) -> Result<Self> {
        config.validate()?;
        let client_id = format!("{service_name}.{instance_id}");
        let producer: FutureProducer = config.producer(&client_id).create()?;
        let admin: AdminClient<DefaultClientContext> = config.admin(&client_id).create()?;
        // Built before the probe, so that a failed probe drops the clients off the runtime.
        let bus = Self {
            config: config.clone(),
            client_id,
            layout: TopicLayout::default(),
            clients: Some(Clients {
                producer: producer.clone(),
                admin,
            }),
            tried_topics: Mutex::new(HashSet::new()),
        };
        let probe = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, CONNECT_TIMEOUT)
                .map(drop)
        })
        .await
        .map_err(|_| Error::Thread("metadata probe", None))?;
        probe.map_err(|source| Error::Unreachable {
            servers: config.kafka_servers.join(","),
            seconds: CONNECT_TIMEOUT.as_secs(),
            source,
        })?;
        Ok(bus)
    }

    /// Sets how missing topics are created (default: the broker's defaults).
    pub fn with_topic_layout(mut self, layout: TopicLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The producer's client id: `<service_name>.<instance_id>`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn clients(&self) -> Result<&Clients> {
        self.clients.as_ref().ok_or(Error::Thread("bus", None))
    }

    /// Creates those of `topics` this bus has not tried to create yet. Failures are logged,
    /// not returned: the topic may exist anyway, or appear through auto-creation.
    pub async fn ensure_topics(&self, topics: &[Topic]) -> Result<()> {
        let missing: Vec<&str> = {
            let mut tried = self
                .tried_topics
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            topics
                .iter()
                .map(Topic::as_str)
                .filter(|t| tried.insert((*t).to_owned()))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    self.layout.partitions,
                    TopicReplication::Fixed(self.layout.replication),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        match self.clients()?.admin.create_topics(&new, &options).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(name) => tracing::info!(topic = %name, "created kafka topic"),
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((name, code)) => {
                            tracing::warn!(topic = %name, error = %code, "cannot create kafka topic");
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(topics = ?missing, error = %err, "cannot create kafka topics");
            }
        }
        Ok(())
    }

    /// Like [`EventBus::subscribe`], without the box.
    pub async fn source(
        &self,
        identity: &ConsumerIdentity,
        topics: &[Topic],
    ) -> Result<KafkaSource> {
        let mut topics = topics.to_vec();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return Err(Error::Kafka(KafkaError::Subscription(
                "a consumer needs at least one topic".into(),
            )));
        }
        self.ensure_topics(&topics).await?;
        let config = self
            .config
            .consumer(&identity.service_name, &identity.client_id());
        KafkaSource::start(config, identity, topics).await
    }
}

#[async_trait]
impl EventPublisher for KafkaBus {
    async fn publish(&self, mut event: Event) -> events::Result<()> {
        event.ensure_event_id();
        self.ensure_topics(std::slice::from_ref(&event.topic))
            .await?;
        let payload = encode_payload(&event)?;
        let record = FutureRecord::to(event.topic.as_str())
            .key(event.key.as_bytes())
            .payload(&payload)
            .headers(encode_headers(&event));
        self.clients()?
            .producer
            .send(record, Timeout::After(QUEUE_WAIT))
            .await
            .map(drop)
            .map_err(|(err, _)| events::Error::backend(err))
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn subscribe(
        &self,
        identity: &ConsumerIdentity,
        topics: &[Topic],
    ) -> events::Result<Box<dyn EventSource>> {
        Ok(Box::new(self.source(identity, topics).await?))
    }
}

impl Drop for KafkaBus {
    /// Destroying the producer purges and flushes it and joins librdkafka's threads, which
    /// can take a moment: on a runtime, that happens on a thread of its own.
    fn drop(&mut self) {
        let Some(clients) = self.clients.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("kafka-bus-drop".into())
            .spawn(move || drop(clients));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot drop the kafka clients on a thread of their own");
        }
    }
}
