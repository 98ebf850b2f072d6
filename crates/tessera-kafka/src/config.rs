//! The `kafka_*` config keys (GHGA hexkit's `KafkaConfig`) and their librdkafka properties.
//!
//! The retry and dead-letter keys (`kafka_max_retries`, `kafka_enable_dlq`, …) belong to the
//! subscriber ([`tessera_kit::subscriber::SubscriberConfig`]), not to the connection.

use std::path::Path;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use tessera_config::Secret;

use crate::{Error, Result};

/// hexkit's default `kafka_max_message_size`: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1_048_576;
/// librdkafka's bounds of `message.max.bytes`.
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=1_000_000_000;
/// librdkafka's default `fetch.max.bytes`; larger messages need it raised.
const DEFAULT_FETCH_MAX_BYTES: u32 = 52_428_800;
/// How long a published event may wait for the broker's acknowledgement before `publish`
/// fails (librdkafka's default of five minutes would hide an outage).
pub(crate) const DELIVERY_TIMEOUT_MS: u32 = 60_000;

/// The consumer's session timeout: aiokafka's default, which hexkit uses. (librdkafka's own
/// default of 45 s also makes a join on tansu take 23 s: it completes a join after half the
/// session timeout.)
pub(crate) const SESSION_TIMEOUT_MS: u32 = 10_000;

fn default_max_message_size() -> u32 {
    DEFAULT_MAX_MESSAGE_SIZE
}

/// How clients talk to the brokers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SecurityProtocol {
    /// Unencrypted, unauthenticated.
    #[default]
    Plaintext,
    /// TLS, optionally with a client certificate.
    Ssl,
}

/// The producer's compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionType {
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// The name librdkafka uses, in `compression.codec` and `builtin.features`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// The connection keys of a service that talks to Kafka (`#[serde(flatten)]` into its
/// config). `kafka_servers` is required; everything else has hexkit's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaConfig {
    /// Bootstrap brokers as `host:port`. Required: no serde default, and left out of the
    /// serialised default, so the config loader reports it missing.
    #[serde(skip_serializing_if = "tessera_config::is_default")]
    pub kafka_servers: Vec<String>,
    /// `PLAINTEXT` (default) or `SSL`.
    #[serde(default)]
    pub kafka_security_protocol: SecurityProtocol,
    /// CA bundle (PEM) that signs the brokers' certificates; empty for the system's.
    #[serde(default)]
    pub kafka_ssl_cafile: String,
    /// Client certificate (PEM) for mutual TLS; empty for none.
    #[serde(default)]
    pub kafka_ssl_certfile: String,
    /// The client certificate's private key (PEM); empty when the certfile holds it.
    #[serde(default)]
    pub kafka_ssl_keyfile: String,
    /// Password of an encrypted private key.
    #[serde(default)]
    pub kafka_ssl_password: Secret,
    /// The largest message the producer sends and the consumer fetches per partition.
    #[serde(default = "default_max_message_size")]
    pub kafka_max_message_size: u32,
    /// Compression of produced batches; `null` for none.
    #[serde(default)]
    pub kafka_compression_type: Option<CompressionType>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            kafka_servers: Vec::new(),
            kafka_security_protocol: SecurityProtocol::default(),
            kafka_ssl_cafile: String::new(),
            kafka_ssl_certfile: String::new(),
            kafka_ssl_keyfile: String::new(),
            kafka_ssl_password: Secret::default(),
            kafka_max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            kafka_compression_type: None,
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

/// The features this librdkafka was built with (`gzip`, `snappy`, `ssl`, `lz4`, …).
pub fn builtin_features() -> Result<Vec<String>> {
    let features = ClientConfig::new()
        .create_native_config()?
        .get("builtin.features")?;
    Ok(features
        .trim_end_matches('\0')
        .split(',')
        .map(str::to_owned)
        .collect())
}

