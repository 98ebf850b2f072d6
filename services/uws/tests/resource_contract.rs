//! One contract for the resource port, run on the local-process provider and on the real
//! single-node Slurm of `scripts/test-infra up slurm`: the script runs as the mapped
//! account in `.<jobid>/`, states go pending/running → complete, a failing script is
//! failed, stop ends a running job, and (Slurm) the time limit ends an overlong one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tessera_test_support::infra;
use tessera_workspaces::resource::{Launch, Resource};
use tessera_workspaces::{Account, JobStatus};
use uws::local::LocalResource;
use uws::slurm::SlurmResource;

/// An unprivileged account that exists everywhere.
fn nobody() -> Account {
    Account {
        name: "nobody".into(),
        uid: 65534,
        gid: 65534,
    }
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn launch(dir: &Path, job_id: i64, script: &str, options: serde_json::Value) -> Launch {
    Launch {
        job_id,
        workspace_dir: dir.to_path_buf(),
        account: nobody(),
        script: format!("#!/bin/bash\n{script}\n"),
        options: options.as_object().cloned().unwrap_or_else(Map::new),
        name: format!("contract_{job_id}"),
    }
}

async fn until(resource: &dyn Resource, id: i64, limit: Duration) -> (JobStatus, Vec<JobStatus>) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let observed = resource.state(id).await.unwrap();
        if seen.last() != Some(&observed.status) {
            seen.push(observed.status);
        }
        if observed.status.is_terminal() {
            return (observed.status, seen);
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {seen:?} after {limit:?}"
        );
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = resource.changed(id) => {}
        }
    }
}

async fn contract(resource: Arc<dyn Resource>, time_limits: bool) {
    let dir = workspace();
    // Runs as the mapped account in its folder; completes.
    let id = resource
        .launch(launch(
            dir.path(),
            1,
            "id -un > who; pwd > where; sleep 1",
            json!({}),
        ))
        .await
        .unwrap();
    let (end, seen) = until(resource.as_ref(), id, Duration::from_secs(60)).await;
    assert_eq!(end, JobStatus::Complete, "{seen:?}");
    let folder = dir.path().join(".1");
    assert_eq!(
        std::fs::read_to_string(folder.join("who")).unwrap().trim(),
        "nobody"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("where"))
            .unwrap()
            .trim(),
        folder.display().to_string()
    );
    // A failing script is failed.
    let id = resource
        .launch(launch(dir.path(), 2, "exit 3", json!({})))
        .await
        .unwrap();
    assert_eq!(
        until(resource.as_ref(), id, Duration::from_secs(60))
            .await
            .0,
        JobStatus::Failed
    );
    // Stop ends a running job (and what it started).
    let id = resource
        .launch(launch(dir.path(), 3, "sleep 300 & sleep 300", json!({})))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while resource.state(id).await.unwrap().status != JobStatus::Running {
        assert!(Instant::now() < deadline, "never running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    resource.stop(id).await.unwrap();
    let (end, _) = until(resource.as_ref(), id, Duration::from_secs(60)).await;
    assert!(end.is_terminal());
    // Launching into a folder that exists (a planted one) is refused.
    std::fs::create_dir(dir.path().join(".9")).unwrap();
    assert!(
        resource
            .launch(launch(dir.path(), 9, "true", json!({})))
            .await
            .is_err()
    );
    if time_limits {
        // A one-minute limit ends a longer job, with the allocated CPUs reported.
        let id = resource
            .launch(launch(
                dir.path(),
                4,
                "sleep 600",
                json!({"time_limit_min": 1, "num_cpus": 1}),
            ))
            .await
            .unwrap();
        let (end, _) = until(resource.as_ref(), id, Duration::from_secs(180)).await;
        assert_eq!(end, JobStatus::Complete);
    }
}

#[tokio::test]
async fn the_local_provider_keeps_the_contract() {
    contract(Arc::new(LocalResource::new()), false).await;
}

#[tokio::test]
async fn the_slurm_provider_keeps_the_contract() {
    let Some(conf) = infra::server(infra::SLURM_CONF) else {
        return;
    };
    let slurm = tessera_slurm::Slurm::new(tessera_slurm::Settings {
        conf: Some(conf.into()),
        ..tessera_slurm::Settings::default()
    });
    let long = std::env::var_os("TESSERA_SLURM_TIME_LIMIT_TEST").is_some();
    contract(Arc::new(SlurmResource::new(slurm, None, 30)), long).await;
}
