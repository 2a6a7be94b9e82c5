//! What a rule can look at: the event as a [`Subject`] (addresses, the flow, the application
//! record, the firmware change) and named fields read from it without allocating. A field may
//! have several values (every DNS query name, every ALPN); a condition holds when any value
//! satisfies it (and a negated one when none does).

use std::net::IpAddr;

use crate::analysis::device::{Device, Inventory};

use crate::analysis::beacon::BeaconScore;
pub use crate::detect::schema::EventType;
use crate::model::app::{App, AppEvent};
use crate::model::event::{FirmwareEvent, FlowRecord, SensorHealth};
use crate::model::netset::DestClass;
use crate::model::time::Micros;

/// A field value, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Ip(IpAddr),
    Num(u64),
    Str(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ip,
    Num,
    Str,
}

/// The devices a rule can ask about.
pub trait Devices {
    fn is_device(&self, ip: IpAddr) -> bool;
    fn vendor(&self, ip: IpAddr) -> Option<&str>;
    fn model(&self, ip: IpAddr) -> Option<&str>;
    fn firmware(&self, ip: IpAddr) -> Option<&str>;
    /// When the device was first seen (packet time).
    fn first_seen(&self, ip: IpAddr) -> Option<Micros>;
}

/// The inventory answers rules' questions about devices.
impl Devices for Inventory {
    fn is_device(&self, ip: IpAddr) -> bool {
        Inventory::is_device(self, ip)
    }

    fn vendor(&self, ip: IpAddr) -> Option<&str> {
        self.get(ip).and_then(Device::vendor)
    }

    fn model(&self, ip: IpAddr) -> Option<&str> {
        self.get(ip).and_then(Device::model)
    }

    fn firmware(&self, ip: IpAddr) -> Option<&str> {
        self.get(ip).and_then(Device::firmware_version)
    }

    fn first_seen(&self, ip: IpAddr) -> Option<Micros> {
        self.get(ip).map(|d| d.first_seen)
    }
}

/// One event as rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub event: EventType,
    pub ts: Micros,
    pub flow_id: u64,
    pub community_id: &'a str,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    pub dest_name: Option<&'a str>,
    pub flow: Option<&'a FlowRecord>,
    pub app: Option<&'a App>,
    pub firmware: Option<&'a FirmwareEvent>,
    /// For `flow_start`: the device never opened a flow to this destination before.
    pub first_contact: Option<bool>,
    /// For `flow`: the responder answered on a (protocol, port) it never answered on before.
    pub first_service: Option<bool>,
    pub beacon: Option<&'a BeaconScore>,
    pub sensor: Option<&'a SensorHealth>,
}

impl<'a> Subject<'a> {
    pub fn with_first_contact(mut self, first: Option<bool>) -> Self {
        self.first_contact = first;
        self
    }

    pub fn with_first_service(mut self, first: Option<bool>) -> Self {
        self.first_service = first;
        self
    }

    pub fn from_flow(event: EventType, f: &'a FlowRecord, ts: Micros, dest_name: Option<&'a str>) -> Self {
        Self {
            event,
            ts,
            flow_id: f.flow_id,
            community_id: &f.community_id,
            src_ip: f.src_ip,
            src_port: f.src_port,
            dest_ip: f.dest_ip,
            dest_port: f.dest_port,
            proto: f.proto,
            dest_name,
            flow: Some(f),
            app: None,
            firmware: None,
            first_contact: None,
            first_service: None,
            beacon: None,
            sensor: None,
        }
    }

    /// An application event; `None` for protocols rules do not match on.
    pub fn from_app(e: &'a AppEvent, dest_name: Option<&'a str>) -> Option<Self> {
        let event = match &e.app {
            App::Dns(_) => EventType::Dns,
            App::Tls(_) => EventType::Tls,
            App::Http(_) => EventType::Http,
            App::Dhcp(_) => EventType::Dhcp,
            App::Rtsp(_) => EventType::Rtsp,
            App::Sadp(_) | App::SadpL2(_) | App::Dhip(_) | App::Wsd(_) | App::Ssdp(_) => EventType::Discovery,
            App::FirmwareTransfer(_) => EventType::Firmware,
            App::Ntp(_) | App::Baichuan(_) => return None,
        };
        Some(Self {
            event,
            ts: e.ts,
            flow_id: e.flow_id,
            community_id: &e.community_id,
            src_ip: e.src_ip,
            src_port: e.src_port,
            dest_ip: e.dest_ip,
            dest_port: e.dest_port,
            proto: e.proto,
            dest_name,
            flow: None,
            app: Some(&e.app),
            firmware: None,
            first_contact: None,
            first_service: None,
            beacon: None,
            sensor: None,
        })
    }

