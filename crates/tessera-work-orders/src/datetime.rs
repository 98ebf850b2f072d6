//! Datetimes: millisecond precision for storage, and the pydantic style of the original's
//! JSON answers.
//!
//! Stored documents use [`millis`] (`2026-05-29T10:11:12.345Z`, always three digits), which
//! every provider reads back as the same instant. HTTP answers use [`pydantic`]:
//! `2026-05-29T10:11:12.345000Z`, or `2026-05-29T10:11:12Z` when the fraction is zero.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `dt` cut down to whole milliseconds, as stored (MongoDB dates hold milliseconds).
pub fn truncate_ms(dt: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = dt.nanosecond();
    dt.with_nanosecond(nanos - nanos % 1_000_000).unwrap_or(dt)
}

/// Formats `dt` as pydantic does: UTC with a `Z` suffix, the fraction printed with six
/// digits only when it is non-zero (microsecond precision, like Python).
pub fn format_pydantic(dt: &DateTime<Utc>) -> String {
    // A leap second's nanoseconds run past 10^9; Python cannot hold it, so cap it.
    let micros = (dt.nanosecond() / 1_000).min(999_999);
    let base = dt.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{micros:06}Z")
    }
}

/// Formats `dt` for storage: UTC, always three fraction digits, `Z` suffix.
pub fn format_millis(dt: &DateTime<Utc>) -> String {
    truncate_ms(*dt)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Parses an RFC 3339 datetime with an offset (`Z` or `±hh:mm`) into UTC.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|dt| dt.with_timezone(&Utc))
}

/// Serde helper for stored datetimes: writes [`format_millis`], reads any RFC 3339 value
/// and truncates it to milliseconds.
pub mod millis {
    use super::*;

    /// Serialises with [`format_millis`].
    pub fn serialize<S: Serializer>(dt: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_millis(dt))
    }

    /// Deserialises an RFC 3339 string, truncated to milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s)
            .map(truncate_ms)
            .map_err(serde::de::Error::custom)
    }
}

/// Serde helper for datetimes in HTTP answers: writes [`format_pydantic`], reads any
/// RFC 3339 value.
pub mod pydantic {
    use super::*;

    /// Serialises with [`format_pydantic`].
    pub fn serialize<S: Serializer>(dt: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_pydantic(dt))
    }

    /// Deserialises an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 29, 10, 11, 12)
            .unwrap()
            .with_nanosecond(nanos)
            .unwrap()
    }

    #[test]
    fn pydantic_prints_six_digits_only_for_a_fraction() {
        assert_eq!(
            format_pydantic(&at(345_000_000)),
            "2026-05-29T10:11:12.345000Z"
        );
        assert_eq!(format_pydantic(&at(0)), "2026-05-29T10:11:12Z");
        assert_eq!(format_pydantic(&at(1_000)), "2026-05-29T10:11:12.000001Z");
        // Below a microsecond Python has nothing to print.
        assert_eq!(format_pydantic(&at(999)), "2026-05-29T10:11:12Z");
        assert_eq!(
            format_pydantic(&at(123_456_789)),
            "2026-05-29T10:11:12.123456Z"
        );
    }

    #[test]
    fn millis_truncates_and_always_prints_three_digits() {
        assert_eq!(truncate_ms(at(123_999_999)), at(123_000_000));
        assert_eq!(format_millis(&at(123_999_999)), "2026-05-29T10:11:12.123Z");
        assert_eq!(format_millis(&at(0)), "2026-05-29T10:11:12.000Z");
    }

    #[test]
    fn serde_helpers_round_trip_and_accept_offsets() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "millis")]
            a: DateTime<Utc>,
            #[serde(with = "pydantic")]
            b: DateTime<Utc>,
        }
        let t = T {
            a: at(5_000_000),
            b: at(0),
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "2026-05-29T10:11:12.005Z", "b": "2026-05-29T10:11:12Z"})
        );
        assert_eq!(serde_json::from_value::<T>(v).unwrap(), t);
        let shifted: T = serde_json::from_value(serde_json::json!({
            "a": "2026-05-29T12:11:12.0059+02:00", "b": "2026-05-29T10:11:12+00:00"
        }))
        .unwrap();
        assert_eq!(shifted, t);
        assert!(
            serde_json::from_value::<T>(serde_json::json!({"a": "2026-05-29T10:11:12", "b": "x"}))
                .is_err(),
            "a naive datetime is refused"
        );
    }
}
