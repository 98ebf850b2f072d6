//! The `X-Request-Id` correlation id handed to handlers.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

/// Request and response header carrying the correlation id.
pub const HEADER: &str = "x-request-id";

/// The correlation id of the current request (a UUID4), set by the request middleware.
///
/// As an extractor it never fails: outside the middleware (unit tests of a bare handler) it
/// yields a fresh id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CorrelationId(pub Uuid);

impl CorrelationId {
    /// The id set by the middleware on this request, if any.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        req.extensions().get::<Self>().copied()
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromRequest for CorrelationId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req).unwrap_or_else(|| Self(Uuid::new_v4()))))
    }
}

/// Parses a header value as a version-4 UUID in any form `uuid` accepts (any case, with or
/// without hyphens); anything else is `None`.
pub fn parse_uuid4(value: &str) -> Option<Uuid> {
    Uuid::parse_str(value.trim())
        .ok()
        .filter(|id| id.get_version_num() == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_version_4() {
        let id = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
        assert_eq!(
            parse_uuid4(id).map(|u| u.to_string()),
            Some(id.to_lowercase())
        );
        assert!(
            parse_uuid4("3f2504e0-4f89-11d3-9a0c-0305e82c3301").is_none(),
            "v1"
        );
        assert!(parse_uuid4("not-a-uuid").is_none());
        assert!(parse_uuid4("").is_none());
    }
}
