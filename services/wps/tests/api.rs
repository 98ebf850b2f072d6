//! The REST API against the real app on port 0 (fresh SQLite file each), for every route
//! and every error case of wps.md §1, plus the added routes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use chrono::{TimeDelta, Timelike, Utc};
use common::*;
use serde_json::{Value, json};
use tessera_crypt::Crypt4ghKeyPair;
use tessera_work_orders::datetime::{format_pydantic, parse_rfc3339, truncate_ms};
use uuid::Uuid;

const NON_V4: &str = "c232ab00-9414-11ec-b3c8-9f68deced846";

fn later(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() + TimeDelta::days(days)
}

#[actix_web::test]
async fn health_request_ids_unknown_routes_and_openapi() {
    let app = TestApp::spawn().await;
    let resp = app.get("/health", None).await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "OK"}));

    // An upper-case UUID4 is echoed lower-case; anything else is replaced.
    let given = Uuid::new_v4().to_string().to_uppercase();
    let resp = app
        .client
        .get(app.url("/health"))
        .header("X-Request-Id", &given)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        given.to_lowercase().as_str()
    );
    let resp = app
        .client
        .get(app.url("/health"))
        .header("X-Request-Id", NON_V4)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], NON_V4);

    let resp = app.get("/nowhere", None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let resp = app
        .client
        .put(app.url("/work-packages"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );

    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/work-packages",
        "/work-packages/{work_package_id}",
        "/work-packages/{work_package_id}/files/{accession}/work-order-tokens",
        "/work-packages/{work_package_id}/boxes/{box_id}/work-order-tokens",
        "/users/{user_id}/datasets",
        "/users/{user_id}/boxes",
        "/users/{user_id}/work-packages",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(paths["/work-packages/{work_package_id}"]["delete"].is_object());
    assert!(
        doc["components"]["schemas"]["WorkPackageCreationRequest"]["properties"]["type"]
            .is_object()
    );
    // What is served: 422 `loc` items may be list positions; UUIDs are version 4; the
    // listing's paging parameters.
    assert_eq!(
        doc["components"]["schemas"]["ValidationErrorItem"]["properties"]["loc"]["items"],
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    );
    let params = &paths["/users/{user_id}/work-packages"]["get"]["parameters"];
    let param = |name: &str| {
        params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {params}"))
            .clone()
    };
    assert_eq!(param("user_id")["schema"]["format"], "uuid");
    assert_eq!(
        param("user_id")["schema"]["pattern"],
        tessera_http::UUID4_PATTERN
    );
    assert_eq!(param("limit")["in"], "query");
    assert_eq!(param("limit")["schema"]["maximum"], 1000);
    assert_eq!(
        param("after")["schema"]["pattern"],
        tessera_http::UUID4_PATTERN
    );
    // A 405 says what is allowed.
    let resp = app
        .client
        .request(reqwest::Method::TRACE, app.url("/users/x/work-packages"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
}

#[actix_web::test]
async fn credentials_are_checked_like_fastapi() {
    let app = TestApp::spawn().await;
    let user = Uuid::new_v4().to_string();
    let body = json!({"type": "download", "dataset_id": DATASET, "user_public_crypt4gh_key": "x"});
    // Missing header, wrong scheme, empty credentials: "Not authenticated".
    assert_not_authenticated(app.post_json("/work-packages", None, &body).await).await;
    for header in ["Basic abc", "Bearer", "Bearer    ", "bearer"] {
        let resp = app
            .client
            .post(app.url("/work-packages"))
            .header("Authorization", header)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_not_authenticated(resp).await;
    }
    // A token that does not verify, an expired one, one with a non-string id, one signed by
    // another key: "Invalid authentication credentials", without WWW-Authenticate.
    let now = Utc::now().timestamp();
    let other = Keys::generate();
    for token in [
        "garbage".to_owned(),
        app.keys
            .token_with(json!({"id": user, "name": "A", "email": "a@example.org",
            "iat": now - 7200, "exp": now - 3600})),
        app.keys
            .token_with(json!({"id": 5, "name": "A", "email": "a@example.org",
            "iat": now, "exp": now + 60})),
        app.keys
            .token_with(json!({"name": "A", "email": "a@example.org",
            "iat": now, "exp": now + 60})),
        // Not valid yet, beyond the 60 s leeway.
        app.keys
            .token_with(json!({"id": user, "name": "A", "email": "a@example.org",
            "iat": now, "nbf": now + 3600, "exp": now + 7200})),
        other.token(&user),
    ] {
        let resp = app.post_json("/work-packages", Some(&token), &body).await;
        assert_invalid_credentials(resp).await;
    }
    // Whitespace after the scheme and a lower-case scheme are fine: the body is checked next.
    let resp = app
        .client
        .post(app.url("/work-packages"))
        .header(
            "Authorization",
            format!("bearer   {}", app.keys.token(&user)),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}

#[actix_web::test]
async fn unparsable_json_comes_before_credentials_and_validation_after() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/work-packages"))
        .header("Content-Type", "application/json")
        .body("{\"type\": ")
        .send()
        .await
        .unwrap();
    let items = validation_items(resp).await;
    assert_eq!(
        items,
        vec![
            json!({"type": "json_invalid", "loc": ["body", 9], "msg": "JSON decode error",
                    "input": {}, "ctx": {"error": "Expecting value"}})
        ]
    );
    // Valid JSON with schema errors but no credentials: 401 first.
    assert_not_authenticated(
        app.post_json("/work-packages", None, &json!({"x": 1}))
            .await,
    )
    .await;
    // Same for the box route.
    let path = format!(
        "/work-packages/{}/boxes/{}/work-order-tokens",
        Uuid::new_v4(),
        Uuid::new_v4()
    );
    let resp = app
        .client
        .post(app.url(&path))
        .header("Content-Type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(validation_items(resp).await[0]["type"], "json_invalid");
    assert_not_authenticated(app.post_json(&path, None, &json!({})).await).await;
}

#[actix_web::test]
async fn creation_body_errors_are_pydantic_shaped() {
    let app = TestApp::spawn().await;
    let token = app.keys.token(&Uuid::new_v4().to_string());
    let pair = Crypt4ghKeyPair::generate();
    let key = pair.public_key().to_base64();

    // No body at all.
    let resp = app.post_empty("/work-packages", Some(&token)).await;
    assert_eq!(
        validation_items(resp).await,
        vec![json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null})]
    );
    // Not an object.
    let resp = app
        .post_json("/work-packages", Some(&token), &json!([1]))
        .await;
    assert_eq!(
        validation_items(resp).await,
        vec![json!({"type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": [1]})]
    );
    // Every field error at once, in field order, then unknown fields.
    let body = json!({"type": "DOWNLOAD", "dataset_id": 7, "research_data_upload_box_id": "xyz",
        "file_ids": ["GHGAF1", 2], "extra": true});
    let items = validation_items(app.post_json("/work-packages", Some(&token), &body).await).await;
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "enum",
            "string_type",
            "uuid_parsing",
            "string_type",
            "missing",
            "extra_forbidden"
        ]
    );
    assert_eq!(
        items[0],
        json!({"type": "enum", "loc": ["body", "type"],
            "msg": "Input should be 'download' or 'upload'", "input": "DOWNLOAD",
            "ctx": {"expected": "'download' or 'upload'"}})
    );
    assert_eq!(items[1]["loc"], json!(["body", "dataset_id"]));
    assert_eq!(items[1]["msg"], "Input should be a valid string");
    assert!(
        items[2]["msg"]
            .as_str()
            .unwrap()
            .starts_with("Input should be a valid UUID, ")
    );
    assert_eq!(items[3]["loc"], json!(["body", "file_ids", 1]));
    assert_eq!(
        items[4],
        json!({"type": "missing", "loc": ["body", "user_public_crypt4gh_key"],
            "msg": "Field required", "input": body})
    );
    assert_eq!(
        items[5],
        json!({"type": "extra_forbidden", "loc": ["body", "extra"],
            "msg": "Extra inputs are not permitted", "input": true})
    );
    // A box id that is a UUID but not version 4; file_ids not a list.
    let body = json!({"type": "upload", "research_data_upload_box_id": NON_V4,
        "file_ids": "GHGAF1", "user_public_crypt4gh_key": key});
    let items = validation_items(app.post_json("/work-packages", Some(&token), &body).await).await;
    assert_eq!(
        items[0],
        json!({"type": "uuid_version", "loc": ["body", "research_data_upload_box_id"],
            "msg": "UUID version 4 expected", "input": NON_V4, "ctx": {"expected_version": 4}})
    );
    assert_eq!(items[1]["type"], "list_type");

    // Key errors (exact §2.3 messages) are value errors on the key field.
    for (raw, msg) in [
        ("", "Key must be a non-empty string"),
        (
            "-----BEGIN CRYPT4GH PRIVATE KEY-----\nabc\n",
            "Do not pass a private key",
        ),
        ("AAAA", "Invalid key"),
        // Low-order points: anyone could open what is sealed to them (libsodium refuses).
        (
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "Invalid key: a low-order point, unusable for encryption",
        ),
        (
            "7P///////////////////////////////////////38=",
            "Invalid key: a low-order point, unusable for encryption",
        ),
        (
            "-----BEGIN CRYPT4GH PUBLIC KEY-----\nX5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=\n-----END CRYPT4GH PUBLIC KEY-----\n",
            "Invalid key: a low-order point, unusable for encryption",
        ),
    ] {
        let body =
            json!({"type": "download", "dataset_id": DATASET, "user_public_crypt4gh_key": raw});
        let items =
            validation_items(app.post_json("/work-packages", Some(&token), &body).await).await;
        assert_eq!(
            items,
            vec![
                json!({"type": "value_error", "loc": ["body", "user_public_crypt4gh_key"],
                "msg": format!("Value error, {msg}"), "input": raw, "ctx": {"error": {}}})
            ]
        );
    }
    let body = json!({"type": "download", "dataset_id": DATASET, "user_public_crypt4gh_key": "A"});
    let items = validation_items(app.post_json("/work-packages", Some(&token), &body).await).await;
    assert!(
        items[0]["msg"]
            .as_str()
            .unwrap()
            .starts_with("Value error, ")
    );
    assert_eq!(items[0]["loc"], json!(["body", "user_public_crypt4gh_key"]));

    // Cross-field rules: one value error on the body, messages joined with "; ".
    let box_id = Uuid::new_v4();
    for (body, msg) in [
        (
            json!({"type": "download", "research_data_upload_box_id": box_id, "user_public_crypt4gh_key": key}),
            "dataset_id is required for download work packages; research_data_upload_box_id shouldn't be provided for download work packages",
        ),
        (
            json!({"type": "download", "dataset_id": "", "user_public_crypt4gh_key": key}),
            "dataset_id is required for download work packages",
        ),
        (
            json!({"type": "upload", "dataset_id": DATASET, "user_public_crypt4gh_key": key}),
            "research_data_upload_box_id is required for upload work packages; dataset_id shouldn't be provided for upload work packages",
        ),
        (
            json!({"type": "upload", "dataset_id": DATASET, "research_data_upload_box_id": box_id, "user_public_crypt4gh_key": key}),
            "dataset_id shouldn't be provided for upload work packages",
        ),
    ] {
        let items =
            validation_items(app.post_json("/work-packages", Some(&token), &body).await).await;
        assert_eq!(
            items,
            vec![json!({"type": "value_error", "loc": ["body"],
                "msg": format!("Value error, {msg}"), "input": body, "ctx": {"error": {}}})]
        );
    }
}

