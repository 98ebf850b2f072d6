//! The full stack around a service's routes, and the server that runs it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderName;
use actix_web::http::{KeepAlive, Method};
use actix_web::middleware::{Condition, from_fn};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use serde_json::json;
use utoipa::openapi::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::server::Server;
use utoipa_swagger_ui::SwaggerUi;

use crate::errors::{json_config, not_found, path_config, query_config};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::middleware::{Shared, request_context};
use crate::{Error, HttpConfig, Result};

/// Headers browsers may always send; Starlette allows them whatever the config says.
const SAFELISTED_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

/// A validated [`HttpConfig`] plus the OpenAPI document and the metrics shared by all workers.
/// Cheap to clone.
#[derive(Clone)]
pub struct HttpStack {
    config: Arc<HttpConfig>,
    root: String,
    openapi_url: Option<String>,
    docs_url: Option<String>,
    documents: Arc<Documents>,
    cors: Option<Arc<CorsSpec>>,
    shared: web::Data<Shared>,
    health: web::Data<Health>,
}

impl fmt::Debug for HttpStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStack")
            .field("config", &self.config)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl HttpStack {
    /// Validates the config (paths, CORS methods and headers). The OpenAPI document is
    /// `openapi()` with `/health` documented, plus `servers: [api_root_path]` as FastAPI
    /// does when a root path is set; it is made on first use (the document route, or a
    /// 405's `Allow`), not at start: building it runs much code an idle service would
    /// otherwise keep resident (conductor idled 0.7 MiB lower with the document left out).
    pub fn new(
        config: HttpConfig,
        openapi: impl Fn() -> OpenApi + Send + Sync + 'static,
    ) -> Result<Self> {
        let root = normalise_root(&config.api_root_path)?;
        let openapi_url = optional_path("openapi_url", &config.openapi_url)?;
        // Without the document the docs page has nothing to show.
        let docs_url =
            optional_path("docs_url", &config.docs_url)?.filter(|_| openapi_url.is_some());
        let cors = config
            .cors_allowed_origins
            .as_ref()
            .map(|origins| CorsSpec::new(origins, &config).map(Arc::new))
            .transpose()?;
        let documents = Arc::new(Documents {
            build: Box::new(openapi),
            root: root.clone(),
            other_gets: ["/metrics".to_owned()]
                .into_iter()
                .chain(openapi_url.clone())
                .chain(docs_url.clone())
                .collect(),
            made: OnceLock::new(),
        });
        let shared = web::Data::new(Shared {
            generate_correlation_id: config.generate_correlation_id,
            metrics: Arc::new(Metrics::new()),
            documents: documents.clone(),
        });
        Ok(Self {
            config: Arc::new(config),
            root,
            openapi_url,
            docs_url,
            documents,
            cors,
            shared,
            health: web::Data::new(Health::new()),
        })
    }

    /// Reports the parts' states in `health` at `GET /health` (503 while one is not up).
    #[must_use]
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = web::Data::new(health);
        self
    }

    /// The config this stack was built from.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The metrics every app built from this stack records into.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The OpenAPI document as served, JSON (made now if not yet).
    pub fn openapi_json(&self) -> &[u8] {
        &self.documents.made().json
    }

    /// The app: `routes` plus `/health`, OpenAPI, docs and `/metrics` under `api_root_path`,
    /// with the request middleware, CORS, JSON error shapes and the 404/405 default service.
    /// Use it with `actix_web::test::init_service` in tests; [`HttpStack::serve`] runs it.
    pub fn app<F>(
        &self,
        routes: F,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + use<F>>,
            Error = actix_web::Error,
            InitError = (),
        > + use<F>,
    >
    where
        F: FnOnce(&mut web::ServiceConfig),
    {
        let mut scope = web::scope(&self.root)
            .route("/health", web::get().to(crate::health::health))
            .route("/metrics", web::get().to(metrics));
        if let Some(openapi_url) = &self.openapi_url {
            let documents = self.documents.clone();
            scope = scope.route(
                openapi_url,
                web::get().to(move || {
                    let json = documents.made().json.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(json)
                    }
                }),
            );
            if let Some(docs_url) = &self.docs_url {
                // The page itself at `<docs_url>` (200, as FastAPI), with a `<base>` so that
                // its relative asset URLs still resolve under `<docs_url>/`.
                let page = docs_page(&format!("{}{docs_url}/", self.root));
                scope = scope
                    .route(
                        docs_url,
                        web::get().to(move || {
                            let page = page.clone();
                            async move {
                                match page {
                                    Some(page) => HttpResponse::Ok()
                                        .content_type("text/html; charset=utf-8")
                                        .body(page),
                                    None => HttpResponse::InternalServerError().finish(),
                                }
                            }
                        }),
                    )
                    .service(SwaggerUi::new(format!("{docs_url}/{{_:.*}}")).config(
                        utoipa_swagger_ui::Config::new([format!("{}{openapi_url}", self.root)]),
                    ));
            }
        }
        let scope = scope.configure(routes);
        let cors = self.cors.as_deref().map(CorsSpec::build);
        let cors_enabled = cors.is_some();
        App::new()
            .app_data(self.shared.clone())
            .app_data(self.health.clone())
            .app_data(json_config())
            .app_data(path_config())
            .app_data(query_config())
            .service(scope)
            .default_service(web::to(not_found))
            .wrap(Condition::new(cors_enabled, cors.unwrap_or_default()))
            .wrap(from_fn(request_context))
    }

    /// Binds `host:port` (port 0 picks a free one) and runs the app on `workers` threads until
    /// SIGTERM/SIGINT or [`RunningServer::stop`]; in-flight requests get `shutdown_timeout`.
    pub async fn serve<F>(&self, routes: F) -> Result<RunningServer>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let config = &self.config;
        let bind_error = |source| Error::Bind {
            addr: format!("{}:{}", config.host, config.port),
            source,
        };
        let listener =
            TcpListener::bind((config.host.as_str(), config.port)).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let keep_alive = match config.timeout_keep_alive {
            0 => KeepAlive::Disabled,
            secs => KeepAlive::Timeout(Duration::from_secs(secs)),
        };
        let stack = self.clone();
        let server = HttpServer::new(move || stack.app(routes.clone()))
            .workers(workers)
            .keep_alive(keep_alive)
            .shutdown_timeout(config.shutdown_timeout)
            .listen(listener)
            .map_err(bind_error)?
            .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        tracing::info!(%addr, workers, root = %self.root, "http server listening");
        Ok(RunningServer { addr, handle, task })
    }
}

