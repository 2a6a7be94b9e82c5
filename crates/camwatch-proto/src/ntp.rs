//! NTP time-packet parsing (RFC 5905 header): which time servers cameras use, how they
//! identify them, and the clock they claim — cameras with a wrong clock write unusable
//! evidence timestamps, and mode 6/7 control traffic is a reflection-abuse signal.
//!
//! Only the fixed 48-byte header is decoded; extension fields and MACs are tolerated.

use serde::Serialize;

const HEADER_LEN: usize = 48;
/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// One NTP time packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NtpPacket {
    /// 1-4.
    pub version: u8,
    /// "symmetric_active", "symmetric_passive", "client", "server", "broadcast".
    pub mode: String,
    /// 0 unspecified or kiss-o'-death, 1 primary, 2-15 secondary, 16 unsynchronised.
    pub stratum: u8,
    /// log2 seconds.
    pub poll: i8,
    /// log2 seconds.
    pub precision: i8,
    /// Stratum 0/1: up to 4 ASCII characters (a kiss code such as "RATE", or a source such as
    /// "GPS"; "" when all zero). Higher strata: the upstream server as dotted IPv4 (for an
    /// IPv6 upstream these are the first 4 bytes of its address's MD5, still shown dotted).
    pub reference_id: String,
    /// Transmit timestamp as Unix-epoch microseconds; None when zero (not set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transmit_time_micros: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// Parses one NTP packet (the UDP payload on port 123).
///
/// Errors: "not_ntp" for version 0 or above 4, mode 0, or fewer than 48 bytes;
/// "control_message" for mode 6 (ntpq control) and mode 7 (ntpdc private, e.g. monlist),
/// which carry no time and are recognised before the length check because they are
/// legitimately shorter than a time packet.
pub fn parse(payload: &[u8]) -> Result<NtpPacket, &'static str> {
    let first = *payload.first().ok_or("not_ntp")?;
    let version = (first >> 3) & 0x7;
    let mode = first & 0x7;
    if version == 0 || version > 4 {
        return Err("not_ntp");
    }
    let mode = match mode {
        1 => "symmetric_active",
        2 => "symmetric_passive",
        3 => "client",
        4 => "server",
        5 => "broadcast",
        6 | 7 => return Err("control_message"),
        _ => return Err("not_ntp"),
    };
    let header: &[u8; HEADER_LEN] =
        payload.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or("not_ntp")?;

    let mut anomalies = Vec::new();
    let stratum = header[1];
    if stratum > 16 {
        // 17-255 are reserved.
        anomalies.push("bad_stratum");
    }
    let refid = [header[12], header[13], header[14], header[15]];
    let reference_id = if stratum <= 1 {
        ascii_refid(refid, &mut anomalies)
    } else {
        std::net::Ipv4Addr::from(refid).to_string()
    };
    let transmit = u64::from_be_bytes([
        header[40], header[41], header[42], header[43], header[44], header[45], header[46], header[47],
    ]);
    let transmit_time_micros = ntp_to_unix_micros(transmit);
    if transmit != 0 && transmit_time_micros.is_none() {
        anomalies.push("timestamp_before_1970");
    }
    // Anything after the header must be extension fields and/or a MAC, all 32-bit aligned.
    if (payload.len() - HEADER_LEN) % 4 != 0 {
        anomalies.push("trailing_bytes");
    }
    Ok(NtpPacket {
        version,
        mode: mode.to_owned(),
        stratum,
        poll: header[2] as i8,
        precision: header[3] as i8,
        reference_id,
        transmit_time_micros,
        anomalies,
    })
}

/// A stratum 0/1 reference id: left-justified ASCII, zero-padded (RFC 5905 §7.3).
fn ascii_refid(refid: [u8; 4], anomalies: &mut Vec<&'static str>) -> String {
    let len = refid.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = refid.get(..len).unwrap_or_default();
    if text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        text.iter().map(|&b| char::from(b)).collect()
    } else {
        // Not text: show it as an address rather than log control bytes.
        anomalies.push("bad_reference_id");
        std::net::Ipv4Addr::from(refid).to_string()
    }
}

