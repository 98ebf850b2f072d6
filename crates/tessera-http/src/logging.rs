//! tracing-subscriber setup: JSON lines (with the request span's fields) or text, and
//! [`ClientErrorsAsWarnings`].

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_core::callsite::DefaultCallsite;
use tracing_core::field::{FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::{Metadata, identify_callsite};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::{Error, LogConfig, Result};

/// Builds the subscriber `init_logging` installs, writing to `writer`; tests pass a buffer.
pub fn subscriber<W>(config: &LogConfig, writer: W) -> Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // `target=level` directives without span or field filters: `Targets` parses them without
    // the regex engine `EnvFilter` compiles at start-up (about 1 MiB of resident code and
    // Unicode tables in every service).
    let filter: Targets = filter_directive(&config.log_level)
        .parse()
        .map_err(|e| Error::Logging(format!("invalid log_level {:?}: {e}", config.log_level)))?;
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(writer);
    // The filter sits below `ClientErrorsAsWarnings`, whose replacement events ask it too.
    match config.log_format.as_deref() {
        None | Some("json") => Ok(Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish()
                .with(filter)
                .with(ClientErrorsAsWarnings),
        )),
        Some("text") => Ok(Box::new(
            builder
                .with_ansi(false)
                .finish()
                .with(filter)
                .with(ClientErrorsAsWarnings),
        )),
        Some(other) => Err(Error::Logging(format!(
            "unknown log_format {other:?}: use null, \"json\" or \"text\""
        ))),
    }
}

/// Installs the global subscriber writing to stdout. A second call (or one after another
/// subscriber was installed) leaves the first in place and returns `Ok`.
pub fn init_logging(config: &LogConfig) -> Result<()> {
    let subscriber = subscriber(config, std::io::stdout)?;
    // Already installed is fine: tests and all-in-one binaries call this more than once.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

/// The target under which actix's HTTP/1 dispatcher logs.
const ACTIX_H1: &str = "actix_http::h1";

/// What actix's HTTP/1 dispatcher logs as `stream error: <DispatchError>` at ERROR for a
/// connection the client broke: malformed requests, resets, timeouts, unread bodies.
/// The server is fine; an operator's error alerts must not fire on every port scanner.
const CLIENT_FAULTS: [&str; 5] = [
    "request parse error",
    "I/O error",
    "request did not complete within the specified timeout",
    "connection shutdown timeout",
    "handler dropped payload before reading EOF",
];

/// The WARN event that replaces such an ERROR.
static WARNING: DefaultCallsite = DefaultCallsite::new(&WARNING_META);
static WARNING_META: Metadata<'static> = Metadata::new(
    "broken request from a client",
    "actix_http::h1::dispatcher",
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&["message", "error"], identify_callsite!(&WARNING)),
    Kind::EVENT,
);

/// A layer that turns actix's ERROR events about a client's broken HTTP/1 connection into
/// WARN events (same target, the message as `error`), and drops the originals. Other
/// events pass untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientErrorsAsWarnings;

