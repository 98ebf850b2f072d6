//! The Slurm engine (`OGDC_ENGINE=slurm`): a shell recipe's run is one batch job on a
//! Slurm cluster, through the Slurm commands (`tessera-slurm`).
//!
//! The service fetches the inputs (its fetcher's address checks, size and time limits)
//! into the run's work directory `<work_root>/<run>/`, which must be on a file system the
//! cluster's nodes share, then submits one batch script that runs each command in its own
//! step directory with a timeout, as the local executor does, the containers' `/input_dir`
//! and `/output_dir` rewritten to the step's directories. When Slurm reports the job
//! completed, the service publishes the last step's directory (to the volume, or as a zip
//! into object storage), once.
//!
//! Nothing about a run is kept in memory: the handle names the Slurm job and what
//! publishing needs, and the job writes its exit status to the work directory, so a run
//! survives a restart of the service (also after Slurm forgot the job) and any process on
//! the same store can answer for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_kit::objects::ObjectStore;
use tessera_recipes::engine::EngineError;
use tessera_recipes::recipe::Output;
use tessera_recipes::{EngineStatus, Phase, Recipe, RunOutput, WorkflowEngine};
use tessera_slurm::{BatchJob, JobState, Slurm};

use super::steps::{
    append, check_runnable, fetch_inputs, is_published, make_dir, publish, remove_published,
    replace_dirs,
};
use crate::fetch::Fetcher;

/// The Slurm engine's settings.
#[derive(Debug, Clone)]
pub struct SlurmSettings {
    /// Work directories (shared with the nodes).
    pub work_root: PathBuf,
    /// The workflow volume (`pvc` outputs under `<recipe id>/`).
    pub volume_root: PathBuf,
    /// Per command.
    pub command_timeout: Duration,
    /// Per input file.
    pub input_max_bytes: u64,
    /// The account jobs run as (uid, gid), when the service is root.
    pub run_as: Option<(u32, u32)>,
    /// The partition; Slurm's default when `None`.
    pub partition: Option<String>,
    /// The job's time limit.
    pub time_limit: Duration,
}

/// What a run's handle holds (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Handle {
    /// The Slurm job.
    job: u64,
    /// The run.
    name: String,
    /// The recipe id.
    id: String,
    /// Where its results go.
    output: Output,
    /// How many commands (the last one's directory is the result).
    steps: usize,
}

/// The Slurm engine. Cheap to clone.
#[derive(Clone)]
pub struct SlurmEngine {
    settings: Arc<SlurmSettings>,
    slurm: Slurm,
    fetcher: Fetcher,
    objects: Arc<dyn ObjectStore>,
    /// One publication at a time (two status queries of one finished run).
    publishing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for SlurmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlurmEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

/// `s` as one bash word.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const FETCH_LOG: &str = "fetch.log";
const JOB_LOG: &str = "job.log";
const PUBLISH_LOG: &str = "publish.log";
const EXIT_STATUS: &str = "exit-status";
const PUBLISHED: &str = "published.json";

fn fetched_dir(work: &Path, id: &str) -> PathBuf {
    work.join(format!("{id}-fetch-template")).join("output_dir")
}

fn step_output(work: &Path, step: usize) -> PathBuf {
    work.join(format!("step-{step}")).join("output_dir")
}

/// The batch script: each command in its step directory, in order, stopping at the first
/// failure; the exit status goes to `exit-status` in the work directory.
fn batch_script(work: &Path, recipe: &Recipe, timeout: Duration) -> String {
    let mut script = format!(
        "#!/bin/bash\n# ogdc run of recipe {id}\ncd {work}\ntrap 'echo $? > {EXIT_STATUS}' EXIT\n\
         set -e\nexport PATH=/usr/local/bin:/usr/bin:/bin HOME={work}\n",
        id = recipe.id,
        work = quoted(&work.display().to_string()),
    );
    let mut input = fetched_dir(work, &recipe.id);
    for (i, command) in recipe.commands.iter().enumerate() {
        let step = i + 1;
        let output = step_output(work, step);
        let (input_s, output_s) = (input.display().to_string(), output.display().to_string());
        script.push_str(&format!(
            "mkdir -p {out}\necho {banner}\n(cd {dir} && INPUT_DIR={inp} OUTPUT_DIR={out} \
             timeout {secs} /bin/sh -c {cmd})\n",
            out = quoted(&output_s),
            banner = quoted(&format!("step-{step} (run-cmd-{step}): {command}")),
            dir = quoted(&work.join(format!("step-{step}")).display().to_string()),
            inp = quoted(&input_s),
            secs = timeout.as_secs().max(1),
            cmd = quoted(&replace_dirs(command, &input, &output)),
        ));
        input = output;
    }
    script
}

impl SlurmEngine {
    /// An engine over `slurm`; creates its directories.
    pub fn new(
        settings: SlurmSettings,
        slurm: Slurm,
        fetcher: Fetcher,
        objects: Arc<dyn ObjectStore>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&settings.work_root)?;
        std::fs::create_dir_all(&settings.volume_root)?;
        Ok(Self {
            settings: Arc::new(settings),
            slurm,
            fetcher,
            objects,
            publishing: Arc::default(),
        })
    }

