//! The full stack through `actix_web::test`, plus one real server on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use std::io::{Read, Write};

use actix_web::http::{StatusCode, header};
use actix_web::test::TestRequest;
use actix_web::{HttpResponse, test, web};
use common::{correlation_routes, header_value, openapi, stack};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_http::{HttpConfig, HttpStack};

#[derive(Deserialize)]
struct Thing {
    name: String,
}

async fn item(path: web::Path<u32>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "id": path.into_inner() }))
}

async fn create_thing(body: web::Json<Thing>) -> HttpResponse {
    HttpResponse::Created().json(json!({ "name": body.name }))
}

#[actix_web::get("/macro")]
async fn macro_get() -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/items/{id}", web::get().to(item))
        .service(web::resource("/things").route(web::post().to(create_thing)))
        .service(macro_get)
        .configure(correlation_routes);
}

fn uuid4_of(res: &actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> String {
    let value = res
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = uuid::Uuid::parse_str(&value).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(value, parsed.hyphenated().to_string(), "normalised form");
    value
}

#[actix_web::test]
async fn health_answers_ok_with_a_correlation_id() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let res = TestRequest::get().uri("/health").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    uuid4_of(&res);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body, json!({ "status": "OK" }));
}

#[actix_web::test]
async fn correlation_id_is_echoed_normalised_or_replaced() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let upper = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
    let req = test::TestRequest::get()
        .uri("/whoami")
        .insert_header(("X-Request-Id", upper))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(uuid4_of(&res), upper.to_lowercase());
    let body = test::read_body(res).await;
    assert_eq!(body, upper.to_lowercase(), "handlers see the same id");

    for bad in ["not-a-uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"] {
        let req = test::TestRequest::get()
            .uri("/whoami")
            .insert_header(("X-Request-Id", bad))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::OK);
        let id = uuid4_of(&res);
        assert_ne!(id, bad);
        assert_eq!(test::read_body(res).await, id);
    }

    let one = TestRequest::get().uri("/health").send_request(&app).await;
    let two = TestRequest::get().uri("/health").send_request(&app).await;
    assert_ne!(uuid4_of(&one), uuid4_of(&two), "fresh per request");
}

