//! The resource port: where jobs run (a local process, Slurm). The core launches a job's
//! script through it, asks it for the job's state at the monitor's interval (or when the
//! resource says something changed) and stops jobs through it.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::JobStatus;
use crate::storage::Account;

/// Errors of a resource.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource refused or failed to launch the job.
    #[error("launch failed: {0}")]
    Launch(String),
    /// The resource does not know the job.
    #[error("unknown job {0}")]
    Unknown(i64),
    /// The resource could not be asked.
    #[error("resource: {0}")]
    Unavailable(String),
}

/// Result with a resource [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a resource needs to run one job.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The job's id (its folder is `.<job_id>/` in the workspace).
    pub job_id: i64,
    /// The workspace directory (absolute).
    pub workspace_dir: PathBuf,
    /// The account the script runs as.
    pub account: Account,
    /// The bash script.
    pub script: String,
    /// The resource options after `parameter_mapping`.
    pub options: Map<String, Value>,
    /// The job name.
    pub name: String,
}

/// A job as the resource sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The state, in the core's terms (pending, running, complete or failed).
    pub status: JobStatus,
    /// CPUs allocated to the job (core hours are wall-clock hours times these).
    pub cpus: u32,
    /// When the resource started it, when it knows.
    pub started: Option<DateTime<Utc>>,
    /// When it ended, when it knows.
    pub ended: Option<DateTime<Utc>>,
    /// Merged into `current_job_details` (e.g. `time_left`).
    pub details: Map<String, Value>,
}

/// Where jobs run.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Resource: Send + Sync + fmt::Debug {
    /// The resource's name (`Job.resource_name`).
    fn name(&self) -> &str;

    /// Starts the job; returns its id at the resource. MUST run the script as
    /// `launch.account` with `.<job_id>/` in the workspace as its working directory.
    async fn launch(&self, launch: Launch) -> Result<i64>;

    /// The job's state. A job the resource no longer knows is `complete`.
    async fn state(&self, resource_job_id: i64) -> Result<Observed>;

    /// Stops the job and everything it started.
    async fn stop(&self, resource_job_id: i64) -> Result<()>;

    /// Resolves when the resource knows the job's state changed (a process exit); the
    /// monitor also asks at its interval, so a resource without notifications never
    /// resolves.
    async fn changed(&self, resource_job_id: i64);
}
