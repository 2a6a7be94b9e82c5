//! Application messages: what the protocol parsers found in a flow, with the flow and direction it
//! was seen in. The worker's application layer produces them; identity, rules and the event log
//! read them.

use std::net::IpAddr;

use serde::Serialize;

use crate::model::time::Micros;
use crate::proto::{baichuan, dhcp, dhip, dns, firmware, http, isapi, ntp, onvif, rtsp, sadp, ssdp, tls};

/// Identity carried in an HTTP body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyIdentity {
    IsapiDeviceInfo(isapi::IsapiDeviceInfo),
    IsapiEzviz(isapi::EzvizSettings),
    OnvifDeviceInfo(onvif::OnvifDeviceInfo),
    DahuaMagicBox(Vec<(String, String)>),
    DlinkHnap(isapi::HnapDeviceSettings),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpTxn {
    pub request: http::HttpRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<http::HttpResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<BodyIdentity>,
    /// The request body's first bytes (lossy UTF-8), for rules; not logged.
    #[serde(skip)]
    pub request_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtspMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<rtsp::RtspRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<rtsp::RtspResponse>,
}

/// A firmware image seen moving over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirmwareTransfer {
    /// `upload` (to the device: ISAPI updateFirmware) or `download` (from a server).
    pub direction: &'static str,
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Bytes hashed.
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_size: Option<u64>,
    pub sha256: String,
    /// All `expected_size` bytes were seen in order.
    pub completed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digicap: Option<firmware::DigicapHeader>,
    /// The file's format from its first bytes (`digicap`, `uimage`, `squashfs`, … see
    /// `camwatch_proto::firmware::image_format`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// Whether it is a firmware image by its format and size, not its name.
    pub image: bool,
    /// The file's own name when the transfer carried one apart from the URL (a form upload's
    /// part).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Followed for its content only (a form upload to a URL that does not say firmware): it is
    /// reported only if it is an image.
    #[serde(skip)]
    pub by_content: bool,
    /// Version and build from the file name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename_version: Option<(String, Option<String>)>,
}

impl FirmwareTransfer {
    /// Whether the transfer is worth an event: any transfer to or from a firmware URL or of a
    /// firmware-looking file, and one followed for its content only if it is an image.
    pub fn reportable(&self) -> bool {
        !self.by_content || self.image
    }
}

/// One parsed application message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    Dns(dns::DnsMessage),
    Tls(tls::ClientHello),
    Http(Box<HttpTxn>),
    Dhcp(dhcp::DhcpMessage),
    Ntp(ntp::NtpPacket),
    /// A Reolink Baichuan message a client sent (TCP 9000).
    Baichuan(baichuan::Message),
    Ssdp(ssdp::SsdpMessage),
    Sadp(sadp::SadpMessage),
    /// Layer-2 SADP (ethertype 0x8033); its addresses are inside the record.
    SadpL2(sadp::SadpLegacy),
    Dhip(dhip::DhipMessage),
    Wsd(onvif::WsDiscovery),
    Rtsp(Box<RtspMessage>),
    FirmwareTransfer(Box<FirmwareTransfer>),
}

impl App {
    /// Protocol name: the `protocol` label of the message and parse-error metrics.
    pub fn protocol(&self) -> &'static str {
        match self {
            App::Dns(_) => "dns",
            App::Tls(_) => "tls",
            App::Http(_) => "http",
            App::Dhcp(_) => "dhcp",
            App::Ntp(_) => "ntp",
            App::Baichuan(_) => "baichuan",
            App::Ssdp(_) => "ssdp",
            App::Sadp(_) | App::SadpL2(_) => "sadp",
            App::Dhip(_) => "dhip",
            App::Wsd(_) => "wsd",
            App::Rtsp(_) => "rtsp",
            App::FirmwareTransfer(_) => "http",
        }
    }
}

/// An application message with the flow and packet direction it was seen in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppEvent {
    pub ts: Micros,
    pub flow_id: u64,
    pub community_id: crate::model::event::CommunityId,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    pub app: App,
}

/// A parse failure, for `camwatch_parse_errors_total{protocol,reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseFailure {
    pub protocol: &'static str,
    pub reason: &'static str,
}
