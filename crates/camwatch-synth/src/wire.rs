//! The traffic plan (flows and timed segments) and its rendering into Ethernet frames and truth.
//!
//! Planning code appends [`Event`]s in per-conversation order with timestamps relative to the
//! capture start. [`render`] sorts them by time (stably, so equal timestamps keep their planned
//! order), inserts ARP exchanges before the first unicast frame between two stations, assigns
//! per-host IP identifiers, builds the frames with etherparse and tallies the ground truth.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Context;
use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, IpHeaders, Ipv4Header, PacketBuilder, TcpHeader,
    TcpOptionElement, UdpHeader,
};
use rand::RngExt;

use super::net::{sub_rng, HostId, Role, Site};
use super::{
    Capture, Packet, Scenario, Truth, TruthDevice, TruthEgress, TruthEvent, TruthFirmware,
    TruthFirmwareUpload, TruthFlow,
};

/// Index into [`Plan::flows`].
pub(crate) type FlowId = usize;

pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;

const TTL: u8 = 64;
/// How long before a frame the ARP request that resolves its next hop is sent (the reply
/// follows half-way). The planner starts the capture with such a frame at exactly this time,
/// so the first ARP request is at offset zero.
pub(crate) const ARP_LEAD: u64 = 400;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Where a flow goes: a host of the site (local or internet) or a multicast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Host(HostId),
    Group(Ipv4Addr),
}

/// One planned conversation, `client` being the initiator.
#[derive(Debug, Clone)]
pub(crate) struct FlowPlan {
    pub proto: u8,
    pub client: HostId,
    pub client_port: u16,
    pub server: Peer,
    pub server_port: u16,
    /// Anomaly that produced the flow, reported in the egress truth.
    pub kind: Option<&'static str>,
}

/// TCP header fields of one planned segment (ports come from the flow).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TcpSeg {
    pub seq: u32,
    /// `Some` when the ACK flag is set.
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub psh: bool,
    pub window: u16,
    /// MSS option (SYN segments only).
    pub mss: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    Udp,
    Tcp(TcpSeg),
}

/// One planned IPv4 packet.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Microseconds since the capture start.
    pub ts: u64,
    pub flow: FlowId,
    /// `true` client→server, `false` server→client.
    pub fwd: bool,
    pub transport: Transport,
    pub payload: Vec<u8>,
}

/// Everything the generator will put on the wire, before rendering.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub flows: Vec<FlowPlan>,
    pub events: Vec<Event>,
    /// Camera identities, passed through to [`Truth::firmware`].
    pub firmware: Vec<TruthFirmware>,
    /// Firmware uploads, passed through to [`Truth::firmware_uploads`].
    pub firmware_uploads: Vec<TruthFirmwareUpload>,
    /// TFTP downloads, passed through to [`Truth::tftp_downloads`].
    pub tftp_downloads: Vec<TruthFirmwareUpload>,
    /// Anomaly instances, passed through to [`Truth::events`].
    pub anomaly_events: Vec<TruthEvent>,
    used_ports: HashSet<(HostId, u8, u16)>,
}

impl Plan {
    /// Registers a conversation. Returns an error if the client port is already taken.
    pub(crate) fn flow(
        &mut self,
        proto: u8,
        client: HostId,
        client_port: u16,
        server: Peer,
        server_port: u16,
        kind: Option<&'static str>,
    ) -> anyhow::Result<FlowId> {
        anyhow::ensure!(
            self.used_ports.insert((client, proto, client_port)),
            "port {client_port}/{proto} of host {client} used twice"
        );
        self.flows.push(FlowPlan { proto, client, client_port, server, server_port, kind });
        Ok(self.flows.len() - 1)
    }

    /// A fresh ephemeral port (Linux default range) for `host`, never reused in the capture.
    pub(crate) fn ephemeral_port(&self, rng: &mut impl RngExt, host: HostId, proto: u8) -> u16 {
        loop {
            let port = rng.random_range(32_768..=60_999);
            if !self.used_ports.contains(&(host, proto, port)) {
                return port;
            }
        }
    }

    /// A UDP flow from a fresh ephemeral port of `client`.
    pub(crate) fn udp_flow(
        &mut self,
        rng: &mut impl RngExt,
        client: HostId,
        server: Peer,
        server_port: u16,
        kind: Option<&'static str>,
    ) -> anyhow::Result<FlowId> {
        let port = self.ephemeral_port(rng, client, UDP);
        self.flow(UDP, client, port, server, server_port, kind)
    }

    /// Plans one UDP datagram.
    pub(crate) fn udp(&mut self, ts: u64, flow: FlowId, fwd: bool, payload: Vec<u8>) {
        self.events.push(Event { ts, flow, fwd, transport: Transport::Udp, payload });
    }