/// Swagger UI's `index.html` with `<base href="{base}">` as the first element of its head.
fn docs_page(base: &str) -> Option<Bytes> {
    let config = Arc::new(utoipa_swagger_ui::Config::new(Vec::<String>::new()));
    let file = utoipa_swagger_ui::serve("index.html", config)
        .ok()
        .flatten()?;
    if file.gzpipped {
        return None;
    }
    let html = String::from_utf8(file.bytes.into_owned()).ok()?;
    let base = format!("<base href=\"{}\">", html_escape(base));
    let page = match html.find("<head>") {
        Some(at) => format!("{}{base}{}", &html[..at + 6], &html[at + 6..]),
        None => format!("{base}{html}"),
    };
    Some(Bytes::from(page))
}

/// Escapes text for an HTML attribute value.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Builds the stack and runs it; see [`HttpStack::serve`].
pub async fn serve<F>(
    config: &HttpConfig,
    openapi: impl Fn() -> OpenApi + Send + Sync + 'static,
    routes: F,
) -> Result<RunningServer>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    HttpStack::new(config.clone(), openapi)?.serve(routes).await
}

/// A server running in the background.
pub struct RunningServer {
    addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops the server (gracefully: waiting up to `shutdown_timeout` for in-flight requests)
    /// and waits until it has stopped.
    pub async fn stop(self, graceful: bool) -> Result<()> {
        self.handle.stop(graceful).await;
        self.wait().await
    }

    /// Waits until the server stops (signal or handle).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::Server(err)),
            Err(err) => Err(Error::Server(std::io::Error::other(err.to_string()))),
        }
    }
}

async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(shared.metrics.render())
}

/// The service's OpenAPI document and what is made of it, on first use.
pub(crate) struct Documents {
    build: Box<dyn Fn() -> OpenApi + Send + Sync>,
    root: String,
    /// Undocumented GET routes of the stack (metrics, the document, the docs page).
    other_gets: Vec<String>,
    made: OnceLock<Made>,
}

/// The document as served and the `Allow` value of each route pattern, for 405s.
pub(crate) struct Made {
    pub(crate) json: Bytes,
    pub(crate) allow: BTreeMap<String, String>,
}

impl fmt::Debug for Documents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Documents")
            .field("root", &self.root)
            .field("made", &self.made.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Documents {
    pub(crate) fn made(&self) -> &Made {
        self.made.get_or_init(|| {
            let document = document((self.build)(), &self.root);
            let mut json = serde_json::to_value(&document).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot serialise the OpenAPI document");
                json!({})
            });
            uuid4_patterns(&mut json);
            let mut allow = allowed_methods(&document, &self.root);
            for path in &self.other_gets {
                allow.insert(format!("{}{path}", self.root), "GET".to_owned());
            }
            Made {
                json: Bytes::from(json.to_string()),
                allow,
            }
        })
    }
}

fn document(mut openapi: OpenApi, root: &str) -> OpenApi {
    let example = ContentBuilder::new()
        .example(Some(json!({ "status": "OK" })))
        .build();
    let operation = OperationBuilder::new()
        .operation_id(Some("health"))
        .summary(Some("Health check"))
        .tag("health")
        .response(
            "200",
            ResponseBuilder::new()
                .description("The service is up")
                .content("application/json", example)
                .build(),
        )
        .build();
    openapi
        .paths
        .add_path_operation("/health", vec![HttpMethod::Get], operation);
    if !root.is_empty() && openapi.servers.is_none() {
        openapi.servers = Some(vec![Server::new(root)]);
    }
    openapi
}

