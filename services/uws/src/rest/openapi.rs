//! The OpenAPI document, built from a table of the routes: the bodies are the original's
//! free-form JSON envelope, which the API tests check exactly.

use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, ResponseBuilder};

/// Method, path, tag, summary.
const ROUTES: &[(HttpMethod, &str, &str, &str)] = &[
    (
        HttpMethod::Post,
        "/tokens/",
        "tokens",
        "Log a user in (local: client_token + user_info; introspection: auth_token)",
    ),
    (
        HttpMethod::Delete,
        "/tokens/",
        "tokens",
        "Revoke the caller's token",
    ),
    (
        HttpMethod::Get,
        "/status/",
        "status",
        "Readiness: version, build and dependencies",
    ),
    (
        HttpMethod::Get,
        "/workspaces/",
        "workspaces",
        "The caller's workspaces, filtered by name, description, status",
    ),
    (
        HttpMethod::Post,
        "/workspaces/",
        "workspaces",
        "Create a workspace with files and symlinks",
    ),
    (
        HttpMethod::Get,
        "/workspaces/{id}/",
        "workspaces",
        "One of the caller's workspaces (an empty list when not found)",
    ),
    (
        HttpMethod::Put,
        "/workspaces/{id}/",
        "workspaces",
        "Update name, description, default job type; add files and symlinks",
    ),
    (
        HttpMethod::Delete,
        "/workspaces/{id}/",
        "workspaces",
        "Queue a workspace for deletion",
    ),
    (
        HttpMethod::Put,
        "/workspaces/{id}/upload/",
        "workspaces",
        "Upload files (multipart) into the workspace root",
    ),
    (
        HttpMethod::Get,
        "/shared_workspaces/",
        "sharing",
        "Shares sent and received (is_accepted=true|false)",
    ),
    (
        HttpMethod::Post,
        "/shared_workspaces/",
        "sharing",
        "Share a workspace with users (a copy each)",
    ),
    (
        HttpMethod::Get,
        "/shared_workspaces/{id}/",
        "sharing",
        "One share, by the copy's workspace id",
    ),
    (
        HttpMethod::Put,
        "/shared_workspaces/{id}/accept/",
        "sharing",
        "Accept a share",
    ),
    (
        HttpMethod::Delete,
        "/shared_workspaces/{id}/",
        "sharing",
        "Withdraw or decline an unaccepted share",
    ),
    (
        HttpMethod::Get,
        "/users/",
        "users",
        "Other users, searched by name or e-mail (search=)",
    ),
    (
        HttpMethod::Get,
        "/job_types/",
        "config",
        "The available job types",
    ),
    (
        HttpMethod::Get,
        "/parameters/",
        "config",
        "The resource options users may set",
    ),
    (
        HttpMethod::Get,
        "/passthrough/{host}/{port}/{path}",
        "jobs",
        "Reverse proxy (any method, and websockets) to the web server of one of the caller's \
         running jobs (UWS-Authorization, or uws_token= once, then its cookie); 404 otherwise",
    ),
];

/// The API description (the HTTP stack adds `/health`).
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new().build();
    for (method, path, tag, summary) in ROUTES {
        let operation = OperationBuilder::new()
            .tag(*tag)
            .summary(Some(*summary))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("{\"message\", \"success\": true, \"data\"}")
                    .build(),
            )
            .response(
                "400",
                ResponseBuilder::new()
                    .description("{\"success\": false, \"message\"}")
                    .build(),
            )
            .response(
                "401",
                ResponseBuilder::new()
                    .description("Missing or bad UWS-Authorization (WWW-Authenticate: Token)")
                    .build(),
            )
            .build();
        paths.add_path_operation(*path, vec![method.clone()], operation);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("User Workspaces Server")
                .description(Some(
                    "HuBMAP's User Workspaces Server: tokens, workspaces on disk, sharing. \
                     Authenticate with `UWS-Authorization: Token <40 hex>`.",
                ))
                .version(crate::VERSION)
                .build(),
        )
        .paths(paths)
        .build()
}
