//! API tests: the real app on port 0, a fresh store and storage root per test; status,
//! envelope, exact messages and check order of every route (§A1, §A10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{App, assert_refused, tree};
use serde_json::{Value, json};
use tessera_workspaces::WorkspaceStatus;

#[tokio::test]
async fn the_auth_header_is_parsed_on_every_route() {
    let app = App::spawn().await;
    let got = app.get("/workspaces/", None).await;
    assert_refused(got, 401, "Authentication credentials were not provided.");
    let res = app.http.get(app.url("/workspaces/")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Token");
    for path in ["/job_types/", "/parameters/", "/status/", "/workspaces/"] {
        let res = app
            .http
            .get(app.url(path))
            .header("UWS-Authorization", "TokenWithoutKey")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"success": false, "message": "Invalid auth header format."})
        );
    }
    let got = app
        .get(
            "/job_types/",
            Some("0123456789abcdef0123456789abcdef01234567"),
        )
        .await;
    assert_refused(got, 401, "Invalid token provided.");
    // A standard Authorization header is ignored.
    let res = app
        .http
        .get(app.url("/job_types/"))
        .header("Authorization", "Bearer nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .patch(app.url("/workspaces/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": false, "message": "Method \"PATCH\" not allowed."})
    );
    app.stop().await;
}

