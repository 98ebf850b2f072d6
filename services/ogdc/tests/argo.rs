//! The Argo provider against an Argo Server simulator written from Argo's published REST
//! API (`POST/GET/DELETE /api/v1/workflows/{namespace}[/{name}]`, `PUT …/stop`): phases,
//! nodes, output parameters and artifacts; the call order of §B10.6 and the documents of §B4.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Default)]
struct Sim {
    calls: Vec<(String, String, bool)>,
    workflows: BTreeMap<String, (Value, u32)>,
    bodies: Vec<Value>,
    published: bool,
    counter: u32,
}

type Shared = web::Data<Arc<Mutex<Sim>>>;

fn record(sim: &mut Sim, req: &HttpRequest) {
    sim.calls.push((
        req.method().to_string(),
        req.path().to_owned(),
        req.headers().contains_key("authorization"),
    ));
}

async fn create(req: HttpRequest, body: web::Json<Value>, sim: Shared) -> HttpResponse {
    let mut sim = sim.lock().unwrap();
    record(&mut sim, &req);
    sim.counter += 1;
    let mut wf = body["workflow"].clone();
    let name = format!(
        "{}{:05}",
        wf["metadata"]["generateName"].as_str().unwrap(),
        sim.counter
    );
    wf["metadata"]["name"] = json!(name);
    wf["status"] = json!({});
    sim.bodies.push(body.into_inner());
    sim.workflows.insert(name, (wf.clone(), 0));
    HttpResponse::Ok().json(wf)
}

async fn get(req: HttpRequest, path: web::Path<(String, String)>, sim: Shared) -> HttpResponse {
    let mut sim = sim.lock().unwrap();
    record(&mut sim, &req);
    let published = sim.published;
    let Some((wf, polls)) = sim.workflows.get_mut(&path.1) else {
        return HttpResponse::NotFound()
            .json(json!({"code": 5, "message": "workflows.argoproj.io not found"}));
    };
    *polls += 1;
    if wf["status"]["phase"] == "Failed" {
        return HttpResponse::Ok().json(wf.clone());
    }
    // Running at the first GET, Succeeded from the second on, with the nodes of its templates.
    if *polls < 2 {
        wf["status"] = json!({"phase": "Running"});
    } else {
        let mut nodes = serde_json::Map::new();
        for (i, t) in wf["spec"]["templates"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let template = t["name"].as_str().unwrap();
            let mut node = json!({"templateName": template, "phase": "Succeeded"});
            if template == "check-already-published" {
                node["outputs"] = json!({"parameters": [{"name": "data-published", "value": if published { "yes" } else { "no" }}]});
            }
            if let Some(artifact) = t["outputs"]["artifacts"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["name"] == "published_zip"))
            {
                let file = artifact["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                node["outputs"] = json!({"artifacts": [{"name": "published_zip", "s3": {"key": format!("{}/{file}", path.1)}}]});
            }
            nodes.insert(format!("{}-{i}", path.1), node);
        }
        wf["status"] = json!({"phase": "Succeeded", "nodes": nodes});
    }
    HttpResponse::Ok().json(wf.clone())
}

async fn delete(req: HttpRequest, path: web::Path<(String, String)>, sim: Shared) -> HttpResponse {
    let mut sim = sim.lock().unwrap();
    record(&mut sim, &req);
    match sim.workflows.remove(&path.1) {
        Some(_) => HttpResponse::Ok().json(json!({})),
        None => HttpResponse::NotFound().json(json!({"code": 5})),
    }
}

async fn stop(req: HttpRequest, path: web::Path<(String, String)>, sim: Shared) -> HttpResponse {
    let mut sim = sim.lock().unwrap();
    record(&mut sim, &req);
    match sim.workflows.get_mut(&path.1) {
        Some((wf, _)) => {
            wf["status"] = json!({"phase": "Failed", "message": "Stopped with strategy 'Stop'"});
            HttpResponse::Ok().json(wf.clone())
        }
        None => HttpResponse::NotFound().json(json!({"code": 5})),
    }
}

async fn simulator(published: bool) -> (String, Arc<Mutex<Sim>>) {
    let sim = Arc::new(Mutex::new(Sim {
        published,
        ..Sim::default()
    }));
    let data = web::Data::new(sim.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/v1/workflows/{ns}", web::post().to(create))
            .route("/api/v1/workflows/{ns}/{name}", web::get().to(get))
            .route("/api/v1/workflows/{ns}/{name}", web::delete().to(delete))
            .route("/api/v1/workflows/{ns}/{name}/stop", web::put().to(stop))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}"), sim)
}

