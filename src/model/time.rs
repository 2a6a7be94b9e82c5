//! Packet time: microseconds since the Unix epoch, and its RFC 3339 form.

/// Microseconds since the Unix epoch: packet time.
pub type Micros = u64;

/// RFC 3339 in UTC with microseconds, e.g. `2026-01-01T00:00:00.000000Z`.
pub fn rfc3339(ts: Micros) -> String {
    format_utc(ts, b"Z").unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".into())
}

/// Suricata's EVE time: `2026-01-01T00:00:00.000000+0000` (an offset without a colon, never
/// `Z`), which Suricata 7's schema requires and EVE pipelines parse.
pub fn eve_time(ts: Micros) -> String {
    format_utc(ts, b"+0000").unwrap_or_else(|| "1970-01-01T00:00:00.000000+0000".into())
}

/// `YYYY-MM-DDThh:mm:ss.uuuuuu` and `zone`; `None` past the year 9999. Every event line carries
/// one or more of these, so they are written digit by digit (the proleptic Gregorian calendar
/// from days since the epoch, as in Howard Hinnant's `civil_from_days`), not through a format
/// description; a test holds it to the `time` crate's formatting.
fn format_utc(ts: Micros, zone: &[u8]) -> Option<String> {
    let (secs, micros) = (ts / 1_000_000, ts % 1_000_000);
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    let mut out = Vec::with_capacity(26 + zone.len());
    let mut digits = |v: u64, n: u32, sep: Option<u8>| {
        for i in (0..n).rev() {
            out.push(b'0' + (v / 10u64.pow(i) % 10) as u8);
        }
        out.extend(sep);
    };
    digits(year, 4, Some(b'-'));
    digits(month, 2, Some(b'-'));
    digits(day, 2, Some(b'T'));
    digits(sod / 3600, 2, Some(b':'));
    digits(sod / 60 % 60, 2, Some(b':'));
    digits(sod % 60, 2, Some(b'.'));
    digits(micros, 6, None);
    out.extend_from_slice(zone);
    String::from_utf8(out).ok()
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
    fn formatting_agrees_with_the_time_crate_across_its_range() {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000"
        );
        let reference = |ts: Micros| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1000)
                .ok()
                .and_then(|t| t.format(&fmt).ok())
                .unwrap_or_else(|| "1970-01-01T00:00:00.000000+0000".into())
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let edges = [
            0,
            1,
            999_999,
            86_399_999_999,
            951_782_400_000_000,
            4_107_542_400_000_000,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            u64::MAX,
        ];
        for ts in edges.into_iter().chain((0..200_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 260_000_000_000_000_000
        })) {
            assert_eq!(eve_time(ts), reference(ts), "{ts}");
        }
    }

    #[test]
    fn rfc3339_round_trips_with_microseconds() {
        assert_eq!(rfc3339(1_767_225_600_123_456), "2026-01-01T00:00:00.123456Z");
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00.123456Z"), Some(1_767_225_600_123_456));
        assert_eq!(parse_rfc3339("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
