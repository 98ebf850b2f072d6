//! tracing-subscriber setup: JSON lines (with the request span's fields) or text.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::{Error, LogConfig, Result};

/// Builds the subscriber `init_logging` installs, writing to `writer`; tests pass a buffer.
pub fn subscriber<W>(config: &LogConfig, writer: W) -> Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter_directive(&config.log_level))
        .map_err(|e| Error::Logging(format!("invalid log_level {:?}: {e}", config.log_level)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match config.log_format.as_deref() {
        None | Some("json") => Ok(Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        )),
        Some("text") => Ok(Box::new(builder.with_ansi(false).finish())),
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
