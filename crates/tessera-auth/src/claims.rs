//! [`ClaimRules`]: the claim checks of the original (jwcrypto `check_claims` with service-commons
//! claim mapping), as observed on the running service (WPS spec §2.5, §10 item 1).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::{Error, Result};

/// How far in the past `exp` may lie, in seconds (jwcrypto's default leeway).
pub const LEEWAY_SECONDS: i64 = 60;

/// Claims that must be convertible to an integer when present.
const INTEGER_CLAIMS: [&str; 3] = ["iat", "exp", "nbf"];

/// Which claims a token must carry and how claims are renamed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRules {
    /// Claims that must be present; `Some(value)` also demands that value (for `aud`, a list
    /// containing it suffices). Default: `id`, `name`, `email`, `iat`, `exp`, any value.
    pub required: BTreeMap<String, Option<Value>>,
    /// Renames applied before any check: `from -> Some(to)` renames, `from -> None` drops.
    pub map: BTreeMap<String, Option<String>>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        let required = ["id", "name", "email", "iat", "exp"]
            .into_iter()
            .map(|name| (name.to_owned(), None))
            .collect();
        Self {
            required,
            map: BTreeMap::new(),
        }
    }
}

impl ClaimRules {
    /// Checks the claims against the current time, then applies the mapping.
    pub fn check(&self, claims: Map<String, Value>) -> Result<Map<String, Value>> {
        self.check_at(claims, now())
    }

    /// Checks the claims as of `now` (seconds since the epoch), then applies the mapping: as in
    /// service-commons, the checks see the token's own claim names (jwcrypto checks them while
    /// decoding) and only the returned context sees the mapped names.
    ///
    /// Errors, in check order: [`Error::MissingClaim`], [`Error::UnexpectedClaimValue`],
    /// [`Error::NotAnInteger`] (`iat`, `exp`, `nbf`), [`Error::Expired`] if
    /// `exp < now - LEEWAY_SECONDS`, [`Error::NotYetValid`] if `nbf > now + LEEWAY_SECONDS`
    /// (the original never compares `nbf` with the clock).
    pub fn check_at(&self, claims: Map<String, Value>, now: i64) -> Result<Map<String, Value>> {
        for (name, expected) in &self.required {
            let actual = claims
                .get(name)
                .ok_or_else(|| Error::MissingClaim(name.clone()))?;
            if let Some(expected) = expected {
                let matches = actual == expected
                    || (name == "aud"
                        && matches!(actual, Value::Array(values) if values.contains(expected)));
                if !matches {
                    return Err(Error::UnexpectedClaimValue(name.clone()));
                }
            }
        }
        for name in INTEGER_CLAIMS {
            if let Some(value) = claims.get(name) {
                claim_as_int(value).ok_or_else(|| Error::NotAnInteger(name.to_owned()))?;
            }
        }
        if let Some(exp) = claims.get("exp").and_then(claim_as_int)
            && exp < now.saturating_sub(LEEWAY_SECONDS)
        {
            return Err(Error::Expired { exp, now });
        }
        if let Some(nbf) = claims.get("nbf").and_then(claim_as_int)
            && nbf > now.saturating_add(LEEWAY_SECONDS)
        {
            return Err(Error::NotYetValid { nbf, now });
        }
        Ok(self.apply_map(claims))
    }

    fn apply_map(&self, mut claims: Map<String, Value>) -> Map<String, Value> {
        if self.map.is_empty() {
            return claims;
        }
        // Take every source first so that renames never read a claim another rename just wrote
        // (e.g. swapping two names).
        let moved: Vec<(&Option<String>, Value)> = self
            .map
            .iter()
            .filter_map(|(from, to)| claims.remove(from).map(|value| (to, value)))
            .collect();
        for (to, value) in moved {
            if let Some(to) = to {
                claims.insert(to.clone(), value);
            }
        }
        claims
    }
}

