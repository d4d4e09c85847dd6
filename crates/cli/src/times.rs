//! Times on the command line: Unix milliseconds or RFC 3339, read and written.

use chrono::{DateTime, SecondsFormat, Utc};

/// Reads a time given on the command line or in a file: Unix milliseconds (`1767225600000`) or
/// an RFC 3339 date and time with its offset (`2026-01-01T00:00:00Z`,
/// `2026-01-01T01:00:00.250+01:00`). Before 1970 is refused.
pub fn parse_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map_err(|_| format!("`{t}` is too large for Unix milliseconds"));
    }
    let at = DateTime::parse_from_rfc3339(t).map_err(|_| {
        format!(
            "`{t}` is neither Unix milliseconds nor an RFC 3339 time such as \
             2026-01-01T00:00:00Z"
        )
    })?;
    u64::try_from(at.timestamp_millis()).map_err(|_| format!("`{t}` is before 1970"))
}

/// Unix milliseconds as RFC 3339 in UTC (`2026-01-01T00:00:00.000Z`), for people reading.
pub fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(
            || format!("{ms} ms"),
            |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_milliseconds_and_rfc3339() {
        assert_eq!(parse_ms("1500"), Ok(1500));
        assert_eq!(parse_ms("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_ms("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600_000));
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        for bad in [
            "",
            "-5",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
        ] {
            assert!(parse_ms(bad).is_err(), "{bad}");
        }
    }
}
