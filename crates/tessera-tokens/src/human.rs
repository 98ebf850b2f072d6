//! How `/external_oidc` shows the time left on a refresh token: the largest whole unit, always
//! plural as the running original writes it (§B9.6): "29 days", "1 days", "5 hours",
//! "10 minutes", "30 seconds".

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// `seconds` left as text; `None` when nothing is left.
pub fn time_left(seconds: i64) -> Option<String> {
    let (amount, unit) = match seconds {
        s if s <= 0 => return None,
        s if s >= DAY => (s / DAY, "days"),
        s if s >= HOUR => (s / HOUR, "hours"),
        s if s >= MINUTE => (s / MINUTE, "minutes"),
        s => (s, "seconds"),
    };
    Some(format!("{amount} {unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_whole_unit_always_plural() {
        let cases = [
            (29 * DAY + 23 * HOUR, Some("29 days")),
            (DAY, Some("1 days")),
            (DAY - 1, Some("23 hours")),
            (5 * HOUR + 59 * MINUTE, Some("5 hours")),
            (HOUR, Some("1 hours")),
            (10 * MINUTE + 59, Some("10 minutes")),
            (59, Some("59 seconds")),
            (1, Some("1 seconds")),
            (0, None),
            (-5, None),
        ];
        for (seconds, want) in cases {
            assert_eq!(time_left(seconds).as_deref(), want, "{seconds}");
        }
    }
}