#[actix_web::test]
async fn download_creation_refusals_in_order() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let key = pair.public_key().to_base64();
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    let body = |file_ids: Value| {
        json!({"type": "download", "dataset_id": DATASET, "file_ids": file_ids,
               "user_public_crypt4gh_key": key})
    };
    // The token's id is not a UUID, or not a version-4 UUID.
    for id in ["not-a-uuid", NON_V4] {
        let resp = app
            .post_json(
                "/work-packages",
                Some(&app.keys.token(id)),
                &body(Value::Null),
            )
            .await;
        assert_forbidden(resp, "Invalid user ID").await;
    }
    app.access.set_download(user, DATASET, Some(Answer::Fail));
    let resp = app
        .post_json("/work-packages", Some(&token), &body(Value::Null))
        .await;
    assert_forbidden(resp, "Failed to check dataset access permission").await;
    app.access.set_download(user, DATASET, None);
    let resp = app
        .post_json("/work-packages", Some(&token), &body(Value::Null))
        .await;
    assert_forbidden(resp, "Missing dataset access permission").await;
    app.access
        .set_download(user, DATASET, Some(Answer::Until(later(5))));
    let resp = app
        .post_json("/work-packages", Some(&token), &body(Value::Null))
        .await;
    assert_forbidden(resp, "Cannot determine dataset files").await;
    app.seed_dataset().await;
    for file_ids in [json!([]), json!(["GHGAF-unknown"])] {
        let resp = app
            .post_json("/work-packages", Some(&token), &body(file_ids))
            .await;
        assert_forbidden(resp, "No existing files have been specified").await;
    }
}