/// Seconds since the epoch; a clock before 1970 counts as 0.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The claim as Python's `int()` sees it: integers, floats (truncated), booleans and decimal
/// strings (surrounding whitespace, a sign and single underscores between digits allowed).
/// Values outside `i64` are refused.
pub fn claim_as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(flag) => Some(i64::from(*flag)),
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?.trunc();
            // `i64::MAX as f64` rounds up to 2^63, which is out of range, hence `<`.
            (float.is_finite() && float >= i64::MIN as f64 && float < i64::MAX as f64)
                .then_some(float as i64)
        }),
        Value::String(text) => parse_python_int(text),
        _ => None,
    }
}

fn parse_python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    let magnitude: i128 = cleaned.parse().ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn full() -> Map<String, Value> {
        claims(json!({
            "id": "u1", "name": "Jane", "email": "jane@example.org",
            "iat": NOW - 10, "exp": NOW + 300,
        }))
    }

    #[test]
    fn complete_claims_pass_unchanged() {
        assert_eq!(ClaimRules::default().check_at(full(), NOW).unwrap(), full());
    }

    #[test]
    fn every_default_claim_is_required() {
        for name in ["id", "name", "email", "iat", "exp"] {
            let mut map = full();
            map.remove(name);
            assert_eq!(
                ClaimRules::default().check_at(map, NOW).unwrap_err(),
                Error::MissingClaim(name.to_owned())
            );
        }
    }

    #[test]
    fn a_null_claim_counts_as_present() {
        let mut map = full();
        map.insert("name".to_owned(), Value::Null);
        assert!(ClaimRules::default().check_at(map, NOW).is_ok());
    }

    #[test]
    fn required_values_must_match() {
        let mut rules = ClaimRules::default();
        rules.required.insert("iss".to_owned(), Some(json!("auth")));
        let mut map = full();
        map.insert("iss".to_owned(), json!("other"));
        assert_eq!(
            rules.check_at(map.clone(), NOW).unwrap_err(),
            Error::UnexpectedClaimValue("iss".to_owned())
        );
        map.insert("iss".to_owned(), json!("auth"));
        assert!(rules.check_at(map, NOW).is_ok());
    }

    #[test]
    fn aud_may_be_a_list_containing_the_value() {
        let mut rules = ClaimRules::default();
        rules.required.insert("aud".to_owned(), Some(json!("wps")));
        let mut map = full();
        map.insert("aud".to_owned(), json!(["x", "wps"]));
        assert!(rules.check_at(map.clone(), NOW).is_ok());
        map.insert("aud".to_owned(), json!(["x"]));
        assert!(rules.check_at(map, NOW).is_err());
    }

    #[test]
    fn expiry_has_sixty_seconds_leeway() {
        let rules = ClaimRules::default();
        for (exp, ok) in [
            (NOW, true),
            (NOW - 60, true),
            (NOW - 59, true),
            (NOW - 61, false),
        ] {
            let mut map = full();
            map.insert("exp".to_owned(), json!(exp));
            let result = rules.check_at(map, NOW);
            assert_eq!(result.is_ok(), ok, "exp {exp}");
            if !ok {
                assert_eq!(result.unwrap_err(), Error::Expired { exp, now: NOW });
            }
        }
    }

    #[test]
    fn expiry_is_checked_even_when_not_required() {
        let rules = ClaimRules {
            required: BTreeMap::new(),
            map: BTreeMap::new(),
        };
        let map = claims(json!({"exp": NOW - 1000}));
        assert!(matches!(
            rules.check_at(map, NOW),
            Err(Error::Expired { .. })
        ));
        assert!(rules.check_at(Map::new(), NOW).is_ok());
    }

    #[test]
    fn integer_claims_accept_numbers_floats_and_numeric_strings() {
        let rules = ClaimRules::default();
        for iat in [
            json!(5),
            json!(5.7),
            json!("12"),
            json!(" -3 "),
            json!("1_000"),
            json!(true),
        ] {
            let mut map = full();
            map.insert("iat".to_owned(), iat.clone());
            assert!(rules.check_at(map, NOW).is_ok(), "iat {iat}");
        }
        let mut map = full();
        map.insert("exp".to_owned(), json!((NOW + 10).to_string()));
        assert!(rules.check_at(map, NOW).is_ok());
    }

    #[test]
    fn integer_claims_reject_everything_else() {
        let rules = ClaimRules::default();
        for name in ["iat", "exp", "nbf"] {
            for bad in [
                json!("soon"),
                json!("1.5"),
                json!(""),
                json!(null),
                json!([1]),
                json!({}),
            ] {
                let mut map = full();
                map.insert(name.to_owned(), bad.clone());
                assert_eq!(
                    rules.check_at(map, NOW).unwrap_err(),
                    Error::NotAnInteger(name.to_owned()),
                    "{name} = {bad}"
                );
            }
        }
    }

    #[test]
    fn nbf_in_the_future_is_refused_beyond_the_leeway() {
        for (nbf, ok) in [
            (NOW - 100_000, true),
            (NOW, true),
            (NOW + LEEWAY_SECONDS, true),
            (NOW + LEEWAY_SECONDS + 1, false),
            (NOW + 100_000, false),
        ] {
            let mut map = full();
            map.insert("nbf".to_owned(), json!(nbf));
            let result = ClaimRules::default().check_at(map, NOW);
            match ok {
                true => assert!(result.is_ok(), "nbf {nbf}"),
                false => assert_eq!(result.unwrap_err(), Error::NotYetValid { nbf, now: NOW }),
            }
        }
    }

    #[test]
    fn checks_see_token_names_and_mapping_renames_and_drops_after() {
        let mut rules = ClaimRules::default();
        rules.required.remove("id");
        rules.required.insert("sub".to_owned(), None);
        rules.map.insert("sub".to_owned(), Some("id".to_owned()));
        rules.map.insert("secret".to_owned(), None);
        let mut map = full();
        map.remove("id");
        map.insert("sub".to_owned(), json!("from-sub"));
        map.insert("secret".to_owned(), json!("x"));
        let checked = rules.check_at(map.clone(), NOW).unwrap();
        assert_eq!(checked["id"], json!("from-sub"));
        assert!(!checked.contains_key("sub"));
        assert!(!checked.contains_key("secret"));
        // The required `sub` is checked under the token's own name.
        map.remove("sub");
        assert_eq!(
            rules.check_at(map, NOW).unwrap_err(),
            Error::MissingClaim("sub".to_owned())
        );
    }

    #[test]
    fn a_required_claim_is_checked_before_it_is_dropped() {
        let mut rules = ClaimRules::default();
        rules.map.insert("email".to_owned(), None);
        let checked = rules.check_at(full(), NOW).unwrap();
        assert!(!checked.contains_key("email"));
        let mut missing = full();
        missing.remove("email");
        assert_eq!(
            rules.check_at(missing, NOW).unwrap_err(),
            Error::MissingClaim("email".to_owned())
        );
    }

    #[test]
    fn mapping_can_swap_names() {
        let mut rules = ClaimRules::default();
        rules
            .map
            .insert("name".to_owned(), Some("email".to_owned()));
        rules
            .map
            .insert("email".to_owned(), Some("name".to_owned()));
        let checked = rules.check_at(full(), NOW).unwrap();
        assert_eq!(checked["name"], json!("jane@example.org"));
        assert_eq!(checked["email"], json!("Jane"));
    }

    #[test]
    fn python_int_edge_cases() {
        assert_eq!(parse_python_int("+7"), Some(7));
        assert_eq!(parse_python_int("\t42\n"), Some(42));
        assert_eq!(parse_python_int("1_2_3"), Some(123));
        for bad in ["_1", "1_", "1__2", "-", "+", "--1", "1e3", "0x10"] {
            assert_eq!(parse_python_int(bad), None, "{bad}");
        }
        assert_eq!(parse_python_int("99999999999999999999"), None);
        assert_eq!(claim_as_int(&json!(-2.9)), Some(-2));
        assert_eq!(claim_as_int(&json!(1e300)), None);
        assert_eq!(claim_as_int(&json!(u64::MAX)), None);
    }
}