#[tokio::test]
async fn local_login_checks_in_order_and_issues_40_hex_tokens() {
    let app = App::spawn().await;
    let incorrect = "Incorrect authentication credentials.";
    assert_refused(
        app.post_json("/tokens/", None, &json!({"user_info": {}}))
            .await,
        400,
        "Missing client_token. Please have admin generate a token for you.",
    );
    assert_refused(
        app.post_json("/tokens/", None, &json!({"client_token": "x"}))
            .await,
        400,
        "Missing user_info. Please provide user_info to get user_token.",
    );
    let info = json!({"username": "alice", "email": "alice@example.test"});
    assert_refused(
        app.post_json(
            "/tokens/",
            None,
            &json!({"client_token": "nope", "user_info": info}),
        )
        .await,
        401,
        incorrect,
    );
    let res = app
        .http
        .post(app.url("/tokens/"))
        .json(&json!({"client_token": "nope", "user_info": info}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Token");
    for bad_info in [
        json!({"username": "alice"}),
        json!({"email": "a@b"}),
        json!("alice"),
    ] {
        assert_refused(
            app.post_json(
                "/tokens/",
                None,
                &json!({"client_token": app.client_token, "user_info": bad_info}),
            )
            .await,
            401,
            incorrect,
        );
    }
    let got = app.post_raw("/tokens/", None, "{not json").await;
    assert_eq!(got.0, 400);
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        got.1
    );

    let (status, body) = app
        .post_json(
            "/tokens/",
            None,
            &json!({"client_token": app.client_token, "user_info": info}),
        )
        .await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({"success": true, "message": "Successful authentication.", "token": token})
    );
    assert_eq!(token.len(), 40);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    // One token per user while it lives.
    assert_eq!(app.login("alice", "", "").await, token);
    // A user's token is no client token.
    assert_refused(
        app.post_json(
            "/tokens/",
            None,
            &json!({"client_token": token, "user_info": {"username": "bob", "email": "b@x"}}),
        )
        .await,
        401,
        incorrect,
    );
    // Revocation.
    let (status, body) = app.delete("/tokens/", Some(&token)).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "Successful logout.", "success": true})
        )
    );
    assert_refused(
        app.get("/workspaces/", Some(&token)).await,
        401,
        "Invalid token provided.",
    );
    app.stop().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let app = App::spawn_with(|c| c.server.token_lifetime_seconds = 60).await;
    let token = app.login("alice", "", "").await;
    assert_eq!(app.get("/workspaces/", Some(&token)).await.0, 200);
    app.skew.store(61, Ordering::SeqCst);
    assert_refused(
        app.get("/workspaces/", Some(&token)).await,
        401,
        "Invalid token provided.",
    );
    // Logging in again gives a new token; the API client's own token does not expire.
    let fresh = app.login("alice", "", "").await;
    assert_ne!(fresh, token);
    assert_eq!(app.get("/workspaces/", Some(&fresh)).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn creating_a_workspace_checks_in_order_and_leaves_nothing_on_failure() {
    let app = App::spawn().await;
    let t = app.login("alice", "Alice", "Smith").await;
    let t = Some(t.as_str());
    let got = app.post_raw("/workspaces/", t, "{oops").await;
    assert_eq!(got.0, 400);
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON: ")
    );
    assert_refused(
        app.post_raw("/workspaces/", t, "[1]").await,
        400,
        "Invalid JSON: expected an object.",
    );
    assert_refused(
        app.post_json("/workspaces/", t, &json!({"name": "w"}))
            .await,
        400,
        "Missing required fields.",
    );
    let base = json!({"name": "w", "description": "d"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // Job type before details type.
    assert_refused(
        app.post_json(
            "/workspaces/",
            t,
            &with(json!({"default_job_type": "nope", "workspace_details": 3})),
        )
        .await,
        400,
        "nope is not in the list of available job types.",
    );
    assert_refused(
        app.post_json("/workspaces/", t, &with(json!({"workspace_details": "x"})))
            .await,
        400,
        "Workspace details not JSON.",
    );
    let details = |d: Value| with(json!({"workspace_details": d}));
    let cases = [
        (
            json!({"files": "a"}),
            400,
            "Invalid workspace details: files is not a list.".to_owned(),
        ),
        (
            json!({"files": [{"content": "x"}]}),
            400,
            "Invalid workspace details: every file needs a name.".to_owned(),
        ),
        (
            json!({"files": ["a"]}),
            400,
            "Invalid workspace details: files must be a list of objects.".to_owned(),
        ),
        (
            json!({"files": [{"name": "a/../../x", "content": ""}]}),
            400,
            "File name cannot contain double dots.".to_owned(),
        ),
        (
            json!({"files": [{"name": "/etc/passwd", "content": ""}]}),
            400,
            "Invalid file path specified /etc/passwd".to_owned(),
        ),
        (
            json!({"symlinks": [{"name": "../up", "source_path": "/etc"}]}),
            400,
            "Symlink name cannot contain double dots.".to_owned(),
        ),
        (
            json!({"symlinks": [{"name": "/abs", "source_path": "/etc"}]}),
            400,
            "Invalid file path specified /abs".to_owned(),
        ),
        (
            json!({"symlinks": [{"name": "etc", "source_path": "/etc"}]}),
            400,
            "Symlink path not allowed: /etc".to_owned(),
        ),
        (
            json!({"symlinks": [{"name": "x", "source_path": format!("{}/../../etc", app.datasets.display())}]}),
            400,
            format!(
                "Symlink path not allowed: {}/../../etc",
                app.datasets.display()
            ),
        ),
        (
            json!({"symlinks": [{"name": "x", "source_path": format!("{}/missing", app.datasets.display())}]}),
            500,
            format!("Symlink path not found: {}/missing", app.datasets.display()),
        ),
        (
            json!({"symlinks": [{"name": "x"}]}),
            400,
            "Invalid workspace details: every symlink needs a source_path.".to_owned(),
        ),
    ];
    for (d, status, message) in cases {
        assert_refused(
            app.post_json("/workspaces/", t, &details(d.clone())).await,
            status,
            &message,
        );
    }
    // A file name that is a directory the request also makes.
    let got = app
        .post_json(
            "/workspaces/",
            t,
            &details(
                json!({"files": [{"name": "a/b", "content": "1"}, {"name": "a", "content": "2"}]}),
            ),
        )
        .await;
    assert_refused(got, 400, "Invalid file path specified a");
    assert!(
        tree(&app.root).iter().all(|p| !p.contains('/')),
        "{:?}",
        tree(&app.root)
    );
    let (status, body) = app.get("/workspaces/", t).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"message": "Workspace matching given parameters could not be found.", "success": true, "data": {"workspaces": []}})
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unmappable_user_is_refused_after_the_body_checks() {
    let app = App::spawn().await;
    let t = app.login(".hidden", "", "").await;
    let t = Some(t.as_str());
    assert_refused(
        app.post_json("/workspaces/", t, &json!({"name": "w"}))
            .await,
        400,
        "Missing required fields.",
    );
    let no_account = "User could not be found/created on main storage system.";
    assert_refused(
        app.post_json("/workspaces/", t, &json!({"name": "w", "description": "d"}))
            .await,
        400,
        no_account,
    );
    // PUT checks the mapping before the 404.
    assert_refused(
        app.put_json("/workspaces/77/", t, &json!({})).await,
        400,
        no_account,
    );
    app.stop().await;
}

#[tokio::test]
async fn workspaces_are_created_listed_updated_uploaded_and_deleted() {
    let app = App::spawn().await;
    let alice = app.login("alice", "Alice", "Smith").await;
    let bob = app.login("bob", "Bob", "Jones").await;
    let a = Some(alice.as_str());
    let source = format!("{}/ds1", app.datasets.display());
    let (status, body) = app
        .post_json(
            "/workspaces/",
            a,
            &json!({"name": "w1", "description": "first", "default_job_type": "jupyter_lab",
                "workspace_details": {
                    "files": [{"name": "notes.txt", "content": "hello"}, {"name": "sub/x.py", "content": "print(1)"}],
                    "symlinks": [{"name": "data", "source_path": source}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Successful.");
    let ws = &body["data"]["workspace"];
    let id = ws["id"].as_i64().unwrap();
    assert_eq!(ws["status"], "idle");
    assert_eq!(ws["default_job_type"], "jupyter_lab");
    let created = ws["datetime_created"].as_str().unwrap();
    assert!(
        !created.ends_with('Z'),
        "the POST reply echoes a naive time: {created}"
    );
    assert_eq!(
        ws["workspace_details"]["request_workspace_details"],
        json!({"files": [{"name": "notes.txt"}, {"name": "sub/x.py"}], "symlinks": [{"name": "data", "source_path": source}]})
    );
    let dir = app.root.join(format!("alice/{id}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "hello"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/x.py")).unwrap(),
        "print(1)"
    );
    assert_eq!(
        std::fs::read_link(dir.join("data")).unwrap(),
        app.datasets.join("ds1")
    );

    // The background scan.
    app.wait_for(id, |w| w.is_some_and(|w| w.disk_space == 13))
        .await;
    let (status, body) = app.get("/workspaces/", a).await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Successful.");
    let listed = &body["data"]["workspaces"][0];
    assert_eq!(
        listed["workspace_details"]["current_workspace_details"],
        json!({"files": [{"name": "/notes.txt"}, {"name": "/sub/x.py"}], "symlinks": [{"name": "/data"}]})
    );
    assert!(listed["datetime_created"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = listed.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "description",
            "disk_space",
            "datetime_created",
            "datetime_last_modified",
            "datetime_last_job_launch",
            "workspace_details",
            "status",
            "default_job_type"
        ]
    );
    // Filters and single ids; foreign and unknown ids are an empty success (§A10.5).
    assert_eq!(
        app.get("/workspaces/?name=w1&status=idle", a).await.1["data"]["workspaces"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/workspaces/?name=other", a).await.1["data"]["workspaces"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/workspaces/{id}/"), a).await.1["data"]["workspaces"][0]["id"],
        id
    );
    for (path, token) in [
        (format!("/workspaces/{id}/"), bob.as_str()),
        ("/workspaces/999/".into(), alice.as_str()),
        ("/workspaces/abc/".into(), alice.as_str()),
    ] {
        let (status, body) = app.get(&path, Some(token)).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["message"],
            "Workspace matching given parameters could not be found."
        );
    }

    // Update.
    assert_refused(
        app.put_json(&format!("/workspaces/{id}/"), Some(&bob), &json!({}))
            .await,
        404,
        &format!("Workspace {id} not found for user."),
    );
    let got = app.put_raw(&format!("/workspaces/{id}/"), a, "nope").await;
    assert_eq!(got.0, 400);
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON: ")
    );
    assert_refused(
        app.put_json(
            &format!("/workspaces/{id}/"),
            a,
            &json!({"workspace_details": []}),
        )
        .await,
        400,
        "Workspace details not JSON.",
    );
    assert_refused(
        app.put_json(
            &format!("/workspaces/{id}/"),
            a,
            &json!({"default_job_type": "x"}),
        )
        .await,
        400,
        "x is not in the list of available job types.",
    );
    let (status, body) = app
        .put_json(&format!("/workspaces/{id}/"), a, &json!({"name": "renamed", "workspace_details": {"files": [{"name": "more.txt", "content": "m"}]}}))
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "Update successful.", "success": true})
        )
    );
    let w = app.uws.workspace(id).unwrap();
    assert_eq!(w.name, "renamed");
    assert!(
        w.workspace_details
            .current_workspace_details
            .files
            .iter()
            .any(|f| f.name == "/more.txt")
    );
    assert_refused(
        app.put_json(&format!("/workspaces/{id}/start2/"), a, &json!({}))
            .await,
        400,
        "Invalid PUT type passed.",
    );

    // Upload: every file, even of a repeated field, by its base name.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"one".to_vec()).file_name("../up1.txt"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"two".to_vec()).file_name("up2.txt"),
        );
    let (status, body) = app
        .send(
            app.http
                .put(app.url(&format!("/workspaces/{id}/upload/")))
                .multipart(form),
            a,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "Successful upload.", "success": true})
        )
    );
    assert_eq!(std::fs::read_to_string(dir.join("up1.txt")).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(dir.join("up2.txt")).unwrap(), "two");
    let empty = reqwest::multipart::Form::new().text("field", "value");
    let got = app
        .send(
            app.http
                .put(app.url(&format!("/workspaces/{id}/upload/")))
                .multipart(empty),
            a,
        )
        .await;
    assert_refused(got, 400, "No files found in request.");
    let got = app
        .send(
            app.http.put(app.url(&format!("/workspaces/{id}/upload/"))),
            Some(&bob),
        )
        .await;
    assert_refused(got, 404, &format!("Workspace {id} not found for user."));

    // Delete.
    assert_refused(
        app.delete(&format!("/workspaces/{id}/"), Some(&bob)).await,
        404,
        &format!("Workspace {id} not found for user."),
    );
    let (status, body) = app.delete(&format!("/workspaces/{id}/"), a).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": format!("Workspace {id} queued for deletion."), "success": true})
        )
    );
    app.wait_for(id, |w| w.is_none()).await;
    assert!(!dir.exists());
    assert!(
        app.datasets.join("ds1/data.csv").exists(),
        "the dataset behind the symlink survives"
    );
    app.stop().await;
}