#[actix_web::test]
async fn download_package_lifecycle_with_exact_tokens() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    let (file1_id, _) = app.seed_dataset().await;
    // Access ends before the 30 days are up, with sub-millisecond digits.
    let access_until = later(5).with_nanosecond(123_456_789).unwrap();
    app.access
        .set_download(user, DATASET, Some(Answer::Until(access_until)));
    // An armoured key; files asked in another order, with an unknown one.
    let resp = app
        .post_json(
            "/work-packages",
            Some(&token),
            &json!({"type": "download", "dataset_id": DATASET,
                    "file_ids": [FILE3, "GHGAF-unknown", FILE1],
                    "user_public_crypt4gh_key": pair.public_armored()}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().contains_key("x-request-id"));
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created.as_object().unwrap().len(), 3);
    let id = created["id"].as_str().unwrap();
    assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let expires = format_pydantic(&truncate_ms(access_until));
    assert_eq!(created["expires"], expires.as_str());
    assert!(expires.ends_with(".123000Z"), "{expires}");
    let sealed = created["token"].as_str().unwrap();
    assert_eq!(sealed.len(), 96);
    let wpat = pair.open_base64(sealed).unwrap();
    assert_eq!(wpat.len(), 24);
    assert!(wpat.chars().all(|c| c.is_ascii_alphanumeric()));

    // Details: dataset order, no box ids, pydantic datetimes.
    let resp = app.get(&format!("/work-packages/{id}"), Some(&wpat)).await;
    assert_eq!(resp.status(), 200);
    let details: Value = resp.json().await.unwrap();
    assert_eq!(
        serde_json::to_string(&details["files"]).unwrap(),
        format!(r#"{{"{FILE1}":".json","{FILE3}":".bam"}}"#)
    );
    assert_eq!(details["type"], "download");
    assert_eq!(details["research_data_upload_box_id"], Value::Null);
    assert_eq!(details["file_upload_box_id"], Value::Null);
    assert_eq!(details["expires"], expires.as_str());
    let created_at = parse_rfc3339(details["created"].as_str().unwrap()).unwrap();
    assert_eq!(created_at, truncate_ms(app.clock_now()));
    // Upper-case and unhyphenated ids are the same package.
    let simple = Uuid::parse_str(id)
        .unwrap()
        .simple()
        .to_string()
        .to_uppercase();
    let resp = app
        .get(&format!("/work-packages/{simple}"), Some(&wpat))
        .await;
    assert_eq!(resp.status(), 200);

    // A work order token for FILE1: 201, bare JSON string, Cache-Control.
    let path = format!("/work-packages/{id}/files/{FILE1}/work-order-tokens");
    let resp = app.post_empty(&path, Some(&wpat)).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "max-age=30, private");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('"') && text.ends_with('"'), "{text}");
    let sealed: String = serde_json::from_str(&text).unwrap();
    let jws = pair.open_base64(&sealed).unwrap();
    let (header, claims) = app.keys.verify_wot(&jws);
    assert_eq!(header, json!({"alg": "ES256"}));
    let iat = app.clock_now().timestamp();
    assert_eq!(
        Value::Object(claims),
        json!({"work_type": "download", "file_id": file1_id.to_string(), "accession": FILE1,
               "user_public_crypt4gh_key": pair.public_key().to_base64(),
               "iat": iat, "exp": iat + 30})
    );
    let raw_header = jws.split('.').next().unwrap();
    assert_eq!(
        raw_header, "eyJhbGciOiJFUzI1NiJ9",
        "header bytes are exactly {{\"alg\":\"ES256\"}}"
    );

    // FILE3 is in the package but has no accession map; FILE2 is not in the package.
    let resp = app
        .post_empty(
            &format!("/work-packages/{id}/files/{FILE3}/work-order-tokens"),
            Some(&wpat),
        )
        .await;
    assert_forbidden(resp, "File not available for download").await;
    let resp = app
        .post_empty(
            &format!("/work-packages/{id}/files/{FILE2}/work-order-tokens"),
            Some(&wpat),
        )
        .await;
    assert_forbidden(resp, "File is not contained in work package").await;
    // A download package has no box.
    let resp = app
        .post_json(
            &format!(
                "/work-packages/{id}/boxes/{}/work-order-tokens",
                Uuid::new_v4()
            ),
            Some(&wpat),
            &json!({"work_type": "view"}),
        )
        .await;
    assert_forbidden(resp, "Specified box ID is incorrect.").await;

    // The shared check, in order, on every access-token route.
    let unknown = Uuid::new_v4();
    for (path, method) in [
        ("/work-packages/{}".to_owned(), "get"),
        (
            format!("/work-packages/{{}}/files/{FILE1}/work-order-tokens"),
            "post",
        ),
    ] {
        let call = |pid: String, tok: &str| {
            let url = path.replace("{}", &pid);
            let app = &app;
            let tok = tok.to_owned();
            async move {
                if method == "get" {
                    app.get(&url, Some(&tok)).await
                } else {
                    app.post_empty(&url, Some(&tok)).await
                }
            }
        };
        assert_not_authenticated(if method == "get" {
            app.get(&path.replace("{}", id), None).await
        } else {
            app.post_empty(&path.replace("{}", id), None).await
        })
        .await;
        let items = validation_items(call("not-a-uuid".into(), &wpat).await).await;
        assert_eq!(items[0]["type"], "uuid_parsing");
        assert_eq!(items[0]["loc"], json!(["path", "work_package_id"]));
        let items = validation_items(call(NON_V4.into(), &wpat).await).await;
        assert_eq!(items[0]["type"], "uuid_version");
        assert_forbidden(
            call(unknown.to_string(), &wpat).await,
            "Work package not found",
        )
        .await;
        assert_forbidden(
            call(id.to_owned(), "AAAAAAAAAAAAAAAAAAAAAAAA").await,
            "Invalid work package access token",
        )
        .await;
        app.access.set_download(user, DATASET, Some(Answer::Fail));
        assert_forbidden(
            call(id.to_owned(), &wpat).await,
            "Failed to check dataset access permission",
        )
        .await;
        app.access.set_download(user, DATASET, None);
        assert_forbidden(
            call(id.to_owned(), &wpat).await,
            "Download access has been revoked",
        )
        .await;
        app.access
            .set_download(user, DATASET, Some(Answer::Until(access_until)));
        assert_eq!(call(id.to_owned(), &wpat).await.status().as_u16() / 100, 2);
    }

    // Expiry: `created <= now < expires`.
    app.clock.set(truncate_ms(access_until));
    assert_forbidden(
        app.get(&format!("/work-packages/{id}"), Some(&wpat)).await,
        "Work package has expired",
    )
    .await;
    app.clock.set(created_at - TimeDelta::milliseconds(1));
    assert_forbidden(
        app.get(&format!("/work-packages/{id}"), Some(&wpat)).await,
        "Work package has expired",
    )
    .await;
}