async fn argo_app(url: String) -> common::App {
    common::spawn(move |config, _| {
        config.engine = ogdc::config::EngineKind::Argo;
        config.argo_workflows_service_url = url;
        config.argo_poll_interval_ms = 20;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pvc_recipe_is_checked_then_submitted_as_section_b4_says() {
    let (url, sim) = simulator(false).await;
    let app = argo_app(url).await;
    app.recipe(
        "seals",
        &common::meta("Seal Tags", "https://example.org/a.csv", "pvc"),
        "cp /input_dir/a.csv /output_dir/\n",
    );
    let admin = app.admin().await;
    let (status, body) = app.submit(&admin, "seals").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");

    {
        let sim = sim.lock().unwrap();
        let calls: Vec<(String, String)> = sim
            .calls
            .iter()
            .map(|(m, p, _)| (m.clone(), p.clone()))
            .collect();
        let check = "/api/v1/workflows/qgnet/seal-tags-check-published-00001";
        let shell = "/api/v1/workflows/qgnet/seal-tags-shell-00002";
        let expected_prefix = [
            ("POST", "/api/v1/workflows/qgnet"),
            ("GET", check),
            ("GET", check),
            ("GET", check),
            ("DELETE", check),
            ("POST", "/api/v1/workflows/qgnet"),
            ("GET", shell),
        ];
        for (i, (m, p)) in expected_prefix.iter().enumerate() {
            assert_eq!(
                (calls[i].0.as_str(), calls[i].1.as_str()),
                (*m, *p),
                "call {i}: {calls:?}"
            );
        }
        assert!(
            sim.calls.iter().all(|(_, _, auth)| !auth),
            "no Authorization header"
        );
        let doc = &sim.bodies[1];
        let recipe = ogdc::fetch::validate_local(&app.dir.path().join("recipes/seals")).unwrap();
        let settings = ogdc::engines::argo::ArgoSettings {
            service_account: "argo-workflow".into(),
            image_tag: "latest".into(),
            environment: "local".into(),
            pvc_name: "cephfs-qgnet-ogdc-workflow-pvc".into(),
            max_parallel: 5,
        };
        assert_eq!(doc, &settings.shell_workflow(&recipe));
        assert_eq!(sim.bodies[0], settings.check_published_workflow(&recipe));
    }
    let (status, body) = app.get(&format!("/output/{name}"), &admin).await;
    assert_eq!(status, 404, "{body}");
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn published_data_fail_the_run_and_temporary_outputs_are_presigned() {
    let (url, sim) = simulator(true).await;
    let app = argo_app(url).await;
    app.recipe(
        "p",
        &common::meta("pub", "https://example.org/a.csv", "pvc"),
        "ls\n",
    );
    app.recipe(
        "t",
        &common::meta("tmp", "https://example.org/a.csv", "temporary"),
        "ls\n",
    );
    let admin = app.admin().await;
    let (_, body) = app.submit(&admin, "p").await;
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Failed");
    let (_, runs) = app.get("/runs", &admin).await;
    assert_eq!(
        runs[0]["message"],
        "Data for recipe pub have already been published."
    );

    let (_, body) = app.submit(&admin, "t").await;
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    // The zip is not in our object store (the simulator runs nothing): 404 naming the key.
    let (status, body) = app.get(&format!("/output/{name}"), &admin).await;
    assert_eq!(status, 404);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/tmp.zip does not exist"),
        "{body}"
    );
    assert!(
        sim.lock()
            .unwrap()
            .calls
            .iter()
            .all(|(_, p, _)| !p.contains("tmp-check-published")),
        "no check for temporary output"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parallel_recipe_is_submitted_as_a_dag_and_its_zip_is_found() {
    let (url, sim) = simulator(false).await;
    let app = argo_app(url).await;
    let urls: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|c| format!("https://example.org/{c}.txt"))
        .collect();
    app.recipe(
        "par",
        &common::parallel_meta("Par", &urls, 2, 9, "temporary"),
        "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n",
    );
    let admin = app.admin().await;
    let (status, body) = app.submit(&admin, "par").await;
    assert_eq!(status, 200, "{body}");
    let name = body["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("par-shell-"), "{name}");
    assert_eq!(app.wait(&admin, &name).await, "Succeeded");
    {
        let sim = sim.lock().unwrap();
        // Temporary output: no publication check, the DAG is the only workflow.
        assert_eq!(sim.bodies.len(), 1);
        let spec = &sim.bodies[0]["workflow"]["spec"];
        assert_eq!(spec["parallelism"], 5, "OGDC_MAX_PARALLEL_LIMIT bounds it");
        let tasks = spec["templates"][0]["dag"]["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 3, "{tasks:?}");
        assert_eq!(
            tasks[1]["withParam"],
            r#"[{"partition_id":0},{"partition_id":1}]"#
        );
    }
    // The zip is not in our object store (the simulator runs nothing): 404 naming the key
    // the workflow's `published_zip` artifact gave.
    let (status, body) = app.get(&format!("/output/{name}"), &admin).await;
    assert_eq!(status, 404);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/par.zip does not exist"),
        "{body}"
    );
    app.running.stop().await.unwrap();
}