    fn work(&self, name: &str) -> PathBuf {
        self.settings.work_root.join(name)
    }

    fn handle(raw: &str) -> Result<Handle, EngineError> {
        serde_json::from_str(raw).map_err(|_| EngineError::Unknown(raw.to_owned()))
    }

    /// The run's exit status as its job wrote it.
    async fn exit_status(&self, h: &Handle) -> Option<i32> {
        let text = tokio::fs::read_to_string(self.work(&h.name).join(EXIT_STATUS))
            .await
            .ok()?;
        text.trim().parse().ok()
    }

    /// The output once published.
    async fn published_output(&self, h: &Handle) -> Option<RunOutput> {
        let text = tokio::fs::read(self.work(&h.name).join(PUBLISHED))
            .await
            .ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Publishes a completed run (once), then removes its inputs and step directories.
    async fn finish(&self, h: &Handle) -> EngineStatus {
        let _one = self.publishing.lock().await;
        let status = |phase, message, output| EngineStatus {
            phase,
            message,
            output,
        };
        if let Some(output) = self.published_output(h).await {
            return status(Phase::Succeeded, None, Some(output));
        }
        let work = self.work(&h.name);
        let log = work.join(PUBLISH_LOG);
        append(&log, "publish-data\n").await;
        let result = if h.steps == 0 {
            fetched_dir(&work, &h.id)
        } else {
            step_output(&work, h.steps)
        };
        let published = publish(
            &h.output,
            &h.id,
            &h.name,
            &result,
            &work,
            &self.settings.volume_root,
            self.objects.as_ref(),
        )
        .await;
        let _ = tokio::fs::remove_dir_all(work.join(format!("{}-fetch-template", h.id))).await;
        for step in 1..=h.steps {
            let _ = tokio::fs::remove_dir_all(work.join(format!("step-{step}"))).await;
        }
        match published {
            Ok(output) => {
                if let Ok(json) = serde_json::to_vec(&output) {
                    let _ = tokio::fs::write(work.join(PUBLISHED), json).await;
                }
                status(Phase::Succeeded, None, Some(output))
            }
            Err(message) => {
                append(&log, &format!("error: {message}\n")).await;
                status(Phase::Failed, Some(message), None)
            }
        }
    }
}

#[async_trait]
impl WorkflowEngine for SlurmEngine {
    fn name(&self) -> &'static str {
        "slurm"
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
        check_runnable(recipe, "Slurm engine")?;
        let run_as = self.settings.run_as;
        let work = self.work(name);
        let fetched = fetched_dir(&work, &recipe.id);
        make_dir(&work, run_as).await.map_err(failed)?;
        make_dir(&fetched, run_as).await.map_err(failed)?;
        for step in 1..=recipe.commands.len() {
            make_dir(&work.join(format!("step-{step}")), run_as)
                .await
                .map_err(failed)?;
        }
        let log = work.join(FETCH_LOG);
        fetch_inputs(
            &self.fetcher,
            recipe,
            &fetched,
            self.settings.input_max_bytes,
            run_as,
            &log,
        )
        .await
        .map_err(failed)?;
        let script = batch_script(&work, recipe, self.settings.command_timeout);
        let mut job = BatchJob::new(script, &work)
            .name(name)
            .output(work.join(JOB_LOG).display().to_string())
            .time_limit(self.settings.time_limit);
        if let Some(partition) = &self.settings.partition {
            job = job.partition(partition.clone());
        }
        if let Some((uid, _)) = run_as {
            job = job.user(uid.to_string());
        }
        let id = self.slurm.submit(&job).await.map_err(failed)?;
        let handle = Handle {
            job: id,
            name: name.to_owned(),
            id: recipe.id.clone(),
            output: recipe.output().clone(),
            steps: recipe.commands.len(),
        };
        serde_json::to_string(&handle).map_err(failed)
    }

