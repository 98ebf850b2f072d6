//! Jobs (§A1 start/jobs/stop, §A5 monitoring, §A6 parameters, §A10.9–10): the start
//! checks and their order, the job row, the launch through the [`Resource`] port, one
//! monitor per active job that waits for the poll interval or the resource's change
//! notice (never a busy loop), `stopping` sticky, core hours, the workspace set idle when
//! its last job ends, and monitors resumed after a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::model::{Job, JobStatus, WorkspaceStatus, iso_naive, iso_z};
use crate::params::{self, Parameter};
use crate::resource::{Launch, Observed, Resource};
use crate::service::{Body, Reply};
use crate::{Error, Kind, Result, Uws};

const MISCONFIGURED: &str = "Job Type improperly configured. Please contact a system \
     administrator to resolve this.";
const BAD_PATH: &str = "Please contact a system administrator there is a failure with the \
     workspace directory that will not allow for jobs to be created.";
const NOT_RUNNING: &str = "This job is not running or pending.";

/// What a job type runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// A bash command (`environment_details.<resource>.command`).
    Command {
        /// The command line.
        command: String,
    },
    /// A job type that cannot run (unknown class, missing settings): a start is 400
    /// "Job Type improperly configured…" (§A10.10).
    Misconfigured,
}

impl JobKind {
    /// The job's bash script.
    fn script(&self, job: &Job) -> Option<String> {
        match self {
            Self::Command { command } => Some(format!(
                "#!/bin/bash\n# uws job {id} ({kind})\n{command}\n",
                id = job.id,
                kind = job.job_type,
            )),
            Self::Misconfigured => None,
        }
    }
}

/// A change of a job, sent to its websocket subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// The job.
    pub job_id: i64,
    /// `{status, current_job_details}`.
    pub message: Value,
}

/// What the job part needs.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Where jobs run.
    pub resource: Arc<dyn Resource>,
    /// Job types: key to what they run.
    pub kinds: BTreeMap<String, JobKind>,
    /// The `parameters` of the config.
    pub parameters: Vec<Parameter>,
    /// The resource's `parameter_mapping`.
    pub parameter_mapping: Option<Value>,
    /// The storage root (workspace directories are `<root>/<file_path>`).
    pub root_dir: PathBuf,
    /// How often a monitor asks the resource.
    pub poll_interval: StdDuration,
}

/// The jobs' channel: every change of every job.
pub fn events() -> broadcast::Sender<JobEvent> {
    broadcast::channel(1024).0
}

fn not_found(id: i64) -> Error {
    Error::refused(Kind::NotFound, format!("Job {id} not found for user."))
}

fn is_active(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Pending | JobStatus::Running | JobStatus::Stopping
    )
}

/// The wire form: `{id,workspace_id,resource_job_id,job_type,status,datetime_*,core_hours,
/// job_details}`; `naive` for the start reply (naive times, `core_hours` 0, §A10.4).
pub fn job_wire(job: &Job, naive: bool) -> Value {
    let time: fn(&DateTime<Utc>) -> String = if naive { iso_naive } else { iso_z };
    json!({
        "id": job.id,
        "workspace_id": job.workspace_id,
        "resource_job_id": job.resource_job_id,
        "job_type": job.job_type,
        "status": job.status,
        "datetime_created": time(&job.datetime_created),
        "datetime_start": job.datetime_start.as_ref().map(time),
        "datetime_end": job.datetime_end.as_ref().map(time),
        "core_hours": if naive { json!(0) } else { json!(job.core_hours) },
        "job_details": job.job_details,
    })
}

fn hours(from: DateTime<Utc>, to: DateTime<Utc>, cpus: u32) -> String {
    let seconds = (to - from).num_milliseconds().max(0) as f64 / 1000.0;
    format!("{:.5}", seconds / 3600.0 * f64::from(cpus.max(1)))
}

