//! Compact JWS tokens: reading header and claims before verification (to pick the issuer
//! and key), and the claim helpers of both validators.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A compact JWS split and decoded, not verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl Unverified {
    /// Splits and decodes `token`; `Err` names what is malformed.
    pub fn parse(token: &str) -> Result<Self, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, _signature] = parts.as_slice() else {
            return Err(format!("a jwt has 3 parts, this one has {}", parts.len()));
        };
        Ok(Self {
            header: decode_object(header, "header")?,
            claims: decode_object(claims, "payload")?,
        })
    }

    /// A string header parameter.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("the {what} is not a json object")),
    }
}

/// A NumericDate claim as whole seconds: `Ok(None)` when absent, `Err` when not a number.
/// Fractions are dropped, as PyJWT's `int()` does.
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    // In range by the filter, so the cast is exact after flooring.
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| format!("claim {name} is out of range")),
        Some(_) => Err(format!("claim {name} must be a number")),
    }
}

/// Checks `exp` (required), `iat` and `nbf` against `now` without leeway: the token is
/// expired from the second `exp` names, and not yet valid before `nbf` and `iat`.
pub fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), String> {
    let exp = numeric_date(claims, "exp")?.ok_or("the token has no exp")?;
    if exp <= now {
        return Err(format!("the token expired at {exp}"));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now
    {
        return Err(format!("the token is not valid before {nbf}"));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now
    {
        return Err(format!("the token was issued in the future ({iat})"));
    }
    Ok(())
}

/// Whether `aud` (a string or a list of strings) contains `audience`.
pub fn audience_contains(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// Whether `scope` (a space-separated string, or Fence's list) contains `scope_name`.
pub fn scope_contains(claims: &Map<String, Value>, scope_name: &str) -> bool {
    match claims.get("scope") {
        Some(Value::String(scope)) => scope.split(' ').any(|s| s == scope_name),
        Some(Value::Array(list)) => list.iter().any(|s| s.as_str() == Some(scope_name)),
        _ => false,
    }
}

/// The string at a dotted path (`context.user.name`).
pub fn dotted_str<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    value.as_str()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn parse_reports_malformed_parts() {
        assert!(Unverified::parse("a.b").is_err());
        assert!(Unverified::parse("!.e30.x").is_err());
        assert!(
            Unverified::parse("e30.W10.x").is_err(),
            "payload [] is not an object"
        );
        let t = Unverified::parse("eyJhbGciOiJSUzI1NiJ9.e30.x").unwrap();
        assert_eq!(t.header_str("alg"), Some("RS256"));
        assert!(t.claims.is_empty());
    }

    #[test]
    fn times_have_no_leeway_and_exp_is_required() {
        let now = 1000;
        assert!(check_times(&claims(json!({"exp": 1001})), now).is_ok());
        assert!(check_times(&claims(json!({"exp": 1000.9})), now).is_err());
        assert!(check_times(&claims(json!({"exp": 1000})), now).is_err());
        assert!(check_times(&claims(json!({})), now).is_err());
        assert!(check_times(&claims(json!({"exp": "2000"})), now).is_err());
        assert!(check_times(&claims(json!({"exp": 2000, "nbf": 1001})), now).is_err());
        assert!(check_times(&claims(json!({"exp": 2000, "nbf": 1000, "iat": 1000})), now).is_ok());
        assert!(check_times(&claims(json!({"exp": 2000, "iat": 1001})), now).is_err());
        assert!(check_times(&claims(json!({"exp": 1e300})), now).is_err());
    }

    #[test]
    fn audience_scope_and_dotted_paths() {
        let c = claims(json!({
            "aud": ["x", "gen3"], "scope": "openid user",
            "context": {"user": {"name": "alice"}}
        }));
        assert!(audience_contains(&c, "gen3"));
        assert!(!audience_contains(&c, "gen"));
        assert!(scope_contains(&c, "openid"));
        assert!(!scope_contains(&c, "open"));
        assert!(scope_contains(
            &claims(json!({"scope": ["openid"]})),
            "openid"
        ));
        assert_eq!(dotted_str(&c, "context.user.name"), Some("alice"));
        assert_eq!(dotted_str(&c, "context.user"), None);
        assert_eq!(dotted_str(&c, "context.nobody.name"), None);
    }
}
