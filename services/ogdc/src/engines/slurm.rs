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
use tessera_slurm::{ArraySpec, BatchJob, JobState, Slurm};

use super::steps::{
    Claims, Sources, Step, append, check_runnable, collect_partitions, fetch_inputs, fetched_dir,
    is_published, lay_out_partitions, make_dir, partition_dir, partition_steps, publish, quoted,
    remove_published, sequential_steps,
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
    /// The claims `pvc_mount` inputs read.
    pub claims: Claims,
    /// The account jobs run as (uid, gid), when the service is root.
    pub run_as: Option<(u32, u32)>,
    /// The partition; Slurm's default when `None`.
    pub partition: Option<String>,
    /// The job's time limit.
    pub time_limit: Duration,
    /// Array tasks at once for a parallel recipe (`OGDC_MAX_PARALLEL_LIMIT`).
    pub max_parallel: usize,
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
    /// For a parallel recipe: its partitions, one task each of the array job `job`.
    #[serde(default)]
    partitions: usize,
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

const FETCH_LOG: &str = "fetch.log";
const JOB_LOG: &str = "job.log";
const PUBLISH_LOG: &str = "publish.log";
const EXIT_STATUS: &str = "exit-status";
const PUBLISHED: &str = "published.json";
/// A partition's script, in its directory.
const PARTITION_SCRIPT: &str = "run.sh";

/// A bash script running `steps` in order, each in its directory with a timeout, stopping
/// at the first failure; its exit status goes to `exit_status`.
/// `exit_status` is relative to `work` (a name of ours, no quoting needed).
fn chain_script(
    work: &Path,
    title: &str,
    steps: &[Step],
    exit_status: &str,
    timeout: Duration,
) -> String {
    let mut script = format!(
        "#!/bin/bash\n# {title}\ncd {work}\ntrap 'echo $? > {status}' EXIT\n\
         set -e\nexport PATH=/usr/local/bin:/usr/bin:/bin HOME={work}\n",
        work = quoted(&work.display().to_string()),
        status = exit_status,
    );
    for step in steps {
        let output = quoted(&step.output.display().to_string());
        script.push_str(&format!(
            "mkdir -p {output}\necho {banner}\n(cd {dir} && INPUT_DIR={input} OUTPUT_DIR={output} \
             timeout {secs} /bin/sh -c {cmd})\n",
            banner = quoted(&format!("{}: {}", step.label, step.command)),
            dir = quoted(&step.dir.display().to_string()),
            input = quoted(&step.input.display().to_string()),
            secs = timeout.as_secs().max(1),
            cmd = quoted(&step.script),
        ));
    }
    script
}

/// The batch script of a sequential run: each command in its step directory, in order;
/// the exit status goes to `exit-status` in the work directory.
fn batch_script(work: &Path, recipe: &Recipe, timeout: Duration) -> String {
    chain_script(
        work,
        &format!("ogdc run of recipe {}", recipe.id),
        &sequential_steps(work, recipe),
        EXIT_STATUS,
        timeout,
    )
}

/// The script of partition `n` of a parallel run (task `n` of its array job); its exit
/// status goes to `partition-<n>/exit-status`.
fn partition_script(work: &Path, recipe: &Recipe, n: usize, timeout: Duration) -> String {
    chain_script(
        work,
        &format!("ogdc run of recipe {}, partition {n}", recipe.id),
        &partition_steps(work, recipe, n),
        &format!("partition-{n}/{EXIT_STATUS}"),
        timeout,
    )
}

/// The array job's script: task `n` runs partition `n`'s script.
fn array_script(work: &Path) -> String {
    format!(
        "#!/bin/bash\nexec /bin/bash {work}/\"partition-${{SLURM_ARRAY_TASK_ID}}/{PARTITION_SCRIPT}\"\n",
        work = quoted(&work.display().to_string()),
    )
}

/// Whether a job (or task) in `state` runs, as a run's phase sees it.
fn is_running(state: &JobState) -> bool {
    matches!(
        state,
        JobState::Running | JobState::Completing | JobState::Suspended
    )
}

/// The last step's directory of a sequential run (`step-<steps>` for runs started before
/// steps were numbered from 0, as the original numbers them).
async fn sequential_result(work: &Path, h: &Handle) -> PathBuf {
    if h.steps == 0 {
        return fetched_dir(work, &h.id);
    }
    let before = work.join(format!("step-{}", h.steps)).join("output_dir");
    if tokio::fs::metadata(&before).await.is_ok() {
        return before;
    }
    work.join(format!("step-{}", h.steps - 1))
        .join("output_dir")
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

    /// The exit status a job (`None`) or partition `n`'s task wrote.
    async fn exit_status(&self, h: &Handle, partition: Option<usize>) -> Option<i32> {
        let dir = match partition {
            Some(n) => partition_dir(&self.work(&h.name), n),
            None => self.work(&h.name),
        };
        let text = tokio::fs::read_to_string(dir.join(EXIT_STATUS))
            .await
            .ok()?;
        text.trim().parse().ok()
    }

    /// Every partition's exit status, `None` for those not ended.
    async fn partition_exits(&self, h: &Handle) -> Vec<Option<i32>> {
        let mut exits = Vec::with_capacity(h.partitions);
        for n in 0..h.partitions {
            exits.push(self.exit_status(h, Some(n)).await);
        }
        exits
    }

    /// The status of a parallel run's array job: failed as soon as one partition failed
    /// (the others are cancelled), published once every partition succeeded.
    async fn array_status(&self, h: &Handle) -> Result<EngineStatus, EngineError> {
        let status = |phase, message: Option<String>| EngineStatus {
            phase,
            message,
            output: None,
        };
        let failed_yet = |exits: &[Option<i32>]| exits.iter().any(|e| e.is_some_and(|c| c != 0));
        let mut exits = self.partition_exits(h).await;
        if exits.iter().any(Option::is_none) && !failed_yet(&exits) {
            let tasks = self.slurm.tasks(h.job).await.map_err(failed)?;
            // Whether each task not ended yet runs.
            let live: Vec<bool> = tasks
                .iter()
                .filter(|t| !t.state.is_terminal())
                .map(|t| is_running(&t.state))
                .collect();
            if !live.is_empty() {
                let phase = if live.contains(&true) {
                    Phase::Running
                } else {
                    Phase::Pending
                };
                return Ok(status(phase, None));
            }
            // Every task ended: read again what the last ones wrote meanwhile.
            exits = self.partition_exits(h).await;
            if let Some(n) = exits.iter().position(Option::is_none)
                && !failed_yet(&exits)
            {
                let task = tasks.iter().find(|t| t.array_task_id == Some(n as u32));
                return Ok(match task {
                    Some(t) => status(
                        Phase::Failed,
                        Some(format!(
                            "slurm job {} partition {n} ended {:?} ({}, exit code {})",
                            h.job, t.state, t.reason, t.exit_code
                        )),
                    ),
                    None => status(
                        Phase::Error,
                        Some(format!(
                            "slurm job {} partition {n} ended without an exit status",
                            h.job
                        )),
                    ),
                });
            }
        }
        if let Some((n, code)) = exits
            .iter()
            .enumerate()
            .find_map(|(n, e)| e.filter(|code| *code != 0).map(|code| (n, code)))
        {
            match self.slurm.cancel(h.job).await {
                Ok(()) | Err(tessera_slurm::Error::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(job = h.job, error = %e, "cancelling the other partitions")
                }
            }
            return Ok(status(
                Phase::Failed,
                Some(format!(
                    "slurm job {} partition {n} exited with {code}",
                    h.job
                )),
            ));
        }
        Ok(self.finish(h).await)
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
        let result = if h.partitions > 0 {
            collect_partitions(&work, h.partitions, h.steps).await
        } else {
            Ok(sequential_result(&work, h).await)
        };
        let published = match result {
            Ok(result) => {
                publish(
                    &h.output,
                    &h.id,
                    &h.name,
                    &result,
                    &work,
                    &self.settings.volume_root,
                    self.objects.as_ref(),
                )
                .await
            }
            Err(e) => Err(e),
        };
        let mut scratch = vec![
            work.join(format!("{}-fetch-template", h.id)),
            work.join("collected"),
        ];
        scratch.extend((0..=h.steps).map(|step| work.join(format!("step-{step}"))));
        scratch.extend((0..h.partitions).map(|n| partition_dir(&work, n)));
        for dir in scratch {
            let _ = tokio::fs::remove_dir_all(dir).await;
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
        let timeout = self.settings.command_timeout;
        let work = self.work(name);
        let fetched = fetched_dir(&work, &recipe.id);
        make_dir(&work, run_as).await.map_err(failed)?;
        make_dir(&fetched, run_as).await.map_err(failed)?;
        let log = work.join(FETCH_LOG);
        let sources = Sources {
            fetcher: &self.fetcher,
            claims: &self.settings.claims,
            max_bytes: self.settings.input_max_bytes,
        };
        let files = fetch_inputs(sources, recipe, &fetched, run_as, &log)
            .await
            .map_err(failed)?;
        let (mut job, partitions) = if recipe.is_parallel() {
            let partitions = lay_out_partitions(&work, &files, recipe.partition_size(), run_as)
                .await
                .map_err(failed)?;
            for n in 0..partitions {
                for step in partition_steps(&work, recipe, n) {
                    make_dir(&step.dir, run_as).await.map_err(failed)?;
                }
                let script = partition_script(&work, recipe, n, timeout);
                tokio::fs::write(partition_dir(&work, n).join(PARTITION_SCRIPT), script)
                    .await
                    .map_err(failed)?;
            }
            let last = u32::try_from(partitions.saturating_sub(1)).map_err(failed)?;
            // The service's limit (`OGDC_MAX_PARALLEL_LIMIT`) bounds the tasks at once.
            let at_once = recipe.max_parallelism(self.settings.max_parallel);
            let job = BatchJob::new(array_script(&work), &work)
                .output(work.join("job-%a.log").display().to_string())
                .array(ArraySpec {
                    first: 0,
                    last,
                    max_parallel: u32::try_from(at_once).ok(),
                });
            append(
                &log,
                &format!("{partitions} partition(s), {at_once} at once\n"),
            )
            .await;
            (job, partitions)
        } else {
            for step in sequential_steps(&work, recipe) {
                make_dir(&step.dir, run_as).await.map_err(failed)?;
            }
            let job = BatchJob::new(batch_script(&work, recipe, timeout), &work)
                .output(work.join(JOB_LOG).display().to_string());
            (job, 0)
        };
        job = job.name(name).time_limit(self.settings.time_limit);
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
            partitions,
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
        if h.partitions > 0 {
            return self.array_status(&h).await;
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
                ref state if is_running(state) => status(Phase::Running, None),
                JobState::Completed => self.finish(&h).await,
                ref other => status(Phase::Failed, ended(other, &r.reason, r.exit_code)),
            },
            // Slurm forgot the job (`MinJobAge` after its end): its exit status says.
            None => match self.exit_status(&h, None).await {
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
        let mut files = vec![FETCH_LOG.to_owned(), JOB_LOG.to_owned()];
        files.extend((0..h.partitions).map(|n| format!("job-{n}.log")));
        files.push(PUBLISH_LOG.to_owned());
        for file in files {
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
                "(cd '/w/run-1/step-0' && INPUT_DIR='/w/run-1/seal-tags-fetch-template/output_dir' \
                 OUTPUT_DIR='/w/run-1/step-0/output_dir' timeout 30 /bin/sh -c 'cp \
                 /w/run-1/seal-tags-fetch-template/output_dir/a.csv /w/run-1/step-0/output_dir/')"
            ),
            "{script}"
        );
        assert!(
            script.contains("> /w/run-1/step-1/output_dir/b'"),
            "{script}"
        );
        let checked = std::process::Command::new("bash")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
    }
}
