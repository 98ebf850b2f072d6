//! [`AuthContext`]: the GHGA user context carried by the internal auth token (§2.5, §10 item 8).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::claim_as_int;
use crate::{Error, Result};

/// Academic titles the user context allows.
const TITLES: [&str; 2] = ["Dr.", "Prof."];

/// The authenticated user, built from verified and checked claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    /// Internal user id (a UUID for registered users, else the OIDC `sub`).
    pub id: String,
    /// Full name.
    pub name: String,
    /// E-mail address, syntactically validated.
    pub email: String,
    /// `Dr.` or `Prof.`, if any.
    pub title: Option<String>,
    /// Roles; not checked by the services that use this context.
    pub roles: Vec<String>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

impl AuthContext {
    /// Builds the context from claims; unknown claims are ignored.
    ///
    /// Errors ([`Error::InvalidContext`]): `id`, `name` or `email` missing or not a string, an
    /// invalid e-mail address, a `title` other than `Dr.`/`Prof.`/null, `roles` not a list of
    /// strings (absent means none), `iat` or `exp` missing or not convertible to an integer.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self> {
        let id = string_claim(claims, "id")?;
        let name = string_claim(claims, "name")?;
        let email = string_claim(claims, "email")?;
        if !is_valid_email(&email) {
            return Err(invalid("email is not a valid e-mail address"));
        }
        let title = match claims.get("title") {
            None | Some(Value::Null) => None,
            Some(Value::String(title)) if TITLES.contains(&title.as_str()) => Some(title.clone()),
            Some(_) => return Err(invalid("title must be \"Dr.\", \"Prof.\" or null")),
        };
        let roles = match claims.get("roles") {
            None => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .map(|role| match role {
                    Value::String(role) => Ok(role.clone()),
                    _ => Err(invalid("roles must be strings")),
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(invalid("roles must be a list")),
        };
        Ok(Self {
            id,
            name,
            email,
            title,
            roles,
            iat: int_claim(claims, "iat")?,
            exp: int_claim(claims, "exp")?,
        })
    }
}

fn invalid(reason: &str) -> Error {
    Error::InvalidContext(reason.to_owned())
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String> {
    match claims.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(Error::InvalidContext(format!("{name} must be a string"))),
        None => Err(Error::InvalidContext(format!("{name} is missing"))),
    }
}

fn int_claim(claims: &Map<String, Value>, name: &str) -> Result<i64> {
    let value = claims
        .get(name)
        .ok_or_else(|| Error::InvalidContext(format!("{name} is missing")))?;
    claim_as_int(value).ok_or_else(|| Error::InvalidContext(format!("{name} must be an integer")))
}

/// A deliberately simple `local@domain.tld` check: one `@`, a local part without whitespace or
/// dot runs at its ends, and a domain of at least two non-empty labels of letters, digits and
/// inner hyphens, the last at least two characters long.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"()<>[]\\,;:\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn base() -> Map<String, Value> {
        claims(json!({
            "id": "a1b2", "name": "Jane Doe", "email": "jane.doe@example.org",
            "title": "Dr.", "roles": ["data_steward"], "iat": 100, "exp": 200,
            "extra": {"ignored": true},
        }))
    }

    #[test]
    fn builds_from_complete_claims() {
        let context = AuthContext::from_claims(&base()).unwrap();
        assert_eq!(
            context,
            AuthContext {
                id: "a1b2".into(),
                name: "Jane Doe".into(),
                email: "jane.doe@example.org".into(),
                title: Some("Dr.".into()),
                roles: vec!["data_steward".into()],
                iat: 100,
                exp: 200,
            }
        );
    }

    #[test]
    fn title_and_roles_may_be_absent() {
        let mut map = base();
        map.remove("title");
        map.remove("roles");
        let context = AuthContext::from_claims(&map).unwrap();
        assert_eq!(context.title, None);
        assert!(context.roles.is_empty());
        map.insert("title".into(), Value::Null);
        assert_eq!(AuthContext::from_claims(&map).unwrap().title, None);
        map.insert("title".into(), json!("Prof."));
        assert_eq!(
            AuthContext::from_claims(&map).unwrap().title.as_deref(),
            Some("Prof.")
        );
    }

    #[test]
    fn numeric_strings_and_floats_are_accepted_for_times() {
        let mut map = base();
        map.insert("iat".into(), json!("150"));
        map.insert("exp".into(), json!(250.9));
        let context = AuthContext::from_claims(&map).unwrap();
        assert_eq!((context.iat, context.exp), (150, 250));
    }

    #[test]
    fn invalid_values_are_rejected() {
        let cases = [
            ("id", json!(42)),
            ("id", Value::Null),
            ("name", json!(["Jane"])),
            ("email", json!("not-an-email")),
            ("email", json!(7)),
            ("title", json!("Mr.")),
            ("title", json!(1)),
            ("roles", json!("admin")),
            ("roles", Value::Null),
            ("roles", json!(["ok", 3])),
            ("iat", json!("yesterday")),
            ("exp", json!(null)),
        ];
        for (name, value) in cases {
            let mut map = base();
            map.insert(name.into(), value.clone());
            assert!(
                matches!(
                    AuthContext::from_claims(&map),
                    Err(Error::InvalidContext(_))
                ),
                "{name} = {value}"
            );
        }
        for name in ["id", "name", "email", "iat", "exp"] {
            let mut map = base();
            map.remove(name);
            assert!(AuthContext::from_claims(&map).is_err(), "{name} missing");
        }
    }

    #[test]
    fn email_check() {
        for good in ["a@b.de", "first.last+tag@sub.example.org", "x_y@dömäin.de"] {
            assert!(is_valid_email(good), "{good}");
        }
        for bad in [
            "",
            "@b.de",
            "a@",
            "a@b",
            "a@b.",
            "a@.de",
            "a b@c.de",
            "a@b c.de",
            ".a@b.de",
            "a.@b.de",
            "a..b@c.de",
            "a@-b.de",
            "a@b-.de",
            "a@b.c",
            "a@b.123",
            "a@b@c.de",
            "a@b..de",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