    /// A pair's beacon score; the flow is the connection that completed it.
    pub fn from_beacon(b: &'a BeaconScore, f: &'a FlowRecord, dest_name: Option<&'a str>) -> Self {
        Self {
            event: EventType::Beacon,
            ts: f.end,
            flow_id: f.flow_id,
            community_id: &f.community_id,
            src_ip: b.device,
            src_port: f.src_port,
            dest_ip: b.dest,
            dest_port: f.dest_port,
            proto: f.proto,
            dest_name,
            flow: None,
            app: None,
            firmware: None,
            first_contact: None,
            first_service: None,
            beacon: Some(b),
            sensor: None,
        }
    }

    /// A table of the sensor evicting: both ends are the source that held the most of it
    /// (unspecified when none is known, as for the device table).
    pub fn from_sensor(h: &'a SensorHealth) -> Self {
        let ip = h.top.first().map_or(IpAddr::from([0, 0, 0, 0]), |t| t.0);
        Self {
            event: EventType::Sensor,
            ts: h.ts,
            flow_id: 0,
            community_id: "",
            src_ip: ip,
            src_port: 0,
            dest_ip: ip,
            dest_port: 0,
            proto: 0,
            dest_name: None,
            flow: None,
            app: None,
            firmware: None,
            first_contact: None,
            first_service: None,
            beacon: None,
            sensor: Some(h),
        }
    }

    /// A firmware change on a device: the device is both ends.
    pub fn from_firmware(f: &'a FirmwareEvent) -> Self {
        Self {
            event: EventType::Firmware,
            ts: f.ts,
            flow_id: 0,
            community_id: "",
            src_ip: f.ip,
            src_port: 0,
            dest_ip: f.ip,
            dest_port: 0,
            proto: 0,
            dest_name: None,
            flow: None,
            app: None,
            firmware: Some(f),
            first_contact: None,
            first_service: None,
            beacon: None,
            sensor: None,
        }
    }
}

macro_rules! fields {
    ($($name:literal => $variant:ident, $kind:ident, [$($ev:ident),*];)*) => {
        /// Every field rules can name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field { $($variant),* }

        /// (name, field, kind, the events it exists on; empty = every event)
        pub const FIELDS: &[(&str, Field, Kind, &[EventType])] = &[
            $(($name, Field::$variant, Kind::$kind, &[$(EventType::$ev),*])),*
        ];
    };
}