impl KafkaConfig {
    /// A config for `servers` with every other key at its default.
    pub fn new(servers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            kafka_servers: servers.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Checks what librdkafka would only reject later or obscurely, and names the key:
    /// servers present, a message size librdkafka accepts, a codec and TLS support this
    /// build has, and TLS files that exist.
    pub fn validate(&self) -> Result<()> {
        if self.kafka_servers.is_empty() {
            return Err(invalid("kafka_servers", "at least one broker is required"));
        }
        if let Some(bad) = self
            .kafka_servers
            .iter()
            .find(|s| s.trim().is_empty() || s.contains(','))
        {
            return Err(invalid(
                "kafka_servers",
                format!("{bad:?} is not a host:port (one broker per list entry)"),
            ));
        }
        if !MESSAGE_SIZE_RANGE.contains(&self.kafka_max_message_size) {
            return Err(invalid(
                "kafka_max_message_size",
                format!(
                    "{} is outside {}..={}",
                    self.kafka_max_message_size,
                    MESSAGE_SIZE_RANGE.start(),
                    MESSAGE_SIZE_RANGE.end()
                ),
            ));
        }
        let features = builtin_features()?;
        if let Some(codec) = self.kafka_compression_type
            && !features.iter().any(|f| f == codec.as_str())
        {
            return Err(invalid(
                "kafka_compression_type",
                format!(
                    "{} is not supported by this build of librdkafka (it has {}); \
                     use null, gzip, snappy or lz4",
                    codec.as_str(),
                    features.join(",")
                ),
            ));
        }
        if self.kafka_security_protocol == SecurityProtocol::Ssl {
            if !features.iter().any(|f| f == "ssl") {
                return Err(invalid(
                    "kafka_security_protocol",
                    "SSL is not supported by this build of librdkafka",
                ));
            }
            for (key, path) in [
                ("kafka_ssl_cafile", &self.kafka_ssl_cafile),
                ("kafka_ssl_certfile", &self.kafka_ssl_certfile),
                ("kafka_ssl_keyfile", &self.kafka_ssl_keyfile),
            ] {
                if !path.is_empty() && !Path::new(path).is_file() {
                    return Err(invalid(key, format!("{path:?} is not a readable file")));
                }
            }
            if !self.kafka_ssl_keyfile.is_empty() && self.kafka_ssl_certfile.is_empty() {
                return Err(invalid(
                    "kafka_ssl_certfile",
                    "a client key needs its certificate",
                ));
            }
        }
        Ok(())
    }

    /// Properties every client shares: brokers, identity and security.
    fn common(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.kafka_servers.join(","))
            .set("client.id", client_id);
        match self.kafka_security_protocol {
            SecurityProtocol::Plaintext => {
                c.set("security.protocol", "plaintext");
            }
            SecurityProtocol::Ssl => {
                c.set("security.protocol", "ssl");
                if self.kafka_ssl_cafile.is_empty() {
                    c.set("ssl.ca.location", "probe");
                } else {
                    c.set("ssl.ca.location", &self.kafka_ssl_cafile);
                }
                if !self.kafka_ssl_certfile.is_empty() {
                    c.set("ssl.certificate.location", &self.kafka_ssl_certfile);
                    // A PEM certfile may hold the key too (Python's ssl accepts that).
                    let key = if self.kafka_ssl_keyfile.is_empty() {
                        &self.kafka_ssl_certfile
                    } else {
                        &self.kafka_ssl_keyfile
                    };
                    c.set("ssl.key.location", key);
                }
                if !self.kafka_ssl_password.is_empty() {
                    c.set("ssl.key.password", self.kafka_ssl_password.expose());
                }
            }
        }
        c
    }

    /// The idempotent producer: acknowledged by all in-sync replicas, exactly once per
    /// partition despite retries.
    pub(crate) fn producer(&self, client_id: &str) -> ClientConfig {
        let mut c = self.common(client_id);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.max.bytes", self.kafka_max_message_size.to_string())
            .set("message.timeout.ms", DELIVERY_TIMEOUT_MS.to_string());
        if let Some(codec) = self.kafka_compression_type {
            c.set("compression.codec", codec.as_str());
        }
        c
    }

    /// A member of consumer group `group` that commits by hand and starts a new group at
    /// the earliest offset.
    pub(crate) fn consumer(&self, group: &str, client_id: &str) -> ClientConfig {
        let mut c = self.common(client_id);
        c.set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
            .set(
                "max.partition.fetch.bytes",
                self.kafka_max_message_size.to_string(),
            );
        if self.kafka_max_message_size > DEFAULT_FETCH_MAX_BYTES {
            // librdkafka requires fetch.max.bytes >= the per-partition limit and
            // receive.message.max.bytes >= fetch.max.bytes + 512.
            let size = u64::from(self.kafka_max_message_size);
            c.set("fetch.max.bytes", size.to_string())
                .set("receive.message.max.bytes", (size + 512).to_string());
        }
        c
    }