/// A UUID of version 4 in any case (pydantic's `UUID4` checks the version digit only).
pub const UUID4_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Every UUID the services take or give is a version 4 (`parse_uuid4`): each string schema
/// of `format: uuid` without a pattern gets [`UUID4_PATTERN`], so that clients and test
/// generators know a version 1 UUID is refused (422).
fn uuid4_patterns(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("format").and_then(serde_json::Value::as_str) == Some("uuid")
                && !map.contains_key("pattern")
            {
                map.insert("pattern".to_owned(), json!(UUID4_PATTERN));
            }
            map.values_mut().for_each(uuid4_patterns);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(uuid4_patterns),
        _ => {}
    }
}

/// The `Allow` value of each documented path (as actix patterns, under `root`).
fn allowed_methods(document: &OpenApi, root: &str) -> BTreeMap<String, String> {
    document
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods: Vec<&str> = [
                ("GET", &item.get),
                ("HEAD", &item.head),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ]
            .into_iter()
            .filter(|(_, operation)| operation.is_some())
            .map(|(method, _)| method)
            .collect();
            (format!("{root}{path}"), methods.join(", "))
        })
        .collect()
}

/// `""` or `/a/b` without a trailing slash.
fn normalise_root(root: &str) -> Result<String> {
    let trimmed = root.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err(Error::Config(format!(
            "api_root_path must start with '/': {root:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Empty means disabled; otherwise a path starting with `/`.
fn optional_path(key: &str, path: &str) -> Result<Option<String>> {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !trimmed.starts_with('/') {
        return Err(Error::Config(format!(
            "{key} must start with '/': {path:?}"
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

/// `None` means "any" (`*` in the config).
#[derive(Debug, Clone)]
struct CorsSpec {
    origins: Option<Vec<String>>,
    methods: Option<Vec<Method>>,
    headers: Option<Vec<HeaderName>>,
    exposed: Option<Vec<HeaderName>>,
    credentials: bool,
}

impl CorsSpec {
    /// Starlette's defaults for what the config leaves null: `GET` only, the safelisted headers,
    /// nothing exposed, no credentials.
    fn new(origins: &[String], config: &HttpConfig) -> Result<Self> {
        let any = |list: &[String]| list.iter().any(|v| v == "*");
        let origins = (!any(origins)).then(|| origins.to_vec());
        for origin in origins.iter().flatten() {
            actix_web::http::Uri::try_from(origin.as_str()).map_err(|e| {
                Error::Config(format!(
                    "invalid cors_allowed_origins entry {origin:?}: {e}"
                ))
            })?;
        }
        let methods = match &config.cors_allowed_methods {
            Some(list) if any(list) => None,
            Some(list) => Some(
                list.iter()
                    .map(|m| {
                        Method::from_bytes(m.to_uppercase().as_bytes()).map_err(|_| {
                            Error::Config(format!("invalid cors_allowed_methods entry {m:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => Some(vec![Method::GET]),
        };
        let header_names = |key: &str, list: &[String]| {
            list.iter()
                .map(|h| {
                    HeaderName::from_bytes(h.as_bytes())
                        .map_err(|_| Error::Config(format!("invalid {key} entry {h:?}")))
                })
                .collect::<Result<Vec<_>>>()
        };
        let mut safelisted: Vec<HeaderName> = SAFELISTED_HEADERS
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect();
        let headers = match &config.cors_allowed_headers {
            Some(list) if any(list) => None,
            Some(list) => {
                safelisted.extend(header_names("cors_allowed_headers", list)?);
                Some(safelisted)
            }
            None => Some(safelisted),
        };
        let exposed = match &config.cors_exposed_headers {
            Some(list) if any(list) => None,
            Some(list) => Some(header_names("cors_exposed_headers", list)?),
            None => Some(Vec::new()),
        };
        Ok(Self {
            origins,
            methods,
            headers,
            exposed,
            credentials: config.cors_allow_credentials.unwrap_or(false),
        })
    }

    fn build(&self) -> Cors {
        // Like Starlette, a foreign origin just gets no CORS headers instead of an error.
        let mut cors = Cors::default().block_on_origin_mismatch(false).max_age(600);
        cors = match &self.origins {
            // With credentials the browser needs the origin echoed, not `*`.
            None if self.credentials => cors.allow_any_origin(),
            None => cors.allow_any_origin().send_wildcard(),
            Some(origins) => origins
                .iter()
                .fold(cors, |cors, origin| cors.allowed_origin(origin)),
        };
        cors = match &self.methods {
            None => cors.allow_any_method(),
            Some(methods) => cors.allowed_methods(methods.clone()),
        };
        cors = match &self.headers {
            None => cors.allow_any_header(),
            Some(headers) => cors.allowed_headers(headers.clone()),
        };
        cors = match &self.exposed {
            None => cors.expose_any_header(),
            Some(exposed) if exposed.is_empty() => cors,
            Some(exposed) => cors.expose_headers(exposed.clone()),
        };
        if self.credentials {
            cors = cors.supports_credentials();
        }
        cors
    }
}
