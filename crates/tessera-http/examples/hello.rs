//! A minimal service on the stack: `cargo run -p tessera-http --example hello`, then
//! `curl localhost:8080/hello`; SIGTERM or Ctrl-C stops it gracefully.

use actix_web::{HttpResponse, web};
use tessera_http::{CorrelationId, HttpConfig, LogConfig, init_logging, serve};
use utoipa::openapi::{Info, OpenApi, Paths};

async fn hello(id: CorrelationId) -> HttpResponse {
    tracing::info!("saying hello");
    HttpResponse::Ok()
        .json(serde_json::json!({ "hello": "world", "correlation_id": id.to_string() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging(&LogConfig::default())?;
    let port = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(8080);
    let config = HttpConfig {
        port,
        shutdown_timeout: 5,
        ..HttpConfig::default()
    };
    let openapi = || OpenApi::new(Info::new("hello", "0.1.0"), Paths::new());
    let server = serve(&config, openapi, |cfg: &mut web::ServiceConfig| {
        cfg.route("/hello", web::get().to(hello));
    })
    .await?;
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}