    /// Plans one TCP segment.
    pub(crate) fn tcp(&mut self, ts: u64, flow: FlowId, fwd: bool, seg: TcpSeg, payload: Vec<u8>) {
        self.events.push(Event { ts, flow, fwd, transport: Transport::Tcp(seg), payload });
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct FlowTally {
    first: Option<usize>,
    packets_fwd: u64,
    packets_rev: u64,
    bytes_fwd: u64,
    bytes_rev: u64,
}

/// Link-layer station of a site host: internet hosts are reached through the gateway.
fn station(site: &Site, h: HostId) -> HostId {
    match site.hosts[h].role {
        Role::Outside => site.gateway,
        _ => h,
    }
}

fn mac_of(site: &Site, h: HostId) -> anyhow::Result<[u8; 6]> {
    site.hosts[h].mac.with_context(|| format!("host {} has no MAC", site.hosts[h].ip))
}

/// IPv4 multicast group → Ethernet multicast MAC (RFC 1112).
fn group_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

struct Renderer<'a> {
    site: &'a Site,
    packets: Vec<Packet>,
    /// Unordered station pairs that have completed an ARP exchange.
    resolved: HashSet<(HostId, HostId)>,
    ip_ids: Vec<u16>,
    sent_ipv4: Vec<bool>,
    last_ts: u64,
}

impl Renderer<'_> {
    fn push(&mut self, ts: u64, data: Vec<u8>) {
        self.last_ts = ts;
        self.packets.push(Packet { ts_micros: ts, data });
    }

    /// ARP request (broadcast) and reply so that `from` can reach `to`, just before `ts`.
    fn arp(&mut self, ts: u64, from: HostId, to: HostId) -> anyhow::Result<()> {
        let key = (from.min(to), from.max(to));
        if !self.resolved.insert(key) {
            return Ok(());
        }
        let (a, b) = (&self.site.hosts[from], &self.site.hosts[to]);
        let (a_mac, b_mac) = (mac_of(self.site, from)?, mac_of(self.site, to)?);
        let req_ts = ts.saturating_sub(ARP_LEAD).max(self.last_ts);
        let request = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REQUEST,
            &a_mac,
            &a.ip.octets(),
            &[0; 6],
            &b.ip.octets(),
        )?;
        let mut frame = Vec::with_capacity(42);
        PacketBuilder::ethernet2(a_mac, BROADCAST_MAC).arp(request).write(&mut frame)?;
        self.push(req_ts, frame);

        let rep_ts = ts.saturating_sub(ARP_LEAD / 2).max(req_ts);
        let reply = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REPLY,
            &b_mac,
            &b.ip.octets(),
            &a_mac,
            &a.ip.octets(),
        )?;
        let mut frame = Vec::with_capacity(42);
        PacketBuilder::ethernet2(b_mac, a_mac).arp(reply).write(&mut frame)?;
        self.push(rep_ts, frame);
        Ok(())
    }

    /// Builds one IPv4 frame; returns the IPv4 total length.
    fn ipv4(&mut self, ev: &Event, flow: &FlowPlan) -> anyhow::Result<u64> {
        let site = self.site;
        let (src, src_port, dst, dst_port) = match (ev.fwd, flow.server) {
            (true, server) => (flow.client, flow.client_port, server, flow.server_port),
            (false, Peer::Host(server)) => {
                (server, flow.server_port, Peer::Host(flow.client), flow.client_port)
            }
            (false, Peer::Group(g)) => anyhow::bail!("reply from multicast group {g}"),
        };
        let src_station = station(site, src);
        let src_mac = mac_of(site, src_station)?;
        let (dst_ip, dst_mac, multicast) = match dst {
            Peer::Group(g) => (g, group_mac(g), true),
            Peer::Host(d) => {
                let dst_station = station(site, d);
                anyhow::ensure!(
                    dst_station != src_station,
                    "flow between {} and {} does not cross the segment",
                    site.ip(src),
                    site.ip(d)
                );
                self.arp(ev.ts, src_station, dst_station)?;
                (site.ip(d), mac_of(site, dst_station)?, false)
            }
        };
        if site.hosts[src].ip.is_private() {
            self.sent_ipv4[src] = true;
        }

        let id = self.ip_ids[src];
        self.ip_ids[src] = id.wrapping_add(1);
        let mut ip =
            Ipv4Header::new(0, TTL, etherparse::ip_number::UDP, site.ip(src).octets(), dst_ip.octets())?;
        ip.identification = id;
        // Unicast TCP and UDP go out with DF (Linux path-MTU discovery); multicast does not.
        ip.dont_fragment = !multicast;
        let builder = PacketBuilder::ethernet2(src_mac, dst_mac).ip(IpHeaders::Ipv4(ip, Default::default()));

        let mut frame = Vec::with_capacity(14 + 20 + 24 + ev.payload.len());
        let l4_len = match ev.transport {
            Transport::Udp => {
                builder.udp(src_port, dst_port).write(&mut frame, &ev.payload)?;
                UdpHeader::LEN
            }
            Transport::Tcp(seg) => {
                let mut h = TcpHeader::new(src_port, dst_port, seg.seq, seg.window);
                h.syn = seg.syn;
                h.fin = seg.fin;
                h.psh = seg.psh;
                if let Some(ack) = seg.ack {
                    h.ack = true;
                    h.acknowledgment_number = ack;
                }
                if let Some(mss) = seg.mss {
                    h.set_options(&[TcpOptionElement::MaximumSegmentSize(mss)])?;
                }
                let len = h.header_len();
                builder.tcp_header(h).write(&mut frame, &ev.payload)?;
                len
            }
        };
        self.push(ev.ts, frame);
        Ok((Ipv4Header::MIN_LEN + l4_len + ev.payload.len()) as u64)
    }
}

