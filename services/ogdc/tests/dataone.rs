//! DataONE inputs against a local member node: the dataset's resource map names its
//! objects, `filename` picks one by its system metadata, and the executor fetches the
//! objects (named by the node's `Content-Disposition`); unknown datasets and file names are
//! refused at submission.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{http_server, spawn};
use serde_json::json;

const MAP_ID: &str = "resource_map_urn:uuid:seals";

/// A member node with one dataset: its science metadata and one data file.
async fn member_node() -> String {
    let map = r#"<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:ore="http://www.openarchives.org/ore/terms/">
  <rdf:Description rdf:about="https://cn.dataone.org/cn/v2/resolve/resource_map_urn%3Auuid%3Aseals#aggregation">
    <ore:aggregates rdf:resource="https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Aeml"/>
    <ore:aggregates rdf:resource="https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Adata"/>
  </rdf:Description>
</rdf:RDF>"#;
    let meta = |name: &str| {
        format!(
            "<d1:systemMetadata xmlns:d1=\"http://ns.dataone.org/service/types/v2.0\">\
             <fileName>{name}</fileName></d1:systemMetadata>"
        )
    };
    let attachment =
        |name: &str| format!("Content-Disposition: attachment; filename=\"{name}\"\r\n");
    http_server(vec![
        (
            format!("/v2/object/{MAP_ID}"),
            String::new(),
            map.to_owned(),
        ),
        (
            "/v2/meta/urn%3Auuid%3Aeml".into(),
            String::new(),
            meta("metadata.xml"),
        ),
        (
            "/v2/meta/urn%3Auuid%3Adata".into(),
            String::new(),
            meta("seals.csv"),
        ),
        (
            "/v2/object/urn%3Auuid%3Aeml".into(),
            attachment("metadata.xml"),
            "<eml/>".into(),
        ),
        (
            "/v2/object/urn%3Auuid%3Adata".into(),
            attachment("seals.csv"),
            "a,b\n1,2\n".into(),
        ),
    ])
    .await
}

fn meta(name: &str, input: &str) -> String {
    format!(
        "name: {name}\nworkflow:\n  type: shell\n  sh_file: recipe.sh\ninput:\n  params:\n    - type: dataone\n      dataset_identifier: {MAP_ID}\n{input}output:\n  type: pvc\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dataone_inputs_resolve_to_the_datasets_objects() {
    let node = member_node().await;
    let app = spawn(move |config, _| config.dataone_node_url = node).await;
    let admin = app.admin().await;
    let listing = "ls /input_dir > /output_dir/inputs.txt\n";

    app.recipe(
        "one",
        &meta("One File", "      filename: seals.csv\n"),
        listing,
    );
    let (status, body) = app.submit(&admin, "one").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    let listed =
        std::fs::read_to_string(app.dir.path().join("data/volume/one-file/inputs.txt")).unwrap();
    assert_eq!(listed, "seals.csv\n");

    app.recipe("all", &meta("All Files", ""), listing);
    let (status, body) = app.submit(&admin, "all").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    let listed =
        std::fs::read_to_string(app.dir.path().join("data/volume/all-files/inputs.txt")).unwrap();
    assert_eq!(listed, "metadata.xml\nseals.csv\n");

    app.recipe(
        "missing",
        &meta("Missing", "      filename: walrus.csv\n"),
        listing,
    );
    let (status, body) = app.submit(&admin, "missing").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"detail": format!("Failed to submit recipe with error: Invalid meta.yml: \
                DataONE dataset {MAP_ID} has no file named walrus.csv.")})
        )
    );
    let unknown = meta("Unknown", "").replace(MAP_ID, "resource_map_urn:uuid:nope");
    app.recipe("unknown", &unknown, listing);
    let (status, body) = app.submit(&admin, "unknown").await;
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail
            .contains("DataONE dataset resource_map_urn:uuid:nope not found at http://127.0.0.1:"),
        "{detail}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dataone_inputs_need_a_member_node() {
    let app = spawn(|config, _| config.dataone_node_url = String::new()).await;
    let admin = app.admin().await;
    app.recipe("one", &meta("One File", ""), "ls /input_dir\n");
    let (status, body) = app.submit(&admin, "one").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"detail": "Failed to submit recipe with error: Invalid meta.yml: dataone inputs \
                need a DataONE member node (DATAONE_NODE_URL)."})
        )
    );
    let (_, runs) = app.get("/runs", &admin).await;
    assert_eq!(runs, json!([]), "nothing stored for a refused submission");
    app.running.stop().await.unwrap();
}
