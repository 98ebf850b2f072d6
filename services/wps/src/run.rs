//! Running the service: the REST API, the event consumer and the purge task, alone or
//! together, until a stop signal or a consumer failure; and [`start_dev`] for `tessera dev`.

use std::fmt;

use tessera_embedded::EmbeddedStore;
use tessera_http::RunningServer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::WpsConfig;
use crate::prepare::{Core, Overrides, prepare_core};
use crate::{Error, Result};

/// What to run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// The REST API (and the purge task, which belongs to the process serving packages).
    pub rest: bool,
    /// The event consumer.
    pub consumer: bool,
}

impl Parts {
    /// REST API, consumer and purge task in one process.
    pub const ALL: Self = Self {
        rest: true,
        consumer: true,
    };
    /// Only the REST API (and the purge task).
    pub const REST: Self = Self {
        rest: true,
        consumer: false,
    };
    /// Only the event consumer.
    pub const CONSUMER: Self = Self {
        rest: false,
        consumer: true,
    };
}

/// A running service: stop it with [`RunningWps::stop`], or [`RunningWps::wait`] for a
/// stop signal.
pub struct RunningWps {
    core: Core,
    server: Option<RunningServer>,
    consumer: Option<JoinHandle<Result<()>>>,
    purge: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for RunningWps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningWps")
            .field("url", &self.url())
            .field("consumer", &self.consumer.is_some())
            .field("purge", &self.purge.is_some())
            .finish_non_exhaustive()
    }
}

/// Starts `parts` of the service on a prepared core.
pub async fn start(core: Core, parts: Parts) -> Result<RunningWps> {
    let (shutdown, receiver) = watch::channel(false);
    let consumer = if parts.consumer {
        Some(core.spawn_consumer(receiver.clone()).await?)
    } else {
        None
    };
    let (server, purge) = if parts.rest {
        let server = match core.serve_rest().await {
            Ok(server) => server,
            Err(e) => {
                let _ = shutdown.send(true);
                return Err(e);
            }
        };
        (Some(server), core.spawn_purge(receiver))
    } else {
        (None, None)
    };
    Ok(RunningWps {
        core,
        server,
        consumer,
        purge,
        shutdown,
    })
}

/// Starts the REST API and the event consumer (and the purge task when
/// `purge_retention_days` is set) on `store`, for `tessera dev`.
///
/// ```no_run
/// # async fn demo(store: tessera_embedded::EmbeddedStore) -> wps::Result<()> {
/// let mut config = wps::WpsConfig::load()?; // or build it; signing and auth keys required
/// config.http.port = 0; // any free port
/// let running = wps::start_dev(config, store).await?;
/// println!("wps at {}", running.url().unwrap_or_default());
/// running.stop().await?;
/// # Ok(()) }
/// ```
pub async fn start_dev(config: WpsConfig, store: EmbeddedStore) -> Result<RunningWps> {
    let core = prepare_core(
        config,
        Overrides {
            store: Some(store),
            ..Overrides::default()
        },
    )
    .await?;
    start(core, Parts::ALL).await
}

impl RunningWps {
    /// `http://host:port` of the REST API, when it runs.
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(RunningServer::url)
    }

    /// The parts the service runs on.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Waits until a stop signal, the REST server stopping, or the consumer ending; then
    /// stops the rest. A consumer failure (an event that failed for good without a
    /// dead-letter topic) is returned as an error, as the original's consumer crashes.
    pub async fn wait(mut self) -> Result<()> {
        let server = self.server.take();
        let handle = server.as_ref().map(RunningServer::handle);
        let server_done = async move {
            match server {
                Some(server) => server.wait().await.map_err(Error::from),
                None => std::future::pending().await,
            }
        };
        let mut consumer = self.consumer.take();
        let consumer_done = async {
            match consumer.as_mut() {
                Some(task) => join(task).await,
                None => std::future::pending().await,
            }
        };
        let (result, consumer_finished) = tokio::select! {
            () = tessera_http::shutdown_signal() => (Ok(()), false),
            r = server_done => (r, false),
            r = consumer_done => (r, true),
        };
        if let Some(handle) = handle {
            handle.stop(true).await;
        }
        let _ = self.shutdown.send(true);
        let consumer_result = match (consumer, consumer_finished) {
            (Some(mut task), false) => join(&mut task).await,
            _ => Ok(()),
        };
        if let Some(purge) = self.purge.take() {
            let _ = purge.await;
        }
        result.and(consumer_result)
    }

    /// Stops the REST server (letting in-flight requests finish), the consumer (between
    /// events) and the purge task, and waits for them.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        let server = match self.server.take() {
            Some(server) => server.stop(true).await.map_err(Error::from),
            None => Ok(()),
        };
        let consumer = match self.consumer.as_mut() {
            Some(task) => join(task).await,
            None => Ok(()),
        };
        if let Some(purge) = self.purge.take() {
            let _ = purge.await;
        }
        server.and(consumer)
    }
}

async fn join(task: &mut JoinHandle<Result<()>>) -> Result<()> {
    match task.await {
        Ok(result) => result,
        Err(e) => Err(Error::Internal(format!("a background task failed: {e}"))),
    }
}

/// Runs `parts` of the service with `config` until a stop signal (or a consumer failure).
pub async fn run(config: WpsConfig, parts: Parts) -> Result<()> {
    let core = prepare_core(config, Overrides::default()).await?;
    let running = start(core, parts).await?;
    if let Some(url) = running.url() {
        tracing::info!(%url, "work package service listening");
    }
    running.wait().await
}
