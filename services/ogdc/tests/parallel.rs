//! Parallel (partitioned) recipes on the local executor, as the original runs them: the
//! inputs split into partitions of `partition_size` files, each command run once per file
//! with `$INPUT_FILE`/`$OUTPUT_FILE` (the next command reading the previous one's output in
//! the same partition), the partitions' last outputs merged and published; a failing file
//! fails the run and names its partition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{letter_inputs, parallel_meta, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn partitions_run_each_command_per_file_and_their_outputs_are_merged() {
    let app = spawn(|config, _| config.max_parallel_limit = 2).await;
    let urls = letter_inputs(5).await;
    app.recipe(
        "upper",
        &parallel_meta("Upper", &urls, 2, 3, "temporary"),
        "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n\
         # the second command reads the first one's output of the same partition\n\
         cp \"$INPUT_FILE\" /output_dir/ && ls /input_dir | tr '\\n' ' ' > \"$OUTPUT_FILE.seen\" # and a comment\n",
    );
    let admin = app.admin().await;
    let (status, body) = app.submit(&admin, "upper").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");

    let files = app.zip_files(&admin, &name).await;
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "a.txt",
            "a.txt.seen",
            "b.txt",
            "b.txt.seen",
            "c.txt",
            "c.txt.seen",
            "d.txt",
            "d.txt.seen",
            "e.txt",
            "e.txt.seen"
        ]
    );
    for c in ['a', 'b', 'c', 'd', 'e'] {
        assert_eq!(
            files[&format!("{c}.txt")],
            format!("{}\n", c.to_ascii_uppercase())
        );
    }
    // Each partition sees its own files only: [a, b], [c, d], [e].
    assert_eq!(files["a.txt.seen"], "a.txt b.txt ");
    assert_eq!(files["d.txt.seen"], "c.txt d.txt ");
    assert_eq!(files["e.txt.seen"], "e.txt ");
    let logs = app.logs(&admin, &name).await;
    assert!(logs.contains("3 partition(s), 2 at once"), "{logs}");
    assert!(
        logs.contains("partition-2 step-1 (run-cmd-1)") && logs.contains("file: e.txt"),
        "{logs}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_file_fails_the_run_and_names_its_partition() {
    let app = spawn(|_, _| {}).await;
    let urls = letter_inputs(4).await;
    app.recipe(
        "picky",
        &parallel_meta("Picky", &urls, 2, 5, "pvc"),
        "test \"$(cat \"$INPUT_FILE\")\" != d && cp \"$INPUT_FILE\" \"$OUTPUT_FILE\"\n",
    );
    let admin = app.admin().await;
    let (status, body) = app.submit(&admin, "picky").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    let message = runs[0]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("partition-1 step-0 (run-cmd-0) exited with"),
        "{message}"
    );
    // Nothing published: the publication check still finds no data.
    assert!(!app.dir.path().join("data/volume/picky").exists());
    app.running.stop().await.unwrap();
}