impl TestApp {
    fn clock_now(&self) -> chrono::DateTime<Utc> {
        use tessera_work_orders::Clock;
        self.clock.now()
    }
}

#[actix_web::test]
async fn validity_is_capped_at_the_configured_days_and_wot_lifetime_is_configurable() {
    let app = TestApp::spawn_with(|c| {
        c.work_package_valid_days = 2;
        c.wot_lifetime_seconds = 90;
    })
    .await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    app.seed_dataset().await;
    let (id, wpat) = app.create_download(user, &pair, later(100)).await;
    let details: Value = app
        .get(&format!("/work-packages/{id}"), Some(&wpat))
        .await
        .json()
        .await
        .unwrap();
    let created = parse_rfc3339(details["created"].as_str().unwrap()).unwrap();
    let expires = parse_rfc3339(details["expires"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, TimeDelta::days(2));
    let resp = app
        .post_empty(
            &format!("/work-packages/{id}/files/{FILE1}/work-order-tokens"),
            Some(&wpat),
        )
        .await;
    assert_eq!(resp.headers()["cache-control"], "max-age=90, private");
    let jws = pair
        .open_base64(&resp.json::<String>().await.unwrap())
        .unwrap();
    let (_, claims) = app.keys.verify_wot(&jws);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        90
    );
}

