//! The Slurm provider of the resource port, on `tessera-slurm` (the Slurm commands): the
//! job script is submitted as the workspace owner's account with `.<jobid>/` in the
//! workspace as its working directory, the CPUs (`num_cpus` or `cpus_per_task` after
//! `parameter_mapping`), the time limit (`time_limit_min`, else the resource's
//! `time_limit`, default 30 minutes) and the resource's `cpu_partition`; states map as the
//! original's (§A5): PENDING, CONFIGURING, SUSPENDED → pending; RUNNING, COMPLETING →
//! running; FAILED → failed; any other end → complete. Core hours are the run time times
//! the allocated CPUs.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Map, Value, json};
use tessera_slurm::{BatchJob, JobState, Slurm};
use tessera_workspaces::JobStatus;
use tessera_workspaces::resource::{Error, Launch, Observed, Resource, Result};

use crate::local::job_folder;

/// The Slurm resource.
#[derive(Debug)]
pub struct SlurmResource {
    slurm: Slurm,
    partition: Option<String>,
    default_minutes: u64,
}

fn number(options: &Map<String, Value>, keys: &[&str]) -> Option<u64> {
    keys.iter()
        .find_map(|k| options.get(*k).and_then(Value::as_u64))
}

/// The core's status for a Slurm state (§A5).
pub fn status_of(state: &JobState) -> JobStatus {
    match state {
        JobState::Pending | JobState::Configuring | JobState::Suspended => JobStatus::Pending,
        JobState::Running | JobState::Completing => JobStatus::Running,
        JobState::Failed => JobStatus::Failed,
        JobState::Other(_) => JobStatus::Running,
        _ => JobStatus::Complete,
    }
}

impl SlurmResource {
    /// Over `slurm`, submitting to `partition` with `default_minutes` when a start names no
    /// time limit.
    pub fn new(slurm: Slurm, partition: Option<String>, default_minutes: u64) -> Self {
        Self {
            slurm,
            partition,
            default_minutes: default_minutes.max(1),
        }
    }
}

fn id(resource_job_id: i64) -> Result<u64> {
    u64::try_from(resource_job_id).map_err(|_| Error::Unknown(resource_job_id))
}

#[async_trait]
impl Resource for SlurmResource {
    fn name(&self) -> &str {
        "SlurmResource"
    }

    async fn launch(&self, launch: Launch) -> Result<i64> {
        let (dir, _script) = job_folder(&launch)?;
        let minutes = number(&launch.options, &["time_limit_min", "time_limit"])
            .unwrap_or(self.default_minutes);
        let cpus = number(&launch.options, &["num_cpus", "cpus_per_task", "cpus"]).unwrap_or(1);
        let mut job = BatchJob::new(launch.script.clone(), &dir)
            .name(launch.name.clone())
            .user(launch.account.name.clone())
            .output(
                dir.join(format!("{}_output.log", launch.name))
                    .display()
                    .to_string(),
            )
            .time_limit(Duration::from_secs(minutes * 60))
            .cpus(u32::try_from(cpus).unwrap_or(1))
            .env("UWS_JOB_ID", launch.job_id.to_string());
        if let Some(p) = &self.partition {
            job = job.partition(p.clone());
        }
        let submitted = self
            .slurm
            .submit(&job)
            .await
            .map_err(|e| Error::Launch(e.to_string()))?;
        i64::try_from(submitted).map_err(|_| Error::Launch(format!("job id {submitted}")))
    }

    async fn state(&self, resource_job_id: i64) -> Result<Observed> {
        let Some(record) = self
            .slurm
            .job(id(resource_job_id)?)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?
        else {
            return Ok(Observed {
                status: JobStatus::Complete,
                cpus: 1,
                started: None,
                ended: None,
                details: Map::new(),
            });
        };
        let status = status_of(&record.state);
        let now = Utc::now();
        let run = chrono::Duration::from_std(record.run_time).unwrap_or_default();
        let mut details = Map::new();
        if let Some(limit) = record.time_limit {
            let left = limit.saturating_sub(record.run_time).as_secs();
            details.insert("time_left".into(), json!(left));
        }
        let started = (status != JobStatus::Pending).then(|| now - run);
        Ok(Observed {
            status,
            cpus: record.cpus.max(1),
            started,
            ended: started.map(|s| s + run).filter(|_| status.is_terminal()),
            details,
        })
    }

    async fn stop(&self, resource_job_id: i64) -> Result<()> {
        self.slurm
            .cancel(id(resource_job_id)?)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    async fn changed(&self, _resource_job_id: i64) {
        std::future::pending::<()>().await;
    }
}
