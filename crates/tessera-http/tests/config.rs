//! The fragments flattened into a service config and loaded by `tessera-config`.

use serde::{Deserialize, Serialize};
use tessera_http::{HttpConfig, LogConfig};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ServiceConfig {
    #[serde(flatten)]
    http: HttpConfig,
    #[serde(flatten)]
    log: LogConfig,
    #[serde(default)]
    service_name: String,
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn flat_keys_load_from_the_environment() {
    let config: ServiceConfig = tessera_config::load_from(
        "wps",
        None,
        env(&[
            ("WPS_PORT", "9001"),
            ("WPS_CORS_ALLOWED_ORIGINS", r#"["https://portal.example"]"#),
            ("WPS_GENERATE_CORRELATION_ID", "false"),
            ("WPS_LOG_FORMAT", "text"),
            ("WPS_SERVICE_NAME", "wps"),
        ]),
    )
    .unwrap();
    assert_eq!(config.http.port, 9001);
    assert_eq!(
        config.http.cors_allowed_origins,
        Some(vec!["https://portal.example".to_owned()])
    );
    assert!(!config.http.generate_correlation_id);
    assert_eq!(config.http.docs_url, "/docs");
    assert_eq!(config.log.log_format.as_deref(), Some("text"));
    assert_eq!(config.log.log_level, "INFO");
    assert_eq!(config.service_name, "wps");
}

#[test]
fn bad_flat_key_is_named() {
    let err = tessera_config::load_from::<ServiceConfig>(
        "wps",
        None,
        env(&[("WPS_CORS_ALLOWED_ORIGINS", "https://portal.example")]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "invalid value for config key \"cors_allowed_origins\" (env WPS_CORS_ALLOWED_ORIGINS"
        ),
        "{msg}"
    );
}

#[test]
fn example_yaml_lists_the_http_keys() {
    let yaml = tessera_config::example_yaml::<ServiceConfig>("example").unwrap();
    for key in [
        "api_root_path: ''",
        "port: 8080",
        "cors_allowed_origins: null",
        "log_level: INFO",
    ] {
        assert!(yaml.contains(key), "{key} in {yaml}");
    }
}