/// Renders the plan into frames (timestamp order) and the ground truth.
pub(crate) fn render(s: &Scenario, site: &Site, mut plan: Plan) -> anyhow::Result<Capture> {
    plan.events.sort_by_key(|e| e.ts);

    let mut id_rng = sub_rng(s.seed, "ip-id", 0);
    let mut r = Renderer {
        site,
        packets: Vec::with_capacity(plan.events.len() + 64),
        resolved: HashSet::new(),
        ip_ids: site.hosts.iter().map(|_| id_rng.random::<u16>()).collect(),
        sent_ipv4: vec![false; site.hosts.len()],
        last_ts: 0,
    };
    let mut tally = vec![FlowTally::default(); plan.flows.len()];
    for (i, ev) in plan.events.iter().enumerate() {
        let flow = &plan.flows[ev.flow];
        let ip_len = r.ipv4(ev, flow)?;
        let t = &mut tally[ev.flow];
        t.first.get_or_insert(i);
        if ev.fwd {
            t.packets_fwd += 1;
            t.bytes_fwd += ip_len;
        } else {
            t.packets_rev += 1;
            t.bytes_rev += ip_len;
        }
    }

    // The plan starts with a frame at ARP_LEAD preceded by its ARP exchange, so this shift is
    // zero and payload clocks (NTP, HTTP dates) agree with the capture clock; it only
    // guarantees that the first frame is stamped exactly `start_unix`.
    let first = r.packets.first().map_or(0, |p| p.ts_micros);
    let base = s.start_unix.saturating_mul(1_000_000);
    for p in &mut r.packets {
        p.ts_micros = base + (p.ts_micros - first);
    }

    let mut devices: Vec<TruthDevice> = site
        .hosts
        .iter()
        .zip(&r.sent_ipv4)
        .filter(|(_, &sent)| sent)
        .filter_map(|(h, _)| {
            let (vendor, role) = h.labels();
            h.mac.map(|mac| TruthDevice { ip: h.ip, mac, vendor: vendor.to_string(), role: role.to_string() })
        })
        .collect();
    devices.sort_by_key(|d| d.ip);

    let mut order: Vec<FlowId> = (0..plan.flows.len()).filter(|&f| tally[f].first.is_some()).collect();
    order.sort_by_key(|&f| tally[f].first);
    let mut flows = Vec::with_capacity(order.len());
    let mut egress = Vec::new();
    for f in order {
        let (fp, t) = (&plan.flows[f], tally[f]);
        let server_ip = match fp.server {
            Peer::Host(h) => site.ip(h),
            Peer::Group(g) => g,
        };
        let client_ip = site.ip(fp.client);
        flows.push(TruthFlow {
            proto: fp.proto,
            src: SocketAddrV4::new(client_ip, fp.client_port),
            dst: SocketAddrV4::new(server_ip, fp.server_port),
            packets_fwd: t.packets_fwd,
            packets_rev: t.packets_rev,
            bytes_fwd: t.bytes_fwd,
            bytes_rev: t.bytes_rev,
        });
        let public_unicast = !(server_ip.is_private()
            || server_ip.is_multicast()
            || server_ip.is_broadcast()
            || server_ip.is_loopback()
            || server_ip.is_link_local()
            || server_ip.is_unspecified());
        if client_ip.is_private() && public_unicast {
            egress.push(TruthEgress {
                device: client_ip,
                dest: server_ip,
                dest_port: fp.server_port,
                proto: fp.proto,
                kind: fp.kind.unwrap_or("egress").to_string(),
            });
        }
    }

    let packets = r.packets;
    let truth = Truth {
        devices,
        flows,
        egress,
        firmware: plan.firmware,
        firmware_uploads: plan.firmware_uploads,
        tftp_downloads: plan.tftp_downloads,
        events: plan.anomaly_events,
        packets: packets.len() as u64,
        bytes: packets.iter().map(|p| p.data.len() as u64).sum(),
    };
    Ok(Capture { packets, truth })
}
