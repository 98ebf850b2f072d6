//! The local executor: runs a shell recipe on this machine. Inputs are fetched over HTTP
//! (SSRF rules, size and time limits); each command runs in its own work directory as an
//! unprivileged account (when the service runs as root), with a timeout, reading the
//! previous step's directory for `/input_dir` and writing `/output_dir`; the result is
//! published to the volume directory (`pvc`) or zipped into object storage (`temporary`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera_kit::objects::ObjectStore;
use tessera_recipes::engine::EngineError;
use tessera_recipes::{EngineStatus, Phase, Recipe, RunOutput, WorkflowEngine};
use tokio::sync::{Semaphore, watch};

use futures::StreamExt;

use super::steps::{
    Claims, Sources, Step, append, check_runnable, collect_partitions, fetch_inputs, fetched_dir,
    is_published, lay_out_partitions, make_dir, partition_steps, publish, remove_published,
    sequential_steps,
};
use crate::fetch::Fetcher;

/// The local executor's settings.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Work directories.
    pub work_root: PathBuf,
    /// The workflow volume (`pvc` outputs under `<recipe id>/`).
    pub volume_root: PathBuf,
    /// Runs at once.
    pub parallel: usize,
    /// Per command.
    pub command_timeout: Duration,
    /// Per input file.
    pub input_max_bytes: u64,
    /// The claims `pvc_mount` inputs read.
    pub claims: Claims,
    /// The account commands run as, when the service is root.
    pub run_as: Option<(u32, u32)>,
}

struct Entry {
    status: EngineStatus,
    cancel: watch::Sender<bool>,
    log: PathBuf,
}

/// The local executor. Cheap to clone.
#[derive(Clone)]
pub struct LocalEngine {
    settings: Arc<LocalSettings>,
    fetcher: Fetcher,
    objects: Arc<dyn ObjectStore>,
    runs: Arc<Mutex<HashMap<String, Entry>>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

impl LocalEngine {
    /// An executor; creates its directories.
    pub fn new(
        settings: LocalSettings,
        fetcher: Fetcher,
        objects: Arc<dyn ObjectStore>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&settings.work_root)?;
        std::fs::create_dir_all(&settings.volume_root)?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(settings.parallel.max(1))),
            settings: Arc::new(settings),
            fetcher,
            objects,
            runs: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn set(&self, name: &str, phase: Phase, message: Option<String>, output: Option<RunOutput>) {
        if let Ok(mut runs) = self.runs.lock()
            && let Some(entry) = runs.get_mut(name)
            && !entry.status.phase.is_terminal()
        {
            entry.status = EngineStatus {
                phase,
                message,
                output,
            };
        }
    }

    async fn run(&self, name: String, recipe: Recipe, cancel: watch::Receiver<bool>, log: PathBuf) {
        let Ok(_permit) = self.permits.acquire().await else {
            return;
        };
        let cancelled = *cancel.borrow();
        if cancelled {
            return;
        }
        self.set(&name, Phase::Running, None, None);
        let work = self.settings.work_root.join(&name);
        let outcome = self.steps(&name, &recipe, &work, cancel, &log).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        match outcome {
            Ok(output) => self.set(&name, Phase::Succeeded, None, Some(output)),
            Err(message) => {
                append(&log, &format!("error: {message}\n")).await;
                self.set(&name, Phase::Failed, Some(message), None);
            }
        }
    }

    async fn make_dir(&self, dir: &Path) -> Result<(), String> {
        make_dir(dir, self.settings.run_as).await
    }

    async fn steps(
        &self,
        name: &str,
        recipe: &Recipe,
        work: &Path,
        cancel: watch::Receiver<bool>,
        log: &Path,
    ) -> Result<RunOutput, String> {
        self.make_dir(work).await?;
        let fetched = fetched_dir(work, &recipe.id);
        self.make_dir(&fetched).await?;
        let sources = Sources {
            fetcher: &self.fetcher,
            claims: &self.settings.claims,
            max_bytes: self.settings.input_max_bytes,
        };
        let files = fetch_inputs(sources, recipe, &fetched, self.settings.run_as, log).await?;
        let result = if recipe.is_parallel() {
            let partitions =
                lay_out_partitions(work, &files, recipe.partition_size(), self.settings.run_as)
                    .await?;
            let at_once = recipe.max_parallelism(self.settings.parallel);
            append(
                log,
                &format!("{partitions} partition(s), {at_once} at once\n"),
            )
            .await;
            let lanes = futures::stream::iter(0..partitions)
                .map(|n| {
                    let steps = partition_steps(work, recipe, n);
                    let cancel = cancel.clone();
                    async move { self.chain(&steps, cancel, log).await }
                })
                .buffer_unordered(at_once);
            futures::pin_mut!(lanes);
            // The first failure drops the other partitions (their commands are killed).
            while let Some(outcome) = lanes.next().await {
                outcome?;
            }
            collect_partitions(work, partitions, recipe.commands.len()).await?
        } else {
            let steps = sequential_steps(work, recipe);
            self.chain(&steps, cancel.clone(), log).await?;
            steps.last().map_or(fetched, |s| s.output.clone())
        };
        append(log, "publish-data\n").await;
        publish(
            recipe.output(),
            &recipe.id,
            name,
            &result,
            work,
            &self.settings.volume_root,
            self.objects.as_ref(),
        )
        .await
    }

