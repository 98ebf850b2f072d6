//! The original client, `ogdc-runner` 0.3.0 from PyPI, drives our service:
//! `create-user`, `submit`, `submit --wait`, `check-workflow-status`, `get-output`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::Command;

use serde_json::Value;
use tessera_test_support::interop::{Oracle, python};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/interop/ogdc_cli.py"
);

fn cli(url: &str, user: &str, password: &str, args: &[&str]) -> (i64, String) {
    let out = Command::new(python())
        .arg(SCRIPT)
        .arg("run")
        .args(args)
        .env("OGDC_API_URL", url)
        .env("OGDC_API_USERNAME", user)
        .env("OGDC_API_PASSWORD", password)
        .env_remove("ENVIRONMENT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        value["exit"].as_i64().unwrap(),
        value["output"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ogdc_runner_0_3_0_drives_the_service() {
    if !Oracle::new("ogdc_cli.py").available("ogdc_runner_0_3_0_drives_the_service") {
        return;
    }
    let app = common::spawn(|_, _| {}).await;
    let input = common::input_server("tags.csv", "id,tag\n1,a\n2,b\n3,c\n").await;
    app.recipe(
        "seal-tags",
        &common::meta("Seal Tags", &input, "temporary"),
        "sort -r /input_dir/tags.csv > /output_dir/sorted.csv\ncp /input_dir/sorted.csv /output_dir/ && wc -l /input_dir/sorted.csv > /output_dir/count.txt\n",
    );
    let url = app.url.clone();
    let run = move |user: &'static str, password: &'static str, args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&url, user, password, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (code, out) = run(
        "admin",
        common::ADMIN_PASSWORD,
        args(&["create-user", "alice", "alice-pw"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (code, out.trim()),
        (0, "User with username \"alice\" created.")
    );
    let (code, out) = run("alice", "alice-pw", args(&["create-user", "bob", "pw"]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(
        out.contains("API Error with status code 401")
            && out.contains("Access token must belong to admin."),
        "{out}"
    );

    let (code, out) = run("alice", "alice-pw", args(&["submit", "seal-tags"]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    let name = out
        .trim()
        .strip_prefix("Successfully submitted recipe with recipe_workflow_name='")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();

    let (code, out) = run(
        "alice",
        "alice-pw",
        args(&["submit", "--wait", "seal-tags"]),
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Waiting for completion...") && out.contains(": Succeeded"),
        "{out}"
    );

    assert_eq!(
        app.wait(&app.token("alice", "alice-pw").await, &name).await,
        "Succeeded"
    );
    let (code, out) = run("alice", "alice-pw", args(&["check-workflow-status", &name]))
        .await
        .unwrap();
    assert_eq!(
        (code, out.trim().to_owned()),
        (0, format!("Workflow {name} has status Succeeded."))
    );

    let target = app.dir.path().join("download");
    std::fs::create_dir(&target).unwrap();
    let (code, out) = run(
        "alice",
        "alice-pw",
        args(&[
            "get-output",
            &name,
            "--output-dir",
            target.to_str().unwrap(),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let zip_path = target.join("seal-tags.zip");
    assert_eq!(out.trim(), format!("Wrote {}", zip_path.display()));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut sorted = String::new();
    archive
        .by_name("sorted.csv")
        .unwrap()
        .read_to_string(&mut sorted)
        .unwrap();
    assert_eq!(sorted, "id,tag\n3,c\n2,b\n1,a\n");
    let mut count = String::new();
    archive
        .by_name("count.txt")
        .unwrap()
        .read_to_string(&mut count)
        .unwrap();
    assert!(count.starts_with("4 "), "{count}");

    let (code, out) = run(
        "alice",
        "alice-pw",
        args(&["check-workflow-status", "nope"]),
    )
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(out.contains("API Error with status code 404"), "{out}");
    app.running.stop().await.unwrap();
}
