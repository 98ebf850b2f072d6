//! Runs that a stop cut off between their submission and their start (stored `Pending`,
//! no engine handle) are started again by the next process, once they are older than the
//! grace that keeps other live processes' starts apart; a recipe that no longer loads ends
//! its run in `Error`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{app_dir, config, input_server, meta, start};
use ogdc::Overrides;
use tessera_embedded::EmbeddedStore;
use tessera_kit::dao::JsonDao;
use tessera_recipes::runs::{Phase, Run, run_spec};

fn orphan(name: &str, recipe_path: &str, age: Duration) -> Run {
    let when = Utc::now() - age;
    Run {
        name: name.into(),
        owner: "admin".into(),
        recipe_id: "seal-tags".into(),
        recipe_path: recipe_path.into(),
        phase: Phase::Pending,
        message: None,
        engine_ref: None,
        output: None,
        created: when,
        updated: when,
        overwrite: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_cut_off_before_their_start_are_started_by_the_next_process() {
    let dir = app_dir();
    let config = config(dir.path());
    let input = input_server("seals.csv", "a,b\n1,2\n").await;
    let recipe = dir.path().join("recipes/seals");
    std::fs::create_dir_all(&recipe).unwrap();
    std::fs::write(
        recipe.join("meta.yml"),
        meta("Seal Tags", &input, "temporary"),
    )
    .unwrap();
    std::fs::write(
        recipe.join("recipe.sh"),
        "cp /input_dir/seals.csv /output_dir/copy.csv\n",
    )
    .unwrap();

    // What the stopped process left in the store.
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = EmbeddedStore::open(&config.embedded().embedded_db_path).unwrap();
    let runs = JsonDao::<Run>::open(&store, run_spec("ogdc_runs"))
        .await
        .unwrap();
    let old = Duration::minutes(10);
    runs.insert(&orphan("seal-tags-shell-aaaaa", "seals", old))
        .await
        .unwrap();
    runs.insert(&orphan("seal-tags-shell-bbbbb", "gone", old))
        .await
        .unwrap();
    // Young: another process may still be starting it.
    runs.insert(&orphan(
        "seal-tags-shell-ccccc",
        "seals",
        Duration::seconds(5),
    ))
    .await
    .unwrap();

    let app = start(
        dir,
        config,
        Overrides {
            store: Some(store),
            ..Overrides::default()
        },
    )
    .await;
    let admin = app.admin().await;
    assert_eq!(app.wait(&admin, "seal-tags-shell-aaaaa").await, "Succeeded");
    assert_eq!(app.wait(&admin, "seal-tags-shell-bbbbb").await, "Error");
    let (_, gone) = app.get("/runs", &admin).await;
    let gone = gone
        .as_array()
        .and_then(|runs| {
            runs.iter()
                .find(|r| r["recipe_workflow_name"] == "seal-tags-shell-bbbbb")
        })
        .cloned()
        .unwrap_or_else(|| panic!("{gone}"));
    assert!(
        gone.to_string()
            .contains("the recipe could not be loaded again after a restart"),
        "{gone}"
    );
    let (status, young) = app.get("/status/seal-tags-shell-ccccc", &admin).await;
    assert_eq!(
        (status, &young["status"]),
        (200, &serde_json::json!("Pending"))
    );
}