#[actix_web::test]
async fn an_access_expiry_in_the_past_gives_a_package_that_is_already_expired() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    app.seed_dataset().await;
    let (id, wpat) = app
        .create_download(user, &pair, Utc::now() - TimeDelta::hours(1))
        .await;
    assert_forbidden(
        app.get(&format!("/work-packages/{id}"), Some(&wpat)).await,
        "Work package has expired",
    )
    .await;
}

#[actix_web::test]
async fn upload_packages_and_box_work_order_tokens() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let key = pair.public_key().to_base64();
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    let box_id = Uuid::new_v4();
    let body = json!({"type": "upload", "research_data_upload_box_id": box_id,
                      "file_ids": ["ignored"], "user_public_crypt4gh_key": key});
    app.access.set_upload(user, box_id, Some(Answer::Fail));
    assert_forbidden(
        app.post_json("/work-packages", Some(&token), &body).await,
        "Failed to check upload box access permission",
    )
    .await;
    app.access.set_upload(user, box_id, None);
    assert_forbidden(
        app.post_json("/work-packages", Some(&token), &body).await,
        "Missing upload box access permission",
    )
    .await;
    app.access
        .set_upload(user, box_id, Some(Answer::Until(later(3))));
    assert_forbidden(
        app.post_json("/work-packages", Some(&token), &body).await,
        "Cannot find research data upload box details",
    )
    .await;

    let (box_id, fub_id) = app.seed_box().await;
    let (id, wpat) = app.create_upload(user, &pair, box_id, later(3)).await;
    let details: Value = app
        .get(&format!("/work-packages/{id}"), Some(&wpat))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["type"], "upload");
    assert_eq!(details["files"], json!({}));
    assert_eq!(details["research_data_upload_box_id"], box_id.to_string());
    assert_eq!(details["file_upload_box_id"], fub_id.to_string());

    // A download token from an upload package.
    assert_forbidden(
        app.post_empty(
            &format!("/work-packages/{id}/files/{FILE1}/work-order-tokens"),
            Some(&wpat),
        )
        .await,
        "Work package type must be DOWNLOAD to obtain a download access WOT",
    )
    .await;

    let path = format!("/work-packages/{id}/boxes/{box_id}/work-order-tokens");
    let file_id = Uuid::new_v4();
    let fub = fub_id.to_string();
    let fid = file_id.to_string();
    for (request, extra) in [
        (
            json!({"work_type": "view", "alias": "ignored", "unknown": 1}),
            json!({"box_id": fub}),
        ),
        (
            json!({"work_type": "create", "alias": "a.txt"}),
            json!({"alias": "a.txt", "box_id": fub}),
        ),
        (
            json!({"work_type": "upload", "file_id": fid}),
            json!({"file_id": fid, "box_id": fub}),
        ),
        (
            json!({"work_type": "close", "file_id": fid}),
            json!({"file_id": fid, "box_id": fub}),
        ),
        (
            json!({"work_type": "delete", "file_id": fid}),
            json!({"file_id": fid, "box_id": fub}),
        ),
    ] {
        let resp = app.post_json(&path, Some(&wpat), &request).await;
        assert_eq!(resp.status(), 201, "{request}");
        assert_eq!(resp.headers()["cache-control"], "max-age=30, private");
        let jws = pair
            .open_base64(&resp.json::<String>().await.unwrap())
            .unwrap();
        let (header, claims) = app.keys.verify_wot(&jws);
        assert_eq!(header, json!({"alg": "ES256"}));
        let iat = claims["iat"].as_i64().unwrap();
        let mut want = extra.as_object().unwrap().clone();
        want.insert("work_type".into(), request["work_type"].clone());
        want.insert("user_public_crypt4gh_key".into(), json!(key));
        want.insert("iat".into(), json!(iat));
        want.insert("exp".into(), json!(iat + 30));
        assert_eq!(claims, want, "{request}");
    }

    // Body rules (422) come after the path, and both are reported together.
    let items = validation_items(
        app.post_json(
            &format!("/work-packages/not-a-uuid/boxes/{NON_V4}/work-order-tokens"),
            Some(&wpat),
            &json!({"alias": "x"}),
        )
        .await,
    )
    .await;
    let locs: Vec<&Value> = items.iter().map(|i| &i["loc"]).collect();
    assert_eq!(
        locs,
        [
            &json!(["path", "work_package_id"]),
            &json!(["path", "box_id"]),
            &json!(["body", "work_type"])
        ]
    );
    for (request, msg) in [
        (
            json!({"work_type": "create"}),
            "File alias is required for CREATE work type",
        ),
        (
            json!({"work_type": "create", "alias": ""}),
            "File alias is required for CREATE work type",
        ),
        (
            json!({"work_type": "upload"}),
            "File ID is required for UPLOAD, CLOSE, DELETE work types",
        ),
        (
            json!({"work_type": "close", "alias": "x"}),
            "File ID is required for UPLOAD, CLOSE, DELETE work types",
        ),
        (
            json!({"work_type": "delete"}),
            "File ID is required for UPLOAD, CLOSE, DELETE work types",
        ),
    ] {
        let items = validation_items(app.post_json(&path, Some(&wpat), &request).await).await;
        assert_eq!(
            items,
            vec![json!({"type": "value_error", "loc": ["body"],
                "msg": format!("Value error, {msg}"), "input": request, "ctx": {"error": {}}})]
        );
    }
    let items = validation_items(
        app.post_json(&path, Some(&wpat), &json!({"work_type": "download"}))
            .await,
    )
    .await;
    assert_eq!(items[0]["type"], "enum");
    assert_eq!(
        items[0]["msg"],
        "Input should be 'create', 'upload', 'close', 'delete' or 'view'"
    );
    let items = validation_items(
        app.post_json(
            &path,
            Some(&wpat),
            &json!({"work_type": "upload", "file_id": NON_V4}),
        )
        .await,
    )
    .await;
    assert_eq!(items[0]["type"], "uuid_version");
    assert_eq!(items[0]["loc"], json!(["body", "file_id"]));
    assert_eq!(
        validation_items(app.post_empty(&path, Some(&wpat)).await).await,
        vec![json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null})]
    );

    // The box in the URL must be the package's research data upload box.
    assert_forbidden(
        app.post_json(
            &format!("/work-packages/{id}/boxes/{fub_id}/work-order-tokens"),
            Some(&wpat),
            &json!({"work_type": "view"}),
        )
        .await,
        "Specified box ID is incorrect.",
    )
    .await;
    // The shared check applies (upload wording).
    app.access.set_upload(user, box_id, Some(Answer::Fail));
    assert_forbidden(
        app.post_json(&path, Some(&wpat), &json!({"work_type": "view"}))
            .await,
        "Failed to check upload box access permission",
    )
    .await;
    app.access.set_upload(user, box_id, None);
    assert_forbidden(
        app.post_json(&path, Some(&wpat), &json!({"work_type": "view"}))
            .await,
        "Upload access has been revoked",
    )
    .await;
    assert_forbidden(
        app.get(&format!("/work-packages/{id}"), Some(&wpat)).await,
        "Upload access has been revoked",
    )
    .await;
    assert_not_authenticated(
        app.post_json(&path, None, &json!({"work_type": "view"}))
            .await,
    )
    .await;
}