    /// The admin client that creates topics.
    pub(crate) fn admin(&self, client_id: &str) -> ClientConfig {
        self.common(client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(result: Result<()>) -> &'static str {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_hexkit_and_servers_are_required() {
        let cfg: KafkaConfig = serde_json::from_str(r#"{"kafka_servers": ["k:9092"]}"#).unwrap();
        assert_eq!(cfg, KafkaConfig::new(["k:9092"]));
        assert_eq!(cfg.kafka_security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(cfg.kafka_max_message_size, 1_048_576);
        assert_eq!(cfg.kafka_compression_type, None);
        assert!(cfg.kafka_ssl_password.is_empty());
        cfg.validate().unwrap();

        // The serialised default leaves kafka_servers out, which makes it required for the
        // config loader; the other keys appear with their defaults.
        let default = serde_json::to_value(KafkaConfig::default()).unwrap();
        assert!(default.get("kafka_servers").is_none());
        assert_eq!(default["kafka_security_protocol"], "PLAINTEXT");
        assert_eq!(default["kafka_compression_type"], serde_json::Value::Null);
        assert_eq!(key_of(KafkaConfig::default().validate()), "kafka_servers");
        assert!(serde_json::from_str::<KafkaConfig>("{}").is_err());
        assert_eq!(key_of(KafkaConfig::new([""]).validate()), "kafka_servers");
        assert_eq!(
            key_of(KafkaConfig::new(["a:1,b:2"]).validate()),
            "kafka_servers"
        );
    }

    #[test]
    fn wire_names_of_enums() {
        let cfg: KafkaConfig = serde_json::from_str(
            r#"{"kafka_servers": ["k:1"], "kafka_security_protocol": "SSL",
                "kafka_compression_type": "lz4", "kafka_ssl_password": "pw"}"#,
        )
        .unwrap();
        assert_eq!(cfg.kafka_security_protocol, SecurityProtocol::Ssl);
        assert_eq!(cfg.kafka_compression_type, Some(CompressionType::Lz4));
        assert!(!format!("{cfg:?}").contains("pw"), "the password is masked");
        for bad in [
            r#""kafka_security_protocol": "SASL_SSL""#,
            r#""kafka_security_protocol": "ssl""#,
            r#""kafka_compression_type": "brotli""#,
            r#""kafka_max_message_size": -1"#,
        ] {
            let bad = format!(r#"{{"kafka_servers": ["k:1"], {bad}}}"#);
            assert!(serde_json::from_str::<KafkaConfig>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_size_out_of_librdkafka_range_is_rejected() {
        let mut cfg = KafkaConfig::new(["k:1"]);
        cfg.kafka_max_message_size = 999;
        assert_eq!(key_of(cfg.validate()), "kafka_max_message_size");
        cfg.kafka_max_message_size = 1_000_000_001;
        assert_eq!(key_of(cfg.validate()), "kafka_max_message_size");
        cfg.kafka_max_message_size = 1_000_000_000;
        cfg.validate().unwrap();
        // Large limits raise the fetch limits so librdkafka accepts the consumer.
        cfg.consumer("g", "g.1").create_native_config().unwrap();
        cfg.producer("g.1").create_native_config().unwrap();
    }

    #[test]
    fn codecs_are_checked_against_the_build() {
        let features = builtin_features().unwrap();
        for codec in [
            CompressionType::Gzip,
            CompressionType::Snappy,
            CompressionType::Lz4,
            CompressionType::Zstd,
        ] {
            let mut cfg = KafkaConfig::new(["k:1"]);
            cfg.kafka_compression_type = Some(codec);
            if features.iter().any(|f| f == codec.as_str()) {
                cfg.validate().unwrap();
                cfg.producer("x").create_native_config().unwrap();
            } else {
                let err = cfg.validate().unwrap_err();
                assert!(err.to_string().contains("kafka_compression_type"), "{err}");
            }
        }
        // The vendored build with default features: zlib, snappy and lz4, no zstd.
        for codec in ["gzip", "snappy", "lz4"] {
            assert!(features.iter().any(|f| f == codec), "{features:?}");
        }
        assert!(!features.iter().any(|f| f == "zstd"), "{features:?}");
    }

    #[test]
    fn ssl_files_must_exist_and_a_key_needs_a_certificate() {
        let dir = std::env::temp_dir();
        let mut cfg = KafkaConfig::new(["k:1"]);
        cfg.kafka_security_protocol = SecurityProtocol::Ssl;
        cfg.validate().unwrap();
        let ssl = cfg.producer("x");
        assert_eq!(ssl.get("security.protocol"), Some("ssl"));
        assert_eq!(ssl.get("ssl.ca.location"), Some("probe"));

        cfg.kafka_ssl_cafile = "/nonexistent/ca.pem".into();
        assert_eq!(key_of(cfg.validate()), "kafka_ssl_cafile");
        cfg.kafka_ssl_cafile = String::new();
        cfg.kafka_ssl_keyfile = "/nonexistent/key.pem".into();
        assert_eq!(key_of(cfg.validate()), "kafka_ssl_keyfile");
        let key = dir.join(format!("tessera-kafka-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&key, "not really a key").unwrap();
        cfg.kafka_ssl_keyfile = key.display().to_string();
        assert_eq!(key_of(cfg.validate()), "kafka_ssl_certfile");
        cfg.kafka_ssl_certfile = key.display().to_string();
        cfg.kafka_ssl_password = Secret::new("pw");
        cfg.validate().unwrap();
        let ssl = cfg.consumer("g", "g.1");
        assert_eq!(ssl.get("ssl.key.password"), Some("pw"));
        assert_eq!(
            ssl.get("ssl.key.location"),
            ssl.get("ssl.certificate.location")
        );
        std::fs::remove_file(key).unwrap();

        // PLAINTEXT ignores the TLS keys, like hexkit.
        cfg.kafka_security_protocol = SecurityProtocol::Plaintext;
        cfg.kafka_ssl_cafile = "/nonexistent/ca.pem".into();
        cfg.validate().unwrap();
        assert_eq!(cfg.producer("x").get("ssl.ca.location"), None);
    }

    /// A service config with the fragment flattened in, as services use it.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct ServiceConfig {
        #[serde(default)]
        service_name: String,
        #[serde(flatten)]
        kafka: KafkaConfig,
    }

    #[test]
    fn loads_flattened_from_the_environment_with_servers_required() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let loaded: ServiceConfig = tessera_config::load_from(
            "svc",
            None,
            env(&[
                ("SVC_KAFKA_SERVERS", r#"["k1:9092", "k2:9092"]"#),
                ("SVC_KAFKA_COMPRESSION_TYPE", "gzip"),
                ("SVC_KAFKA_SSL_PASSWORD", "pw"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.kafka.kafka_servers, ["k1:9092", "k2:9092"]);
        assert_eq!(
            loaded.kafka.kafka_compression_type,
            Some(CompressionType::Gzip)
        );
        assert_eq!(loaded.kafka.kafka_ssl_password.expose(), "pw");
        assert_eq!(
            loaded.kafka.kafka_max_message_size,
            DEFAULT_MAX_MESSAGE_SIZE
        );

        let missing = tessera_config::load_from::<ServiceConfig>("svc", None, env(&[]));
        let err = missing.unwrap_err().to_string();
        assert!(err.contains("kafka_servers"), "{err}");
        let keys = tessera_config::describe::<ServiceConfig>("svc").unwrap();
        let servers = keys.iter().find(|k| k.key == "kafka_servers").unwrap();
        assert_eq!(servers.default, None, "kafka_servers is required");
        let size = keys
            .iter()
            .find(|k| k.key == "kafka_max_message_size")
            .unwrap();
        assert_eq!(size.default.as_deref(), Some("1048576"));
    }

    #[test]
    fn client_properties() {
        let cfg = KafkaConfig::new(["a:1", "b:2"]);
        let p = cfg.producer("svc.i1");
        assert_eq!(p.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(p.get("client.id"), Some("svc.i1"));
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("message.max.bytes"), Some("1048576"));
        assert_eq!(p.get("compression.codec"), None);
        let c = cfg.consumer("svc", "svc.i1");
        assert_eq!(c.get("group.id"), Some("svc"));
        assert_eq!(c.get("client.id"), Some("svc.i1"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("session.timeout.ms"), Some("10000"));
        assert_eq!(c.get("max.partition.fetch.bytes"), Some("1048576"));
        assert_eq!(c.get("fetch.max.bytes"), None);
        c.create_native_config().unwrap();
    }
}
