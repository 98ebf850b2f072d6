//! The package routes on the real app (embedded store, local object store, the loader and
//! relay parts running): login token → permission token → authorize → upload → load →
//! status → search → publish → delete, and every route's error cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use conductor::{ConductorConfig, Overrides, prepare};
use serde_json::{Value, json};
use tessera_service::{Parts, Running};

struct App {
    url: String,
    identity: std::sync::Arc<tessera_conductor::Identity>,
    http: reqwest::Client,
    store: tessera_embedded::EmbeddedStore,
    _running: Running<conductor::Core>,
    _dir: tempfile::TempDir,
}

async fn spawn() -> App {
    spawn_with(|_| {}).await
}

async fn spawn_with(tweak: impl FnOnce(&mut ConductorConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), common::free_port());
    config.pipeline_urls = vec!["http://127.0.0.1:9/pipeline".into()];
    config.load_poll_seconds = 1;
    tweak(&mut config);
    let store = tessera_embedded::EmbeddedStore::open(&config.embedded.embedded_db_path).unwrap();
    let core = prepare(
        config,
        Overrides {
            store: Some(store.clone()),
            ..Overrides::default()
        },
    )
    .await
    .unwrap();
    let identity = core.identity.clone();
    let running = tessera_service::start(core, Parts::ALL).await.unwrap();
    App {
        url: running.url().unwrap(),
        identity,
        http: reqwest::Client::new(),
        store,
        _running: running,
        _dir: dir,
    }
}

