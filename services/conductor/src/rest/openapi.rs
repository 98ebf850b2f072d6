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

#[utoipa::path(post, path = "/package/upload", tag = "package",
    params(("jwt" = String, Query, description = "A permission token"),
           ("datapackage" = String, Query, description = "The URL of the uploaded datapackage.json, under this datastore")),
    responses((status = 200, description = "`{progress, status}` of the job, or `{status: fail, error: unauthorized}` for a bad token"),
              (status = 400, description = "No URL, or a URL outside the datastore: `{status: fail, error}`"),
              (status = 403, description = "No jwt, or another user's package: `{status: fail, error}`")))]
fn package_upload() {}

#[utoipa::path(get, path = "/package/status", tag = "package",
    params(("datapackage" = String, Query, description = "The datapackage URL")),
    responses((status = 200, description = "`{status: queued|loading-data|done|fail, progress: 0-1[, error]}`"),
              (status = 400, description = "No URL"), (status = 404, description = "No load of this URL")))]
fn package_status() {}

#[utoipa::path(post, path = "/package/publish", tag = "package",
    params(("jwt" = String, Query, description = "A permission token"),
           ("id" = String, Query, description = "`<owner>:<name>`"),
           ("publish" = String, Query, description = "true, false or toggle")),
    responses((status = 200, description = "`{success: true, published}`, `{success: false, error}` for an unknown package, `null` for a bad token"),
              (status = 400, description = "No id or a bad publish value"), (status = 403, description = "No jwt, or not the owner")))]
fn package_publish() {}

#[utoipa::path(post, path = "/package/delete", tag = "package",
    params(("jwt" = String, Query, description = "A permission token"),
           ("id" = String, Query, description = "`<owner>:<name>`"),
           ("purge" = Option<bool>, Query, description = "Also delete the stored objects")),
    responses((status = 200, description = "`{success: bool}`, `null` for a bad token"),
              (status = 400, description = "No id or a bad purge value"), (status = 403, description = "No jwt, or not the owner")))]
fn package_delete() {}

#[utoipa::path(post, path = "/package/update_params", tag = "package",
    params(("jwt" = String, Query, description = "A permission token"),
           ("id" = String, Query, description = "`<owner>:<name>`")),
    request_body(content = String, description = "`{params: string, …}`: becomes package.defaultParams"),
    responses((status = 200, description = "`{success: true}`, `{success: false, error}` for an unknown package, `null` for a bad token"),
              (status = 400, description = "No string params"), (status = 403, description = "No jwt, or not the owner")))]
fn package_update_params() {}

#[utoipa::path(post, path = "/package/run-hooks", tag = "package",
    params(("jwt" = String, Query, description = "A permission token"),
           ("id" = String, Query, description = "`<owner>:<name>`"),
           ("pipeline" = String, Query, description = "One of the configured pipeline URLs")),
    responses((status = 200, description = "`{success: true, response, payload}`, `null` for a bad token"),
              (status = 400, description = "No id, no pipeline or one not configured"), (status = 403, description = "Not the owner"),
              (status = 404, description = "No such package"), (status = 502, description = "The pipeline failed")))]
fn package_run_hooks() {}

#[utoipa::path(get, path = "/package/stats", tag = "package",
    responses((status = 200, description = "`{num_packages, num_records, num_countries}`")))]
fn package_stats() {}

#[utoipa::path(get, path = "/search/{kind}", tag = "package",
    params(("kind" = String, Path, description = "package"),
           ("q" = Option<String>, Query, description = "JSON-encoded text, e.g. \"budget\""),
           ("jwt" = Option<String>, Query, description = "A user token: its private packages too"),
           ("size" = Option<usize>, Query, description = "Results (default 100, capped)"),
           ("from" = Option<usize>, Query, description = "Results to skip"),
           ("package.countryCode" = Option<String>, Query, description = "Any field of id, model, package, origin_url, loaded, last_update by dotted path, JSON-encoded; repeated: any of the values")),
    responses((status = 200, description = "`[{id, model, package, origin_url, loaded, last_update}]`"),
              (status = 400, description = "Another kind, a parameter that is not JSON, a bad size or from")))]
fn search() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OpenSpending conductor",
        description = "Login, permission tokens, datastore uploads, package loading and search (os-conductor)."
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
        revoke_permissions,
        package_upload,
        package_status,
        package_publish,
        package_delete,
        package_update_params,
        package_run_hooks,
        package_stats,
        search
    )
)]
struct Doc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
