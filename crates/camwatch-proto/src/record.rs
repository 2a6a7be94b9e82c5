//! Helpers for filling parser records leniently: bounded anomaly lists, first-value-wins
//! fields with a `duplicate_element` anomaly, booleans and MAC addresses as devices write them.

/// Most anomalies kept on one record.
pub(crate) const MAX_ANOMALIES: usize = 32;

/// Records an anomaly once, up to [`MAX_ANOMALIES`].
pub(crate) fn push_anomaly(anomalies: &mut Vec<&'static str>, label: &'static str) {
    if !anomalies.contains(&label) && anomalies.len() < MAX_ANOMALIES {
        anomalies.push(label);
    }
}

/// First occurrence wins; an empty element leaves the field unset.
pub(crate) fn set_str(slot: &mut Option<String>, text: String, anomalies: &mut Vec<&'static str>) {
    if text.is_empty() {
        return;
    }
    if slot.is_some() {
        push_anomaly(anomalies, "duplicate_element");
        return;
    }
    *slot = Some(text);
}

pub(crate) fn set_bool(slot: &mut Option<bool>, text: &str, anomalies: &mut Vec<&'static str>) {
    if text.is_empty() {
        return;
    }
    let value = if text.eq_ignore_ascii_case("true") {
        true
    } else if text.eq_ignore_ascii_case("false") {
        false
    } else {
        push_anomaly(anomalies, "bad_bool");
        return;
    };
    if slot.is_some() {
        push_anomaly(anomalies, "duplicate_element");
        return;
    }
    *slot = Some(value);
}

/// `aa:bb:cc:dd:ee:ff`, `AA-BB-…` or bare 12 hex digits → `aa:bb:cc:dd:ee:ff`.
pub(crate) fn normalize_mac(s: &str) -> Option<String> {
    let s = s.trim();
    let hex: Vec<u8> = s.bytes().filter(|b| !matches!(b, b'-' | b':' | b'.')).collect();
    if hex.len() != 12 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    if hex.len() != s.len() && s.len() != 17 {
        return None;
    }
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        for b in pair {
            out.push(char::from(b.to_ascii_lowercase()));
        }
    }
    Some(out)
}

/// Truncates `s` to at most `max` bytes on a character boundary, noting `what` when it did.
pub(crate) fn capped_string(
    mut s: String,
    max: usize,
    what: &'static str,
    anomalies: &mut Vec<&'static str>,
) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        push_anomaly(anomalies, what);
    }
    s
}

/// What stands where a credential was.
pub(crate) const REDACTED: &str = "[redacted]";

/// For an absolute URL (`scheme://authority/...`: HTTP, RTSP, …), returns the URL with any
/// `user:password@` replaced (credentials are never logged) and the authority; for anything else
/// (an origin-form path), the URL itself and `None`.
pub(crate) fn redact_userinfo(url: &str, anomalies: &mut Vec<&'static str>) -> (String, Option<String>) {
    let Some(sep) = url.get(..16).unwrap_or(url).find("://") else {
        return (url.to_owned(), None);
    };
    if sep == 0
        || !url[..sep].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    {
        return (url.to_owned(), None);
    }
    let (scheme, rest) = url.split_at(sep + 3);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            push_anomaly(anomalies, "userinfo_in_url");
            (format!("{scheme}{REDACTED}@{host}{path}"), Some(host.to_owned()))
        }
        None => (url.to_owned(), Some(authority.to_owned())),
    }
}
