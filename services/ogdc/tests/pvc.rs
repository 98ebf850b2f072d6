//! `pvc_mount` inputs on the local executor: the claim's files under `path` matching
//! `glob` at any depth are read in place (copied into the run, never written), the
//! workflow volume's claim and `OGDC_ALLOWED_INPUT_PVCS` only; sequential and parallel
//! recipes; a claim not allowed is refused at submission, a path without matches fails
//! the run with the original's words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, spawn};
use ogdc::config::AllowedPvc;

fn pvc_meta(name: &str, claim: &str, path: &str, glob: &str, parallel: &str) -> String {
    format!(
        "name: {name}\nworkflow:\n  type: shell\n  sh_file: recipe.sh\n{parallel}input:\n  params:\n    - type: pvc_mount\n      claim_name: {claim}\n      path: {path}\n      glob: \"{glob}\"\noutput:\n  type: temporary\n"
    )
}

/// An app allowing claim `arctic-dem` (`<dir>/pvcs/arctic-dem/tiles/v3/` holding `a.tif`,
/// `deep/b.tif`, `c.tif` and `notes.txt`) besides the workflow volume (`extra/d.tif`).
async fn app() -> App {
    let app = spawn(|config, dir| {
        config.allowed_input_pvcs = vec![
            AllowedPvc::Name("arctic-dem".into()),
            AllowedPvc::Claim {
                claim_name: "other".into(),
            },
        ];
        config.pvc_root = dir.join("pvcs").display().to_string();
    })
    .await;
    let tiles = app.dir.path().join("pvcs/arctic-dem/tiles/v3");
    std::fs::create_dir_all(tiles.join("deep")).unwrap();
    for (file, text) in [
        ("a.tif", "a\n"),
        ("deep/b.tif", "b\n"),
        ("c.tif", "c\n"),
        ("notes.txt", "n\n"),
    ] {
        std::fs::write(tiles.join(file), text).unwrap();
    }
    let extra = app.dir.path().join("data/volume/extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("d.tif"), "d\n").unwrap();
    app
}

async fn run(app: &App, token: &str, recipe: &str) -> (String, String) {
    let (status, body) = app.submit(token, recipe).await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    let phase = app.wait(token, &name).await;
    (name, phase)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claims_files_are_the_inputs_of_sequential_and_parallel_runs() {
    let app = app().await;
    let admin = app.admin().await;
    app.recipe(
        "seq",
        &pvc_meta("Seq", "arctic-dem", "/tiles/v3/", "*.tif", ""),
        "ls /input_dir > /output_dir/listing && cp /input_dir/b.tif /output_dir/\n",
    );
    let (name, phase) = run(&app, &admin, "seq").await;
    assert_eq!(phase, "Succeeded");
    let files = app.zip_files(&admin, &name).await;
    assert_eq!(files["listing"], "a.tif\nb.tif\nc.tif\n");
    assert_eq!(files["b.tif"], "b\n");

    app.recipe(
        "par",
        &pvc_meta(
            "Par",
            "arctic-dem",
            "tiles",
            "*.tif",
            "  parallel:\n    enabled: true\n    partition_size: 2\n",
        ),
        "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n",
    );
    let (name, phase) = run(&app, &admin, "par").await;
    assert_eq!(phase, "Succeeded");
    let files = app.zip_files(&admin, &name).await;
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["a.tif", "b.tif", "c.tif"]);
    assert_eq!(files["b.tif"], "B\n");
    assert!(app.logs(&admin, &name).await.contains("2 partition(s)"));
    // Read, never written.
    let original = app.dir.path().join("pvcs/arctic-dem/tiles/v3/a.tif");
    assert_eq!(std::fs::read_to_string(original).unwrap(), "a\n");

    // The workflow volume's own claim is always allowed.
    app.recipe(
        "own",
        &pvc_meta("Own", "cephfs-qgnet-ogdc-workflow-pvc", "extra", "*", ""),
        "cp /input_dir/d.tif /output_dir/\n",
    );
    let (name, phase) = run(&app, &admin, "own").await;
    assert_eq!(phase, "Succeeded");
    assert_eq!(app.zip_files(&admin, &name).await["d.tif"], "d\n");
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_not_allowed_are_refused_and_empty_matches_fail_the_run() {
    let app = app().await;
    let admin = app.admin().await;
    app.recipe(
        "secret",
        &pvc_meta("Secret", "secret-claim", "/", "*", ""),
        "ls\n",
    );
    let (status, body) = app.submit(&admin, "secret").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["detail"],
        "Failed to submit recipe with error: Invalid meta.yml: pvc_mount claim \"secret-claim\" is not allowed: only the workflow volume and OGDC_ALLOWED_INPUT_PVCS."
    );
    app.recipe(
        "mixed",
        &pvc_meta("Mixed", "arctic-dem", "/", "*", "").replace(
            "    - type: pvc_mount\n",
            "    - type: url\n      value: https://example.org/a.csv\n    - type: pvc_mount\n",
        ),
        "ls\n",
    );
    let (status, body) = app.submit(&admin, "mixed").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("cannot be mixed"),
        "{body}"
    );

    app.recipe(
        "empty",
        &pvc_meta("Empty", "arctic-dem", "tiles", "*.png", ""),
        "ls\n",
    );
    let (_, phase) = run(&app, &admin, "empty").await;
    assert_eq!(phase, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    let message = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe_id"] == "empty")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        message,
        "No files found for PVC input path=/mnt/data/arctic-dem/tiles glob=*.png"
    );
    // An allowed claim the machine does not hold: the path is not a directory.
    app.recipe("gone", &pvc_meta("Gone", "other", "x", "*", ""), "ls\n");
    let (_, phase) = run(&app, &admin, "gone").await;
    assert_eq!(phase, "Failed");
    app.running.stop().await.unwrap();
}
