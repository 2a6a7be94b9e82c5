//! Packet time: microseconds since the Unix epoch, and its RFC 3339 form.

/// Microseconds since the Unix epoch: packet time.
pub type Micros = u64;

/// RFC 3339 in UTC with microseconds, e.g. `2026-01-01T00:00:00.000000Z`.
pub fn rfc3339(ts: Micros) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".into())
}

/// Suricata's EVE time: `2026-01-01T00:00:00.000000+0000` (an offset without a colon, never
/// `Z`), which Suricata 7's schema requires and EVE pipelines parse.
pub fn eve_time(ts: Micros) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000+0000".into())
}

/// Microseconds since the epoch of an RFC 3339 time.
pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_microseconds() {
        assert_eq!(rfc3339(1_767_225_600_123_456), "2026-01-01T00:00:00.123456Z");
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00.123456Z"), Some(1_767_225_600_123_456));
        assert_eq!(parse_rfc3339("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
