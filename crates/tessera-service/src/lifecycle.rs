//! A service process as a set of parts (the REST API, event consumers, periodic tasks,
//! long-running workers) and the runtime that starts, watches and stops them.
//!
//! Each [`Part`] has a [`Role`]; a command runs the parts of the roles it asks for
//! ([`Parts`]). [`start`] starts them in the order the service declared them (a part's start
//! is where it binds its port or joins its consumer group, so failures show up there); if
//! one fails to start, those already running are stopped and the error is returned.
//! [`Running::wait`] returns on a stop signal (SIGINT/SIGTERM, or [`Stopper::stop`]) or when a
//! part ends; either way every other part is then stopped, one after the other in declared
//! order (the REST API first, so in-flight requests finish while the rest still runs), all
//! within one deadline after which a part is aborted. A part's error is the result. The
//! states are published in a [`Health`] that the REST part serves at `/health`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tessera_http::{Health, HttpStack, PartState};
use tessera_kit::events::{ConsumerIdentity, EventHandler};
use tessera_kit::subscriber::{Subscriber, SubscriberConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Service;
use crate::backends::Backends;
use crate::error::Error;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How long the parts together may take to stop before the rest are aborted.
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Which commands run a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The REST API and what belongs to the process serving it (`run-rest`).
    Rest,
    /// Event consumers (`consume-events`).
    Events,
    /// Long-running background workers such as job runners (`run-workers`).
    Workers,
}

/// The roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// [`Role::Rest`].
    pub rest: bool,
    /// [`Role::Events`].
    pub consumer: bool,
    /// [`Role::Workers`].
    pub workers: bool,
}

impl Parts {
    /// Every part (`serve`).
    pub const ALL: Self = Self {
        rest: true,
        consumer: true,
        workers: true,
    };
    /// Only the REST API and its tasks (`run-rest`).
    pub const REST: Self = Self {
        rest: true,
        consumer: false,
        workers: false,
    };
    /// Only the event consumers (`consume-events`).
    pub const CONSUMER: Self = Self {
        rest: false,
        consumer: true,
        workers: false,
    };
    /// Only the workers (`run-workers`).
    pub const WORKERS: Self = Self {
        rest: false,
        consumer: false,
        workers: true,
    };

    /// Whether parts of `role` run.
    pub fn includes(self, role: Role) -> bool {
        match role {
            Role::Rest => self.rest,
            Role::Events => self.consumer,
            Role::Workers => self.workers,
        }
    }
}

/// The stop signal a part receives; resolves once when the runtime asks the part to stop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that raises it.
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (sender, Self(receiver))
    }

    /// Resolves once the stop is asked for (or the runtime is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether the stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// The underlying receiver, for APIs that take one.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(receiver: watch::Receiver<bool>) -> Self {
        Self(receiver)
    }
}

/// What a part's start hands it.
#[derive(Debug, Clone)]
pub struct PartContext {
    /// Its stop signal.
    pub shutdown: Shutdown,
    /// The process's health, for the REST part to serve.
    pub health: Health,
}

/// A started part: its URL if it serves HTTP, and the future that runs it to its end.
pub struct Started<E> {
    url: Option<String>,
    run: BoxFuture<Result<(), E>>,
}

impl<E> fmt::Debug for Started<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<E> Started<E> {
    /// A part that runs `run` (until its stop signal, usually).
    pub fn new(run: impl Future<Output = Result<(), E>> + Send + 'static) -> Self {
        Self {
            url: None,
            run: Box::pin(run),
        }
    }

    /// The same, serving at `url`.
    #[must_use]
    pub fn with_url(mut self, url: String) -> Self {
        self.url = Some(url);
        self
    }
}

type StartFn<E> = Box<dyn FnOnce(PartContext) -> BoxFuture<Result<Started<E>, E>> + Send>;

/// One part of a service: a name (for logs and `/health`), a role, and how it starts.
pub struct Part<E> {
    name: &'static str,
    role: Role,
    start: StartFn<E>,
}