#[actix_web::test]
async fn invalid_correlation_id_is_rejected_when_generation_is_off() {
    let config = HttpConfig {
        generate_correlation_id: false,
        ..HttpConfig::default()
    };
    let app = test::init_service(stack(config).app(routes)).await;

    let res = TestRequest::get().uri("/health").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(header_value(&res, "x-request-id").is_none());
    let body: Value = test::read_body_json(res).await;
    assert_eq!(
        body,
        json!({
            "exception_id": "invalidCorrelationId",
            "description": "Invalid or missing correlation ID.",
            "data": { "correlation_id": "" }
        })
    );

    let req = test::TestRequest::get()
        .uri("/health")
        .insert_header(("X-Request-Id", "abc"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["data"], json!({ "correlation_id": "abc" }));

    let good = "5a7ab2a1-0d3e-4b4f-8f0e-3c1a2b3c4d5e";
    let req = test::TestRequest::get()
        .uri("/health")
        .insert_header(("X-Request-Id", good))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(uuid4_of(&res), good);
}

#[actix_web::test]
async fn openapi_document_lists_health() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let res = TestRequest::get()
        .uri("/openapi.json")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_value(&res, header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let doc: Value = test::read_body_json(res).await;
    assert_eq!(doc["info"]["title"], "test service");
    assert!(doc["paths"]["/health"]["get"].is_object(), "{doc}");
    assert!(doc.get("servers").is_none(), "no root path, no servers");
}

#[actix_web::test]
async fn docs_page_is_served() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    // The page at `/docs` itself, as FastAPI serves it; its assets resolve under `/docs/`.
    let res = TestRequest::get().uri("/docs").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = header_value(&res, header::CONTENT_TYPE).unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(page.contains(r#"<base href="/docs/">"#), "{page}");
    assert!(page.contains("swagger-initializer.js"), "{page}");
    let res = TestRequest::get().uri("/docs/").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = header_value(&res, header::CONTENT_TYPE).unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let res = TestRequest::get()
        .uri("/docs/swagger-initializer.js")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let js = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(js.contains("/openapi.json"), "{js}");
}

#[actix_web::test]
async fn disabled_docs_and_openapi_are_not_found() {
    let config = HttpConfig {
        openapi_url: String::new(),
        ..HttpConfig::default()
    };
    let app = test::init_service(stack(config).app(routes)).await;
    for uri in ["/openapi.json", "/docs", "/docs/"] {
        let res = TestRequest::get().uri(uri).send_request(&app).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
    }
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let stack = stack(HttpConfig::default());
    let app = test::init_service(stack.app(routes)).await;
    for id in [1, 2] {
        let uri = format!("/items/{id}");
        let res = TestRequest::get().uri(&uri).send_request(&app).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    TestRequest::get()
        .uri("/random/path")
        .send_request(&app)
        .await;
    assert_eq!(stack.metrics().request_count("GET", "/items/{id}", 200), 2);

    let res = TestRequest::get().uri("/metrics").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/items/{id}",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="<unmatched>",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/items/{id}"} 2"#),
        "{text}"
    );
    assert!(!text.contains("/items/1"), "raw paths stay out of labels");
    assert!(!text.contains("/random/path"));
    assert!(text.contains("process_start_time_seconds "));
}

#[actix_web::test]
async fn unknown_route_and_wrong_method_have_json_bodies() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let res = TestRequest::get().uri("/nope").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(header_value(&res, "x-request-id").is_some());
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body, json!({ "detail": "Not Found" }));

    // A resource with routes: actix knows the method is wrong.
    let res = TestRequest::get().uri("/things").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header_value(&res, header::ALLOW).unwrap(), "POST");
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body, json!({ "detail": "Method Not Allowed" }));

    // Guarded macro routes and the built-in endpoints: found by path. Documented routes
    // and the built-in ones say what is allowed (RFC 9110); undocumented ones cannot.
    for (method, uri, allow) in [
        ("POST", "/macro", None),
        ("POST", "/items/3", None),
        ("DELETE", "/health", Some("GET")),
        ("TRACE", "/health", Some("GET")),
        ("POST", "/openapi.json", Some("GET")),
        ("PUT", "/metrics", Some("GET")),
    ] {
        let req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert_eq!(header_value(&res, header::ALLOW), allow, "{method} {uri}");
        let body: Value = test::read_body_json(res).await;
        assert_eq!(body, json!({ "detail": "Method Not Allowed" }));
    }
}

#[actix_web::test]
async fn bad_json_body_is_a_fastapi_422() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let req = test::TestRequest::post()
        .uri("/things")
        .insert_header(header::ContentType::json())
        .set_payload(r#"{"name": }"#)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(header_value(&res, "x-request-id").is_some());
    let body: Value = test::read_body_json(res).await;
    assert_eq!(
        body,
        json!({
            "detail": [{
                "type": "json_invalid",
                "loc": ["body", 9],
                "msg": "JSON decode error",
                "input": {},
                "ctx": { "error": "expected value" }
            }]
        })
    );

    let req = test::TestRequest::post()
        .uri("/things")
        .insert_header(header::ContentType::json())
        .set_payload("{}")
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["detail"][0]["type"], "missing");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));

    let req = test::TestRequest::post()
        .uri("/things")
        .insert_header(header::ContentType::json())
        .set_payload(r#"{"name":"x"}"#)
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::CREATED
    );
}

#[actix_web::test]
async fn bad_path_parameter_is_a_422() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let res = TestRequest::get()
        .uri("/items/abc")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["detail"][0]["loc"], json!(["path"]));
}

#[actix_web::test]
async fn internal_error_hides_the_cause() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let res = TestRequest::get().uri("/boom").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body, json!({ "message": "Internal Server Error." }));
}