/// Converts a 64-bit NTP timestamp (32.32 fixed point, seconds since 1900) to Unix-epoch
/// microseconds; None for zero (unset) and for 1968-1970, which Unix time cannot hold.
/// Seconds with the top bit clear are NTP era 1 (from 2036-02-07), as RFC 4330 §3 says.
fn ntp_to_unix_micros(ts: u64) -> Option<u64> {
    if ts == 0 {
        return None;
    }
    let secs = ts >> 32;
    let frac = ts & 0xffff_ffff;
    let secs = if secs & 0x8000_0000 == 0 { secs + (1 << 32) } else { secs };
    let unix = secs.checked_sub(NTP_UNIX_OFFSET)?;
    Some(unix * 1_000_000 + ((frac * 1_000_000) >> 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // corpus camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 120: the D-Link DCS-935L
    // camera's NTPv3 client request to 54.86.11.193.
    const DLINK_REQUEST: &str = "1b0004fa00010000000100000000000000000000000000000000000000000000\
        0000000000000000d75c78fda12c3866";
    // Same capture, frame 121: the server's reply (stratum 2).
    const DLINK_REPLY: &str = "1c0205ed0000025000000bec803b00f5dabb7aa27636e0cfd75c78fda12c3866\
        dabb827ac85a2b55dabb827ac85d82d4";
    // Built from RFC 5905 §7.3 (no primary-server reply in the corpus): NTPv4 server reply,
    // stratum 1, reference "GPS", transmit 2024-01-01T00:00:00.5Z.
    const GPS_REPLY: &str = "240106e9000000000000000047505300e93c7eff00000000000000000000000000\
        00000000000000e93c7f0080000000";

    #[test]
    fn samples_are_wire_accurate() {
        for s in [DLINK_REQUEST, DLINK_REPLY, GPS_REPLY] {
            assert_eq!(unhex(s).len(), 48);
        }
    }

    #[test]
    fn camera_client_request() {
        let p = parse(&unhex(DLINK_REQUEST)).unwrap();
        assert_eq!((p.version, p.mode.as_str(), p.stratum, p.poll, p.precision), (3, "client", 0, 4, -6));
        assert_eq!(p.reference_id, "");
        // 0xd75c78fd.a12c3866 = 2014-07-01T00:02:05.629580Z: the camera's unset clock (the
        // server's reply below says 2016).
        assert_eq!(p.transmit_time_micros, Some(1_404_172_925_629_580));
        assert!(p.anomalies.is_empty());
    }

    #[test]
    fn server_reply() {
        let p = parse(&unhex(DLINK_REPLY)).unwrap();
        assert_eq!((p.version, p.mode.as_str(), p.stratum, p.poll, p.precision), (3, "server", 2, 5, -19));
        assert_eq!(p.reference_id, "128.59.0.245");
        // 0xdabb827a.c85d82d4 = 2016-04-15T15:08:42.782676Z.
        assert_eq!(p.transmit_time_micros, Some(1_460_732_922_782_676));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["mode"], "server");
        assert!(json.get("anomalies").is_none());

        let g = parse(&unhex(GPS_REPLY)).unwrap();
        assert_eq!((g.version, g.mode.as_str(), g.stratum), (4, "server", 1));
        assert_eq!(g.reference_id, "GPS");
        assert_eq!(g.transmit_time_micros, Some(1_704_067_200_500_000));
    }

    #[test]
    fn errors_and_anomalies() {
        let req = unhex(DLINK_REQUEST);
        assert_eq!(parse(&[]), Err("not_ntp"));
        assert_eq!(parse(&req[..47]), Err("not_ntp"));
        let with_first = |b: u8| {
            let mut v = req.clone();
            v[0] = b;
            parse(&v)
        };
        assert_eq!(with_first(0x03), Err("not_ntp")); // version 0
        assert_eq!(with_first(0x2b), Err("not_ntp")); // version 5
        assert_eq!(with_first(0x18), Err("not_ntp")); // mode 0
                                                      // ntpdc monlist request (mode 7) and an ntpq readvar (mode 6), both short.
        assert_eq!(parse(&unhex("1700032a00000000")), Err("control_message"));
        assert_eq!(parse(&unhex("160200010000000000000000")), Err("control_message"));

        // Kiss-o'-death "RATE", then a non-text primary reference.
        let mut kod = unhex(DLINK_REPLY);
        kod[1] = 0;
        kod[12..16].copy_from_slice(b"RATE");
        assert_eq!(parse(&kod).unwrap().reference_id, "RATE");
        kod[1] = 1;
        kod[12..16].copy_from_slice(&[1, 2, 0, 0]);
        let p = parse(&kod).unwrap();
        assert_eq!((p.reference_id.as_str(), p.anomalies.as_slice()), ("1.2.0.0", &["bad_reference_id"][..]));

        // Reserved stratum, zero transmit time, an unaligned tail.
        let mut odd = unhex(DLINK_REPLY);
        odd[1] = 200;
        odd[40..48].fill(0);
        odd.extend_from_slice(&[0; 5]);
        let p = parse(&odd).unwrap();
        assert_eq!(p.transmit_time_micros, None);
        assert_eq!(p.anomalies, vec!["bad_stratum", "trailing_bytes"]);
        // A 20-byte MAC (key id + MD5) is fine.
        let mut mac = unhex(DLINK_REPLY);
        mac.extend_from_slice(&[0; 20]);
        assert!(parse(&mac).unwrap().anomalies.is_empty());
    }

    #[test]
    fn era_boundaries() {
        // Era 1: seconds with the top bit clear are after 2036-02-07T06:28:16Z.
        assert_eq!(ntp_to_unix_micros(1 << 32), Some(2_085_978_497_000_000));
        // The last second of era 0, with the largest fraction.
        assert_eq!(ntp_to_unix_micros(u64::MAX), Some(2_085_978_495_999_999));
        // 1968-1970 has no Unix time.
        assert_eq!(ntp_to_unix_micros(0x8000_0000_0000_0000), None);
        let mut early = unhex(DLINK_REPLY);
        early[40..48].copy_from_slice(&0x8000_0000_0000_0000u64.to_be_bytes());
        assert_eq!(parse(&early).unwrap().anomalies, vec!["timestamp_before_1970"]);
    }

    /// Every prefix and many corrupted variants of real packets: nothing may panic.
    #[test]
    fn hostile_input_never_panics() {
        let samples = [DLINK_REQUEST, DLINK_REPLY, GPS_REPLY].map(unhex);
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse(v);
        });
        for sample in &samples {
            for fill in [0x00, 0xff] {
                let mut v = sample.clone();
                v[1..].fill(fill);
                let _ = parse(&v);
            }
        }
    }
}
