//! Reolink's Baichuan ("BC") protocol, TCP 9000: message framing, and the firmware upgrade
//! message. Sources: the Neolink project's Wireshark dissector and message notes
//! (`dissector/baichuan.lua`, `dissector/messages.md`, thirtythreeforty/neolink commit
//! 186d580) and its decoder (`crates/core/src/bc/de.rs`, QuantumEntangledAndy/neolink).
//!
//! Every message starts with a little-endian header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `f0 de bc 0a` (0x0abcdef0; some messages carry `a0 cb ed 0f`) |
//! | 4 | 4 | message id (1 login, 3 video, 67 firmware upgrade, 80 version, …) |
//! | 8 | 4 | body length (the bytes after the header) |
//! | 12 | 1 | channel |
//! | 13 | 1 | stream type |
//! | 14 | 2 | message number (a request and its replies share it) |
//! | 16 | 2 | response code (200 OK, 400 bad request; 0 in requests) |
//! | 18 | 2 | class: 0x6514 legacy and 0x6614 modern have 20-byte headers; 0x6414 and 0x0000 add |
//! | 20 | 4 | payload offset: the body's first part (the "extension" XML) ends here, its second part (XML or binary) follows |
//!
//! A firmware upgrade is message 67 (`<ConfigFileInfo>`, "FW Upgrade"): the client first sends
//! the file's name and size (`<fileName>`, `<fileSize>`) and then the image in messages whose
//! extension says `<binaryData>1</binaryData>` and whose second part is the image's next bytes.
//! The XML is encrypted on most firmware (a fixed XOR key, or AES after login); the header never
//! is, so the message id, lengths and offsets are always readable, and the binary parts are not
//! encrypted on the cameras the sources describe.

use serde::Serialize;

/// One message a client sent, for the event log (`event_type: baichuan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub msg_id: u32,
    /// The command's name from the sources' list, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
    pub msg_num: u16,
    pub body_len: u32,
    pub class: u16,
}

impl Message {
    pub fn from_header(h: &Header) -> Self {
        Self {
            msg_id: h.msg_id,
            command: command(h.msg_id),
            msg_num: h.msg_num,
            body_len: h.body_len,
            class: h.class,
        }
    }
}

/// Names of the commands a SOC cares to read, from the Neolink dissector's table.
pub fn command(msg_id: u32) -> Option<&'static str> {
    Some(match msg_id {
        1 => "login",
        2 => "logout",
        3 => "video",
        4 => "video_stop",
        5 | 8 | 13 | 14 | 15 | 16 => "file_info",
        10 => "talk_ability",
        18 | 19 => "ptz_control",
        23 => "reboot",
        31 => "motion_alarm_start",
        33 => "alarm_events",
        36 => "server_ports_write",
        37 => "server_ports",
        38 => "ntp",
        39 => "ntp_write",
        40 => "ddns",
        41 => "ddns_write",
        42 => "email",
        43 => "email_write",
        58 => "ability_support",
        59 => "user_list_write",
        65 => "config_export",
        66 => "config_import",
        67 => "firmware_upgrade",
        68 => "ftp",
        69 => "ftp_write",
        76 => "ip",
        77 => "ip_write",
        80 => "version",
        93 => "link_type",
        97 => "upnp",
        98 => "upnp_write",
        99 => "factory_reset",
        104 => "system_general",
        105 => "system_general_write",
        114 => "uid",
        115 => "wifi_signal",
        124 => "push_info",
        151 => "ability_info",
        199 => "support",
        _ => return None,
    })
}

/// Little-endian magic that starts every message (`f0 de bc 0a`).
pub const MAGIC: [u8; 4] = 0x0abc_def0u32.to_le_bytes();
/// The reversed magic some messages (snapshots) carry.
pub const MAGIC_REV: [u8; 4] = 0x0fed_cba0u32.to_le_bytes();
/// Message id of a firmware upgrade (`<ConfigFileInfo>`).
pub const MSG_FIRMWARE_UPGRADE: u32 = 67;
/// The largest body taken for a message: the image moves in parts of tens of kilobytes and video
/// frames are below a few megabytes; a larger length is no Baichuan header.
pub const MAX_BODY: u32 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub msg_id: u32,
    pub body_len: u32,
    pub channel: u8,
    pub msg_num: u16,
    pub response_code: u16,
    pub class: u16,
    /// Where the body's second part starts (classes 0x6414 and 0x0000 only).
    pub payload_offset: Option<u32>,
}

impl Header {
    /// Bytes of the header itself (20, or 24 with a payload offset).
    pub fn len(&self) -> usize {
        if self.payload_offset.is_some() {
            24
        } else {
            20
        }
    }

    /// Never empty: a header has at least 20 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes of the body's first part (the extension). Without a payload offset the whole body
    /// is one part, taken as the extension (XML).
    pub fn extension_len(&self) -> u32 {
        self.payload_offset.map_or(self.body_len, |o| o.min(self.body_len))
    }

    /// Bytes of the body's second part.
    pub fn payload_len(&self) -> u32 {
        self.body_len - self.extension_len()
    }
}

/// Whether `buf` starts like a Baichuan message (the magic).
pub fn starts(buf: &[u8]) -> bool {
    buf.starts_with(&MAGIC) || buf.starts_with(&MAGIC_REV)
}