impl App {
    /// A signed-in user: (userid, user token, permission token).
    async fn user(&self, email: &str) -> (String, String, String) {
        let (user, token) = common::sign_in(&self.identity, email).await;
        let (status, body) = self
            .get(&format!("/user/authorize?jwt={token}&service=os.datastore"))
            .await;
        assert_eq!(status, 200);
        (
            user.idhash,
            token,
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST /package/update_params?id=&jwt=` with `body`.
    async fn update_params(&self, id: &str, jwt: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/package/update_params", self.url))
            .query(&[("id", id), ("jwt", jwt)])
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Uploads the files of a package through `/datastore/authorize` and the presigned
    /// URLs; the URL of its `datapackage.json`.
    async fn upload_files(
        &self,
        owner: &str,
        permission: &str,
        name: &str,
        files: &[(&str, &[u8])],
    ) -> String {
        let filedata: serde_json::Map<String, Value> = files
            .iter()
            .map(|(path, data)| {
                (
                    (*path).to_owned(),
                    json!({"length": data.len(), "md5": common::md5_b64(data), "name": path, "type": "text/csv"}),
                )
            })
            .collect();
        let body = json!({"metadata": {"owner": owner, "name": name}, "filedata": filedata});
        let r = self
            .http
            .post(format!("{}/datastore/authorize", self.url))
            .header("Auth-Token", permission)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        let mut descriptor_url = String::new();
        for (path, data) in files {
            let file = &answer["filedata"][*path];
            let url = file["upload_url"].as_str().unwrap().to_owned();
            let query: Vec<(String, String)> = file["upload_query"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v[0].as_str().unwrap().to_owned()))
                .collect();
            let mut put = self.http.put(&url).query(&query).body(data.to_vec());
            for (k, v) in file["upload_headers"].as_object().unwrap() {
                if k != "Content-Length" {
                    put = put.header(k, v.as_str().unwrap());
                }
            }
            let r = put.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            if *path == "datapackage.json" {
                descriptor_url = url;
            }
        }
        descriptor_url
    }

    async fn wait_done(&self, url: &str) -> Value {
        for _ in 0..200 {
            let (status, body) = self
                .get(&format!("/package/status?datapackage={url}"))
                .await;
            assert_eq!(status, 200, "{body}");
            if body["status"] == "done" || body["status"] == "fail" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the load of {url} did not finish");
    }
}

const CSV: &[u8] = b"year,country,amount\n2020,DE,10.5\n2021,DE,20\n2022,FR,30\n";

fn descriptor(name: &str, title: &str) -> Vec<u8> {
    json!({
        "name": name, "title": title, "author": "Ada Lovelace <ada@example.org>", "countryCode": "DE",
        "resources": [{"name": "budget", "path": "data/budget.csv", "schema": {"fields": [
            {"name": "year", "type": "year", "columnType": "date:fiscal-year"},
            {"name": "country", "type": "string", "columnType": "geo:country:code", "constraints": {"pattern": "[A-Z]{2}"}},
            {"name": "amount", "type": "number", "columnType": "value", "constraints": {"required": true}}
        ]}}]
    })
    .to_string()
    .into_bytes()
}

/// A pipeline that takes one request and answers `accepted`; the request it got.
async fn fake_pipeline() -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&request).ends_with("--\r\n") {
            let n = socket.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&chunk[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\naccepted")
            .await
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

#[tokio::test]
async fn the_whole_flow_from_login_to_delete() {
    let (pipeline, received) = fake_pipeline().await;
    let app = spawn_with(|c| c.pipeline_urls = vec![pipeline.clone()]).await;
    let prefix = flow(&app, Some(&pipeline)).await;
    // purge=true removed the package's objects (the original and final/).
    let objects = app._dir.path().join("objects/data").join(&prefix);
    assert!(!objects.join("datapackage.json").exists());
    assert!(!objects.join("final/datapackage.json").exists());
    assert!(!objects.join("data/budget.csv").exists());
    let request = received.await.unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    assert!(
        request.contains("name=\"input\"; filename=\"package-url.jsonld\""),
        "{request}"
    );
    assert!(
        request.contains("\"@vocab\":\"http://schema.org/\""),
        "{request}"
    );
}

/// The same on MongoDB, Kafka and S3 (moto).
#[tokio::test]
async fn the_whole_flow_on_mongodb_kafka_and_s3() {
    use tessera_test_support::infra;
    let (Some(mongo), Some(kafka), Some(s3)) = (
        infra::server(infra::MONGO_URL),
        infra::server(infra::KAFKA_SERVERS),
        infra::server(infra::S3_URL),
    ) else {
        return;
    };
    let s3 = reqwest::Url::parse(&s3).unwrap();
    let app = spawn_with(|c| {
        c.mongo.mongo_dsn = mongo.as_str().into();
        c.mongo.db_name = format!("conductor_flow_{}", std::process::id());
        c.kafka.kafka_servers = vec![kafka.clone()];
        c.package_events_topic = format!("conductor-flow-{}", std::process::id());
        c.access_key_id = "moto".into();
        c.secret_access_key = "moto".into();
        c.s3_hostname = s3.host_str().unwrap().to_owned();
        c.s3_port = s3.port();
        c.storage_bucket_name =
            std::env::var(infra::S3_BUCKET).unwrap_or_else(|_| "tessera-test".into());
        c.use_fake_s3 = "1".into();
    })
    .await;
    flow(&app, None).await;
}

/// The flow; with a pipeline, run-hooks posts to it, and the events are checked.
async fn flow(app: &App, pipeline: Option<&str>) -> String {
    let dataset = format!("berlin-budget-{}", std::process::id());
    let (alice, alice_user, alice_perm) = app.user("alice@example.test").await;
    let (_bob, bob_user, bob_perm) = app.user("bob@example.test").await;
    let desc = descriptor(&dataset, "Berlin budget");
    let url = app
        .upload_files(
            &alice,
            &alice_perm,
            &dataset,
            &[("datapackage.json", &desc), ("data/budget.csv", CSV)],
        )
        .await;

    let (status, body) = app
        .post(
            "/package/upload",
            &[("jwt", &alice_perm), ("datapackage", &url)],
        )
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"progress": 0.0, "status": "queued"}))
    );
    let done = app.wait_done(&url).await;
    assert_eq!(done, json!({"status": "done", "progress": 1.0}));

    // The record: private, author masked, rows counted, model from the column types.
    let id = format!("{alice}:{dataset}");
    let (_, found) = app.get(&format!("/search/package?jwt={alice_user}")).await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    let record = &found[0];
    assert_eq!(record["id"], json!(id));
    assert_eq!(record["package"]["private"], json!(true));
    assert_eq!(record["package"]["owner"], json!(alice));
    assert_eq!(
        record["package"]["author"],
        json!("Ada Lovelace <ada@not.shown>")
    );
    assert_eq!(record["package"]["count_of_rows"], json!(3));
    assert_eq!(record["loaded"], json!(true));
    assert_eq!(record["origin_url"], json!(url));
    assert!(record["model"]["measures"]["amount"].is_object());
    assert!(record["model"]["dimensions"]["geo"]["attributes"]["country"].is_object());
    // The final package was written back.

    // Private: not for anonymous users nor for bob.
    assert_eq!(app.get("/search/package").await.1, json!([]));
    assert_eq!(
        app.get(&format!("/search/package?jwt={bob_user}")).await.1,
        json!([])
    );
    assert_eq!(
        app.get(&format!("/search/package?jwt={alice_user}&q=%22berlin%22"))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get(&format!("/search/package?jwt={alice_user}&q=%22paris%22"))
            .await
            .1,
        json!([])
    );

    // Publish: bob may not, alice may; then everybody finds it.
    let (status, body) = app
        .post(
            "/package/publish",
            &[("jwt", &bob_perm), ("id", &id), ("publish", "true")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["success"], json!(false));
    let (status, body) = app
        .post(
            "/package/publish",
            &[("jwt", &alice_perm), ("id", &id), ("publish", "TRUE")],
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"success": true, "published": true}))
    );
    let (_, anyone) = app.get("/search/package?q=%22budget%22").await;
    assert_eq!(anyone.as_array().unwrap().len(), 1);
    let (_, filtered) = app
        .get("/search/package?package.countryCode=%22DE%22")
        .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    let (_, filtered) = app
        .get("/search/package?package.countryCode=%22FR%22")
        .await;
    assert_eq!(filtered, json!([]));
    let (status, stats) = app.get("/package/stats").await;
    assert_eq!(
        (status, stats),
        (
            200,
            json!({"num_packages": 1, "num_records": 3, "num_countries": 1})
        )
    );

    // update_params: owner only, string params required.
    let (_, r) = app
        .update_params(&id, &alice_perm, r#"{"params": "a=1"}"#)
        .await;
    assert_eq!(r, json!({"success": true}));
    let r = app
        .update_params(&id, &alice_perm, r#"{"params": 1}"#)
        .await;
    assert_eq!(
        r,
        (
            400,
            json!({"detail": "No 'params' key or bad params value."})
        )
    );
    let (status, _) = app
        .update_params(&id, &bob_perm, r#"{"params": "x"}"#)
        .await;
    assert_eq!(status, 403);
    let (_, found) = app.get("/search/package").await;
    assert_eq!(
        found[0]["package"]["defaultParams"],
        json!({"params": "a=1"})
    );

    // Run hooks: the owner posts the package's URL to a configured pipeline.
    if let Some(pipeline) = pipeline {
        let (status, _) = app
            .post(
                "/package/run-hooks",
                &[("jwt", &bob_perm), ("id", &id), ("pipeline", pipeline)],
            )
            .await;
        assert_eq!(status, 403);
        let (status, body) = app
            .post(
                "/package/run-hooks",
                &[("jwt", &alice_perm), ("id", &id), ("pipeline", pipeline)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], json!(true));
        assert_eq!(body["response"], json!("accepted"));
        assert_eq!(body["payload"]["url"], json!(url));
    }

    // Delete: bob may not; alice deletes with purge; gone from search and storage.
    let (status, _) = app
        .post("/package/delete", &[("jwt", &bob_perm), ("id", &id)])
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            "/package/delete",
            &[("jwt", &alice_perm), ("id", &id), ("purge", "true")],
        )
        .await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(
        app.get(&format!("/search/package?jwt={alice_user}"))
            .await
            .1,
        json!([])
    );
    let (status, body) = app
        .post("/package/delete", &[("jwt", &alice_perm), ("id", &id)])
        .await;
    assert_eq!((status, body), (200, json!({"success": false})));
    let (_, stats) = app.get("/package/stats").await;
    assert_eq!(stats["num_packages"], json!(0));

    let Some(_) = pipeline else {
        return format!("{alice}/{dataset}");
    };
    // The events went out through the outbox, in order.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = app
            .store
            .event_log()
            .tail(&["os-conductor-packages".try_into().unwrap()], 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.unwrap().event_type.to_string())
            .collect::<Vec<_>>();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        ["package_loaded", "package_published", "package_deleted"]
    );
    format!("{alice}/{dataset}")
}

#[tokio::test]
async fn a_failed_load_says_where_and_indexes_nothing() {
    let app = spawn().await;
    let (alice, alice_user, alice_perm) = app.user("alice@example.test").await;
    let desc = descriptor("bad-rows", "Bad rows");
    let url = app
        .upload_files(
            &alice,
            &alice_perm,
            "bad-rows",
            &[
                ("datapackage.json", &desc),
                (
                    "data/budget.csv",
                    b"year,country,amount\n2020,DE,1\n2021,DEU,2\n",
                ),
            ],
        )
        .await;
    let (status, _) = app
        .post(
            "/package/upload",
            &[("jwt", &alice_perm), ("datapackage", &url)],
        )
        .await;
    assert_eq!(status, 200);
    let done = app.wait_done(&url).await;
    assert_eq!(done["status"], json!("fail"));
    assert_eq!(
        done["error"],
        json!("resource \"budget\": row 3 field \"country\": \"DEU\" does not match the pattern")
    );
    assert_eq!(
        app.get(&format!("/search/package?jwt={alice_user}"))
            .await
            .1,
        json!([])
    );

    // A missing file.
    let desc = descriptor("no-data", "No data");
    let url = app
        .upload_files(
            &alice,
            &alice_perm,
            "no-data",
            &[("datapackage.json", &desc)],
        )
        .await;
    app.post(
        "/package/upload",
        &[("jwt", &alice_perm), ("datapackage", &url)],
    )
    .await;
    let done = app.wait_done(&url).await;
    assert_eq!(done["status"], json!("fail"));
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("data/budget.csv is missing"),
        "{done}"
    );
}

#[tokio::test]
async fn upload_and_status_refuse_what_they_must() {
    let app = spawn().await;
    let (alice, _alice_user, alice_perm) = app.user("alice@example.test").await;
    let (_bob, bob_user, bob_perm) = app.user("bob@example.test").await;
    let url = format!("{}/objects/{alice}/x/datapackage.json", app.url);
    // No URL: 400; no token: 403; a bad token: the original's failure body.
    assert_eq!(
        app.post("/package/upload", &[("jwt", &alice_perm)]).await.0,
        400
    );
    assert_eq!(
        app.post("/package/upload", &[("datapackage", &url)])
            .await
            .0,
        403
    );
    let (status, body) = app
        .post("/package/upload", &[("jwt", "nope"), ("datapackage", &url)])
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "fail", "error": "unauthorized"}))
    );
    // A user token is not a permission token.
    let (_, body) = app
        .post(
            "/package/upload",
            &[("jwt", &bob_user), ("datapackage", &url)],
        )
        .await;
    assert_eq!(body["error"], json!("unauthorized"));
    // No SSRF: only URLs under the datastore.
    for foreign in [
        "http://169.254.169.254/latest/meta-data/datapackage.json".to_owned(),
        format!("{}/objects/../{alice}/x/datapackage.json", app.url),
        format!("{}/objects/{alice}/x/data.csv", app.url),
        format!("{}/objectsX/{alice}/x/datapackage.json", app.url),
    ] {
        let (status, body) = app
            .post(
                "/package/upload",
                &[("jwt", &alice_perm), ("datapackage", &foreign)],
            )
            .await;
        assert_eq!(status, 400, "{foreign}");
        assert_eq!(body["status"], json!("fail"));
        assert_eq!(
            app.get(&format!("/package/status?datapackage={foreign}"))
                .await
                .0,
            404
        );
    }
    // Another user's package.
    let (status, body) = app
        .post(
            "/package/upload",
            &[("jwt", &bob_perm), ("datapackage", &url)],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["status"], json!("fail"));
    // Status: no URL 400, unknown 404.
    assert_eq!(app.get("/package/status").await.0, 400);
    let (status, body) = app.get("/package/status?datapackage=http://x/y").await;
    assert_eq!(status, 404);
    assert!(body["detail"].is_string());
    // Two uploads of one URL: one job, never two loads at once.
    let (s1, b1) = app
        .post(
            "/package/upload",
            &[("jwt", &alice_perm), ("datapackage", &url)],
        )
        .await;
    let (s2, b2) = app
        .post(
            "/package/upload",
            &[("jwt", &alice_perm), ("datapackage", &url)],
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert!(b1["status"] == "queued");
    assert!(
        ["queued", "loading-data", "fail"].contains(&b2["status"].as_str().unwrap()),
        "{b2}"
    );
    let done = app.wait_done(&url).await;
    assert_eq!(done["status"], json!("fail"));
}

/// A route, its query parameters, and the status it must answer.
type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);

#[tokio::test]
async fn publish_delete_hooks_and_search_refuse_what_they_must() {
    let app = spawn().await;
    let (alice, _user, perm) = app.user("alice@example.test").await;
    let id = format!("{alice}:nothing");
    // Status-only refusals: no jwt 403, a bad value or a missing parameter 400.
    let statuses: [Refusal; 5] = [
        (
            "/package/publish",
            vec![("id", &id), ("publish", "true")],
            403,
        ),
        (
            "/package/publish",
            vec![("jwt", &perm), ("id", &id), ("publish", "maybe")],
            400,
        ),
        (
            "/package/publish",
            vec![("jwt", &perm), ("publish", "true")],
            400,
        ),
        (
            "/package/delete",
            vec![("jwt", &perm), ("id", &id), ("purge", "x")],
            400,
        ),
        ("/package/run-hooks", vec![("jwt", &perm), ("id", &id)], 400),
    ];
    for (path, form, want) in &statuses {
        assert_eq!(app.post(path, form).await.0, *want, "{path} {form:?}");
    }
    // A bad token: null, as the original.
    for (path, form) in [
        (
            "/package/publish",
            [("jwt", "bad"), ("id", id.as_str()), ("publish", "true")].as_slice(),
        ),
        (
            "/package/delete",
            [("jwt", "bad"), ("id", id.as_str())].as_slice(),
        ),
    ] {
        assert_eq!(app.post(path, form).await, (200, Value::Null), "{path}");
    }
    assert_eq!(
        app.post(
            "/package/publish",
            &[("jwt", &perm), ("id", &id), ("publish", "true")]
        )
        .await,
        (
            200,
            json!({"success": false, "error": format!("Failed to locate package {id}")})
        )
    );
    // Run hooks: only configured pipelines; unknown package 404.
    let (status, body) = app
        .post(
            "/package/run-hooks",
            &[
                ("jwt", &perm),
                ("id", &id),
                ("pipeline", "http://169.254.169.254/"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not a configured pipeline")
    );
    let (status, _) = app
        .post(
            "/package/run-hooks",
            &[
                ("jwt", &perm),
                ("id", &id),
                ("pipeline", "http://127.0.0.1:9/pipeline"),
            ],
        )
        .await;
    assert_eq!(status, 404);
    // update_params without a body.
    let (status, _) = app.update_params(&id, &perm, "").await;
    assert_eq!(status, 400);
    // The routes are in the OpenAPI document.
    let (_, doc) = app.get("/openapi.json").await;
    for path in [
        "/package/upload",
        "/package/status",
        "/package/publish",
        "/package/delete",
        "/package/update_params",
        "/package/run-hooks",
        "/package/stats",
        "/search/{kind}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    // Search: other kinds, bad JSON, bad size; a bad user token is anonymous.
    assert_eq!(app.get("/search/user").await.0, 400);
    assert_eq!(app.get("/search/package?q=cat").await.0, 400);
    assert_eq!(app.get("/search/package?package.title=cat").await.0, 400);
    assert_eq!(app.get("/search/package?size=-1").await.0, 400);
    assert_eq!(
        app.get("/search/package?size=5&from=2&jwt=bad").await,
        (200, json!([]))
    );
    assert_eq!(
        app.get("/package/stats").await,
        (
            200,
            json!({"num_packages": 0, "num_records": 0, "num_countries": 0})
        )
    );
}
