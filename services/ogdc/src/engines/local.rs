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
use bytes::Bytes;
use futures::StreamExt;
use tessera_kit::objects::{ObjectKey, ObjectStore, PutRequest};
use tessera_recipes::engine::EngineError;
use tessera_recipes::{EngineStatus, Phase, Recipe, RunOutput, WorkflowEngine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

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

    fn published_dir(&self, id: &str) -> PathBuf {
        self.settings.volume_root.join(id)
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
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("creating a work directory: {e}"))?;
        if let Some((uid, gid)) = self.settings.run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| format!("handing a work directory to uid {uid}: {e}"))?;
        }
        Ok(())
    }

    async fn steps(
        &self,
        name: &str,
        recipe: &Recipe,
        work: &Path,
        mut cancel: watch::Receiver<bool>,
        log: &Path,
    ) -> Result<RunOutput, String> {
        self.make_dir(work).await?;
        let fetched = work
            .join(format!("{}-fetch-template", recipe.id))
            .join("output_dir");
        self.make_dir(&fetched).await?;
        for url in recipe.urls() {
            append(log, &format!("fetch: {url}\n")).await;
            let path = self
                .fetcher
                .download(url, &fetched, self.settings.input_max_bytes)
                .await
                .map_err(|e| format!("fetching {url}: {e}"))?;
            if let Some((uid, gid)) = self.settings.run_as {
                let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            }
        }
        let mut input = fetched;
        for (i, command) in recipe.commands.iter().enumerate() {
            let step = work.join(format!("step-{}", i + 1));
            let output = step.join("output_dir");
            self.make_dir(&step).await?;
            self.make_dir(&output).await?;
            let script = replace_dirs(command, &input, &output);
            append(
                log,
                &format!("step-{} (run-cmd-{}): {command}\n", i + 1, i + 1),
            )
            .await;
            self.command(&script, &step, &input, &output, &mut cancel, log)
                .await
                .map_err(|e| format!("step-{} (run-cmd-{}) {e}", i + 1, i + 1))?;
            input = output;
        }
        append(log, "publish-data\n").await;
        match recipe.output() {
            tessera_recipes::Output::Pvc => {
                let target = self.published_dir(&recipe.id);
                copy_dir(&input, &target)
                    .await
                    .map_err(|e| format!("publishing to the volume: {e}"))?;
                Ok(RunOutput::Pvc {
                    path: recipe.id.clone(),
                })
            }
            tessera_recipes::Output::Temporary => {
                let zip_path = work.join(format!("{}.zip", recipe.id));
                let (from, to) = (input.clone(), zip_path.clone());
                tokio::task::spawn_blocking(move || zip_dir(&from, &to))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("zipping the output: {e}"))?;
                let key = format!("{name}/{}.zip", recipe.id);
                self.upload(&zip_path, &key)
                    .await
                    .map_err(|e| format!("storing the output: {e}"))?;
                Ok(RunOutput::Object { key })
            }
            tessera_recipes::Output::Dataone(_) => {
                Err("DataONE outputs are not implemented".to_owned())
            }
        }
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

    async fn upload(&self, path: &Path, key: &str) -> Result<(), String> {
        let key = ObjectKey::parse(key.to_owned()).map_err(|e| e.to_string())?;
        let length = tokio::fs::metadata(path)
            .await
            .map_err(|e| e.to_string())?
            .len();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| e.to_string())?;
        let body = futures::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), file))
                }
                Err(e) => Some((Err(tessera_kit::objects::Error::backend(e)), file)),
            }
        })
        .boxed();
        self.objects
            .put(
                &key,
                body,
                PutRequest::new(length).content_type("application/zip"),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The command with the containers' `/input_dir` and `/output_dir` (as whole path
/// components) pointing at this step's directories, in one pass.
fn replace_dirs(command: &str, input: &Path, output: &Path) -> String {
    let (input, output) = (input.display().to_string(), output.display().to_string());
    let mut out = String::with_capacity(command.len() + input.len());
    let mut rest = command;
    while let Some(at) = rest.find('/') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let hit = [("/input_dir", &input), ("/output_dir", &output)]
            .into_iter()
            .find(|(token, _)| {
                tail.starts_with(token)
                    && !tail[token.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            });
        match hit {
            Some((token, path)) => {
                out.push_str(path);
                rest = &tail[token.len()..];
            }
            None => {
                out.push('/');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
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

async fn append(log: &Path, line: &str) {
    if let Ok(mut file) = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .await
    {
        let _ = file.write_all(line.as_bytes()).await;
    }
}

/// Copies the contents of `from` into `to` (`rsync /input_dir/* /output_dir/`).
async fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || copy_dir_blocking(&from, &to))
        .await
        .map_err(std::io::Error::other)?
}

fn copy_dir_blocking(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir_blocking(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `zip -r <to> ./*` run in `from`: entries relative to it, symlinks skipped.
fn zip_dir(from: &Path, to: &Path) -> zip::result::ZipResult<()> {
    let file = std::fs::File::create(to)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut stack = vec![from.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(from)
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                zip.add_directory(format!("{rel}/"), options)?;
                stack.push(path);
            } else if kind.is_file() {
                zip.start_file(rel, options)?;
                let mut src = std::fs::File::open(&path)?;
                std::io::copy(&mut src, &mut zip)?;
            }
        }
    }
    zip.finish()?;
    Ok(())
}

#[async_trait]
impl WorkflowEngine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn published(&self, recipe: &Recipe) -> Result<bool, EngineError> {
        Ok(*recipe.output() == tessera_recipes::Output::Pvc
            && tokio::fs::metadata(self.published_dir(&recipe.id))
                .await
                .map(|m| m.is_dir())
                .unwrap_or(false))
    }

    async fn remove_published(&self, recipe: &Recipe) -> Result<(), EngineError> {
        match tokio::fs::remove_dir_all(self.published_dir(&recipe.id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn start(&self, name: &str, recipe: &Recipe) -> Result<String, EngineError> {
        if !recipe.is_shell() {
            return Err(EngineError::Unsupported(
                "the local executor runs shell workflows only".into(),
            ));
        }
        if recipe.urls().len() != recipe.meta.input.params.len() {
            return Err(EngineError::Unsupported(
                "the local executor fetches url inputs only (not dataone)".into(),
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_directories_are_replaced_once_and_whole() {
        let input = Path::new("/w/fetch/output_dir");
        let output = Path::new("/w/step-1/output_dir");
        assert_eq!(
            replace_dirs(
                "cp /input_dir/a.csv /output_dir/ && ls /input_dir",
                input,
                output
            ),
            "cp /w/fetch/output_dir/a.csv /w/step-1/output_dir/ && ls /w/fetch/output_dir"
        );
        assert_eq!(
            replace_dirs(
                "echo /input_dirx a/input_dir /tmp/output_dir",
                input,
                output
            ),
            "echo /input_dirx a/input_dir /tmp/output_dir"
        );
    }
}