#[actix_web::test]
async fn user_datasets_and_boxes() {
    let app = TestApp::spawn().await;
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    app.seed_dataset().await;
    let (box_id, fub_id) = app.seed_box().await;
    let (t1, t2) = (later(3), later(4).with_nanosecond(0).unwrap());
    // The access API's order is kept; ids unknown here are skipped.
    app.access
        .set_download_list(vec![("GHGAD-unknown".into(), t1), (DATASET.into(), t2)]);
    app.access
        .set_upload_list(vec![(Uuid::new_v4(), t1), (box_id, t1)]);

    let resp = app
        .get(&format!("/users/{user}/datasets"), Some(&token))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"id": DATASET, "stage": "download", "title": "A dataset",
            "description": "for tests",
            "files": [{"accession": FILE1, "extension": ".json"},
                      {"accession": FILE2, "extension": ".csv"},
                      {"accession": FILE3, "extension": ".bam"}],
            "expires": format_pydantic(&t2)}])
    );
    let resp = app.get(&format!("/users/{user}/boxes"), Some(&token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!([{"id": box_id, "file_upload_box_id": fub_id, "title": "A box",
            "description": null, "expires": format_pydantic(&t1)}])
    );
    // The upper-case path id is normalised and still matches.
    let upper = user.to_string().to_uppercase();
    let resp = app
        .get(&format!("/users/{upper}/datasets"), Some(&token))
        .await;
    assert_eq!(resp.status(), 200);

    for (path, not_authorized, failed) in [
        (
            "datasets",
            "Not authorized to get datasets",
            "Failed to fetch accessible datasets with expiration",
        ),
        (
            "boxes",
            "Not authorized to get upload boxes",
            "Failed to fetch accessible upload boxes with expiration",
        ),
    ] {
        assert_not_authenticated(app.get(&format!("/users/{user}/{path}"), None).await).await;
        assert_invalid_credentials(
            app.get(&format!("/users/{user}/{path}"), Some("a.b.c"))
                .await,
        )
        .await;
        let items = validation_items(
            app.get(&format!("/users/{NON_V4}/{path}"), Some(&token))
                .await,
        )
        .await;
        assert_eq!(items[0]["loc"], json!(["path", "user_id"]));
        assert_forbidden(
            app.get(&format!("/users/{}/{path}", Uuid::new_v4()), Some(&token))
                .await,
            not_authorized,
        )
        .await;
        // An upper-case id in the token never matches (the comparison is exact).
        let upper_token = app.keys.token(&upper);
        assert_forbidden(
            app.get(&format!("/users/{user}/{path}"), Some(&upper_token))
                .await,
            not_authorized,
        )
        .await;
        app.access.fail_lists(true);
        assert_forbidden(
            app.get(&format!("/users/{user}/{path}"), Some(&token))
                .await,
            failed,
        )
        .await;
        app.access.fail_lists(false);
    }
}