fields! {
    "src_ip" => SrcIp, Ip, [];
    "dest_ip" => DestIp, Ip, [];
    "src_port" => SrcPort, Num, [];
    "dest_port" => DestPort, Num, [];
    "proto" => Proto, Str, [];
    "src_class" => SrcClass, Str, [];
    "dest_class" => DestClass, Str, [];
    "dest_name" => DestName, Str, [];
    "device.ip" => DeviceIp, Ip, [];
    "device.vendor" => DeviceVendor, Str, [];
    "device.model" => DeviceModel, Str, [];
    "device.firmware" => DeviceFirmware, Str, [];
    "device.age" => DeviceAge, Num, [];
    "first_contact" => FirstContact, Str, [FlowStart];
    "first_service" => FirstService, Str, [Flow];
    "vlan" => Vlan, Num, [FlowStart, Flow, FlowProgress];
    "pkts_toserver" => PktsToServer, Num, [FlowStart, Flow, FlowProgress];
    "pkts_toclient" => PktsToClient, Num, [FlowStart, Flow, FlowProgress];
    "bytes_toserver" => BytesToServer, Num, [FlowStart, Flow, FlowProgress];
    "bytes_toclient" => BytesToClient, Num, [FlowStart, Flow, FlowProgress];
    "bytes" => Bytes, Num, [FlowStart, Flow, FlowProgress];
    "payload_len_toserver" => PayloadLenToServer, Num, [FlowStart, Flow, FlowProgress];
    "payload_head_toserver" => PayloadHeadToServer, Str, [FlowStart, Flow, FlowProgress];
    "payload_len_toclient" => PayloadLenToClient, Num, [FlowStart, Flow, FlowProgress];
    "payload_head_toclient" => PayloadHeadToClient, Str, [FlowStart, Flow, FlowProgress];
    "dns.type" => DnsType, Str, [Dns];
    "dns.rrname" => DnsRrname, Str, [Dns];
    "dns.rrtype" => DnsRrtype, Str, [Dns];
    "dns.rcode" => DnsRcode, Str, [Dns];
    "dns.answer" => DnsAnswer, Str, [Dns];
    "tls.sni" => TlsSni, Str, [Tls];
    "tls.version" => TlsVersion, Str, [Tls];
    "tls.ja3" => TlsJa3, Str, [Tls];
    "tls.ja4" => TlsJa4, Str, [Tls];
    "tls.alpn" => TlsAlpn, Str, [Tls];
    "http.method" => HttpMethod, Str, [Http];
    "http.url" => HttpUrl, Str, [Http];
    "http.host" => HttpHost, Str, [Http];
    "http.user_agent" => HttpUserAgent, Str, [Http];
    "http.content_type" => HttpContentType, Str, [Http];
    "http.request_body" => HttpRequestBody, Str, [Http];
    "http.status" => HttpStatus, Num, [Http];
    "http.server" => HttpServer, Str, [Http];
    "http.ezviz_enabled" => HttpEzvizEnabled, Str, [Http];
    "http.ezviz_host" => HttpEzvizHost, Str, [Http];
    "dhcp.hostname" => DhcpHostname, Str, [Dhcp];
    "dhcp.vendor_class" => DhcpVendorClass, Str, [Dhcp];
    "rtsp.method" => RtspMethod, Str, [Rtsp];
    "rtsp.url" => RtspUrl, Str, [Rtsp];
    "rtsp.user_agent" => RtspUserAgent, Str, [Rtsp];
    "rtsp.server" => RtspServer, Str, [Rtsp];
    "discovery.protocol" => DiscoveryProtocol, Str, [Discovery];
    "discovery.kind" => DiscoveryKind, Str, [Discovery];
    "discovery.model" => DiscoveryModel, Str, [Discovery];
    "discovery.firmware" => DiscoveryFirmware, Str, [Discovery];
    "sadp.hc_platform_enable" => SadpHcPlatformEnable, Str, [Discovery];
    "sadp.activated" => SadpActivated, Str, [Discovery];
    "firmware.event" => FirmwareEventKind, Str, [Firmware];
    "firmware.version" => FirmwareVersion, Str, [Firmware];
    "firmware.previous" => FirmwarePrevious, Str, [Firmware];
    "firmware.source" => FirmwareSource, Str, [Firmware];
    "firmware.direction" => FirmwareDirection, Str, [Firmware];
    "firmware.sha256" => FirmwareSha256, Str, [Firmware];
    "firmware.completed" => FirmwareCompleted, Str, [Firmware];
    "firmware.size" => FirmwareSize, Num, [Firmware];
    "firmware.url" => FirmwareUrl, Str, [Firmware];
    "firmware.format" => FirmwareFormat, Str, [Firmware];
    "firmware.image" => FirmwareImage, Str, [Firmware];
    "firmware.method" => FirmwareMethod, Str, [Firmware];
    "beacon.score" => BeaconScorePct, Num, [Beacon];
    "beacon.ts_score" => BeaconTsScore, Num, [Beacon];
    "beacon.ds_score" => BeaconDsScore, Num, [Beacon];
    "beacon.connections" => BeaconConnections, Num, [Beacon];
    "beacon.interval" => BeaconInterval, Num, [Beacon];
    "beacon.duration" => BeaconDuration, Num, [Beacon];
    "beacon.hours" => BeaconHours, Num, [Beacon];
    "beacon.confidence" => BeaconConfidence, Str, [Beacon];
    "sensor.table" => SensorTable, Str, [Sensor];
    "sensor.evicted" => SensorEvicted, Num, [Sensor];
    "sensor.minutes" => SensorMinutes, Num, [Sensor];
    "sensor.top_source" => SensorTopSource, Ip, [Sensor];
}

