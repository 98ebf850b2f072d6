//! The OpenAPI document. The schemas mirror the wire shapes for documentation only; the API
//! tests check the real bodies.

#![allow(dead_code)]

use tessera_http::BearerScheme;
use utoipa::{OpenApi, ToSchema};

/// An error: `{"message": …}` (400 for a bad `expires` is `{"error": …}`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Message {
    /// What went wrong.
    message: String,
}

/// The 400 of a bad `expires`: `{"error": …}`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// `expires has to be an integer`.
    error: String,
}

/// A 400 of `/token/`: `{"error": …}` for a bad `expires`, else `{"message": …}`.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum BadRequest {
    Message(Message),
    Error(ErrorBody),
}

/// `GET /token/`.
#[derive(Debug, ToSchema)]
pub struct Token {
    /// An access token of the IdP.
    token: String,
}

/// `GET /_version`.
#[derive(Debug, ToSchema)]
pub struct Version {
    /// The service version.
    version: String,
    /// The commit it was built from.
    commit: String,
}

/// `GET /oauth2/authorize` without a redirect.
#[derive(Debug, ToSchema)]
pub struct Success {
    /// `connected with fence`.
    success: String,
}

/// A login URL of an external IdP.
#[derive(Debug, ToSchema)]
pub struct ProviderUrl {
    /// The display name.
    name: String,
    /// `<wts_base_url>oauth2/authorization_url?idp=<idp>`.
    url: String,
}

/// An external IdP.
#[derive(Debug, ToSchema)]
pub struct Provider {
    /// The display name.
    name: String,
    /// The IdP name.
    idp: String,
    /// The configured base URL.
    base_url: String,
    /// Where to log in.
    urls: Vec<ProviderUrl>,
    /// Time left on the caller's refresh token ("29 days", "5 hours"); null when none.
    refresh_token_expiration: Option<String>,
}

/// `GET /external_oidc/`.
#[derive(Debug, ToSchema)]
pub struct Providers {
    /// Every external IdP.
    providers: Vec<Provider>,
}

/// The scheme the routes' `security(("bearer" = []))` refers to.
const BEARER: BearerScheme = BearerScheme("bearer");

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Workspace Token Service",
        description = "Refresh tokens per user and IdP, access tokens on demand (Gen3 WTS, wire-compatible)",
    ),
    paths(
        super::status,
        super::version,
        super::token,
        super::authorization_url,
        super::authorize,
        super::connected,
        super::logout,
        super::external_oidc,
    ),
    modifiers(&BEARER),
)]
pub struct ApiDoc;

/// The OpenAPI document of the routes (the HTTP stack adds `/health`).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // `/aggregate/{path}` matches any sub-path, which a path macro cannot declare.
    use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
    let json = |schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>| {
        ContentBuilder::new().schema(Some(schema)).build()
    };
    let message = || json(Ref::from_schema_name("Message").into());
    let operation = OperationBuilder::new()
        .operation_id(Some("aggregate"))
        .tag("aggregate")
        .summary(Some("Call an allowlisted endpoint on every commons"))
        .parameter(
            ParameterBuilder::new()
                .name("path")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The endpoint on each commons, without its leading `/`; it must be in `aggregate_endpoint_allowlist`",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .parameter(
            ParameterBuilder::new()
                .name("filters")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Keep only these top-level keys of each answer"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .response(
            "200",
            ResponseBuilder::new()
                .description("Each commons host to its answer, or null")
                .content(
                    "application/json",
                    json(ObjectBuilder::new().schema_type(Type::Object).into()),
                )
                .build(),
        )
        .response(
            "401",
            ResponseBuilder::new()
                .description("Invalid token")
                .content("application/json", message())
                .build(),
        )
        .response(
            "404",
            ResponseBuilder::new()
                .description("Not in the allowlist")
                .content("application/json", message())
                .build(),
        )
        .response(
            "500",
            ResponseBuilder::new()
                .description("A failure of this service")
                .content("application/json", message())
                .build(),
        )
        .security(utoipa::openapi::security::SecurityRequirement::default())
        .security(utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        ))
        .build();
    doc.paths.add_path_operation(
        "/aggregate/{path}",
        vec![utoipa::openapi::path::HttpMethod::Get],
        operation,
    );
    doc
}