#[actix_web::test]
async fn listing_and_deleting_own_work_packages() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    let other = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    let other_token = app.keys.token(&other.to_string());
    app.seed_dataset().await;
    let (first, first_wpat) = app.create_download(user, &pair, later(5)).await;
    app.clock.set(app.clock_now() + TimeDelta::seconds(1));
    let (second, _) = app.create_download(user, &pair, later(5)).await;
    let (others, _) = app.create_download(other, &pair, later(5)).await;

    let resp = app
        .get(&format!("/users/{user}/work-packages"), Some(&token))
        .await;
    assert_eq!(resp.status(), 200);
    let listed: Vec<Value> = resp.json().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    let keys: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "type",
            "dataset_id",
            "files",
            "research_data_upload_box_id",
            "file_upload_box_id",
            "created",
            "expires"
        ]
    );
    assert_not_authenticated(app.get(&format!("/users/{user}/work-packages"), None).await).await;
    assert_forbidden(
        app.get(&format!("/users/{user}/work-packages"), Some(&other_token))
            .await,
        "Not authorized to get work packages",
    )
    .await;

    // Deleting: someone else's package and an unknown one look the same.
    assert_forbidden(
        app.delete(&format!("/work-packages/{others}"), Some(&token))
            .await,
        "Work package not found",
    )
    .await;
    assert_forbidden(
        app.delete(&format!("/work-packages/{}", Uuid::new_v4()), Some(&token))
            .await,
        "Work package not found",
    )
    .await;
    assert_not_authenticated(app.delete(&format!("/work-packages/{first}"), None).await).await;
    assert_invalid_credentials(
        app.delete(&format!("/work-packages/{first}"), Some("x.y.z"))
            .await,
    )
    .await;
    assert_eq!(
        validation_items(app.delete("/work-packages/nope", Some(&token)).await).await[0]["type"],
        "uuid_parsing"
    );
    // By the owner's internal token.
    let resp = app
        .delete(&format!("/work-packages/{second}"), Some(&token))
        .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    // By the package's access token (wrong one first).
    assert_forbidden(
        app.delete(
            &format!("/work-packages/{first}"),
            Some("AAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await,
        "Invalid work package access token",
    )
    .await;
    let resp = app
        .delete(&format!("/work-packages/{first}"), Some(&first_wpat))
        .await;
    assert_eq!(resp.status(), 204);
    assert_forbidden(
        app.get(&format!("/work-packages/{first}"), Some(&first_wpat))
            .await,
        "Work package not found",
    )
    .await;
    let listed: Vec<Value> = app
        .get(&format!("/users/{user}/work-packages"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
}

#[actix_web::test]
async fn expired_packages_are_purged_only_when_configured() {
    let app = TestApp::spawn_with(|c| c.purge_retention_days = Some(1)).await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    app.seed_dataset().await;
    app.create_download(user, &pair, later(2)).await;
    let count = || {
        let token = token.clone();
        let path = format!("/users/{user}/work-packages");
        let app = &app;
        async move {
            app.get(&path, Some(&token))
                .await
                .json::<Vec<Value>>()
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(count().await, 1);
    // Expired, but not yet for a day: the purge task's first run keeps it.
    app.clock.set(later(2) + TimeDelta::hours(1));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = app.running.core().spawn_purge(stopped.clone()).unwrap();
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(count().await, 1);
    // A day after expiry, the first run deletes it.
    app.clock.set(later(4));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = app.running.core().spawn_purge(stopped).unwrap();
    let mut left = 1;
    for _ in 0..200 {
        left = count().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0);
    stop.send(true).unwrap();
    task.await.unwrap();

    // Without a retention there is no purge task.
    let keep = TestApp::spawn().await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    assert!(keep.running.core().spawn_purge(stopped).is_none());
}

/// The `Link` header's next-page path, if any.
fn next_page(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().unwrap();
    let url = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    Some(url.to_owned())
}

#[actix_web::test]
async fn own_work_packages_are_paged() {
    let app = TestApp::spawn().await;
    let pair = Crypt4ghKeyPair::generate();
    let user = Uuid::new_v4();
    let token = app.keys.token(&user.to_string());
    app.seed_dataset().await;
    let mut ids = Vec::new();
    for _ in 0..(wps::rest::DEFAULT_PAGE_SIZE + 3) {
        ids.push(app.create_download(user, &pair, later(5)).await.0);
        app.clock.set(app.clock_now() + TimeDelta::seconds(1));
    }
    let listed_ids = |listed: &[Value]| -> Vec<String> {
        listed
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = format!("/users/{user}/work-packages");
    // The default page: the first 100, and where the rest is.
    let resp = app.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let next = next_page(&resp).expect("a next page");
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(listed_ids(&listed), ids[..wps::rest::DEFAULT_PAGE_SIZE]);
    assert_eq!(
        next,
        format!(
            "{path}?limit={}&after={}",
            wps::rest::DEFAULT_PAGE_SIZE,
            ids[wps::rest::DEFAULT_PAGE_SIZE - 1]
        )
    );
    let resp = app.get(&next, Some(&token)).await;
    assert!(next_page(&resp).is_none(), "the last page");
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(listed_ids(&listed), ids[wps::rest::DEFAULT_PAGE_SIZE..]);
    // Small pages, followed to the end, give every package once, in order.
    let mut seen = Vec::new();
    let mut page = Some(format!("{path}?limit=40"));
    while let Some(url) = page {
        let resp = app.get(&url, Some(&token)).await;
        assert_eq!(resp.status(), 200);
        page = next_page(&resp);
        let listed: Vec<Value> = resp.json().await.unwrap();
        assert!(listed.len() <= 40);
        seen.extend(listed_ids(&listed));
    }
    assert_eq!(seen, ids);
    // Bad parameters are FastAPI-shaped 422s; path and query errors together.
    let unknown = Uuid::new_v4();
    for (query, kind) in [
        ("limit=0", "greater_than_equal"),
        ("limit=1001", "less_than_equal"),
        ("limit=x", "int_parsing"),
        ("after=nope", "uuid_parsing"),
        (&*format!("after={unknown}"), "value_error"),
    ] {
        let items = validation_items(app.get(&format!("{path}?{query}"), Some(&token)).await).await;
        assert_eq!(items.len(), 1, "{query}: {items:?}");
        assert_eq!(items[0]["type"], kind, "{query}");
        assert_eq!(items[0]["loc"][0], "query", "{query}");
    }
    let items = validation_items(
        app.get("/users/nope/work-packages?limit=0", Some(&token))
            .await,
    )
    .await;
    assert_eq!(items.len(), 2, "{items:?}");
}