impl<E> fmt::Debug for Part<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<E: From<Error> + Send + 'static> Part<E> {
    /// A part with a start step of its own (bind, connect) that may fail.
    pub fn new<F, Fut>(name: &'static str, role: Role, start: F) -> Self
    where
        F: FnOnce(PartContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Started<E>, E>> + Send + 'static,
    {
        Self {
            name,
            role,
            start: Box::new(move |context| Box::pin(start(context))),
        }
    }

    /// A part that only runs: `run` gets the stop signal and should end soon after it.
    pub fn task<F, Fut>(name: &'static str, role: Role, run: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        Self::new(name, role, move |context| async move {
            Ok(Started::new(run(context.shutdown)))
        })
    }

    /// A part that calls `tick` now and then every `interval` until stopped (purges,
    /// clean-ups); `tick` logs its own failures, which never end the part.
    pub fn periodic<F, Fut>(name: &'static str, role: Role, interval: Duration, tick: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::task(name, role, move |shutdown| async move {
            every(interval, shutdown, tick).await;
            Ok(())
        })
    }

    /// The REST API: binds at start (an address in use fails the start, naming it), serves
    /// the process's health, and stops gracefully when asked.
    pub fn rest<F>(name: &'static str, stack: HttpStack, routes: F) -> Self
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        Self::new(name, Role::Rest, move |context| async move {
            let server = stack
                .with_health(context.health)
                .serve(routes)
                .await
                .map_err(|e| E::from(Error::Http(e)))?;
            let url = server.url();
            let handle = server.handle();
            let run = async move {
                let stopped = tokio::select! {
                    () = context.shutdown.wait() => true,
                    result = server.wait() => return result.map_err(|e| E::from(Error::Http(e))),
                };
                if stopped {
                    handle.stop(true).await;
                }
                Ok(())
            };
            Ok(Started::new(run).with_url(url))
        })
    }

    /// An event consumer: joins consumer group `identity` on the bus of `backends` at start
    /// (an unreachable broker fails the start, naming its key) and runs the subscriber loop
    /// with `handler` until stopped. It ends with an error when an event fails for good
    /// without a dead-letter topic, as the original's consumer does.
    pub fn consumer(
        name: &'static str,
        backends: std::sync::Arc<Backends>,
        identity: ConsumerIdentity,
        config: SubscriberConfig,
        handler: std::sync::Arc<dyn EventHandler>,
    ) -> Self
    where
        E: From<tessera_kit::events::Error>,
    {
        Self::new(name, Role::Events, move |context| async move {
            let (bus, transport) = backends.event_bus(&identity).await?;
            let mut subscriber = Subscriber::subscribe(bus, identity.clone(), config, handler)
                .await
                .map_err(E::from)?;
            tracing::info!(group = %identity.service_name, ?transport, "event consumer started");
            Ok(Started::new(async move {
                let result = subscriber.run_until(context.shutdown.wait()).await;
                match &result {
                    Ok(()) => tracing::info!("event consumer stopped"),
                    Err(e) => tracing::error!(error = %e, "event consumer failed"),
                }
                result.map_err(E::from)
            }))
        })
    }
}

/// Calls `tick` now and every `interval` until `shutdown`.
pub async fn every<F, Fut>(interval: Duration, shutdown: Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tick().await;
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

struct Active<E> {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), E>>>,
}

/// Asks a [`Running`] service to stop, from anywhere (another service in `tessera dev`).
#[derive(Debug, Clone)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    /// Asks for the stop; [`Running::wait`] then stops every part and returns.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A running service: its prepared core and its started parts.
pub struct Running<S: Service> {
    core: S,
    url: Option<String>,
    parts: Vec<Active<S::Error>>,
    health: Health,
    requested: watch::Sender<bool>,
    deadline: Duration,
}

