//! The local-process provider of the resource port (the embedded default, the original's
//! `LocalResource`): the job script runs as the workspace owner's OS account in the
//! workspace's `.<jobid>/` folder, in its own process group; the job id is the PID; stop
//! kills the whole group; the state comes from the process (its exit status while uws is
//! its parent, the group's existence after a restart). Core hours are wall-clock hours.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use rustix::process::{Pid, Signal, geteuid, kill_process_group, test_kill_process_group};
use serde_json::Map;
use tessera_workspaces::JobStatus;
use tessera_workspaces::resource::{Error, Launch, Observed, Resource, Result};
use tokio::sync::watch;

/// What uws knows of a process it started.
type Exit = watch::Sender<Option<ExitStatus>>;

/// The local-process resource.
#[derive(Debug, Default)]
pub struct LocalResource {
    children: Mutex<HashMap<i64, Arc<Exit>>>,
}

fn pid(resource_job_id: i64) -> Result<Pid> {
    i32::try_from(resource_job_id)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Error::Unknown(resource_job_id))
}

fn owned_dir(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .and_then(|()| chown(path, Some(uid), Some(gid)))
}

fn owned_file(path: &Path, uid: u32, gid: u32, mode: u32) -> std::io::Result<fs::File> {
    // create_new is O_CREAT|O_EXCL: a planted symlink is never followed.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    Ok(file)
}

use std::os::unix::fs::DirBuilderExt;

/// Makes the job's `.<jobid>/` folder in the workspace and its script, both owned by the
/// job's account (a folder that exists, planted or not, is refused); returns both paths.
pub(crate) fn job_folder(launch: &Launch) -> Result<(PathBuf, PathBuf)> {
    let failed = |what: &str, e: std::io::Error| Error::Launch(format!("{what}: {e}"));
    let (uid, gid) = (launch.account.uid, launch.account.gid);
    let dir = launch.workspace_dir.join(format!(".{}", launch.job_id));
    owned_dir(&dir, uid, gid).map_err(|e| failed("job folder", e))?;
    let script = dir.join(format!("{}.sh", Utc::now().timestamp()));
    owned_file(&script, uid, gid, 0o700)
        .and_then(|mut f| f.write_all(launch.script.as_bytes()))
        .map_err(|e| failed("job script", e))?;
    Ok((dir, script))
}

impl LocalResource {
    /// A provider with no jobs.
    pub fn new() -> Self {
        Self::default()
    }

    fn exit(&self, id: i64) -> Option<Arc<Exit>> {
        self.children.lock().ok()?.get(&id).cloned()
    }
}

#[async_trait]
impl Resource for LocalResource {
    fn name(&self) -> &str {
        "LocalResource"
    }

    async fn launch(&self, launch: Launch) -> Result<i64> {
        let failed = |what: &str, e: std::io::Error| Error::Launch(format!("{what}: {e}"));
        let (uid, gid) = (launch.account.uid, launch.account.gid);
        let me = geteuid().as_raw();
        if me != uid && me != 0 {
            return Err(Error::Launch(format!(
                "uws runs as uid {me} and cannot run jobs as {} (uid {uid})",
                launch.account.name
            )));
        }
        let (dir, script) = job_folder(&launch)?;
        let log = owned_file(
            &dir.join(format!("{}_output.log", launch.name)),
            uid,
            gid,
            0o600,
        )
        .map_err(|e| failed("job log", e))?;
        let err_log = log.try_clone().map_err(|e| failed("job log", e))?;
        let mut command = tokio::process::Command::new("/bin/bash");
        command
            .arg(&script)
            .current_dir(&dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &launch.workspace_dir)
            .env("USER", &launch.account.name)
            .env("LOGNAME", &launch.account.name)
            .env("UWS_JOB_ID", launch.job_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .process_group(0)
            .kill_on_drop(false);
        if me != uid {
            command.uid(uid).gid(gid);
        }
        let mut child = command.spawn().map_err(|e| failed("spawn", e))?;
        let id = child
            .id()
            .map(i64::from)
            .ok_or_else(|| Error::Launch("the job exited at once".into()))?;
        let exit = Arc::new(watch::channel(None).0);
        if let Ok(mut children) = self.children.lock() {
            children.insert(id, exit.clone());
        }
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => {
                    exit.send_replace(Some(status));
                }
                Err(e) => tracing::error!(pid = id, error = %e, "waiting for a job failed"),
            }
        });
        Ok(id)
    }

    async fn state(&self, resource_job_id: i64) -> Result<Observed> {
        let status = match self.exit(resource_job_id) {
            Some(exit) => match *exit.borrow() {
                None => JobStatus::Running,
                Some(s) if s.success() || s.code().is_none() => JobStatus::Complete,
                Some(_) => JobStatus::Failed,
            },
            // Started before a restart: running while its process group lives.
            None => match test_kill_process_group(pid(resource_job_id)?) {
                Ok(()) => JobStatus::Running,
                Err(_) => JobStatus::Complete,
            },
        };
        if status != JobStatus::Running
            && let Ok(mut children) = self.children.lock()
        {
            children.remove(&resource_job_id);
        }
        Ok(Observed {
            status,
            cpus: 1,
            started: None,
            ended: None,
            details: Map::new(),
        })
    }

    async fn stop(&self, resource_job_id: i64) -> Result<()> {
        match kill_process_group(pid(resource_job_id)?, Signal::KILL) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::Unavailable(format!("kill: {e}"))),
        }
    }

    async fn changed(&self, resource_job_id: i64) {
        match self.exit(resource_job_id) {
            Some(exit) => {
                let mut rx = exit.subscribe();
                let _ = rx.wait_for(Option::is_some).await;
            }
            None => std::future::pending().await,
        }
    }
}