    async fn status(&self, raw: &str) -> Result<EngineStatus, EngineError> {
        let h = Self::handle(raw)?;
        if let Some(output) = self.published_output(&h).await {
            return Ok(EngineStatus {
                phase: Phase::Succeeded,
                message: None,
                output: Some(output),
            });
        }
        let status = |phase, message: Option<String>| EngineStatus {
            phase,
            message,
            output: None,
        };
        let record = self.slurm.job(h.job).await.map_err(failed)?;
        let ended = |state: &JobState, reason: &str, code: i32| {
            Some(format!(
                "slurm job {} ended {state:?} ({reason}, exit code {code})",
                h.job
            ))
        };
        Ok(match record {
            Some(r) => match r.state {
                JobState::Pending | JobState::Configuring => status(Phase::Pending, None),
                JobState::Running | JobState::Completing | JobState::Suspended => {
                    status(Phase::Running, None)
                }
                JobState::Completed => self.finish(&h).await,
                ref other => status(Phase::Failed, ended(other, &r.reason, r.exit_code)),
            },
            // Slurm forgot the job (`MinJobAge` after its end): its exit status says.
            None => match self.exit_status(&h).await {
                Some(0) => self.finish(&h).await,
                Some(code) => status(
                    Phase::Failed,
                    Some(format!("slurm job {} exited with {code}", h.job)),
                ),
                None => status(
                    Phase::Error,
                    Some(format!("slurm no longer knows job {}", h.job)),
                ),
            },
        })
    }

    async fn cancel(&self, raw: &str) -> Result<(), EngineError> {
        let h = Self::handle(raw)?;
        match self.slurm.cancel(h.job).await {
            Ok(()) | Err(tessera_slurm::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn logs(&self, raw: &str) -> Result<String, EngineError> {
        let h = Self::handle(raw)?;
        let work = self.work(&h.name);
        let mut logs = String::new();
        for file in [FETCH_LOG, JOB_LOG, PUBLISH_LOG] {
            match tokio::fs::read(work.join(file)).await {
                Ok(bytes) => logs.push_str(&String::from_utf8_lossy(&bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_script_runs_each_command_in_its_step_and_is_bash() {
        let meta = tessera_recipes::recipe::Meta::parse(
            "name: Seal Tags\nworkflow:\n  type: shell\n  sh_file: recipe.sh\ninput:\n  params:\n    - type: url\n      value: https://example.org/a.csv\n",
        )
        .unwrap();
        let files = std::collections::BTreeMap::from([(
            "recipe.sh".to_owned(),
            "cp /input_dir/a.csv /output_dir/\necho 'it''s' > /output_dir/b\n".to_owned(),
        )]);
        let recipe = Recipe::new(meta, &files).unwrap();
        let script = batch_script(Path::new("/w/run-1"), &recipe, Duration::from_secs(30));
        assert!(script.starts_with("#!/bin/bash\n"), "{script}");
        assert!(script.contains("cd '/w/run-1'\n"), "{script}");
        assert!(
            script.contains(
                "(cd '/w/run-1/step-1' && INPUT_DIR='/w/run-1/seal-tags-fetch-template/output_dir' \
                 OUTPUT_DIR='/w/run-1/step-1/output_dir' timeout 30 /bin/sh -c 'cp \
                 /w/run-1/seal-tags-fetch-template/output_dir/a.csv /w/run-1/step-1/output_dir/')"
            ),
            "{script}"
        );
        assert!(
            script.contains("> /w/run-1/step-2/output_dir/b'"),
            "{script}"
        );
        let checked = std::process::Command::new("bash")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
    }
}
