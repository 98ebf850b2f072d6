//! What every Tessera actix-web service needs, so that a service only writes its routes.
//!
//! [`HttpStack`] turns a service's routes (a `Fn(&mut web::ServiceConfig)`) into the full
//! app, mounted under `api_root_path`:
//! - outermost middleware: `X-Request-Id` correlation id (validated UUID4, generated or 400),
//!   a tracing span per request with `correlation_id`, `method` and `path`, one log line per
//!   request with status and duration, and Prometheus metrics by route pattern;
//! - CORS from [`HttpConfig`] (only when `cors_allowed_origins` is set);
//! - FastAPI's error shapes: 404/405 `{"detail": …}`, 422 for JSON bodies, paths and queries,
//!   500 `{"message":"Internal Server Error."}`;
//! - `GET /health`, the OpenAPI document (with `/health` added), Swagger UI and `/metrics`.
//!
//! [`HttpStack::serve`] binds (port 0 works) and runs it with graceful shutdown on
//! SIGTERM/SIGINT; [`HttpStack::app`] gives the same app to `actix_web::test::init_service`.
//! [`shutdown_signal`] is the same wait for a service's own tasks (consumers, purges).
//!
//! Layout: `config` (config fragments), `app` (stack, server, CORS, docs), `middleware`,
//! `correlation`, `errors` (response shapes and extractor configs), `metrics`, `logging`,
//! `openapi` (shared document pieces such as [`BearerScheme`]), `shutdown` (waiting for
//! SIGINT/SIGTERM).
//!
//! Known limit: a route declared with a method macro (`#[get]`) is a guarded resource, so a
//! wrong method is found by path in the default service; routes built with `web::resource`
//! get actix's own 405, which the middleware turns into the JSON body keeping `Allow`.

mod app;
mod config;
mod correlation;
mod errors;
mod health;
mod logging;
mod metrics;
mod middleware;
mod openapi;
mod shutdown;

pub use app::{HttpStack, RunningServer, UUID4_PATTERN, serve};
pub use config::{HttpConfig, LogConfig};
pub use correlation::{
    CorrelationId, HEADER as CORRELATION_ID_HEADER, parse_uuid4 as parse_correlation_id,
};
pub use errors::{
    ValidationError, ValidationItem, detail, error_chain, internal_error, json_config, not_found,
    parse_uuid4, path_config, query_config,
};
pub use health::{Health, PartState};
pub use logging::{ClientErrorsAsWarnings, init_logging, subscriber};
pub use metrics::{Metrics, UNMATCHED_ROUTE};
pub use openapi::BearerScheme;
pub use shutdown::shutdown_signal;

/// Errors of building or running the HTTP stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config is unusable (bad path, CORS entry, …).
    #[error("invalid http config: {0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("http server failed")]
    Server(#[source] std::io::Error),
    /// Logging could not be set up.
    #[error("invalid logging config: {0}")]
    Logging(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
