//! One consumer-group member ([`KafkaSource`]), driven by a thread of its own.
//!
//! librdkafka's consumer calls block: `poll`, a synchronous commit, and above all leaving
//! the group, which rust-rdkafka does when the consumer is dropped and which has been seen
//! to take more than 15 s (rust-rdkafka issues #509 and #611). So the consumer lives on a
//! plain thread that takes commands from the async side; `close` waits for it only up to
//! [`CLOSE_TIMEOUT`], and a runtime shutting down never waits for it at all.
//!
//! `next` asks the thread for one record and waits on a channel that outlives the call; the
//! thread polls only while such a request is open. So nothing is read ahead of the caller
//! except the one record a cancelled `next` asked for, which stays in the channel for the
//! following `next`: `next` is cancel-safe and never loses a record. (A oneshot reply per
//! call would lose a record sent just before the caller gave up.)

use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tessera_kit::events::{self, ConsumerIdentity, Delivery, EventSource, Topic};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use crate::codec::decode_event;
use crate::{Error, Result};

/// How long `close` waits for the consumer to leave its group before it lets the thread
/// finish on its own.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `poll` may block, i.e. how late the thread notices a command while a
/// `next` is waiting.
const POLL_SLICE: Duration = Duration::from_millis(50);

type Answer = events::Result<Delivery>;

enum Command {
    /// Poll until one record (or a fatal error) arrives and send it on the answer channel.
    Next,
    Commit {
        topic: String,
        partition: i32,
        /// The offset of the next record to read: the committed record's plus one.
        next_offset: i64,
        reply: oneshot::Sender<Result<(), KafkaError>>,
    },
    Close(oneshot::Sender<()>),
}

/// A member of a consumer group, reading some topics. Made by
/// [`crate::KafkaBus::subscribe`].
#[derive(Debug)]
pub struct KafkaSource {
    commands: mpsc::Sender<Command>,
    answers: tokio_mpsc::UnboundedReceiver<Answer>,
    /// Whether a `Next` is out whose answer has not been received yet.
    requested: bool,
    group: String,
    client_id: String,
    closed: bool,
}

impl KafkaSource {
    /// Starts the consumer thread, which creates the consumer from `config` and subscribes
    /// it to `topics`; returns once that is done.
    pub(crate) async fn start(
        config: ClientConfig,
        identity: &ConsumerIdentity,
        topics: Vec<Topic>,
    ) -> Result<Self> {
        let (commands, inbox) = mpsc::channel();
        let (answer, answers) = tokio_mpsc::unbounded_channel();
        let (ready, started) = oneshot::channel();
        let group = identity.service_name.clone();
        std::thread::Builder::new()
            .name(format!("kafka-consumer-{group}"))
            .spawn(move || {
                let subscribed = config.create::<BaseConsumer>().and_then(|consumer| {
                    let names: Vec<&str> = topics.iter().map(Topic::as_str).collect();
                    consumer.subscribe(&names).map(|()| consumer)
                });
                match subscribed {
                    Ok(consumer) => {
                        if ready.send(Ok(())).is_ok() {
                            Worker::new(consumer, topics, answer).run(&inbox);
                        }
                    }
                    Err(err) => {
                        let _ = ready.send(Err(err));
                    }
                }
            })
            .map_err(|e| Error::Thread("consumer", Some(e)))?;
        started
            .await
            .map_err(|_| Error::Thread("consumer", None))??;
        Ok(Self {
            commands,
            answers,
            requested: false,
            group,
            client_id: identity.client_id(),
            closed: false,
        })
    }

    /// The consumer group: the service name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The client id: `<service_name>.<instance_id>`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn send(&self, command: Command) -> events::Result<()> {
        if self.closed {
            return Err(events::Error::Closed);
        }
        self.commands
            .send(command)
            .map_err(|_| Error::Thread("consumer", None).into())
    }
}

