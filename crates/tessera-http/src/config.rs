//! Config fragments that services `#[serde(flatten)]` into their own config.

use serde::{Deserialize, Serialize};

/// HTTP server settings; field names are flat config keys (`WPS_PORT`, `WPS_CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Prefix under which every route is mounted, e.g. `/api/wps`; empty for none.
    pub api_root_path: String,
    /// Path of the OpenAPI document; empty disables it (and the docs page).
    pub openapi_url: String,
    /// Path of the Swagger UI page; empty disables it.
    pub docs_url: String,
    /// Origins allowed by CORS (`*` for any); null means no CORS headers at all.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Whether CORS responses allow credentials; null means no.
    pub cors_allow_credentials: Option<bool>,
    /// Methods allowed by CORS (`*` for any); null means `GET` only.
    pub cors_allowed_methods: Option<Vec<String>>,
    /// Request headers allowed by CORS besides the safelisted ones (`*` for any).
    pub cors_allowed_headers: Option<Vec<String>>,
    /// Response headers exposed to the browser (`*` for any).
    pub cors_exposed_headers: Option<Vec<String>>,
    /// Replace a missing or invalid `X-Request-Id` with a fresh UUID4 instead of answering 400.
    pub generate_correlation_id: bool,
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// Seconds an idle keep-alive connection stays open; 0 disables keep-alive.
    pub timeout_keep_alive: u64,
    /// Seconds in-flight requests get to finish after a stop signal.
    pub shutdown_timeout: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            api_root_path: String::new(),
            openapi_url: "/openapi.json".into(),
            docs_url: "/docs".into(),
            cors_allowed_origins: None,
            cors_allow_credentials: None,
            cors_allowed_methods: None,
            cors_allowed_headers: None,
            cors_exposed_headers: None,
            generate_correlation_id: true,
            workers: 1,
            timeout_keep_alive: 90,
            shutdown_timeout: 30,
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `TRACE`, `DEBUG`, `INFO`, `WARNING`/`WARN`, `ERROR`, `CRITICAL`, or a full
    /// tracing filter such as `info,actix_server=warn`.
    pub log_level: String,
    /// Null or `json` for JSON lines; `text` for human-readable lines.
    pub log_format: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            log_level: "INFO".into(),
            log_format: None,
        }
    }
}
