//! [`Runner`]: the use cases of the OGDC runner over the ports.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tessera_kit::dao::{self, Dao, Filter};
use tessera_kit::objects::{ObjectKey, ObjectStore};

use crate::engine::{EngineError, RecipeLoader, WorkflowEngine};
use crate::recipe::{Output, Recipe};
use crate::runs::{self, Phase, Run, RunOutput};
use crate::users::{ADMIN, BadToken, IssuedToken, Passwords, Tokens, User};
use crate::{Error, Result};

/// How long `/output` URLs are valid (the original's 2 h).
pub const OUTPUT_URL_LIFETIME: Duration = Duration::from_secs(7200);

/// How long a run may stay `Pending` without an engine handle before [`Runner::resume`]
/// starts it again. A start takes seconds (the publication check, then the engine's
/// answer), so such a run was cut off by the stop of the process that took it; the margin
/// keeps other processes on the same store off the runs they are still starting.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(120);

/// An authenticated caller.
///
/// Who is an admin is the authentication's decision, not the name's: with passwords it is
/// the user `admin` ([`Caller::password_user`]); with OIDC a scope of the token, so that an
/// IdP account whose subject happens to be `admin` gains nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name (the run owner).
    pub name: String,
    /// Whether the caller may see, cancel and list every run and manage users.
    pub admin: bool,
}

impl Caller {
    /// A user of the password login: the admin is the user `admin`.
    pub fn password_user(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            admin: name == ADMIN,
            name,
        }
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    fn may_see(&self, run: &Run) -> bool {
        self.is_admin() || run.owner == self.name
    }
}

/// The ports the runner works on.
#[derive(Clone)]
pub struct Ports {
    /// The users.
    pub users: Arc<dyn Dao<User>>,
    /// The runs.
    pub runs: Arc<dyn Dao<Run>>,
    /// The engine.
    pub engine: Arc<dyn WorkflowEngine>,
    /// The recipe loader.
    pub loader: Arc<dyn RecipeLoader>,
    /// Where `temporary` outputs are.
    pub objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("engine", &self.engine)
            .field("loader", &self.loader)
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

/// The OGDC runner's use cases.
#[derive(Clone)]
pub struct Runner {
    ports: Ports,
    passwords: Passwords,
    tokens: Tokens,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("engine", &self.ports.engine.name())
            .finish_non_exhaustive()
    }
}

fn engine_error(e: EngineError) -> Error {
    Error::Engine(e.to_string())
}

impl Runner {
    /// A runner over `ports`.
    pub fn new(ports: Ports, passwords: Passwords, tokens: Tokens) -> Self {
        Self {
            ports,
            passwords,
            tokens,
        }
    }

