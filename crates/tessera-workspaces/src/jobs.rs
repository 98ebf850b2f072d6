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
    /// JupyterLab (§A5): the script starts `jupyter lab` on a free port of `host`, with the
    /// per-job token uws made (in the environment, never on a command line) and its
    /// `base_url` under `/passthrough/<host>/<port>/`, after writing `<host> <port>` to
    /// `.network_config` in its folder; the job is ready once that address accepts
    /// connections.
    JupyterLab {
        /// The `jupyter` executable.
        jupyter: String,
        /// The address the server listens on; `None`: the node's first address
        /// (`hostname -I`), else 127.0.0.1.
        host: Option<String>,
    },
    /// A job type that cannot run (unknown class, missing settings): a start is 400
    /// "Job Type improperly configured…" (§A10.10).
    Misconfigured,
}

/// Quotes `s` for bash, as one word.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl JobKind {
    /// Whether the job serves a web page through the passthrough proxy.
    fn is_interactive(&self) -> bool {
        matches!(self, Self::JupyterLab { .. })
    }

    /// The job's bash script.
    fn script(&self, job: &Job) -> Option<String> {
        let head = format!("#!/bin/bash\n# uws job {} ({})\n", job.id, job.job_type);
        match self {
            Self::Command { command } => Some(format!("{head}{command}\n")),
            Self::JupyterLab { jupyter, host } => {
                let host = match host {
                    Some(h) => quoted(h),
                    None => "$(hostname -I 2>/dev/null | awk '{print $1}')".to_owned(),
                };
                let token = quoted(job.secret.as_deref()?);
                Some(format!(
                    "{head}set -euo pipefail\n\
                     host={host}\n\
                     host=${{host:-127.0.0.1}}\n\
                     port=\n\
                     for _ in $(seq 1 200); do\n\
                     \x20 candidate=$(( 2000 + (RANDOM * 32768 + RANDOM) % 63536 ))\n\
                     \x20 if ! (exec 3<>\"/dev/tcp/$host/$candidate\") 2>/dev/null; then port=$candidate; break; fi\n\
                     done\n\
                     [ -n \"$port\" ] || {{ echo 'uws: no free port found' >&2; exit 1; }}\n\
                     printf '%s %s\\n' \"$host\" \"$port\" > .network_config\n\
                     export JUPYTER_TOKEN={token}\n\
                     as_root=()\n\
                     [ \"$(id -u)\" != 0 ] || as_root=(--allow-root)\n\
                     exec {jupyter} lab --no-browser --ip=\"$host\" --port=\"$port\" \\\n\
                     \x20 --ServerApp.port_retries=0 --ServerApp.allow_remote_access=True \\\n\
                     \x20 --ServerApp.base_url=\"/passthrough/$host/$port/\" \\\n\
                     \x20 --ServerApp.root_dir=\"$(dirname \"$PWD\")\" \"${{as_root[@]}}\"\n",
                    jupyter = quoted(jupyter),
                ))
            }
            Self::Misconfigured => None,
        }
    }
}

/// `<host> <port>` as a JupyterLab job writes it to `.network_config` (split on white
/// space, so a host name with a dash is fine, unlike the original's "host-port").
pub fn network_config(raw: &[u8]) -> Option<(String, u16)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut words = text.split_whitespace();
    let (host, port, rest) = (words.next()?, words.next()?, words.next());
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let is_name = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let is_address = host.parse::<std::net::IpAddr>().is_ok();
    (rest.is_none() && (is_name || is_address)).then(|| (host.to_owned(), port))
}

/// The passthrough path of a job's web server.
pub fn passthrough_path(host: &str, port: u16) -> String {
    format!("/passthrough/{host}/{port}/")
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
    /// The resource's `passthrough_domain`: a ready web server's
    /// `connection_details.url_domain`.
    pub passthrough_domain: Option<String>,
    /// Whether jobs run on this host (a local resource): only then may a job's web server
    /// listen on a loopback address, which the passthrough proxy would otherwise open to
    /// the host's own loopback services.
    pub jobs_on_this_host: bool,
}