/// The header at the start of `buf`: `Ok(None)` when more bytes are needed, an error when the
/// bytes are no Baichuan header.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, &'static str> {
    let Some(h) = buf.get(..20) else {
        return if MAGIC.starts_with(&buf[..buf.len().min(4)])
            || MAGIC_REV.starts_with(&buf[..buf.len().min(4)])
        {
            Ok(None)
        } else {
            Err("bad_magic")
        };
    };
    if !starts(h) {
        return Err("bad_magic");
    }
    let u32_at = |at: usize| h.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let u16_at = |at: usize| h.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes);
    let (Some(msg_id), Some(body_len), Some(msg_num), Some(response_code), Some(class)) =
        (u32_at(4), u32_at(8), u16_at(14), u16_at(16), u16_at(18))
    else {
        return Err("truncated");
    };
    if body_len > MAX_BODY {
        return Err("body_too_long");
    }
    let payload_offset = if class == 0x6414 || class == 0x0000 {
        match buf.get(20..24) {
            Some(b) => Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(Header { msg_id, body_len, channel: h[12], msg_num, response_code, class, payload_offset }))
}

/// The file name and size an upgrade's first message announces (`<ConfigFileInfo>`), when its
/// XML is in the clear.
pub fn upgrade_file(xml: &[u8]) -> Option<(Option<String>, Option<u64>)> {
    let mut anomalies = Vec::new();
    let mut name = None;
    let mut size = None;
    crate::xml::walk_xml(
        xml,
        &mut anomalies,
        |_| 256,
        |path, text| match path.last().map(String::as_str) {
            Some("fileName") if path.iter().any(|p| p == "ConfigFileInfo") => name = Some(text.to_string()),
            Some("fileSize") if path.iter().any(|p| p == "ConfigFileInfo") => size = text.trim().parse().ok(),
            _ => {}
        },
    )
    .ok()?;
    (name.is_some() || size.is_some()).then_some((name, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(msg_id: u32, body_len: u32, class: u16, offset: Option<u32>) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&msg_id.to_le_bytes());
        h.extend_from_slice(&body_len.to_le_bytes());
        h.extend_from_slice(&[0, 0, 5, 0]);
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&class.to_le_bytes());
        if let Some(o) = offset {
            h.extend_from_slice(&o.to_le_bytes());
        }
        h
    }

    /// The login header from Neolink's notes (`f0 de bc 0a 01 00 00 00 2c 07 00 00 …
    /// 14 65`): legacy class, 20 bytes, body 0x72c.
    #[test]
    fn reads_the_legacy_login_header_of_the_notes() {
        let h = [0xf0, 0xde, 0xbc, 0x0a, 0x01, 0, 0, 0, 0x2c, 0x07, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x14, 0x65];
        let got = parse_header(&h).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("incomplete"));
        assert_eq!((got.msg_id, got.body_len, got.class, got.len()), (1, 0x72c, 0x6514, 20));
        assert_eq!((got.extension_len(), got.payload_len()), (0x72c, 0));
    }

    #[test]
    fn a_modern_header_has_a_payload_offset_and_two_parts() {
        let h = header(67, 0x9458, 0x6414, Some(0x6a));
        let got = parse_header(&h).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("incomplete"));
        assert_eq!(
            (got.msg_id, got.len(), got.extension_len(), got.payload_len()),
            (67, 24, 0x6a, 0x9458 - 0x6a)
        );
        assert_eq!(got.msg_num, 5);
        // Cut anywhere before its end it asks for more; an offset past the body is the body.
        for cut in 0..24 {
            assert_eq!(parse_header(&h[..cut]), Ok(None), "{cut}");
        }
        let past = header(67, 10, 0x0000, Some(99));
        let got =
            parse_header(&past).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("incomplete"));
        assert_eq!((got.extension_len(), got.payload_len()), (10, 0));
    }

    #[test]
    fn other_bytes_are_refused() {
        assert_eq!(parse_header(b"GET / HTTP/1.1\r\n\r\n....."), Err("bad_magic"));
        assert_eq!(parse_header(b"\x16\x03"), Err("bad_magic"));
        assert_eq!(parse_header(&header(3, MAX_BODY + 1, 0x6614, None)), Err("body_too_long"));
    }

    /// Every prefix, bit flip and corruption of a login and an upgrade stream is walked or
    /// refused without a panic.
    #[test]
    fn hostile_streams() {
        let mut upgrade = header(67, 60, 0x6414, Some(0));
        upgrade.extend_from_slice(b"<body><ConfigFileInfo><fileName>a.pak</fileName></ConfigFileInfo>");
        upgrade.extend(header(67, 40, 0x6414, Some(8)));
        upgrade.extend_from_slice(&[0x13, 0x59, 0x72, 0x32].repeat(10));
        let mut login = header(1, 8, 0x6514, None);
        login.extend_from_slice(&[0; 8]);
        crate::hostile::each_variant(&[upgrade, login], crate::fuzzing::baichuan_target);
    }

    #[test]
    fn reads_the_upgrade_announcement() {
        let xml = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<body>\n<ConfigFileInfo version=\"1.1\">\n\
<fileName>IPC_51516M5M.pak</fileName>\n<fileSize>31457280</fileSize>\n<updateParameter>0</updateParameter>\n\
</ConfigFileInfo>\n</body>";
        assert_eq!(upgrade_file(xml), Some((Some("IPC_51516M5M.pak".into()), Some(31_457_280))));
        assert_eq!(upgrade_file(b"\x1f\x8b\x08 encrypted"), None);
        assert_eq!(upgrade_file(b"<body><Other><fileName>x</fileName></Other></body>"), None);
    }
}
