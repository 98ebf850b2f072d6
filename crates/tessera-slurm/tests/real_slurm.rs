//! The client against the real single-node Slurm of `scripts/test-infra up slurm`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use tessera_slurm::{ArraySpec, BatchJob, Error, JobId, JobRecord, JobState, Settings, Slurm};
use tessera_test_support::infra;

/// The account jobs run as: an unprivileged one that exists everywhere.
const USER: &str = "nobody";

fn slurm() -> Option<Slurm> {
    let conf = infra::server(infra::SLURM_CONF)?;
    Some(Slurm::new(Settings {
        conf: Some(conf.into()),
        ..Settings::default()
    }))
}

/// A working directory `nobody` may write to.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

async fn until_terminal(slurm: &Slurm, id: JobId, limit: Duration) -> JobRecord {
    let deadline = Instant::now() + limit;
    loop {
        let job = slurm.job(id).await.unwrap().expect("slurm knows the job");
        if job.state.is_terminal() && job.state != JobState::Completing {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {:?} after {limit:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn until_running(slurm: &Slurm, id: JobId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while slurm.job(id).await.unwrap().unwrap().state != JobState::Running {
        assert!(Instant::now() < deadline, "job {id} never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn owner(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().uid()
}

#[tokio::test]
async fn a_job_runs_as_the_mapped_account_with_only_its_environment() {
    let Some(slurm) = slurm() else { return };
    slurm.ping().await.unwrap();
    let dir = workdir();
    let job = BatchJob::new(
        "#!/bin/bash\nid -un\necho \"greeting=$GREETING home=${HOME:-}\"\npwd\n",
        dir.path(),
    )
    .name("tessera contract")
    .user(USER)
    .output(dir.path().join("out.%j").to_str().unwrap())
    .env("GREETING", "it's, fine")
    .cpus(1);
    let id = slurm.submit(&job).await.unwrap();
    let done = until_terminal(&slurm, id, Duration::from_secs(60)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!((done.exit_code, done.signal), (0, 0));
    assert_eq!(done.user, USER);
    assert_eq!(done.name, "tessera contract");
    assert_eq!(done.cpus, 1);
    let out_path = dir.path().join(format!("out.{id}"));
    let out = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], USER);
    // Nothing of the submitting process's environment (root's HOME) reaches the job.
    assert!(!lines[1].contains("/root"), "{out}");
    assert!(lines[1].starts_with("greeting=it's, fine "), "{out}");
    assert_eq!(Path::new(lines[2]), dir.path());
    let nobody = std::process::Command::new("id")
        .args(["-u", USER])
        .output()
        .unwrap();
    let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(owner(&out_path), nobody);
}

#[tokio::test]
async fn a_failing_job_reports_its_exit_code() {
    let Some(slurm) = slurm() else { return };
    let dir = workdir();
    let job = BatchJob::new("#!/bin/sh\nexit 3\n", dir.path()).user(USER);
    let id = slurm.submit(&job).await.unwrap();
    let done = until_terminal(&slurm, id, Duration::from_secs(60)).await;
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(done.exit_code, 3);
    assert!(!done.state.is_success());
}

#[tokio::test]
async fn cancel_stops_a_running_job_and_is_idempotent() {
    let Some(slurm) = slurm() else { return };
    let dir = workdir();
    let job = BatchJob::new("#!/bin/sh\nsleep 300\n", dir.path())
        .user(USER)
        .cpus(1);
    let id = slurm.submit(&job).await.unwrap();
    until_running(&slurm, id).await;
    slurm.cancel(id).await.unwrap();
    let done = until_terminal(&slurm, id, Duration::from_secs(30)).await;
    assert_eq!(done.state, JobState::Cancelled);
    slurm.cancel(id).await.unwrap();
}

#[tokio::test]
async fn a_time_limit_ends_the_job_with_timeout() {
    let Some(slurm) = slurm() else { return };
    let dir = workdir();
    let job = BatchJob::new("#!/bin/sh\nsleep 300\n", dir.path())
        .user(USER)
        .cpus(1)
        .time_limit(Duration::from_secs(1));
    let id = slurm.submit(&job).await.unwrap();
    let submitted = slurm.job(id).await.unwrap().unwrap();
    // Slurm keeps at least a minute.
    assert_eq!(submitted.time_limit, Some(Duration::from_secs(60)));
    // slurmctld checks time limits about every 30 s after the limit.
    let done = until_terminal(&slurm, id, Duration::from_secs(150)).await;
    assert_eq!(done.state, JobState::Timeout, "{done:?}");
    assert!(done.run_time >= Duration::from_secs(60), "{done:?}");
    assert!(done.core_time() >= Duration::from_secs(60));
}

#[tokio::test]
async fn an_array_runs_every_task_with_its_index() {
    let Some(slurm) = slurm() else { return };
    let dir = workdir();
    let job = BatchJob::new(
        "#!/bin/sh\necho \"task $SLURM_ARRAY_TASK_ID\"\n",
        dir.path(),
    )
    .user(USER)
    .output(dir.path().join("a.%A.%a").to_str().unwrap())
    .array(ArraySpec {
        first: 0,
        last: 2,
        max_parallel: Some(2),
    });
    let id = slurm.submit(&job).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let tasks = loop {
        let tasks = slurm.tasks(id).await.unwrap();
        if tasks.len() == 3
            && tasks
                .iter()
                .all(|t| t.state.is_terminal() && t.state != JobState::Completing)
        {
            break tasks;
        }
        assert!(Instant::now() < deadline, "array {id}: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut indexes: Vec<u32> = tasks.iter().map(|t| t.array_task_id.unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    assert!(
        tasks
            .iter()
            .all(|t| t.array_job_id == Some(id) && t.state == JobState::Completed)
    );
    for index in 0..3 {
        let out = std::fs::read_to_string(dir.path().join(format!("a.{id}.{index}"))).unwrap();
        assert_eq!(out.trim(), format!("task {index}"));
    }
}

#[tokio::test]
async fn refusals_and_unknown_jobs_are_errors_of_their_own() {
    let Some(slurm) = slurm() else { return };
    let dir = workdir();
    let bad_partition = BatchJob::new("#!/bin/sh\n", dir.path())
        .user(USER)
        .partition("no-such-partition");
    match slurm.submit(&bad_partition).await {
        Err(Error::Rejected(message)) => assert!(message.contains("partition"), "{message}"),
        other => panic!("{other:?}"),
    }
    let no_account = BatchJob::new("#!/bin/sh\n", dir.path()).user("no-such-account-tessera");
    assert!(matches!(
        slurm.submit(&no_account).await,
        Err(Error::NotPermitted { .. })
    ));
    let unknown: JobId = 4_000_000_000;
    assert!(slurm.job(unknown).await.unwrap().is_none());
    assert!(matches!(
        slurm.cancel(unknown).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_stopped_controller_is_unavailable_not_a_refusal() {
    // A config naming a controller nobody runs: the commands fail to connect.
    let dir = tempfile::tempdir().unwrap();
    let Some(conf) = infra::server(infra::SLURM_CONF) else {
        return;
    };
    let text = std::fs::read_to_string(&conf).unwrap();
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("SlurmctldPort=") {
                "SlurmctldPort=1\n".to_owned()
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let conf = dir.path().join("slurm.conf");
    std::fs::write(&conf, text).unwrap();
    let slurm = Slurm::new(Settings {
        conf: Some(conf),
        command_timeout: Duration::from_secs(60),
        ..Settings::default()
    });
    match slurm.ping().await {
        Err(Error::Unavailable(message)) => assert!(message.contains("DOWN"), "{message}"),
        other => panic!("{other:?}"),
    }
}