/// How often a running interactive job that is not ready yet is checked.
const READINESS_INTERVAL: StdDuration = StdDuration::from_secs(1);
/// The most of `.network_config` that is read.
const NETWORK_CONFIG_MAX: usize = 512;

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
        let interactive = settings
            .kinds
            .get(&job_type)
            .is_some_and(JobKind::is_interactive);
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
                secret: interactive.then(crate::service::token_key),
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
        let interactive = self
            .records
            .read()
            .jobs
            .get(&id)
            .and_then(|j| settings.kinds.get(&j.job_type))
            .is_some_and(JobKind::is_interactive);
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
            let mut interval = settings.poll_interval;
            match settings.resource.state(job.resource_job_id).await {
                Ok(observed) => match self.observe(id, observed).await {
                    Ok(true) => return,
                    Ok(false) if interactive => match self.check_ready(&settings, id).await {
                        Ok(true) => {}
                        Ok(false) => interval = interval.min(READINESS_INTERVAL),
                        Err(e) => {
                            tracing::error!(job = id, error = %e, "recording readiness failed")
                        }
                    },
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(job = id, error = %e, "recording the job state failed")
                    }
                },
                Err(e) => tracing::warn!(job = id, error = %e, "asking the resource failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = settings.resource.changed(job.resource_job_id) => {}
                _ = closing.changed() => return,
            }
        }
    }

    /// The readiness check of an interactive job (§A5 `status_check`) while it runs and is
    /// not ready: its `.network_config`, then whether the address accepts connections;
    /// records the progress message when it changes, and once ready `proxy_details`,
    /// `connection_details` (`url_path` with the job's token, `url_domain`) and
    /// `metrics.time_init`. True when there is nothing left to wait for (ready, or not
    /// running).
    async fn check_ready(&self, settings: &JobSettings, id: i64) -> Result<bool> {
        let (job, file_path) = {
            let tables = self.records.read();
            let Some(job) = tables.jobs.get(&id).cloned() else {
                return Ok(true);
            };
            let file_path = job
                .workspace_id
                .and_then(|w| tables.workspaces.get(&w))
                .map(|w| w.file_path.clone());
            (job, file_path)
        };
        let current = &job.job_details["current_job_details"];
        if job.status != JobStatus::Running || current.get("connection_details").is_some() {
            return Ok(true);
        }
        let (Some(file_path), Some(secret)) = (file_path, job.secret.clone()) else {
            return Ok(true);
        };
        let address = match self
            .storage
            .read_job_file(&file_path, id, ".network_config", NETWORK_CONFIG_MAX)
            .await
        {
            Ok(Some(raw)) => network_config(&raw),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(job = id, error = %e, "reading .network_config failed");
                None
            }
        };
        let Some((host, port)) = address else {
            self.progress(id, current, "No network config found.")
                .await?;
            return Ok(false);
        };
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(&target)
            .await
            .map(Iterator::collect)
            .unwrap_or_default();
        let local = |a: &std::net::SocketAddr| a.ip().is_loopback() || a.ip().is_unspecified();
        if !settings.jobs_on_this_host && addresses.iter().any(local) {
            self.progress(id, current, "Network config not allowed.")
                .await?;
            return Ok(false);
        }
        let answers = match addresses.first() {
            Some(address) => tokio::time::timeout(
                StdDuration::from_secs(2),
                tokio::net::TcpStream::connect(address),
            )
            .await
            .is_ok_and(|connected| connected.is_ok()),
            None => false,
        };
        if !answers {
            self.progress(id, current, "Webserver not ready.").await?;
            return Ok(false);
        }
        let path = passthrough_path(&host, port);
        let now = self.now();
        let domain = settings.passthrough_domain.clone();
        self.change_job(id, |j| {
            let details = &mut j.job_details["current_job_details"];
            details["message"] = json!("Webserver ready.");
            details["proxy_details"] = json!({"hostname": host, "port": port, "path": path});
            let mut connection = json!({"url_path": format!("{path}lab?token={secret}")});
            if let Some(domain) = domain {
                connection["url_domain"] = json!(domain);
            }
            details["connection_details"] = connection;
            let start = j.datetime_start.unwrap_or(now);
            j.job_details["metrics"]["time_init"] = json!((now - start).num_seconds().max(0));
        })
        .await?;
        Ok(true)
    }

    /// Records an interactive job's progress `message` when it changed.
    async fn progress(&self, id: i64, current: &Value, message: &str) -> Result<()> {
        if current.get("message").and_then(Value::as_str) != Some(message) {
            self.change_job(id, |j| {
                j.job_details["current_job_details"]["message"] = json!(message);
            })
            .await?;
        }
        Ok(())
    }

    /// Whether `user` may reach `host:port` through the passthrough proxy: it is the web
    /// server of one of their own running jobs.
    pub fn passthrough_allowed(&self, user_id: i64, host: &str, port: u16) -> bool {
        self.records.read().jobs.values().any(|j| {
            let proxy = &j.job_details["current_job_details"]["proxy_details"];
            j.user_id == Some(user_id)
                && j.status == JobStatus::Running
                && proxy["hostname"].as_str() == Some(host)
                && proxy["port"].as_u64() == Some(u64::from(port))
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(secret: Option<&str>) -> Job {
        Job {
            id: 7,
            user_id: Some(1),
            workspace_id: Some(2),
            resource_job_id: -1,
            job_type: "lab".into(),
            resource_name: "local".into(),
            status: JobStatus::Pending,
            datetime_created: Utc::now(),
            datetime_start: None,
            datetime_end: None,
            core_hours: "0.00000".into(),
            resource_options: json!({}),
            job_details: json!({}),
            secret: secret.map(str::to_owned),
        }
    }

    #[test]
    fn network_configs_are_host_and_port_and_nothing_else() {
        assert_eq!(
            network_config(b"node-1.cluster 8888\n"),
            Some(("node-1.cluster".into(), 8888))
        );
        assert_eq!(network_config(b"::1 80"), Some(("::1".into(), 80)));
        for bad in [
            &b""[..],
            b"host",
            b"host 0",
            b"host 70000",
            b"host 80 extra",
            b"ho/st 80",
            b"root:x:0:0:root:/root:/bin/bash",
            b"\xff 80",
        ] {
            assert_eq!(network_config(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_jupyterlab_script_is_bash_with_the_token_in_its_environment_only() {
        let kind = JobKind::JupyterLab {
            jupyter: "/opt/it's/jupyter".into(),
            host: None,
        };
        assert_eq!(kind.script(&job(None)), None, "no token, no script");
        let script = kind.script(&job(Some("0123abcd"))).unwrap();
        assert!(
            script.contains("export JUPYTER_TOKEN='0123abcd'\n"),
            "{script}"
        );
        assert!(
            script.contains("exec '/opt/it'\\''s/jupyter' lab "),
            "{script}"
        );
        assert!(script.contains("--ServerApp.base_url=\"/passthrough/$host/$port/\""));
        assert_eq!(script.matches("0123abcd").count(), 1, "{script}");
        let checked = std::process::Command::new("bash")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}\n{script}");
    }

    #[test]
    fn command_scripts_run_the_command() {
        let kind = JobKind::Command {
            command: "echo hi".into(),
        };
        assert_eq!(
            kind.script(&job(None)).unwrap(),
            "#!/bin/bash\n# uws job 7 (lab)\necho hi\n"
        );
    }
}
