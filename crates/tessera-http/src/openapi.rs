//! Pieces of a service's OpenAPI document that every service writes the same way.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// A `utoipa` modifier declaring an HTTP bearer security scheme under the name it holds,
/// which routes refer to with `security((<name> = []))`. The derive macro takes a path only,
/// so give it a constant:
///
/// ```
/// use tessera_http::BearerScheme;
/// use utoipa::OpenApi;
///
/// const BEARER: BearerScheme = BearerScheme("bearer");
///
/// #[derive(OpenApi)]
/// #[openapi(modifiers(&BEARER))]
/// struct ApiDoc;
///
/// let doc = ApiDoc::openapi();
/// assert!(doc.components.unwrap().security_schemes.contains_key("bearer"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BearerScheme(pub &'static str);

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            self.0,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use utoipa::openapi::{Info, OpenApi, Paths};

    use super::*;

    #[test]
    fn adds_the_named_scheme_and_keeps_the_others() {
        let mut doc = OpenApi::new(Info::new("t", "1"), Paths::new());
        BearerScheme("HTTPBearer").modify(&mut doc);
        BearerScheme("other").modify(&mut doc);
        let schemes = serde_json::to_value(&doc).unwrap()["components"]["securitySchemes"].clone();
        assert_eq!(
            schemes,
            json!({
                "HTTPBearer": {"type": "http", "scheme": "bearer"},
                "other": {"type": "http", "scheme": "bearer"},
            })
        );
    }
}