/// Looks a field up by name for an event type.
pub fn field(name: &str, event: EventType) -> Option<(Field, Kind)> {
    FIELDS
        .iter()
        .find(|(n, _, _, evs)| *n == name && (evs.is_empty() || evs.contains(&event)))
        .map(|(_, f, k, _)| (*f, *k))
}

/// A field's name as rules write it.
pub fn field_name(field: Field) -> &'static str {
    FIELDS.iter().find(|(_, f, _, _)| *f == field).map_or("?", |(n, _, _, _)| n)
}

/// The fields only events of `event` have (`firmware.*` on firmware events, …).
pub fn own_fields(event: EventType) -> impl Iterator<Item = Field> {
    FIELDS.iter().filter(move |(_, _, _, evs)| evs == &[event]).map(|(_, f, _, _)| *f)
}

/// Field names available on an event type (for error messages).
pub fn names(event: EventType) -> Vec<&'static str> {
    FIELDS
        .iter()
        .filter(|(_, _, _, evs)| evs.is_empty() || evs.contains(&event))
        .map(|(n, _, _, _)| *n)
        .collect()
}

fn bool_str(b: Option<bool>) -> Option<&'static str> {
    b.map(|b| if b { "true" } else { "false" })
}

/// Calls `f` with each value of `field`; stops and returns true as soon as `f` does.
pub fn any_value(
    field: Field,
    s: &Subject<'_>,
    devices: &dyn Devices,
    device: IpAddr,
    f: &mut dyn FnMut(FieldValue<'_>) -> bool,
) -> bool {
    use FieldValue::{Ip, Num, Str};
    let one = |v: Option<FieldValue<'_>>, f: &mut dyn FnMut(FieldValue<'_>) -> bool| v.is_some_and(f);
    match field {
        Field::SrcIp => f(Ip(s.src_ip)),
        Field::DestIp => f(Ip(s.dest_ip)),
        Field::SrcPort => f(Num(u64::from(s.src_port))),
        Field::DestPort => f(Num(u64::from(s.dest_port))),
        Field::Proto => f(Str(super::proto_keyword(s.proto))),
        Field::SrcClass => f(Str(DestClass::of(s.src_ip).as_str())),
        Field::DestClass => f(Str(DestClass::of(s.dest_ip).as_str())),
        Field::DestName => one(s.dest_name.map(Str), f),
        Field::DeviceIp => f(Ip(device)),
        Field::DeviceVendor => one(devices.vendor(device).map(Str), f),
        Field::DeviceModel => one(devices.model(device).map(Str), f),
        Field::DeviceFirmware => one(devices.firmware(device).map(Str), f),
        Field::DeviceAge => {
            one(devices.first_seen(device).map(|t| Num(s.ts.saturating_sub(t) / 1_000_000)), f)
        }
        Field::FirstContact => one(s.first_contact.map(|b| Str(if b { "true" } else { "false" })), f),
        Field::FirstService => one(s.first_service.map(|b| Str(if b { "true" } else { "false" })), f),
        Field::Vlan => one(s.flow.and_then(|fl| fl.vlan).map(|v| Num(u64::from(v))), f),
        Field::PktsToServer => one(s.flow.map(|fl| Num(fl.pkts_toserver)), f),
        Field::PktsToClient => one(s.flow.map(|fl| Num(fl.pkts_toclient)), f),
        Field::BytesToServer => one(s.flow.map(|fl| Num(fl.bytes_toserver)), f),
        Field::BytesToClient => one(s.flow.map(|fl| Num(fl.bytes_toclient)), f),
        Field::Bytes => one(s.flow.map(|fl| Num(fl.bytes_toserver + fl.bytes_toclient)), f),
        Field::PayloadLenToServer => one(s.flow.map(|fl| Num(u64::from(fl.first_payload[0].len))), f),
        Field::PayloadLenToClient => one(s.flow.map(|fl| Num(u64::from(fl.first_payload[1].len))), f),
        Field::PayloadHeadToServer => one(s.flow.map(|fl| Str(fl.first_payload[0].hex())), f),
        Field::PayloadHeadToClient => one(s.flow.map(|fl| Str(fl.first_payload[1].hex())), f),
        _ => app_value(field, s, f),
    }
}