impl<S: Subscriber> Layer<S> for ClientErrorsAsWarnings {
    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with(ACTIX_H1) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let Some(error) = message.0.strip_prefix("stream error: ") else {
            return true;
        };
        if !CLIENT_FAULTS.iter().any(|fault| error.starts_with(fault)) {
            return true;
        }
        // Straight to the inner subscriber: tracing drops events dispatched from within a
        // dispatch (its re-entrancy guard), so `warn!` here would vanish.
        WARNING.interest();
        if ctx.enabled(&WARNING_META) {
            let fields = WARNING_META.fields();
            let (Some(message_field), Some(error_field)) =
                (fields.field("message"), fields.field("error"))
            else {
                return false;
            };
            let message = format_args!("broken request from a client");
            let values: [(&Field, Option<&dyn Value>); 2] = [
                (&message_field, Some(&message as &dyn Value)),
                (&error_field, Some(&error as &dyn Value)),
            ];
            ctx.event(&Event::new(&WARNING_META, &fields.value_set(&values)));
        }
        false
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

/// Python level names to tracing directives; anything else is used as a filter as is.
fn filter_directive(level: &str) -> String {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace".into(),
        "DEBUG" => "debug".into(),
        "INFO" => "info".into(),
        "WARN" | "WARNING" => "warn".into(),
        "ERROR" | "CRITICAL" | "FATAL" => "error".into(),
        "OFF" | "NOTSET" => "off".into(),
        _ => level.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_names_map_to_directives() {
        assert_eq!(filter_directive("WARNING"), "warn");
        assert_eq!(filter_directive("critical"), "error");
        assert_eq!(filter_directive("info,actix=warn"), "info,actix=warn");
    }

    #[test]
    fn bad_level_and_format_are_errors() {
        let bad_level = LogConfig {
            log_level: "info,=[".into(),
            log_format: None,
        };
        assert!(subscriber(&bad_level, std::io::sink).is_err());
        let bad_format = LogConfig {
            log_level: "INFO".into(),
            log_format: Some("xml".into()),
        };
        assert!(subscriber(&bad_format, std::io::sink).is_err());
        let text = LogConfig {
            log_level: "INFO".into(),
            log_format: Some("text".into()),
        };
        assert!(subscriber(&text, std::io::sink).is_ok());
    }

    /// A buffer the subscriber writes to.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON lines logged while `f` runs.
    fn logged(f: impl FnOnce()) -> Vec<serde_json::Value> {
        logged_at("INFO", f)
    }

    /// The JSON lines logged at `log_level` while `f` runs.
    fn logged_at(log_level: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let config = LogConfig {
            log_level: log_level.into(),
            log_format: None,
        };
        let subscriber = subscriber(&config, move || writer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The messages of the events each `log_level` lets through.
    fn messages_at(log_level: &str) -> Vec<String> {
        logged_at(log_level, || {
            tracing::trace!(target: "tessera_x::deep", "trace x");
            tracing::debug!(target: "tessera_x", "debug x");
            tracing::debug!(target: "other", "debug other");
            tracing::info!(target: "other", "info other");
            tracing::warn!(target: "other", "warn other");
            tracing::error!(target: "other", "error other");
        })
        .iter()
        .map(|line| line["message"].as_str().unwrap().to_owned())
        .collect()
    }

    #[test]
    fn levels_and_per_target_directives_filter_events() {
        assert_eq!(messages_at("WARNING"), ["warn other", "error other"]);
        assert_eq!(
            messages_at("DEBUG"),
            [
                "debug x",
                "debug other",
                "info other",
                "warn other",
                "error other"
            ]
        );
        assert_eq!(
            messages_at("warn,tessera_x=trace"),
            ["trace x", "debug x", "warn other", "error other"]
        );
        assert!(messages_at("OFF").is_empty());
    }

    #[test]
    fn a_client_fault_below_the_level_is_dropped_not_replaced() {
        let lines = logged_at("ERROR", || {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: request parse error: invalid Header provided"
            );
        });
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn broken_client_requests_are_warnings() {
        // Exactly what actix-http's h1 dispatcher logs for a malformed request line.
        let lines = logged(|| {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: {}",
                "request parse error: invalid Header provided"
            );
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["target"], "actix_http::h1::dispatcher");
        assert_eq!(
            lines[0]["error"],
            "request parse error: invalid Header provided"
        );
    }

    #[test]
    fn other_errors_stay_errors() {
        let lines = logged(|| {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "service error");
            tracing::error!(target: "actix_http::h1::dispatcher", "Response payload stream error: x");
            tracing::error!(target: "wps", "stream error: request parse error: x");
        });
        let levels: Vec<_> = lines.iter().map(|l| l["level"].clone()).collect();
        assert_eq!(levels, vec!["ERROR", "ERROR", "ERROR"], "{lines:?}");
    }

    #[test]
    fn init_twice_is_fine() {
        let config = LogConfig {
            log_level: "OFF".into(),
            log_format: None,
        };
        init_logging(&config).unwrap();
        init_logging(&config).unwrap();
    }
}