#[async_trait]
impl EventSource for KafkaSource {
    async fn next(&mut self) -> events::Result<Delivery> {
        if !self.requested {
            self.send(Command::Next)?;
            self.requested = true;
        }
        let answer = self
            .answers
            .recv()
            .await
            .ok_or_else(|| events::Error::from(Error::Thread("consumer", None)))?;
        self.requested = false;
        answer
    }

    async fn commit(&mut self, delivery: &Delivery) -> events::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Commit {
            topic: delivery.topic.to_string(),
            partition: delivery.partition,
            next_offset: delivery.offset.saturating_add(1),
            reply,
        })?;
        answer
            .await
            .map_err(|_| events::Error::from(Error::Thread("consumer", None)))?
            .map_err(events::Error::backend)
    }

    async fn close(&mut self) -> events::Result<()> {
        if self.closed {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Command::Close(reply));
        self.closed = true;
        if sent.is_err() {
            // The thread is gone, and the consumer with it.
            return Ok(());
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, answer).await.is_err() {
            tracing::warn!(
                group = %self.group, client_id = %self.client_id,
                timeout_s = CLOSE_TIMEOUT.as_secs(),
                "the kafka consumer did not leave its group in time; it goes on closing in the background"
            );
        }
        Ok(())
    }
}

// Dropping the source drops the command sender; the thread sees that and closes the
// consumer by itself, so Drop needs no code and never blocks.

/// The consumer thread's state.
struct Worker {
    consumer: BaseConsumer,
    topics: Vec<Topic>,
    answer: tokio_mpsc::UnboundedSender<Answer>,
    /// Whether a `next` waits for a record.
    requested: bool,
}

impl Worker {
    fn new(
        consumer: BaseConsumer,
        topics: Vec<Topic>,
        answer: tokio_mpsc::UnboundedSender<Answer>,
    ) -> Self {
        Self {
            consumer,
            topics,
            answer,
            requested: false,
        }
    }

    fn run(mut self, inbox: &mpsc::Receiver<Command>) {
        loop {
            let command = if self.requested {
                match inbox.try_recv() {
                    Ok(command) => Some(command),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match inbox.recv() {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvError) => break,
                }
            };
            match command {
                Some(Command::Next) => self.requested = true,
                Some(Command::Commit {
                    topic,
                    partition,
                    next_offset,
                    reply,
                }) => {
                    let _ = reply.send(self.commit(&topic, partition, next_offset));
                }
                Some(Command::Close(reply)) => {
                    self.close();
                    let _ = reply.send(());
                    return;
                }
                None => {}
            }
            if self.requested {
                self.poll();
            }
        }
        self.close();
    }

    /// One bounded poll for the open request.
    fn poll(&mut self) {
        let answer = match self.consumer.poll(POLL_SLICE) {
            None => return,
            Some(Ok(msg)) => self.delivery(&msg),
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => Err(events::Error::backend(
                KafkaError::MessageConsumptionFatal(code),
            )),
            Some(Err(err)) => {
                // Transient (a broker went away, a topic is not there yet): librdkafka
                // recovers by itself.
                tracing::warn!(error = %err, "kafka consumer error");
                return;
            }
        };
        self.requested = false;
        // Fails only when the source is gone; the inbox then tells the loop to stop.
        let _ = self.answer.send(answer);
    }

    fn delivery<M: Message>(&self, msg: &M) -> events::Result<Delivery> {
        let topic = self
            .topics
            .iter()
            .find(|t| t.as_str() == msg.topic())
            .cloned()
            .ok_or_else(|| {
                events::Error::Malformed(format!(
                    "record from topic {:?}, which this consumer did not subscribe to",
                    msg.topic()
                ))
            })?;
        Ok(Delivery {
            event: decode_event(&topic, msg),
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
        })
    }

    fn commit(&self, topic: &str, partition: i32, next_offset: i64) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(next_offset))?;
        self.consumer.commit(&list, CommitMode::Sync)
    }

    /// Leaves the group. Dropping the consumer does the rest (close and destroy), which
    /// may block, but only this thread.
    fn close(self) {
        self.consumer.unsubscribe();
        drop(self.consumer);
    }
}