impl<S: Service> fmt::Debug for Running<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("service", &S::INFO.name)
            .field("url", &self.url)
            .field(
                "parts",
                &self.parts.iter().map(|p| p.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Starts the parts of `core` that `selection` asks for, in declared order. When one fails
/// to start, the started ones are stopped and its error returned.
pub async fn start<S: Service>(core: S, selection: Parts) -> Result<Running<S>, S::Error> {
    let health = Health::new();
    let declared: Vec<Part<S::Error>> = core
        .parts()?
        .into_iter()
        .filter(|part| selection.includes(part.role))
        .collect();
    for part in &declared {
        health.set(part.name, PartState::Starting);
    }
    let (requested, _) = watch::channel(false);
    let mut running = Running {
        core,
        url: None,
        parts: Vec::with_capacity(declared.len()),
        health,
        requested,
        deadline: STOP_DEADLINE,
    };
    for part in declared {
        let (stop, shutdown) = Shutdown::channel();
        let context = PartContext {
            shutdown,
            health: running.health.clone(),
        };
        match (part.start)(context).await {
            Ok(started) => {
                if running.url.is_none() {
                    running.url = started.url;
                }
                running.health.set(part.name, PartState::Up);
                running.parts.push(Active {
                    name: part.name,
                    stop,
                    task: Some(tokio::spawn(started.run)),
                });
            }
            Err(err) => {
                running
                    .health
                    .set(part.name, PartState::Down(err.to_string()));
                tracing::error!(part = part.name, error = %chain(&err), "part failed to start");
                let _ = running.stop_parts().await;
                return Err(err);
            }
        }
    }
    Ok(running)
}

impl<S: Service> Running<S> {
    /// `http://host:port` of the REST API, when it runs.
    pub fn url(&self) -> Option<String> {
        self.url.clone()
    }

    /// The prepared core.
    pub fn core(&self) -> &S {
        &self.core
    }

    /// The parts' states, as `/health` reports them.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// A handle that makes [`Running::wait`] stop everything and return.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.requested.clone())
    }

    /// Sets the deadline for stopping every part (default [`STOP_DEADLINE`]).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Waits for SIGINT/SIGTERM, a [`Stopper`], or a part ending; then stops the others.
    /// The first part that failed gives the error.
    pub async fn wait(mut self) -> Result<(), S::Error> {
        let mut requested = self.requested.subscribe();
        let ended = {
            let tasks = self
                .parts
                .iter_mut()
                .enumerate()
                .filter_map(|(i, p)| p.task.as_mut().map(|t| (i, t)))
                .map(|(i, task)| Box::pin(async move { (i, task.await) }));
            let tasks: Vec<_> = tasks.collect();
            let first = async {
                if tasks.is_empty() {
                    std::future::pending().await
                } else {
                    futures::future::select_all(tasks).await.0
                }
            };
            tokio::select! {
                () = tessera_http::shutdown_signal() => None,
                _ = requested.wait_for(|stop| *stop) => None,
                (index, result) = first => Some((index, result)),
            }
        };
        let first = match ended {
            None => Ok(()),
            Some((index, result)) => {
                let part = &mut self.parts[index];
                part.task = None;
                let result = joined(part.name, result);
                match &result {
                    Ok(()) => {
                        tracing::info!(part = part.name, "part ended; stopping the others");
                        self.health.set(part.name, PartState::Down("ended".into()));
                    }
                    Err(e) => {
                        tracing::error!(part = part.name, error = %chain(e), "part failed; stopping the others");
                        self.health.set(part.name, PartState::Down(e.to_string()));
                    }
                }
                result
            }
        };
        let rest = self.stop_parts().await;
        first.and(rest)
    }

    /// Stops every part in declared order and waits for them.
    pub async fn stop(mut self) -> Result<(), S::Error> {
        self.stop_parts().await
    }

    async fn stop_parts(&mut self) -> Result<(), S::Error> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut outcome = Ok(());
        for part in &mut self.parts {
            let Some(mut task) = part.task.take() else {
                continue;
            };
            self.health.set(part.name, PartState::Stopping);
            part.stop.send_replace(true);
            let result = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(result) => joined(part.name, result),
                Err(_) => {
                    task.abort();
                    Err(S::Error::from(Error::StopTimeout {
                        part: part.name,
                        seconds: self.deadline.as_secs(),
                    }))
                }
            };
            self.health
                .set(part.name, PartState::Down("stopped".into()));
            if let Err(e) = result {
                tracing::error!(part = part.name, error = %chain(&e), "part failed while stopping");
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
        outcome
    }
}

/// A part's task result: a panic or cancellation becomes [`Error::Crashed`].
fn joined<E: From<Error>>(
    part: &'static str,
    result: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), E> {
    match result {
        Ok(result) => result,
        Err(e) => Err(E::from(Error::Crashed {
            part,
            message: e.to_string(),
        })),
    }
}

/// `err` and its causes on one line: `a: b: c`.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    tessera_http::error_chain(err)
}