    /// The engine's name.
    pub fn engine_name(&self) -> &'static str {
        self.ports.engine.name()
    }

    /// Creates `admin` with `password` unless it exists; an existing admin keeps its
    /// password (the original's rule). Returns whether it was created.
    pub async fn bootstrap_admin(&self, password: &str) -> Result<bool> {
        match self.ports.users.get_by_id(ADMIN).await {
            Ok(_) => {
                tracing::info!("admin user exists; its password is not changed");
                return Ok(false);
            }
            Err(dao::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let user = User {
            name: ADMIN.into(),
            password_hash: self.passwords.hash(password.to_owned()).await?,
        };
        match self.ports.users.insert(&user).await {
            Ok(()) => {
                tracing::info!("admin user created");
                Ok(true)
            }
            Err(dao::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A token for `username` if `password` is theirs; `None` otherwise (unknown users
    /// cost the same as wrong passwords).
    pub async fn login(&self, username: &str, password: &str) -> Result<Option<IssuedToken>> {
        let hash = match self.ports.users.get_by_id(username).await {
            Ok(user) => Some(user.password_hash),
            Err(dao::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = self.passwords.verify(password.to_owned(), hash).await?;
        Ok(ok.then(|| self.tokens.issue(username, Utc::now())))
    }

    /// The caller a token names; the user must still exist.
    pub async fn authenticate(&self, token: &str) -> Result<Result<Caller, BadToken>> {
        let name = match self.tokens.verify(token, Utc::now()) {
            Ok(name) => name,
            Err(bad) => return Ok(Err(bad)),
        };
        match self.ports.users.get_by_id(&name).await {
            Ok(_) => Ok(Ok(Caller::password_user(name))),
            Err(dao::Error::NotFound { .. }) => Ok(Err(BadToken)),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a user (admin only). MUST return `UserExists` for a taken name, also when
    /// two requests race for it.
    pub async fn create_user(&self, caller: &Caller, username: &str, password: &str) -> Result<()> {
        if !caller.is_admin() {
            return Err(Error::NotAdmin);
        }
        match self.ports.users.get_by_id(username).await {
            Ok(_) => return Err(Error::UserExists(username.to_owned())),
            Err(dao::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let user = User {
            name: username.to_owned(),
            password_hash: self.passwords.hash(password.to_owned()).await?,
        };
        match self.ports.users.insert(&user).await {
            Ok(()) => Ok(()),
            Err(dao::Error::AlreadyExists { .. }) => Err(Error::UserExists(username.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads and validates the recipe, stores the run as `Pending` and returns it at once;
    /// the publication check (or the removal with `overwrite`) and the start run in the
    /// background.
    pub async fn submit(&self, caller: &Caller, path: &str, overwrite: bool) -> Result<Run> {
        let recipe = self.ports.loader.load(path).await?;
        let now = Utc::now();
        let run = Run {
            name: runs::generate_name(&runs::workflow_prefix(&recipe.id, "shell")),
            owner: caller.name.clone(),
            recipe_id: recipe.id.clone(),
            recipe_path: path.to_owned(),
            phase: Phase::Pending,
            message: None,
            engine_ref: None,
            output: None,
            created: now,
            updated: now,
            overwrite,
        };
        self.ports.runs.insert(&run).await?;
        let runner = self.clone();
        let name = run.name.clone();
        tokio::spawn(async move {
            if let Err(e) = runner.start(&name, &recipe, overwrite).await {
                tracing::error!(run = %name, error = %e, "starting the run failed");
            }
        });
        Ok(run)
    }

    async fn start(&self, name: &str, recipe: &Recipe, overwrite: bool) -> Result<()> {
        let engine = &self.ports.engine;
        let outcome = async {
            if *recipe.output() == Output::Pvc {
                if overwrite {
                    engine.remove_published(recipe).await?;
                } else if engine.published(recipe).await? {
                    return Ok(Err(format!(
                        "Data for recipe {} have already been published.",
                        recipe.id
                    )));
                }
            }
            engine.start(name, recipe).await.map(Ok)
        }
        .await;
        let mut run = self.ports.runs.get_by_id(name).await?;
        match outcome {
            Ok(Ok(handle)) => {
                if run.phase.is_terminal() {
                    // Cancelled while starting.
                    engine.cancel(&handle).await.map_err(engine_error)?;
                    run.engine_ref = Some(handle);
                } else {
                    run.engine_ref = Some(handle);
                    run.phase = Phase::Running;
                    run.updated = Utc::now();
                }
            }
            Ok(Err(published)) => {
                run.phase = Phase::Failed;
                run.message = Some(published);
                run.updated = Utc::now();
            }
            Err(e) => {
                run.phase = Phase::Error;
                run.message = Some(e.to_string());
                run.updated = Utc::now();
            }
        }
        self.ports.runs.update(&run).await?;
        Ok(())
    }

    /// Starts again every run left `Pending` without an engine handle for
    /// [`ORPHANED_AFTER`] (its process stopped between the submission and the engine's
    /// answer, so nobody would ever start it): its recipe is loaded again from
    /// `recipe_path` and started with its `overwrite`; a recipe that no longer loads ends
    /// the run in `Error`. Each run is claimed first (its `updated` set to `now`), so the
    /// next call, here or in another process, leaves it alone for as long again. Returns
    /// how many were started again; the starts run in the background.
    pub async fn resume(&self, now: chrono::DateTime<Utc>) -> Result<usize> {
        let mut filter = Filter::new();
        filter.insert("phase".into(), serde_json::json!(Phase::Pending));
        let grace = chrono::Duration::from_std(ORPHANED_AFTER).unwrap_or_default();
        let mut resumed = 0;
        for mut run in self.ports.runs.find_all(&filter).await? {
            if run.engine_ref.is_some() || now - run.updated < grace {
                continue;
            }
            run.updated = now;
            self.ports.runs.update(&run).await?;
            resumed += 1;
            tracing::warn!(run = %run.name, "starting a run again that a stop cut off before its start");
            let runner = self.clone();
            tokio::spawn(async move {
                let started = match runner.ports.loader.load(&run.recipe_path).await {
                    Ok(recipe) => runner.start(&run.name, &recipe, run.overwrite).await,
                    Err(e) => {
                        run.phase = Phase::Error;
                        run.message = Some(format!(
                            "the recipe could not be loaded again after a restart: {e}"
                        ));
                        run.updated = Utc::now();
                        runner.ports.runs.update(&run).await.map_err(Into::into)
                    }
                };
                if let Err(e) = started {
                    tracing::error!(run = %run.name, error = %e, "starting the run again failed");
                }
            });
        }
        Ok(resumed)
    }

    async fn visible(&self, caller: &Caller, name: &str) -> Result<Run> {
        match self.ports.runs.get_by_id(name).await {
            Ok(run) if caller.may_see(&run) => Ok(run),
            Ok(_) | Err(dao::Error::NotFound { .. }) => Err(Error::RunNotFound(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Brings a running run's phase up to date from the engine.
    async fn refresh(&self, mut run: Run) -> Result<Run> {
        let Some(handle) = run.engine_ref.clone().filter(|_| !run.phase.is_terminal()) else {
            return Ok(run);
        };
        let (phase, message, output) = match self.ports.engine.status(&handle).await {
            Ok(status) => (status.phase, status.message, status.output),
            Err(EngineError::Unknown(_)) => (
                Phase::Error,
                Some("the workflow engine no longer knows this run".to_owned()),
                None,
            ),
            Err(e) => return Err(engine_error(e)),
        };
        if phase != run.phase || output != run.output {
            run.phase = phase;
            run.message = message;
            run.output = output;
            run.updated = Utc::now();
            self.ports.runs.update(&run).await?;
        }
        Ok(run)
    }

    /// The run, for its owner or the admin. MUST return `RunNotFound` for an unknown run
    /// and for another user's.
    pub async fn status(&self, caller: &Caller, name: &str) -> Result<Run> {
        let run = self.visible(caller, name).await?;
        self.refresh(run).await
    }

    /// The caller's runs (every run for the admin), newest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Run>> {
        let mut filter = Filter::new();
        if !caller.is_admin() {
            filter.insert("owner".into(), serde_json::Value::from(caller.name.clone()));
        }
        let mut out = Vec::new();
        for run in self.ports.runs.find_all(&filter).await? {
            out.push(self.refresh(run).await?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Every run of every owner, newest first. MUST return `NotAdmin` for a caller who is not
    /// an admin.
    pub async fn list_all(&self, caller: &Caller) -> Result<Vec<Run>> {
        if !caller.is_admin() {
            return Err(Error::NotAdmin);
        }
        self.list(caller).await
    }

    /// Stops the run (`Failed`, "cancelled by <caller>"); a finished run stays as it is.
    pub async fn cancel(&self, caller: &Caller, name: &str) -> Result<Run> {
        let run = self.status(caller, name).await?;
        if run.phase.is_terminal() {
            return Ok(run);
        }
        if let Some(handle) = &run.engine_ref {
            self.ports
                .engine
                .cancel(handle)
                .await
                .map_err(engine_error)?;
        }
        let mut run = self.ports.runs.get_by_id(name).await?;
        run.phase = Phase::Failed;
        run.message = Some(format!("cancelled by {}", caller.name));
        run.updated = Utc::now();
        self.ports.runs.update(&run).await?;
        Ok(run)
    }

    /// The run's logs so far (empty before it started).
    pub async fn logs(&self, caller: &Caller, name: &str) -> Result<String> {
        let run = self.visible(caller, name).await?;
        match &run.engine_ref {
            Some(handle) => match self.ports.engine.logs(handle).await {
                Ok(logs) => Ok(logs),
                Err(EngineError::Unknown(_)) => Ok(String::new()),
                Err(e) => Err(engine_error(e)),
            },
            None => Ok(String::new()),
        }
    }

    /// A URL of the run's zip, valid 2 h. MUST return `NoOutput` (with the reason) when the
    /// run has not succeeded, its output is on the volume, or the zip is gone.
    pub async fn output(&self, caller: &Caller, name: &str) -> Result<String> {
        let run = self.status(caller, name).await?;
        match &run.output {
            Some(RunOutput::Object { key }) => {
                let key = ObjectKey::parse(key.clone())?;
                match self.ports.objects.head(&key).await {
                    Ok(_) => {}
                    Err(tessera_kit::objects::Error::NotFound { .. }) => {
                        return Err(Error::NoOutput(format!("the object {key} does not exist")));
                    }
                    Err(e) => return Err(e.into()),
                }
                let presigned = self
                    .ports
                    .objects
                    .presign_get(&key, OUTPUT_URL_LIFETIME)
                    .await?;
                Ok(presigned.url)
            }
            Some(RunOutput::Pvc { path }) => Err(Error::NoOutput(format!(
                "the output is published on the workflow volume at {path}, not as a download"
            ))),
            None => Err(Error::NoOutput(format!(
                "the workflow has no output (phase {:?})",
                run.phase
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_user_admin_is_an_admin_by_name() {
        assert!(Caller::password_user("admin").is_admin());
        assert!(!Caller::password_user("alice").is_admin());
        let oidc = Caller {
            name: "admin".into(),
            admin: false,
        };
        assert!(!oidc.is_admin());
    }
}
