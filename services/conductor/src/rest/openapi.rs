//! The OpenAPI document: the routes and their parameters, for the docs page. The API tests
//! check the real bodies.

#![allow(dead_code)]

use utoipa::OpenApi;

#[utoipa::path(get, path = "/user/check", tag = "user",
    params(("jwt" = Option<String>, Query, description = "A user token"),
           ("next" = Option<String>, Query, description = "Where a login returns"),
           ("callback" = Option<String>, Query, description = "JSONP callback")),
    responses((status = 200, description = "`{authenticated: true, profile}` or `{authenticated: false, providers: {name: {url}}}`")))]
fn check() {}

#[utoipa::path(get, path = "/user/authorize", tag = "user",
    params(("jwt" = Option<String>, Query, description = "A user token"),
           ("api_key" = Option<String>, Query, description = "An API key instead of a token"),
           ("service" = String, Query, description = "The service, e.g. os.datastore")),
    responses((status = 200, description = "`{userid, permissions, service, token}`, or `{permissions: {}}`")))]
fn authorize() {}

#[utoipa::path(post, path = "/user/update", tag = "user",
    params(("jwt" = String, Query, description = "A user token"),
           ("username" = String, Query, description = "The username (settable once)")),
    responses((status = 200, description = "`{success: bool[, error]}`")))]
fn update() {}

#[utoipa::path(get, path = "/user/public-key", tag = "user",
    responses((status = 200, description = "The PEM public key of permission tokens", content_type = "text/plain")))]
fn public_key() {}

#[utoipa::path(get, path = "/user/lib", tag = "user",
    responses((status = 200, description = "The JavaScript auth client", content_type = "text/javascript")))]
fn lib() {}

#[utoipa::path(get, path = "/oauth/{provider}_callback", tag = "user",
    params(("provider" = String, Path, description = "The provider's name"),
           ("code" = String, Query, description = "The authorization code"),
           ("state" = String, Query, description = "The login state")),
    responses((status = 302, description = "To `next` with `jwt` (without after a failed login)"),
              (status = 400, description = "Bad or expired state, or `next` not on an allowed origin")))]
fn callback() {}

#[utoipa::path(post, path = "/datastore/authorize", tag = "datastore",
    params(("Auth-Token" = Option<String>, Header, description = "A permission token of os.datastore"),
           ("jwt" = Option<String>, Query, description = "The same, as a parameter")),
    request_body(content = String, description = "`{metadata: {owner, name}, filedata: {path: {length, md5, name, type?}}}`"),
    responses((status = 200, description = "`{filedata: {path: {md5, name, length, type, upload_url, upload_query, upload_headers}}}`"),
              (status = 400, description = "Bad JSON or fields"),
              (status = 401, description = "No or bad token, another service, no permission, another owner"),
              (status = 413, description = "Body too large")))]
fn datastore_authorize() {}

#[utoipa::path(get, path = "/datastore/info", tag = "datastore",
    params(("Auth-Token" = Option<String>, Header, description = "A permission token of os.datastore")),
    responses((status = 200, description = "`{prefixes: [url]}`"), (status = 401, description = "No or bad token")))]
fn datastore_info() {}

#[utoipa::path(get, path = "/admin/permissions", tag = "admin",
    params(("userid" = Option<String>, Query, description = "Only this user"),
           ("service" = Option<String>, Query, description = "Only this service")),
    responses((status = 200, description = "`{permissions: [row]}`"), (status = 401, description = "No token"), (status = 403, description = "Not an admin")))]
fn list_permissions() {}

#[utoipa::path(post, path = "/admin/permissions", tag = "admin",
    request_body(content = String, description = "`{userid, service, permissions: {name: value}}`"),
    responses((status = 200, description = "The row"), (status = 400, description = "Bad body"), (status = 403, description = "Not an admin")))]
fn grant_permissions() {}

#[utoipa::path(delete, path = "/admin/permissions", tag = "admin",
    params(("userid" = String, Query, description = "The user or *"),
           ("service" = String, Query, description = "The service"),
           ("permission" = Option<Vec<String>>, Query, description = "Names to remove; none removes the row")),
    responses((status = 200, description = "The row left"), (status = 404, description = "No such row"), (status = 403, description = "Not an admin")))]
fn revoke_permissions() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OpenSpending conductor",
        description = "Login, permission tokens and datastore uploads (os-conductor)."
    ),
    paths(
        check,
        authorize,
        update,
        public_key,
        lib,
        callback,
        datastore_authorize,
        datastore_info,
        list_permissions,
        grant_permissions,
        revoke_permissions
    )
)]
struct Doc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