    /// Runs `steps` in order, stopping at the first failure.
    async fn chain(
        &self,
        steps: &[Step],
        mut cancel: watch::Receiver<bool>,
        log: &Path,
    ) -> Result<(), String> {
        for step in steps {
            self.make_dir(&step.dir).await?;
            self.make_dir(&step.output).await?;
            append(log, &format!("{}: {}\n", step.label, step.command)).await;
            self.command(
                &step.script,
                &step.dir,
                &step.input,
                &step.output,
                &mut cancel,
                log,
            )
            .await
            .map_err(|e| format!("{} {e}", step.label))?;
        }
        Ok(())
    }

    async fn command(
        &self,
        script: &str,
        cwd: &Path,
        input: &Path,
        output: &Path,
        cancel: &mut watch::Receiver<bool>,
        log: &Path,
    ) -> Result<(), String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("opening the log: {e}"))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", cwd)
            .env("INPUT_DIR", input)
            .env("OUTPUT_DIR", output)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.settings.run_as {
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let timeout = tokio::time::sleep(self.settings.command_timeout);
        tokio::pin!(timeout);
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| e.to_string())?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("exited with {status}"))
                }
            }
            () = &mut timeout => {
                let _ = child.kill().await;
                Err(format!("timed out after {} s", self.settings.command_timeout.as_secs()))
            }
            () = cancelled(cancel) => {
                let _ = child.kill().await;
                Err("cancelled".to_owned())
            }
        }
    }
}

/// Resolves once the run is cancelled (never when the sender is gone).
async fn cancelled(rx: &mut watch::Receiver<bool>) {
    loop {
        let now = *rx.borrow_and_update();
        if now {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl WorkflowEngine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn published(&self, recipe: &Recipe) -> Result<bool, EngineError> {
        Ok(is_published(&self.settings.volume_root, recipe).await)
    }

    async fn remove_published(&self, recipe: &Recipe) -> Result<(), EngineError> {
        remove_published(&self.settings.volume_root, recipe)
            .await
            .map_err(failed)
    }

    async fn start(&self, name: &str, recipe: &Recipe) -> Result<String, EngineError> {
        check_runnable(recipe, "local executor")?;
        let (cancel, cancelled) = watch::channel(false);
        let log = self.settings.work_root.join(format!("{name}.log"));
        {
            let mut runs = self.runs.lock().map_err(failed)?;
            runs.insert(
                name.to_owned(),
                Entry {
                    status: EngineStatus {
                        phase: Phase::Pending,
                        message: None,
                        output: None,
                    },
                    cancel,
                    log: log.clone(),
                },
            );
        }
        let engine = self.clone();
        let (name_owned, recipe) = (name.to_owned(), recipe.clone());
        tokio::spawn(async move { engine.run(name_owned, recipe, cancelled, log).await });
        Ok(name.to_owned())
    }

    async fn status(&self, handle: &str) -> Result<EngineStatus, EngineError> {
        let runs = self.runs.lock().map_err(failed)?;
        runs.get(handle)
            .map(|e| e.status.clone())
            .ok_or_else(|| EngineError::Unknown(handle.to_owned()))
    }

    async fn cancel(&self, handle: &str) -> Result<(), EngineError> {
        let mut runs = self.runs.lock().map_err(failed)?;
        if let Some(entry) = runs.get_mut(handle) {
            let _ = entry.cancel.send(true);
            if !entry.status.phase.is_terminal() {
                entry.status = EngineStatus {
                    phase: Phase::Failed,
                    message: Some("cancelled".into()),
                    output: None,
                };
            }
        }
        Ok(())
    }

    async fn logs(&self, handle: &str) -> Result<String, EngineError> {
        let log = {
            let runs = self.runs.lock().map_err(failed)?;
            runs.get(handle)
                .map(|e| e.log.clone())
                .ok_or_else(|| EngineError::Unknown(handle.to_owned()))?
        };
        match tokio::fs::read(&log).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(failed(e)),
        }
    }
}