fn s_opt(v: &Option<String>) -> Option<FieldValue<'_>> {
    v.as_deref().map(FieldValue::Str)
}

fn app_value(field: Field, s: &Subject<'_>, f: &mut dyn FnMut(FieldValue<'_>) -> bool) -> bool {
    use FieldValue::{Ip, Num, Str};
    if let Some(h) = s.sensor {
        return match field {
            Field::SensorTable => f(Str(h.table)),
            Field::SensorEvicted => f(Num(h.evicted)),
            Field::SensorMinutes => f(Num(h.minutes)),
            Field::SensorTopSource => h.top.iter().any(|t| f(Ip(t.0))),
            _ => false,
        };
    }
    if let Some(b) = s.beacon {
        let secs = |v: f64| v.max(0.0).round() as u64;
        return match field {
            Field::BeaconScorePct => f(Num(BeaconScore::percent(b.score))),
            Field::BeaconTsScore => f(Num(BeaconScore::percent(b.ts_score))),
            Field::BeaconDsScore => f(Num(BeaconScore::percent(b.ds_score))),
            Field::BeaconConnections => f(Num(b.connections as u64)),
            Field::BeaconInterval => f(Num(secs(b.interval))),
            Field::BeaconDuration => f(Num(secs(b.duration))),
            Field::BeaconHours => f(Num(b.hours as u64)),
            Field::BeaconConfidence => f(Str(b.confidence())),
            _ => false,
        };
    }
    if let Some(fw) = s.firmware {
        return match field {
            Field::FirmwareEventKind => f(Str(fw.change.kind.as_str())),
            Field::FirmwareVersion => f(Str(&fw.change.version)),
            Field::FirmwarePrevious => fw.change.previous.as_deref().is_some_and(|p| f(Str(p))),
            Field::FirmwareSource => f(Str(fw.change.source.as_str())),
            _ => false,
        };
    }
    let Some(app) = s.app else { return false };
    match (field, app) {
        (Field::DnsType, App::Dns(m)) => f(Str(if m.response { "response" } else { "request" })),
        (Field::DnsRrname, App::Dns(m)) => m.queries.iter().any(|q| f(Str(&q.rrname))),
        (Field::DnsRrtype, App::Dns(m)) => m.queries.iter().any(|q| f(Str(&q.rrtype))),
        (Field::DnsRcode, App::Dns(m)) => m.response && f(Str(&m.rcode)),
        (Field::DnsAnswer, App::Dns(m)) => m.answers.iter().any(|a| f(Str(&a.rdata))),
        (Field::TlsSni, App::Tls(h)) => s_opt(&h.sni).is_some_and(f),
        (Field::TlsVersion, App::Tls(h)) => f(Str(&h.version)),
        (Field::TlsJa3, App::Tls(h)) => f(Str(&h.ja3.hash)),
        (Field::TlsJa4, App::Tls(h)) => f(Str(&h.ja4)),
        (Field::TlsAlpn, App::Tls(h)) => h.alpn.iter().any(|a| f(Str(a))),
        (Field::HttpMethod, App::Http(t)) => f(Str(&t.request.http_method)),
        (Field::HttpUrl, App::Http(t)) => f(Str(&t.request.url)),
        (Field::HttpHost, App::Http(t)) => s_opt(&t.request.hostname).is_some_and(f),
        (Field::HttpUserAgent, App::Http(t)) => s_opt(&t.request.http_user_agent).is_some_and(f),
        (Field::HttpContentType, App::Http(t)) => s_opt(&t.request.http_content_type).is_some_and(f),
        (Field::HttpRequestBody, App::Http(t)) => s_opt(&t.request_body).is_some_and(f),
        (Field::HttpStatus, App::Http(t)) => t.response.as_ref().is_some_and(|r| f(Num(u64::from(r.status)))),
        (Field::HttpServer, App::Http(t)) => {
            t.response.as_ref().and_then(|r| r.server.as_deref()).is_some_and(|v| f(Str(v)))
        }
        (Field::HttpEzvizEnabled, App::Http(t)) => match &t.identity {
            Some(crate::model::app::BodyIdentity::IsapiEzviz(e)) => {
                bool_str(e.enabled).is_some_and(|v| f(Str(v)))
            }
            _ => false,
        },
        (Field::HttpEzvizHost, App::Http(t)) => match &t.identity {
            Some(crate::model::app::BodyIdentity::IsapiEzviz(e)) => s_opt(&e.host_name).is_some_and(f),
            _ => false,
        },
        (Field::DhcpHostname, App::Dhcp(m)) => s_opt(&m.hostname).is_some_and(f),
        (Field::DhcpVendorClass, App::Dhcp(m)) => s_opt(&m.vendor_class_identifier).is_some_and(f),
        (Field::RtspMethod, App::Rtsp(m)) => m.request.as_ref().is_some_and(|r| f(Str(&r.method))),
        (Field::RtspUrl, App::Rtsp(m)) => m.request.as_ref().is_some_and(|r| f(Str(&r.url))),
        (Field::RtspUserAgent, App::Rtsp(m)) => {
            m.request.as_ref().and_then(|r| r.user_agent.as_deref()).is_some_and(|v| f(Str(v)))
        }
        (Field::RtspServer, App::Rtsp(m)) => {
            m.response.as_ref().and_then(|r| r.server.as_deref()).is_some_and(|v| f(Str(v)))
        }
        (Field::DiscoveryProtocol, a) => match a {
            App::Sadp(_) => f(Str("sadp")),
            App::SadpL2(_) => f(Str("sadp_l2")),
            App::Dhip(_) => f(Str("dhip")),
            App::Wsd(_) => f(Str("wsd")),
            App::Ssdp(_) => f(Str("ssdp")),
            _ => false,
        },
        (Field::DiscoveryKind, a) => match a {
            App::Sadp(m) => f(Str(&m.kind)),
            App::Wsd(m) => f(Str(&m.kind)),
            App::Ssdp(m) => f(Str(&m.kind)),
            App::Dhip(m) => s_opt(&m.method).is_some_and(f),
            _ => false,
        },
        (Field::DiscoveryModel, a) => match a {
            App::Sadp(m) => s_opt(&m.device_description).is_some_and(f),
            App::Dhip(m) => s_opt(&m.device_type).is_some_and(f),
            App::Wsd(m) => s_opt(&m.hardware).is_some_and(f),
            _ => false,
        },
        (Field::DiscoveryFirmware, a) => match a {
            App::Sadp(m) => s_opt(&m.software_version).is_some_and(f),
            App::Dhip(m) => s_opt(&m.version).is_some_and(f),
            _ => false,
        },
        (Field::SadpHcPlatformEnable, App::Sadp(m)) => {
            bool_str(m.hc_platform_enable).is_some_and(|v| f(Str(v)))
        }
        (Field::SadpActivated, App::Sadp(m)) => bool_str(m.activated).is_some_and(|v| f(Str(v))),
        (Field::FirmwareEventKind, App::FirmwareTransfer(_)) => f(Str("transfer")),
        (Field::FirmwareDirection, App::FirmwareTransfer(t)) => f(Str(t.direction)),
        (Field::FirmwareSha256, App::FirmwareTransfer(t)) => f(Str(&t.sha256)),
        (Field::FirmwareCompleted, App::FirmwareTransfer(t)) => {
            f(Str(if t.completed { "true" } else { "false" }))
        }
        (Field::FirmwareSize, App::FirmwareTransfer(t)) => f(Num(t.size)),
        (Field::FirmwareUrl, App::FirmwareTransfer(t)) => f(Str(&t.url)),
        (Field::FirmwareFormat, App::FirmwareTransfer(t)) => t.format.is_some_and(|v| f(Str(v))),
        (Field::FirmwareImage, App::FirmwareTransfer(t)) => f(Str(if t.image { "true" } else { "false" })),
        (Field::FirmwareMethod, App::FirmwareTransfer(t)) => f(Str(&t.method)),
        _ => false,
    }
}
