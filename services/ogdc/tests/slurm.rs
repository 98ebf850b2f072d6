//! The Slurm engine on the real single-node Slurm of `scripts/test-infra up slurm`: a
//! recipe that downloads an input, runs two commands and publishes a zip reaches
//! `Succeeded`; a failing command ends `Failed`; a cancel reaches Slurm; a run goes on
//! across a restart of the service (the handle and the work directory hold its state); a
//! parallel recipe runs as a job array, one task per partition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, app_dir, config, input_server, meta, start};
use ogdc::config::EngineKind;
use ogdc::{OgdcConfig, Overrides};
use serde_json::json;
use tessera_test_support::infra;

fn slurm_config(dir: &std::path::Path, conf: &str) -> OgdcConfig {
    let mut config = config(dir);
    config.engine = EngineKind::Slurm;
    config.slurm_conf = conf.to_owned();
    config.slurm_time_limit_minutes = 5;
    config
}

async fn submitted(app: &App, token: &str, recipe: &str) -> String {
    let (status, body) = app.submit(token, recipe).await;
    assert_eq!(status, 200, "{body}");
    body["recipe_workflow_name"].as_str().unwrap().to_owned()
}

/// The names and the `copy.csv` of the run's zip, downloaded through `/output`.
async fn zip_of(app: &App, token: &str, name: &str) -> (Vec<String>, String) {
    let files = app.zip_files(token, name).await;
    let copy = files["copy.csv"].clone();
    (files.into_keys().collect(), copy)
}

/// Waits until run `name`'s Slurm job runs.
async fn wait_running(app: &App, token: &str, name: &str) {
    for _ in 0..300 {
        let (_, body) = app.get(&format!("/status/{name}"), token).await;
        if body["status"] == "Running" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("run {name} never ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn recipes_run_as_slurm_jobs_and_survive_a_restart() {
    let Some(conf) = infra::server(infra::SLURM_CONF) else {
        return;
    };
    let dir = app_dir();
    let config = slurm_config(dir.path(), &conf);
    let app = start(dir, config.clone(), Overrides::default()).await;
    let admin = app.admin().await;
    let input = input_server("seals.csv", "a,b\n1,2\n").await;
    app.recipe(
        "seals",
        &meta("Seal Tags", &input, "temporary"),
        "cp /input_dir/seals.csv /output_dir/copy.csv\nwc -l /input_dir/copy.csv > /output_dir/lines.txt && cp /input_dir/copy.csv /output_dir/\n",
    );
    app.recipe(
        "fails",
        &meta("Fails", &input, "temporary"),
        "cp /input_dir/seals.csv /output_dir/\nexit 3\n",
    );
    app.recipe(
        "slow",
        &meta("Slow", &input, "temporary"),
        "sleep 8 && cp /input_dir/seals.csv /output_dir/copy.csv\n",
    );
    app.recipe(
        "forever",
        &meta("Forever", &input, "temporary"),
        "sleep 600\n",
    );

    let seals = submitted(&app, &admin, "seals").await;
    assert_eq!(app.wait(&admin, &seals).await, "Succeeded");
    let (names, copy) = zip_of(&app, &admin, &seals).await;
    assert_eq!(names, ["copy.csv", "lines.txt"]);
    assert_eq!(copy, "a,b\n1,2\n");
    let logs = app.logs(&admin, &seals).await;
    assert!(
        logs.contains("fetch: ")
            && logs.contains("step-1 (run-cmd-1)")
            && logs.contains("publish-data"),
        "{logs}"
    );

    let fails = submitted(&app, &admin, "fails").await;
    assert_eq!(app.wait(&admin, &fails).await, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    let failed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe_workflow_name"] == fails.as_str())
        .unwrap()
        .clone();
    assert!(
        failed["message"].as_str().unwrap().contains("exit code 3"),
        "{failed}"
    );

    // Cancelled: the run ends and so does its Slurm job.
    let forever = submitted(&app, &admin, "forever").await;
    wait_running(&app, &admin, &forever).await;
    let cancelled = app
        .client
        .post(format!("{}/runs/{forever}/cancel", app.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let jobs = std::process::Command::new("squeue")
        .args([
            "--noheader",
            "--name",
            &forever,
            "--states",
            "PENDING,RUNNING",
        ])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    assert!(jobs.status.success(), "{jobs:?}");
    assert_eq!(
        String::from_utf8_lossy(&jobs.stdout).trim(),
        "",
        "the job still runs"
    );

    // A restart while a run runs: the next process answers for it and publishes it.
    let slow = submitted(&app, &admin, "slow").await;
    wait_running(&app, &admin, &slow).await;
    let dir = app.stop_keeping_dir().await;
    let app = start(dir, config, Overrides::default()).await;
    let admin = app.admin().await;
    assert_eq!(app.wait(&admin, &slow).await, "Succeeded");
    let (names, _) = zip_of(&app, &admin, &slow).await;
    assert_eq!(names, ["copy.csv"]);
    let (status, body) = app.get(&format!("/status/{seals}"), &admin).await;
    assert_eq!((status, &body["status"]), (200, &json!("Succeeded")));
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_recipes_run_as_job_arrays_one_task_per_partition() {
    let Some(conf) = infra::server(infra::SLURM_CONF) else {
        return;
    };
    let dir = app_dir();
    let mut config = slurm_config(dir.path(), &conf);
    config.max_parallel_limit = 2;
    let app = start(dir, config, Overrides::default()).await;
    let admin = app.admin().await;
    let urls = common::letter_inputs(5).await;
    app.recipe(
        "upper",
        &common::parallel_meta("Upper", &urls, 2, 4, "temporary"),
        "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n\
         cp \"$INPUT_FILE\" \"$OUTPUT_FILE\" && ls /input_dir | tr '\\n' ' ' > \"$OUTPUT_FILE.seen\"\n",
    );
    app.recipe(
        "picky",
        &common::parallel_meta("Picky", &urls, 2, 4, "temporary"),
        "test \"$(cat \"$INPUT_FILE\")\" != c && cp \"$INPUT_FILE\" \"$OUTPUT_FILE\"\n",
    );

    let upper = submitted(&app, &admin, "upper").await;
    assert_eq!(app.wait(&admin, &upper).await, "Succeeded");
    let files = app.zip_files(&admin, &upper).await;
    assert_eq!(files.len(), 10, "{files:?}");
    assert_eq!(files["c.txt"], "C\n");
    assert_eq!(files["b.txt.seen"], "a.txt b.txt ");
    assert_eq!(files["e.txt.seen"], "e.txt ");
    let logs = app.logs(&admin, &upper).await;
    assert!(
        logs.contains("3 partition(s), 2 at once")
            && logs.contains("partition-1 step-1 (run-cmd-1)")
            && logs.contains("file: e.txt")
            && logs.contains("publish-data"),
        "{logs}"
    );
    let work = app.dir.path().join("data/work").join(&upper);
    let manifest =
        std::fs::read_to_string(work.join("partition-manifests/inputs/partition-1.json")).unwrap();
    assert_eq!(manifest, r#"["c.txt","d.txt"]"#);
    assert!(
        !work.join("partition-0").exists(),
        "partitions removed once published"
    );

    let picky = submitted(&app, &admin, "picky").await;
    assert_eq!(app.wait(&admin, &picky).await, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    let failed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe_workflow_name"] == picky.as_str())
        .unwrap()
        .clone();
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("partition 1 exited with 1"),
        "{failed}"
    );
    app.running.stop().await.unwrap();
}
