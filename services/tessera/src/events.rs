//! `tessera events publish|tail`: operator access to the configured event bus.
//!
//! The embedded store is the bus on a single machine; publishing from this CLI is how an
//! operator (or a test) feeds a service the events another system would send.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};
use tessera_embedded::{EmbeddedStore, LoggedEvent};
use tessera_kit::events::{Event, EventPublisher, EventType, HEADER_EVENT_ID, Topic};

use crate::{Error, Result, TesseraConfig};

/// `tessera events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish one event and print its event id
    Publish {
        /// The topic, e.g. metadata-datasets
        #[arg(long)]
        topic: String,
        /// The event type (the `type` header), e.g. dataset_created
        #[arg(long = "type", value_name = "TYPE")]
        event_type: String,
        /// The event key, e.g. the dataset accession
        #[arg(long)]
        key: String,
        /// The JSON payload: inline JSON, @FILE to read a file, or - for standard input
        #[arg(long)]
        payload: String,
        /// The correlation id (default: a new UUID4)
        #[arg(long)]
        correlation_id: Option<String>,
        /// An extra header as NAME=VALUE (repeatable)
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
    },
    /// Print events from the log as JSON lines, without touching any consumer group
    Tail {
        /// Only these topics (repeatable; default: every topic)
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Start at this position (1 is the first event)
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Print at most this many events (per poll when following)
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Keep waiting for new events (Ctrl-C to stop)
        #[arg(long)]
        follow: bool,
    },
}

/// Runs `tessera events …`.
pub async fn run(config: &TesseraConfig, cmd: EventsCommand) -> Result<()> {
    let store = EmbeddedStore::from_config(&config.embedded).await?;
    match cmd {
        EventsCommand::Publish {
            topic,
            event_type,
            key,
            payload,
            correlation_id,
            headers,
        } => {
            let event = build_event(
                &topic,
                &event_type,
                &key,
                &payload,
                correlation_id,
                &headers,
            )?;
            let event_id = event
                .headers
                .get(HEADER_EVENT_ID)
                .cloned()
                .unwrap_or_default();
            store.publish(event).await?;
            println!("{}", json!({"event_id": event_id, "topic": topic}));
            Ok(())
        }
        EventsCommand::Tail {
            topics,
            from,
            limit,
            follow,
        } => {
            let topics = topics
                .iter()
                .map(|t| Topic::try_from(t.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            tail(&store, &topics, from, limit, follow).await
        }
    }
}

/// Builds an event from the command-line words, checking each.
pub fn build_event(
    topic: &str,
    event_type: &str,
    key: &str,
    payload: &str,
    correlation_id: Option<String>,
    headers: &[String],
) -> Result<Event> {
    let topic = Topic::try_from(topic)?;
    let event_type = EventType::try_from(event_type)?;
    let payload = read_payload(payload)?;
    let correlation_id = correlation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut event = Event::new(topic, event_type, key, payload, correlation_id);
    let mut extra = BTreeMap::new();
    for header in headers {
        let (name, value) = header
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| Error::Usage(format!("--header {header:?} must be NAME=VALUE")))?;
        if name == "type" {
            return Err(Error::Usage(
                "set the event type with --type, not --header".into(),
            ));
        }
        extra.insert(name.to_owned(), value.to_owned());
    }
    event.headers.extend(extra);
    Ok(event)
}

fn read_payload(arg: &str) -> Result<Value> {
    let (text, origin) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| Error::Io {
                path: PathBuf::from("<stdin>"),
                source,
            })?;
        (text, "standard input".to_owned())
    } else if let Some(file) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            path: PathBuf::from(file),
            source,
        })?;
        (text, file.to_owned())
    } else {
        (arg.to_owned(), "--payload".to_owned())
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("the payload from {origin} is not JSON: {e}")))
}

/// One log record as a JSON line.
pub fn render(record: &LoggedEvent) -> Value {
    match &record.event {
        Ok(event) => json!({
            "seq": record.seq,
            "created": record.created,
            "topic": event.topic,
            "type": event.event_type,
            "key": event.key,
            "headers": event.headers,
            "payload": event.payload,
        }),
        Err(reason) => json!({"seq": record.seq, "created": record.created, "error": reason}),
    }
}

async fn tail(
    store: &EmbeddedStore,
    topics: &[Topic],
    mut from: i64,
    limit: usize,
    follow: bool,
) -> Result<()> {
    let log = store.event_log();
    loop {
        let records = log.tail(topics, from, limit).await?;
        for record in &records {
            println!("{}", render(record));
            from = record.seq + 1;
        }
        if !follow {
            return Ok(());
        }
        if records.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_event_checks_every_word() {
        let e = build_event(
            "t",
            "made",
            "k",
            r#"{"a":1}"#,
            Some("c".into()),
            &["x=1".into()],
        )
        .unwrap();
        assert_eq!(e.payload, json!({"a": 1}));
        assert_eq!(e.headers["x"], "1");
        assert_eq!(e.headers["correlation_id"], "c");
        assert!(matches!(
            build_event("bad topic", "made", "k", "{}", None, &[]),
            Err(Error::Events(_))
        ));
        assert!(matches!(
            build_event("t", "", "k", "{}", None, &[]),
            Err(Error::Events(_))
        ));
        assert!(matches!(
            build_event("t", "made", "k", "{nope", None, &[]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            build_event("t", "made", "k", "{}", None, &["novalue".into()]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            build_event("t", "made", "k", "@/nonexistent/file.json", None, &[]),
            Err(Error::Io { .. })
        ));
    }
}
