//! What `tessera dev` needs of a service: one [`DevEntry`] per service, which builds the
//! service's config from a [`DevEnv`] (the shared embedded store, development secrets kept
//! beside it, a port of its own) and starts every part in-process; and [`start_all`] /
//! [`wait_all`], which run a list of them as one process.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tessera_embedded::EmbeddedStore;
use tessera_http::HttpConfig;

use crate::error::{BoxError, Error};
use crate::lifecycle::{BoxFuture, Parts, Running, Stopper, start};
use crate::{Given, Service};

/// The file in the keys directory that holds the development secrets.
pub const SECRETS_FILE: &str = "dev-keys.json";

/// Development secrets: named strings generated on first use and kept in
/// [`SECRETS_FILE`] (mode 0600), so that tokens minted in development keep working across
/// restarts. Cheap to clone; clones share the file.
#[derive(Clone)]
pub struct DevSecrets {
    path: PathBuf,
    values: Arc<Mutex<BTreeMap<String, String>>>,
}

impl fmt::Debug for DevSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevSecrets")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DevSecrets {
    /// The secrets in `dir`, read from [`SECRETS_FILE`] when it exists.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(SECRETS_FILE);
        let values = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Usage(format!(
                    "{} is not a valid keys file ({e}); delete it to generate new keys",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(Error::Io {
                    what: path.display().to_string(),
                    source,
                });
            }
        };
        Ok(Self {
            path,
            values: Arc::new(Mutex::new(values)),
        })
    }

    /// The file the secrets live in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secrets named `names`; when any is missing, all of them are made by `generate`
    /// (they belong together, like the halves of a key pair) and stored.
    pub fn get_or_generate<const N: usize>(
        &self,
        names: [&str; N],
        generate: impl FnOnce() -> Result<[String; N], BoxError>,
    ) -> Result<[String; N], Error> {
        let mut values = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = names
            .iter()
            .map(|name| values.get(*name).filter(|v| !v.is_empty()).cloned())
            .collect::<Option<Vec<_>>>()
            .and_then(|found| <[String; N]>::try_from(found).ok())
        {
            return Ok(found);
        }
        let made =
            generate().map_err(|e| Error::Usage(format!("cannot generate {names:?}: {e}")))?;
        for (name, value) in names.iter().zip(&made) {
            values.insert((*name).to_owned(), value.clone());
        }
        self.write(&values)?;
        Ok(made)
    }

    /// Writes a new file and renames it over the old one, so a crash never leaves half a
    /// file; only the owner may read it.
    fn write(&self, values: &BTreeMap<String, String>) -> Result<(), Error> {
        use std::io::Write;
        let io = |source| Error::Io {
            what: self.path.display().to_string(),
            source,
        };
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = serde_json::to_string_pretty(values)
            .map_err(|e| Error::Usage(format!("cannot encode keys: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// The identity provider services link accounts with in development.
#[derive(Debug, Clone)]
pub struct DevIdp {
    /// Its issuer URL (the discovery document is under it).
    pub url: String,
    /// The client id services use there.
    pub client_id: String,
    /// The client secret services use there.
    pub client_secret: String,
}

/// What a service gets inside `tessera dev`.
#[derive(Debug, Clone)]
pub struct DevEnv {
    /// The store every service shares (documents and events).
    pub store: EmbeddedStore,
    /// The development secrets.
    pub secrets: DevSecrets,
    /// The service's HTTP settings: the host and a port of its own (never 0, so a service
    /// can put its own URL into redirect URIs).
    pub http: HttpConfig,
    /// The identity provider.
    pub idp: DevIdp,
}

impl DevEnv {
    /// `http://host:port/` of the service.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}/", self.http.host, self.http.port)
    }
}

/// A running service, whatever its type.
#[async_trait]
pub trait Supervised: Send + fmt::Debug {
    /// Its REST API's URL.
    fn url(&self) -> Option<String>;
    /// A handle that stops it.
    fn stopper(&self) -> Stopper;
    /// Waits until a stop signal or a part ending; then stops the rest.
    async fn wait(self: Box<Self>) -> Result<(), BoxError>;
}

#[async_trait]
impl<S: Service> Supervised for Running<S> {
    fn url(&self) -> Option<String> {
        Running::url(self)
    }

    fn stopper(&self) -> Stopper {
        Running::stopper(self)
    }

    async fn wait(self: Box<Self>) -> Result<(), BoxError> {
        Running::wait(*self)
            .await
            .map_err(|e| Box::new(e) as BoxError)
    }
}

type DevStart = fn(DevEnv) -> BoxFuture<Result<Box<dyn Supervised>, BoxError>>;

/// One service in `tessera dev` (and in the operator's generated example config).
#[derive(Clone, Copy)]
pub struct DevEntry {
    /// The service's name.
    pub name: &'static str,
    /// What it re-implements.
    pub title: &'static str,
    /// Its environment prefix.
    pub prefix: &'static str,
    start: DevStart,
    example: fn(&str) -> Result<String, tessera_config::Error>,
}

impl fmt::Debug for DevEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn start_dev<S: Service>(env: DevEnv) -> BoxFuture<Result<Box<dyn Supervised>, BoxError>> {
    Box::pin(async move {
        let config = S::dev_config(&env)?;
        let given = Given {
            store: Some(env.store),
        };
        let core = S::prepare(config, given).await?;
        let running = start(core, Parts::ALL).await?;
        Ok(Box::new(running) as Box<dyn Supervised>)
    })
}

impl DevEntry {
    /// The entry of service `S`: [`Service::dev_config`], then every part.
    pub fn of<S: Service>() -> Self {
        Self {
            name: S::INFO.name,
            title: S::INFO.title,
            prefix: <S::Config as crate::ServiceConfig>::PREFIX,
            start: start_dev::<S>,
            example: tessera_config::example_yaml::<S::Config>,
        }
    }

    /// The service's config keys with their defaults as YAML, under `header`.
    pub fn example_yaml(&self, header: &str) -> Result<String, tessera_config::Error> {
        (self.example)(header)
    }

    /// Starts the service in `env`.
    pub async fn start(&self, env: DevEnv) -> Result<Box<dyn Supervised>, BoxError> {
        (self.start)(env).await
    }
}

/// A service started by [`start_all`].
#[derive(Debug)]
pub struct DevService {
    /// Its name.
    pub name: &'static str,
    /// Its REST API's URL (empty without one).
    pub url: String,
    running: Box<dyn Supervised>,
}

/// Where `tessera dev` runs the services.
#[derive(Debug, Clone)]
pub struct DevSettings {
    /// The host every service binds.
    pub host: String,
    /// The first service's port; the others take the next ones (0: any free port each).
    pub base_port: u16,
    /// The identity provider.
    pub idp: DevIdp,
}

/// A port that was free a moment ago on `host`.
fn free_port(host: &str) -> Result<u16, Error> {
    std::net::TcpListener::bind((host, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            what: format!("a free port on {host}"),
            source,
        })
}

/// Starts every entry on `store`, each on its own port; when one fails to start, the
/// started ones are stopped and its error, naming it, is returned.
pub async fn start_all(
    entries: &[DevEntry],
    store: &EmbeddedStore,
    secrets: &DevSecrets,
    settings: &DevSettings,
) -> Result<Vec<DevService>, Error> {
    let mut services = Vec::with_capacity(entries.len());
    for (index, entry) in (0u16..).zip(entries) {
        let port = match settings.base_port {
            0 => free_port(&settings.host),
            base => base.checked_add(index).ok_or_else(|| {
                Error::Usage(format!(
                    "--base-port {base} leaves no port for {}",
                    entry.name
                ))
            }),
        };
        let env = port.map(|port| DevEnv {
            store: store.clone(),
            secrets: secrets.clone(),
            http: HttpConfig {
                host: settings.host.clone(),
                port,
                ..HttpConfig::default()
            },
            idp: settings.idp.clone(),
        });
        let started = match env {
            Ok(env) => entry.start(env).await.map_err(|source| Error::Dev {
                service: entry.name,
                source,
            }),
            Err(e) => Err(e),
        };
        match started {
            Ok(running) => services.push(DevService {
                name: entry.name,
                url: running.url().unwrap_or_default(),
                running,
            }),
            Err(e) => {
                for service in &services {
                    service.running.stopper().stop();
                }
                let _ = wait_all(services).await;
                return Err(e);
            }
        }
    }
    Ok(services)
}

/// Waits until a stop signal or one service ending (a failure, say), then stops every
/// other service; the first failure, naming its service, is the result.
pub async fn wait_all(services: Vec<DevService>) -> Result<(), Error> {
    let stoppers: Vec<Stopper> = services.iter().map(|s| s.running.stopper()).collect();
    let mut waits: futures::stream::FuturesUnordered<_> = services
        .into_iter()
        .map(|service| async move { (service.name, service.running.wait().await) })
        .collect();
    let mut outcome = Ok(());
    use futures::StreamExt;
    while let Some((name, result)) = waits.next().await {
        // The first service to end, for whatever reason, ends them all.
        for stopper in &stoppers {
            stopper.stop();
        }
        if let Err(source) = result
            && outcome.is_ok()
        {
            outcome = Err(Error::Dev {
                service: name,
                source,
            });
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_together_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = DevSecrets::open(dir.path()).unwrap();
        let first = secrets
            .get_or_generate(["a_private", "a_public"], || {
                Ok(["private".into(), "public".into()])
            })
            .unwrap();
        assert_eq!(first, ["private", "public"]);
        let reopened = DevSecrets::open(dir.path()).unwrap();
        let again = reopened
            .get_or_generate(["a_private", "a_public"], || Err("must not run".into()))
            .unwrap();
        assert_eq!(again, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A file from an older version lacking a key gets it, keeping the others.
        let text = std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
        let mut old: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
        old.remove("a_public");
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            serde_json::to_string(&old).unwrap(),
        )
        .unwrap();
        let completed = DevSecrets::open(dir.path())
            .unwrap()
            .get_or_generate(["b"], || Ok(["b-value".into()]))
            .unwrap();
        assert_eq!(completed, ["b-value"]);
        let text = std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
        assert!(text.contains("a_private") && text.contains("b-value"));

        std::fs::write(dir.path().join(SECRETS_FILE), "not json").unwrap();
        assert!(matches!(DevSecrets::open(dir.path()), Err(Error::Usage(_))));
    }
}
