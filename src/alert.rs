//! The alert record (DESIGN.md's shape: one JSON object per line in the journal, and the element
//! of webhook bodies).

use std::net::IpAddr;

use serde::Serialize;

use crate::device::Device;
use crate::event::{format_mac, proto_name, rfc3339, Micros};
use crate::rules::fields::Subject;
use crate::rules::Rule;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub timestamp: String,
    pub rule: AlertRule,
    pub category: &'static str,
    pub summary: String,
    pub device: AlertDevice,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_name: Option<String>,
    pub community_id: String,
    pub flow_id: u64,
    pub evidence: Evidence,
    pub sensor: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertDevice {
    pub ip: IpAddr,
    pub mac: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// The event type the rule matched.
    pub event_type: &'static str,
    /// The rule's conditions that held, as written.
    pub matched: Vec<String>,
    /// Path of the evidence capture, once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: Option<String>,
}

impl Alert {
    pub fn new(
        rule: &Rule,
        device_ip: IpAddr,
        device: Option<&Device>,
        subject: &Subject<'_>,
        ts: Micros,
        sensor: &str,
    ) -> Self {
        let vendor = device.and_then(|d| d.vendor()).map(str::to_string);
        let who = match &vendor {
            Some(v) => format!("{device_ip} ({v})"),
            None => device_ip.to_string(),
        };
        let proto = if subject.proto == 0 { String::new() } else { proto_name(subject.proto) };
        let dest_name = subject.dest_name.map(str::to_string);
        let path = if subject.src_ip == subject.dest_ip {
            who.clone()
        } else if subject.src_ip == device_ip {
            let name = dest_name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            format!("{who} → {}:{}/{proto}{name}", subject.dest_ip, subject.dest_port)
        } else {
            format!("{}:{}/{proto} → {who}", subject.src_ip, subject.src_port)
        };
        Self {
            timestamp: rfc3339(ts),
            rule: AlertRule {
                id: rule.id.clone(),
                name: rule.name.clone(),
                severity: rule.severity.as_str(),
                description: rule.description.clone(),
                references: rule.references.clone(),
            },
            category: rule.category.as_str(),
            summary: format!("{}: {path}", rule.name),
            device: AlertDevice {
                ip: device_ip,
                mac: device.and_then(|d| d.mac).map(format_mac),
                vendor,
                model: device.and_then(|d| d.model()).map(str::to_string),
                firmware: device.and_then(|d| d.firmware_version()).map(str::to_string),
            },
            src_ip: subject.src_ip,
            src_port: subject.src_port,
            dest_ip: subject.dest_ip,
            dest_port: subject.dest_port,
            proto,
            dest_name,
            community_id: subject.community_id.to_string(),
            flow_id: subject.flow_id,
            evidence: Evidence {
                event_type: rule.event.as_str(),
                matched: rule.conditions.clone(),
                pcap: None,
            },
            sensor: sensor.to_string(),
        }
    }
}