impl Uws {
    fn job_settings(&self) -> Result<&JobSettings> {
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::refused(Kind::Failed, "No resource is configured."))
    }

    /// The job events (for websockets).
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// The caller's job `id`, if any.
    pub fn owned_job(&self, user_id: i64, id: i64) -> Option<Job> {
        self.records
            .read()
            .jobs
            .get(&id)
            .filter(|j| j.user_id == Some(user_id))
            .cloned()
    }

    /// `PUT /workspaces/<id>/start/` (§A1, §A10.6, §A10.9, §A10.10). `order` is the
    /// request's key order of `resource_options`.
    pub async fn start(
        self: &Arc<Self>,
        user: &crate::User,
        id: i64,
        body: Body,
        order: &[String],
    ) -> Result<Reply> {
        let (workspace, account) = self.writable(user, id).await?;
        if !self.storage.is_valid(&workspace.file_path).await {
            return Err(Error::refused(Kind::Failed, BAD_PATH));
        }
        let body = match body {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::bad("Invalid JSON: expected an object.")),
            Err(why) => return Err(Error::bad(format!("Invalid JSON: {why}"))),
        };
        let job_type = match body.get("job_type") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null | Value::Bool(false)) | Some(Value::String(_)) => {
                workspace.default_job_type.clone().ok_or_else(|| {
                    Error::bad("Missing job_type and no default job type set on workspace.")
                })?
            }
            Some(other) => {
                return Err(Error::bad(format!(
                    "{} is not in the list of available job types.",
                    params::py_str(other)
                )));
            }
        };
        self.check_job_type(&job_type)?;
        let job_details = match body.get("job_details") {
            None => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(Error::bad("Job details not JSON.")),
        };
        let options = match body.get("resource_options") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Error::bad("Resource options not JSON.")),
        };
        let settings = self.job_settings()?;
        let options = params::validate(&settings.parameters, &options, order)
            .map_err(|errors| Error::refused(Kind::Unprocessable, params::message(&errors)))?;
        let mapped = params::translate(&options, settings.parameter_mapping.as_ref());
        self.check_core_hours(user.id)?;
        let now = self.now();
        let job = {
            let _write = self.records.lock().await;
            let job = Job {
                id: self.records.apply(|t| t.job_id()),
                user_id: Some(user.id),
                workspace_id: Some(id),
                resource_job_id: -1,
                job_type: job_type.clone(),
                resource_name: settings.resource.name().to_owned(),
                status: JobStatus::Pending,
                datetime_created: now,
                datetime_start: None,
                datetime_end: None,
                core_hours: "0.00000".into(),
                resource_options: Value::Object(mapped.clone()),
                job_details: json!({
                    "metrics": {},
                    "request_job_details": job_details,
                    "current_job_details": {},
                }),
            };
            self.records.jobs.insert(&job).await?;
            self.records.apply(|t| t.jobs.insert(job.id, job.clone()));
            job
        };
        let script = settings
            .kinds
            .get(&job_type)
            .and_then(|kind| kind.script(&job))
            .ok_or_else(|| Error::bad(MISCONFIGURED))?;
        let launch = Launch {
            job_id: job.id,
            workspace_dir: settings.root_dir.join(&workspace.file_path),
            account,
            script,
            options: mapped,
            name: format!("{job_type}_{}", job.id),
        };
        let job = match settings.resource.launch(launch).await {
            Ok(resource_job_id) => {
                self.change_job(job.id, |j| j.resource_job_id = resource_job_id)
                    .await?
            }
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "job launch failed");
                let end = self.now();
                self.change_job(job.id, |j| {
                    j.status = JobStatus::Failed;
                    j.datetime_end = Some(end);
                    j.job_details["current_job_details"]["message"] =
                        json!(format!("Launch failed: {e}"));
                })
                .await?;
                return Err(Error::refused(Kind::Failed, "Job could not be launched."));
            }
        };
        self.set_workspace(id, |w| {
            w.status = WorkspaceStatus::Active;
            w.datetime_last_job_launch = Some(now);
        })
        .await?;
        self.spawn_monitor(job.id);
        Ok(Reply::with_data(
            "Successful start.",
            json!({ "job": job_wire(&job, true) }),
        ))
    }

    /// `GET /jobs/[<id>/]` with filters `workspace_id`, `resource_job_id`, `job_type`,
    /// `status`; only the caller's jobs.
    pub fn list_jobs(
        &self,
        user: &crate::User,
        id: Option<i64>,
        filters: &BTreeMap<String, String>,
    ) -> Result<Reply> {
        for key in ["workspace_id", "resource_job_id"] {
            if let Some(v) = filters.get(key)
                && v.parse::<i64>().is_err()
            {
                return Err(Error::bad(format!("{key} must be an integer.")));
            }
        }
        let matches = |j: &Job| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "workspace_id" => j.workspace_id.map(|w| w.to_string()).as_deref() == Some(v),
                "resource_job_id" => j.resource_job_id.to_string() == *v,
                "job_type" => j.job_type == *v,
                "status" => {
                    serde_json::to_value(j.status)
                        .ok()
                        .as_ref()
                        .and_then(Value::as_str)
                        == Some(v.as_str())
                }
                _ => true,
            })
        };
        let tables = self.records.read();
        let listed: Vec<Value> = tables
            .jobs
            .values()
            .filter(|j| j.user_id == Some(user.id))
            .filter(|j| id.is_none_or(|id| j.id == id))
            .filter(|j| id.is_some() || matches(j))
            .map(|j| job_wire(j, false))
            .collect();
        let message = if listed.is_empty() {
            "Job matching given parameters could not be found."
        } else {
            "Successful."
        };
        Ok(Reply::with_data(message, json!({ "jobs": listed })))
    }

    /// `PUT /jobs/<id>/<put_type>/`: 404, then the put type, then `stop`'s checks.
    pub async fn put_job(
        self: &Arc<Self>,
        user: &crate::User,
        id: i64,
        put_type: &str,
    ) -> Result<Reply> {
        let job = self.owned_job(user.id, id).ok_or_else(|| not_found(id))?;
        if !put_type.eq_ignore_ascii_case("stop") {
            return Err(Error::bad("Invalid PUT type passed."));
        }
        if job.resource_job_id == -1 {
            let end = self.now();
            let done = self
                .change_job(id, |j| {
                    j.status = JobStatus::Complete;
                    j.datetime_end.get_or_insert(end);
                })
                .await?;
            self.finished(&done).await?;
            return Ok(Reply::bare_message("Successful stop."));
        }
        if !matches!(job.status, JobStatus::Pending | JobStatus::Running) {
            return Err(Error::bad(NOT_RUNNING));
        }
        self.change_job(id, |j| j.status = JobStatus::Stopping)
            .await?;
        let resource = self.job_settings()?.resource.clone();
        let uws = self.clone();
        tokio::spawn(async move {
            if let Err(e) = resource.stop(job.resource_job_id).await {
                tracing::error!(job = id, error = %e, "stopping the job failed");
                let end = uws.now();
                let failed = uws
                    .change_job(id, |j| {
                        j.status = JobStatus::Failed;
                        j.datetime_end.get_or_insert(end);
                    })
                    .await;
                if let Ok(job) = failed {
                    let _ = uws.finished(&job).await;
                }
            }
        });
        Ok(Reply::bare_message("Job queued to stop."))
    }

    /// Starts the monitors of every job a restart left active.
    pub fn resume_monitors(self: &Arc<Self>) -> usize {
        let ids: Vec<i64> = self
            .records
            .read()
            .jobs
            .values()
            .filter(|j| is_active(j.status) && j.resource_job_id != -1)
            .map(|j| j.id)
            .collect();
        for id in &ids {
            self.spawn_monitor(*id);
        }
        ids.len()
    }

    /// Becomes true when the process stops (websockets close then).
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every monitor (the process is stopping; a restart resumes them).
    pub fn close_monitors(&self) {
        self.closing.send_replace(true);
    }

    fn spawn_monitor(self: &Arc<Self>, id: i64) {
        let uws = self.clone();
        tokio::spawn(async move { uws.monitor(id).await });
    }

    /// One job's monitor: asks the resource, records, broadcasts; then waits for the poll
    /// interval or the resource's change notice; ends with the job.
    async fn monitor(self: Arc<Self>, id: i64) {
        let Ok(settings) = self.job_settings().cloned() else {
            return;
        };
        let mut closing = self.closing.subscribe();
        loop {
            if *closing.borrow_and_update() {
                return;
            }
            let Some(job) = self.records.read().jobs.get(&id).cloned() else {
                return;
            };
            if !is_active(job.status) {
                return;
            }
            match settings.resource.state(job.resource_job_id).await {
                Ok(observed) => match self.observe(id, observed).await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(job = id, error = %e, "recording the job state failed")
                    }
                },
                Err(e) => tracing::warn!(job = id, error = %e, "asking the resource failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(settings.poll_interval) => {}
                () = settings.resource.changed(job.resource_job_id) => {}
                _ = closing.changed() => return,
            }
        }
    }

    /// Records what the resource reported; true when the job ended.
    async fn observe(&self, id: i64, observed: Observed) -> Result<bool> {
        let now = self.now();
        let job = self
            .change_job(id, |j| {
                let status = match (j.status, observed.status) {
                    (JobStatus::Stopping, JobStatus::Pending | JobStatus::Running) => {
                        JobStatus::Stopping
                    }
                    (_, s) => s,
                };
                if status != JobStatus::Pending && j.datetime_start.is_none() {
                    let start = observed.started.unwrap_or(now);
                    j.datetime_start = Some(start);
                    j.job_details["metrics"]["time_pending"] =
                        json!((start - j.datetime_created).num_seconds().max(0));
                }
                if let Value::Object(current) = &mut j.job_details["current_job_details"] {
                    for (k, v) in &observed.details {
                        current.insert(k.clone(), v.clone());
                    }
                }
                if !is_active(status) {
                    let end = observed.ended.unwrap_or(now);
                    j.datetime_end = Some(end);
                    j.core_hours = hours(j.datetime_start.unwrap_or(end), end, observed.cpus);
                }
                j.status = status;
            })
            .await?;
        if is_active(job.status) {
            return Ok(false);
        }
        self.finished(&job).await?;
        Ok(true)
    }

    /// After a job ended: the workspace is idle again when no job of it is active (and it
    /// is not being deleted), and rescanned.
    async fn finished(&self, job: &Job) -> Result<()> {
        let Some(ws) = job.workspace_id else {
            return Ok(());
        };
        let busy = self
            .records
            .read()
            .jobs
            .values()
            .any(|j| j.workspace_id == Some(ws) && j.id != job.id && is_active(j.status));
        if !busy {
            self.set_workspace(ws, |w| {
                if w.status == WorkspaceStatus::Active {
                    w.status = WorkspaceStatus::Idle;
                }
            })
            .await?;
            self.queue.push(crate::Task::Scan(ws));
        }
        Ok(())
    }

    /// Changes job `id` in the store and in memory, then tells its subscribers.
    async fn change_job(&self, id: i64, change: impl FnOnce(&mut Job)) -> Result<Job> {
        let _write = self.records.lock().await;
        let Some(mut job) = self.records.read().jobs.get(&id).cloned() else {
            return Err(not_found(id));
        };
        change(&mut job);
        self.records.jobs.update(&job).await?;
        self.records.apply(|t| t.jobs.insert(id, job.clone()));
        let _ = self.events.send(JobEvent {
            job_id: id,
            message: json!({
                "status": job.status,
                "current_job_details": job.job_details["current_job_details"],
            }),
        });
        Ok(job)
    }

    async fn set_workspace(
        &self,
        id: i64,
        change: impl FnOnce(&mut crate::Workspace),
    ) -> Result<()> {
        let _write = self.records.lock().await;
        let Some(mut ws) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        change(&mut ws);
        self.records.workspaces.update(&ws).await?;
        self.records.apply(|t| t.workspaces.insert(id, ws));
        Ok(())
    }
}