#[actix_web::test]
async fn cors_preflight_for_the_configured_origin_only() {
    let origin = "https://portal.example.org";
    let config = HttpConfig {
        cors_allowed_origins: Some(vec![origin.into()]),
        cors_allowed_methods: Some(vec!["GET".into(), "POST".into()]),
        cors_exposed_headers: Some(vec!["x-request-id".into()]),
        ..HttpConfig::default()
    };
    let app = test::init_service(stack(config).app(routes)).await;
    let preflight = |from: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/things")
            .insert_header((header::ORIGIN, from.to_owned()))
            .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
            .to_request()
    };
    let res = test::call_service(&app, preflight(origin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_value(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        origin
    );
    let methods = header_value(&res, header::ACCESS_CONTROL_ALLOW_METHODS).unwrap();
    assert!(methods.contains("POST"), "{methods}");

    let res = test::call_service(&app, preflight("https://evil.example")).await;
    assert!(
        header_value(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "foreign origin gets no CORS headers"
    );

    let req = test::TestRequest::get()
        .uri("/health")
        .insert_header((header::ORIGIN, origin))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_value(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        origin
    );
    let exposed = header_value(&res, header::ACCESS_CONTROL_EXPOSE_HEADERS).unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[actix_web::test]
async fn no_cors_headers_without_configured_origins() {
    let app = test::init_service(stack(HttpConfig::default()).app(routes)).await;
    let req = test::TestRequest::get()
        .uri("/health")
        .insert_header((header::ORIGIN, "https://portal.example.org"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header_value(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[actix_web::test]
async fn invalid_config_is_rejected() {
    let bad_method = HttpConfig {
        cors_allowed_origins: Some(vec!["https://a.example".into()]),
        cors_allowed_methods: Some(vec!["GE T".into()]),
        ..HttpConfig::default()
    };
    assert!(HttpStack::new(bad_method, openapi).is_err());
    let bad_root = HttpConfig {
        api_root_path: "api".into(),
        ..HttpConfig::default()
    };
    assert!(HttpStack::new(bad_root, openapi).is_err());
}

#[actix_web::test]
async fn the_document_is_made_once_on_first_use() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let stack = HttpStack::new(HttpConfig::default(), move || {
        counted.fetch_add(1, Ordering::SeqCst);
        openapi()
    })
    .unwrap();
    let app = test::init_service(stack.app(|_| {})).await;
    let response = test::call_service(&app, TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not made at start");
    // A 405 needs the documented methods.
    let response = test::call_service(&app, TestRequest::post().uri("/health").to_request()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header_value(&response, "allow"), Some("GET"));
    let response =
        test::call_service(&app, TestRequest::get().uri("/openapi.json").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "made once");
}

#[actix_web::test]
async fn everything_lives_under_the_api_root_path() {
    let config = HttpConfig {
        api_root_path: "/api/wps/".into(),
        ..HttpConfig::default()
    };
    let stack = stack(config);
    let app = test::init_service(stack.app(routes)).await;
    let res = TestRequest::get()
        .uri("/api/wps/health")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = TestRequest::get().uri("/health").send_request(&app).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = TestRequest::get()
        .uri("/api/wps/items/5")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        stack
            .metrics()
            .request_count("GET", "/api/wps/items/{id}", 200),
        1
    );
    let res = TestRequest::get()
        .uri("/api/wps/openapi.json")
        .send_request(&app)
        .await;
    let doc: Value = test::read_body_json(res).await;
    assert_eq!(doc["servers"], json!([{ "url": "/api/wps" }]));
    let res = TestRequest::get()
        .uri("/api/wps/docs")
        .send_request(&app)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(page.contains(r#"<base href="/api/wps/docs/">"#), "{page}");
}

#[actix_web::test]
async fn real_server_binds_port_zero_and_answers_health() {
    let config = HttpConfig {
        port: 0,
        shutdown_timeout: 1,
        ..HttpConfig::default()
    };
    let server = tessera_http::serve(&config, openapi, routes).await.unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(server.url(), format!("http://{addr}"));
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.to_lowercase().contains("x-request-id: "),
        "{response}"
    );
    assert!(response.ends_with(r#"{"status":"OK"}"#), "{response}");
    server.stop(true).await.unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "port closed after stop"
    );
}