#[tokio::test]
async fn writes_never_follow_symlinks_planted_in_a_workspace() {
    let app = App::spawn().await;
    let t = app.login("alice", "", "").await;
    let a = Some(t.as_str());
    let id = app
        .create(&t, &json!({"name": "w", "description": "d"}))
        .await;
    let dir = app.root.join(format!("alice/{id}"));
    std::fs::write(app.outside.join("target.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(&app.outside, dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(app.outside.join("target.txt"), dir.join("f.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    // Through a planted directory link: refused.
    assert_refused(
        app.put_json(
            &format!("/workspaces/{id}/"),
            a,
            &json!({"workspace_details": {"files": [{"name": "sub/evil.txt", "content": "x"}]}}),
        )
        .await,
        400,
        "Invalid file path specified sub/evil.txt",
    );
    assert_refused(
        app.put_json(
            &format!("/workspaces/{id}/"),
            a,
            &json!({"workspace_details": {"files": [{"name": "etc/passwd", "content": "x"}]}}),
        )
        .await,
        400,
        "Invalid file path specified etc/passwd",
    );
    assert!(!app.outside.join("evil.txt").exists());
    // Onto a planted file link: the link is replaced, the target untouched.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"new".to_vec()).file_name("f.txt"),
    );
    let (status, _) = app
        .send(
            app.http
                .put(app.url(&format!("/workspaces/{id}/upload/")))
                .multipart(form),
            a,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        std::fs::read_to_string(app.outside.join("target.txt")).unwrap(),
        "keep"
    );
    assert!(
        !std::fs::symlink_metadata(dir.join("f.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(dir.join("f.txt")).unwrap(), "new");
    // A symlink in place of the workspace directory makes it invalid, not followed.
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&app.outside, &dir).unwrap();
    let got = app
        .put_json(
            &format!("/workspaces/{id}/"),
            a,
            &json!({"workspace_details": {"files": [{"name": "z", "content": "x"}]}}),
        )
        .await;
    assert_eq!(got.0, 400, "{}", got.1);
    assert!(!app.outside.join("z").exists());
    assert_refused(
        app.delete(&format!("/workspaces/{id}/"), a).await,
        500,
        "Please contact a system administrator there is a failure with the workspace directory that will not allow for this workspace to be deleted.",
    );
    assert_eq!(
        app.uws.workspace(id).unwrap().status,
        WorkspaceStatus::Error
    );
    assert!(app.outside.join("target.txt").exists());
    app.stop().await;
}

#[tokio::test]
async fn sharing_copies_in_the_background_and_follows_the_originals_messages() {
    let app = App::spawn().await;
    let alice = app.login("alice", "Alice", "Smith").await;
    let bob = app.login("bob", "Bob", "Jones").await;
    let carol = app.login("carol", "Carol", "White").await;
    let (a, b, c) = (
        Some(alice.as_str()),
        Some(bob.as_str()),
        Some(carol.as_str()),
    );
    let original = app
        .create(&alice, &json!({"name": "w", "description": "d", "workspace_details": {"files": [{"name": "x.txt", "content": "xx"}, {"name": ".hidden", "content": "h"}]}}))
        .await;
    let users = app.get("/users/", a).await.1;
    let id_of = |name: &str| {
        users["data"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let bob_id = id_of("bob");
    assert_refused(
        app.post_json(
            "/shared_workspaces/",
            a,
            &json!({"original_workspace_id": original}),
        )
        .await,
        400,
        "Missing required fields.",
    );
    assert_refused(
        app.post_json(
            "/shared_workspaces/",
            b,
            &json!({"original_workspace_id": original, "shared_user_ids": "x"}),
        )
        .await,
        404,
        &format!("Workspace {original} not found for user."),
    );
    assert_refused(
        app.post_json(
            "/shared_workspaces/",
            a,
            &json!({"original_workspace_id": original, "shared_user_ids": ""}),
        )
        .await,
        400,
        "shared_user_ids is not a list.",
    );
    for ids in [json!([9999]), json!([bob_id, bob_id]), json!(["x"])] {
        assert_refused(
            app.post_json(
                "/shared_workspaces/",
                a,
                &json!({"original_workspace_id": original, "shared_user_ids": ids}),
            )
            .await,
            400,
            "Invalid user id provided.",
        );
    }
    let (status, body) = app
        .post_json(
            "/shared_workspaces/",
            a,
            &json!({"original_workspace_id": original, "shared_user_ids": [bob_id]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Successful.");
    let item = &body["data"]["shared_workspaces"][0];
    let copy = item["shared_workspace_id"]["id"].as_i64().unwrap();
    assert_eq!(
        item["original_workspace_id"]["user_id"],
        json!({"username": "alice", "first_name": "Alice", "last_name": "Smith", "email": "alice@example.test"})
    );
    assert_eq!(item["is_accepted"], false);
    assert_eq!(item["last_resource_options"], json!({}));
    assert_eq!(item["last_job_type"], Value::Null);
    app.wait_for(copy, |w| {
        w.is_some_and(|w| w.status == WorkspaceStatus::Idle)
    })
    .await;
    let copied = app.root.join(format!("bob/{copy}"));
    assert_eq!(std::fs::read_to_string(copied.join("x.txt")).unwrap(), "xx");
    assert!(!copied.join(".hidden").exists(), "dot-files are not copied");

    // The frozen copy is hidden and blocked.
    assert_eq!(
        app.get("/workspaces/", b).await.1["data"]["workspaces"],
        json!([])
    );
    let frozen = format!("Workspace {copy} is a shared workspace and has not been accepted.");
    assert_refused(
        app.put_json(&format!("/workspaces/{copy}/"), b, &json!({}))
            .await,
        400,
        &frozen,
    );
    assert_refused(
        app.delete(&format!("/workspaces/{copy}/"), b).await,
        400,
        &frozen,
    );
    assert_refused(
        app.delete(&format!("/workspaces/{original}/"), a).await,
        400,
        "Cannot delete workspace, it has shares that have not been accepted.",
    );
    // Listings.
    let (_, body) = app.get("/shared_workspaces/?is_accepted=false", b).await;
    assert_eq!(
        body["data"]["shared_workspaces"].as_array().unwrap().len(),
        1
    );
    assert_eq!(body["data"]["original_workspaces"], json!([]));
    let (_, body) = app.get("/shared_workspaces/?is_accepted=true", b).await;
    assert_eq!(
        body["message"],
        "Shared workspace matching given parameters could not be found."
    );
    assert_refused(
        app.get("/shared_workspaces/?is_accepted=maybe", b).await,
        400,
        "is_accepted must be true or false.",
    );
    let (_, body) = app.get("/shared_workspaces/", a).await;
    assert_eq!(
        body["data"]["original_workspaces"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        body["data"]["original_workspaces"][0]["datetime_share_created"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        app.get(&format!("/shared_workspaces/{copy}/"), c).await.1["data"]["shared_workspaces"],
        json!([])
    );
    // Delete and accept rules.
    assert_refused(
        app.delete(&format!("/shared_workspaces/{copy}/"), c).await,
        403,
        &format!("User does not have permissions for shared workspace {copy}."),
    );
    assert_refused(
        app.delete("/shared_workspaces/4242/", a).await,
        404,
        "Shared workspace 4242 not found.",
    );
    assert_refused(
        app.put_json(&format!("/shared_workspaces/{copy}/accept/"), a, &json!({}))
            .await,
        404,
        &format!("Shared workspace {copy} not found."),
    );
    assert_refused(
        app.put_json(&format!("/shared_workspaces/{copy}/reject/"), b, &json!({}))
            .await,
        404,
        "Put type reject not supported.",
    );
    let (status, body) = app
        .put_json(&format!("/shared_workspaces/{copy}/accept/"), b, &json!({}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Successful.", "success": true}))
    );
    assert_eq!(
        app.get("/workspaces/", b).await.1["data"]["workspaces"][0]["id"],
        copy
    );
    assert_refused(
        app.delete(&format!("/shared_workspaces/{copy}/"), b).await,
        400,
        &format!("Shared workspace {copy} has been accepted and cannot be deleted."),
    );

    // A second share, withdrawn by the sender before it is accepted.
    let carol_id = id_of("carol");
    let (_, body) = app
        .post_json(
            "/shared_workspaces/",
            a,
            &json!({"original_workspace_id": original, "shared_user_ids": [carol_id]}),
        )
        .await;
    let second = body["data"]["shared_workspaces"][0]["shared_workspace_id"]["id"]
        .as_i64()
        .unwrap();
    let (status, body) = app
        .delete(&format!("/shared_workspaces/{second}/"), a)
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Successful.", "success": true}))
    );
    app.wait_for(second, |w| w.is_none()).await;
    assert!(!app.root.join(format!("carol/{second}")).exists());
    app.stop().await;
}

#[tokio::test]
async fn users_job_types_parameters_and_status() {
    let app = App::spawn().await;
    let alice = app.login("alice", "Alice", "Smith").await;
    app.login("bob", "Bob", "Jones").await;
    app.login("admin", "Ad", "Min").await;
    let (status, body) = app.get("/users/?search=BOB%20j", Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["users"].as_array().unwrap().len(), 1);
    let bob = &body["data"]["users"][0];
    assert_eq!(bob["username"], "bob");
    assert_eq!(bob.as_object().unwrap().len(), 5);
    let (_, body) = app.get("/users/", Some(&alice)).await;
    let names: Vec<&str> = body["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"alice") && !names.contains(&"admin"),
        "{names:?}"
    );
    assert_eq!(
        app.get("/users/?search=EXAMPLE.TEST", Some(&alice)).await.1["data"]["users"]
            .as_array()
            .unwrap()
            .len(),
        names.len()
    );
    assert_eq!(
        app.get("/users/?search=zzz", Some(&alice)).await.1,
        json!({"message": "Users matching given parameters could not be found.", "success": true, "data": {"users": []}})
    );
    assert_refused(
        app.get("/users/", None).await,
        401,
        "Authentication credentials were not provided.",
    );
    assert_eq!(
        app.get("/job_types/", None).await,
        (
            200,
            json!({"message": "Successful.", "success": true, "data": {"job_types": {"jupyter_lab": {"id": "jupyter_lab", "name": "JupyterLab"}}}})
        )
    );
    let (_, body) = app.get("/parameters/", None).await;
    assert_eq!(body["data"]["parameters"][0]["variable_name"], "num_cpus");
    assert_eq!(
        body["data"]["parameters"][0]["validation"],
        json!({"type": "int", "min": 1, "max": 4, "required": true})
    );
    let (status, body) = app.get("/status/", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "");
    assert_eq!(body["success"], true);
    assert_eq!(
        body["dependencies"]["storage_methods"]["local"],
        json!({"connected": true, "message": ""})
    );
    app.stop().await;
}

#[tokio::test]
async fn records_survive_a_restart_and_pending_deletions_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let app = App::start(
        tempfile::tempdir().unwrap(),
        config.clone(),
        uws::Overrides::default(),
    )
    .await;
    let t = app.login("alice", "", "").await;
    let id = app
        .create(&t, &json!({"name": "w", "description": "d"}))
        .await;
    app.stop().await;
    let again = App::start(
        tempfile::tempdir().unwrap(),
        config,
        uws::Overrides::default(),
    )
    .await;
    let (status, body) = again.get("/workspaces/", Some(&t)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["workspaces"][0]["id"], id);
    // A new workspace gets a new id.
    let next = again
        .create(&t, &json!({"name": "w2", "description": "d"}))
        .await;
    assert!(next > id);
    again.stop().await;
}

#[tokio::test]
async fn a_new_workspace_is_filled_then_handed_over() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let app = App::spawn().await;
    let alice = app.login("alice", "Alice", "Smith").await;
    // A name listed twice: the second replaces the first (by rename, as in a later write).
    let id = app
        .create(
            &alice,
            &json!({"name": "w", "description": "d", "workspace_details": {"files": [
                {"name": "a.txt", "content": "first"},
                {"name": "sub/b.txt", "content": "b"},
                {"name": "a.txt", "content": "second"},
            ]}}),
        )
        .await;
    let dir = app.root.join(format!("alice/{id}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("a.txt")).unwrap(),
        "second"
    );
    assert_eq!(std::fs::read_to_string(dir.join("sub/b.txt")).unwrap(), "b");
    assert_eq!(
        tree(&dir),
        ["a.txt", "sub", "sub/b.txt"],
        "no temporary names left"
    );
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
    app.stop().await;
}
