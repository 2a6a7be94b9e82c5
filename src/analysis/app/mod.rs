//! The application layer of the worker: which parser sees which bytes. UDP datagrams go to the
//! parser for their port; each TCP direction is followed in order (see [`crate::flow::Stream`]) for its
//! first bytes, recognised by content (TLS, HTTP, RTSP), and parsed; HTTP bodies that carry
//! identity (ISAPI, ONVIF, magicBox) are kept up to a bound, and firmware images are streamed
//! through SHA-256 without being buffered. Video after an RTSP `PLAY` is not buffered.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;

use sha2::Sha256;

use crate::flow::Stream;
use crate::model::app::{App, AppEvent, FirmwareTransfer, HttpTxn, ParseFailure, RtspMessage};
use crate::model::event::FlowRecord;
use crate::model::evict::victims;
use crate::model::packet::{IpPacket, PROTO_TCP, PROTO_UDP};
use crate::model::time::Micros;
use crate::proto::{dhcp, dhip, dns, ntp, onvif, rtsp, sadp, ssdp, tls};

mod baichuan;
mod ftp;
mod http_flow;
mod tftp;

use http_flow::{body_done, body_finished, feed_body, finish_transfer, http_step};
use tftp::Tftp;
/// Bytes kept per direction while recognising and parsing a TCP stream's headers.
pub const STREAM_BYTES: usize = 16 * 1024;
/// Bytes of an HTTP body kept for identity parsing (XML, JSON, magicBox text).
pub const BODY_BYTES: usize = 64 * 1024;
/// Bytes of an HTTP request body kept for rules (exploit payloads sit at its start).
pub const REQUEST_BODY_BYTES: usize = 4096;
/// Bytes buffered across all flows of one worker (stream buffers, held out-of-order segments and
/// kept bodies); past it the streams followed longest are dropped to make room for a new one.
pub const WORKER_BUFFER_BYTES: usize = 64 << 20;
/// Flows whose initial sequence numbers wait for their first data (beyond it a stream that
/// starts is joined where its data starts).
const MAX_ISNS: usize = 1 << 20;
/// HTTP transactions followed per flow.
const MAX_TRANSACTIONS: usize = 32;
/// Firmware image header bytes kept for `digicap.dav` parsing.
const IMAGE_HEAD: usize = 4096;

/// What the app layer produced for one packet.
#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<AppEvent>,
    pub failures: Vec<ParseFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Tls,
    Http,
    Rtsp,
    DnsTcp,
    /// Reolink Baichuan (TCP 9000): messages walked by header, firmware upgrades reported.
    Baichuan,
    /// An FTP control connection (TCP 21): which data connection carries which file.
    Ftp,
    /// An FTP data connection announced on a control connection: the file is hashed.
    FtpData,
    /// Plaintext (a vendor push channel's hello, SMTP/IMAP/POP3/FTP before STARTTLS) that may
    /// upgrade to TLS: the client's bytes are searched for a ClientHello.
    Preamble,
    /// Not a protocol camwatch parses, or done with: bytes are ignored.
    Ignore,
}

/// Client bytes searched for a ClientHello after a plaintext start before giving up.
const PREAMBLE_BYTES: usize = 16 * 1024;

/// Where a TLS ClientHello record starts in `buf`: a handshake record (0x16) of TLS 1.0 to 1.3
/// framing (0x03 0x00..=0x04) with a plausible length, holding a ClientHello (type 1).
fn find_client_hello(buf: &[u8]) -> Option<usize> {
    let scan = &buf[..buf.len().min(PREAMBLE_BYTES)];
    scan.windows(6).position(|w| {
        let len = u16::from_be_bytes([w[3], w[4]]);
        w[0] == 0x16 && w[1] == 0x03 && w[2] <= 0x04 && (40..=16_384 + 2048).contains(&len) && w[5] == 0x01
    })
}

/// HTTP methods a request line may start with (RFC 9110, WebDAV, and what cameras use).
const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"REPORT ",
    b"SEARCH ",
    b"M-SEARCH ",
    b"NOTIFY ",
    b"SUBSCRIBE ",
    b"UNSUBSCRIBE ",
];

/// A request or response body being consumed.
#[derive(Debug)]
struct Body {
    remaining: Option<u64>,
    /// Chunked transfer coding, decoded as it streams.
    chunked: Option<Box<crate::proto::http::Dechunker>>,
    keep: bool,
    kept: Vec<u8>,
    hasher: Option<Sha256>,
    hashed: u64,
    head: Vec<u8>,
    /// A form upload: only its file part is hashed.
    multipart: Option<Box<crate::proto::multipart::FileExtractor>>,
}

#[derive(Debug, Default)]
struct Direction {
    stream: Stream,
    buf: Vec<u8>,
    /// Boxed: most followed streams never carry a body, and a SYN flood makes many of them.
    body: Option<Box<Body>>,
    done: bool,
}

#[derive(Debug)]
struct AppFlow {
    /// The originator's address: streams are evicted fairly by it.
    origin: IpAddr,
    kind: Kind,
    client: Direction,
    server: Direction,
    /// HTTP/RTSP requests waiting for their response.
    pending: Vec<HttpTxn>,
    rtsp_pending: Vec<rtsp::RtspRequest>,
    transactions: usize,
    transfer: Option<Box<FirmwareTransfer>>,
    sent_client_hello: bool,
    baichuan: Option<Box<baichuan::Follower>>,
    ftp: Option<Box<ftp::Control>>,
    ftp_data: Option<Box<ftp::Data>>,
}

impl AppFlow {
    fn new(origin: IpAddr) -> Self {
        Self {
            origin,
            kind: Kind::Unknown,
            client: Direction::default(),
            server: Direction::default(),
            pending: Vec::new(),
            rtsp_pending: Vec::new(),
            transactions: 0,
            transfer: None,
            sent_client_hello: false,
            baichuan: None,
            ftp: None,
            ftp_data: None,
        }
    }

    fn buffered(&self) -> usize {
        self.client.buf.len()
            + self.server.buf.len()
            + self.client.stream.held()
            + self.server.stream.held()
            + body_len(&self.client.body)
            + body_len(&self.server.body)
            + self.baichuan.as_ref().map_or(0, |b| b.buffered())
            + self.ftp_data.as_ref().map_or(0, |d| d.buffered())
    }
}

fn body_len(b: &Option<Box<Body>>) -> usize {
    b.as_ref().map_or(0, |b| b.kept.len() + b.head.len())
}

/// One worker's application-layer state.
#[derive(Default)]
pub struct AppLayer {
    flows: HashMap<u64, AppFlow>,
    /// TFTP transfers by the client's endpoint (the data moves on ports the request chose).
    tftp: HashMap<(IpAddr, u16), Tftp>,
    buffered: usize,
    /// Initial sequence numbers (client, server) of TCP flows that have sent no data yet.
    isns: HashMap<u64, [Option<u32>; 2]>,
    /// Streams dropped to make room for a new one while the buffer budget was spent, and the
    /// originators following the most streams at the last such eviction.
    pub evicted: u64,
    pub top_sources: Vec<(IpAddr, u64)>,
    /// TFTP transfers dropped to make room for a new one, and the clients holding the most at
    /// the last such eviction.
    pub tftp_evicted: u64,
    pub tftp_top_sources: Vec<(IpAddr, u64)>,
    /// FTP data connections announced and not yet seen, by their responder's endpoint.
    ftp_expected: HashMap<(IpAddr, u16), ftp::Expected>,
}

fn ctx(rec: &FlowRecord, pkt: &IpPacket<'_>, ts: Micros, app: App) -> AppEvent {
    AppEvent {
        ts,
        flow_id: rec.flow_id,
        community_id: rec.community_id,
        src_ip: pkt.src_ip,
        src_port: pkt.src_port,
        dest_ip: pkt.dst_ip,
        dest_port: pkt.dst_port,
        proto: pkt.proto,
        app,
    }
}

/// A layer-2 SADP frame as an application event (no IP flow: addresses from the record).
pub fn sadp_l2(payload: &[u8], ts: Micros) -> Result<AppEvent, &'static str> {
    let m = sadp::parse_legacy(payload)?;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    Ok(AppEvent {
        ts,
        flow_id: 0,
        community_id: Default::default(),
        src_ip: ip(&m.src_ipv4),
        src_port: 0,
        dest_ip: ip(&m.dst_ipv4),
        dest_port: 0,
        proto: 0,
        app: App::SadpL2(m),
    })
}

/// Client-to-server context for a TCP event regardless of the packet that completed it.
fn tcp_ctx(rec: &FlowRecord, ts: Micros, app: App) -> AppEvent {
    AppEvent {
        ts,
        flow_id: rec.flow_id,
        community_id: rec.community_id,
        src_ip: rec.src_ip,
        src_port: rec.src_port,
        dest_ip: rec.dest_ip,
        dest_port: rec.dest_port,
        proto: rec.proto,
        app,
    }
}

fn either(pkt: &IpPacket<'_>, port: u16) -> bool {
    pkt.src_port == port || pkt.dst_port == port
}

impl AppLayer {
    /// Parses what one packet carries. `to_server` is its direction within the flow.
    pub fn packet(
        &mut self,
        rec: &FlowRecord,
        pkt: &IpPacket<'_>,
        to_server: bool,
        ts: Micros,
        out: &mut Output,
    ) {
        match pkt.proto {
            PROTO_UDP if either(pkt, 69) => self.tftp_request(pkt, ts),
            PROTO_UDP if self.tftp_data(rec, pkt, ts, out) => {}
            PROTO_UDP if !pkt.payload.is_empty() => udp(rec, pkt, ts, out),
            PROTO_TCP => self.tcp(rec, pkt, to_server, ts, out),
            _ => {}
        }
    }

    /// A flow ended: whatever is still open (a request without a response, a transfer cut
    /// short) is reported.
    pub fn end(&mut self, rec: &FlowRecord, out: &mut Output) {
        if rec.proto == PROTO_UDP {
            for key in [(rec.src_ip, rec.src_port), (rec.dest_ip, rec.dest_port)] {
                // Reported whether or not data came: a device asking for an update file is
                // evidence of its own, answered or not (an Ednet camera asks for update.sh at
                // every boot).
                if let Some(t) = self.tftp.remove(&key) {
                    out.events.push(tcp_ctx(rec, rec.end, App::FirmwareTransfer(Box::new(t.finish(false)))));
                }
            }
        }
        self.isns.remove(&rec.flow_id);
        let Some(mut f) = self.flows.remove(&rec.flow_id) else { return };
        self.buffered = self.buffered.saturating_sub(f.buffered());
        for txn in f.pending.drain(..) {
            out.events.push(tcp_ctx(rec, rec.end, App::Http(Box::new(txn))));
        }
        for req in f.rtsp_pending.drain(..) {
            out.events.push(tcp_ctx(
                rec,
                rec.end,
                App::Rtsp(Box::new(RtspMessage { request: Some(req), response: None })),
            ));
        }
        for dir in [&mut f.client, &mut f.server] {
            if let Some(body) = dir.body.take() {
                finish_transfer(&mut f.transfer, *body, false);
            }
        }
        if let Some(t) = f.transfer.take().filter(|t| t.reportable()) {
            out.events.push(tcp_ctx(rec, rec.end, App::FirmwareTransfer(t)));
        }
        baichuan::end(&mut f, rec, out);
        out.events.extend(ftp::end(&mut f, rec));
    }

    /// A spent budget never refuses a new stream (it may carry the exploit a flood of stalled
    /// connections was sent to hide): streams are dropped a tenth at a time until the budget has
    /// room, those of the originators following the most streams first and the longest followed
    /// among them first (flow ids rise as flows open), and counted.
    fn make_room(&mut self) {
        while self.buffered >= WORKER_BUFFER_BYTES && !self.flows.is_empty() {
            let n = (self.flows.len() / 10).max(1);
            let chosen = victims(self.flows.iter().map(|(id, f)| (f.origin, *id, *id)), n);
            for id in chosen.keys {
                if let Some(f) = self.flows.remove(&id) {
                    self.buffered = self.buffered.saturating_sub(f.buffered());
                    self.evicted += 1;
                }
            }
            self.top_sources = chosen.top;
        }
    }

    fn tcp(&mut self, rec: &FlowRecord, pkt: &IpPacket<'_>, to_server: bool, ts: Micros, out: &mut Output) {
        let syn = pkt.tcp_flags & crate::model::packet::tcp_flags::SYN != 0;
        if !self.flows.contains_key(&rec.flow_id) {
            if pkt.payload.is_empty() {
                // Until data comes only the initial sequence numbers are kept (a few bytes a
                // flow), so a SYN flood does not cost a followed stream per SYN.
                if syn && (self.isns.len() < MAX_ISNS || self.isns.contains_key(&rec.flow_id)) {
                    self.isns.entry(rec.flow_id).or_default()[usize::from(!to_server)] = Some(pkt.tcp_seq);
                }
                return;
            }
            self.make_room();
            let mut f = AppFlow::new(rec.src_ip);
            if let Some(e) = self.ftp_expected.remove(&(rec.dest_ip, rec.dest_port)) {
                f.kind = Kind::FtpData;
                f.ftp_data = Some(Box::new(ftp::Data::new(e)));
            }
            if let Some([client, server]) = self.isns.remove(&rec.flow_id) {
                if let Some(seq) = client {
                    f.client.stream.syn(seq);
                }
                if let Some(seq) = server {
                    f.server.stream.syn(seq);
                }
            }
            self.flows.insert(rec.flow_id, f);
        }
        let Some(f) = self.flows.get_mut(&rec.flow_id) else { return };
        let before = f.buffered();
        let dir = if to_server { &mut f.client } else { &mut f.server };
        if syn {
            dir.stream.syn(pkt.tcp_seq);
        }
        if f.kind == Kind::Ignore || dir.done || pkt.payload.is_empty() {
            return;
        }
        let mut fresh = Vec::new();
        dir.stream.segment(pkt.tcp_seq, pkt.payload, &mut |b| fresh.extend_from_slice(b));
        if !fresh.is_empty() {
            consume(f, rec, to_server, &fresh, ts, out);
        }
        if f.kind == Kind::Ftp {
            for (endpoint, e) in ftp::control(f, rec, to_server, ts) {
                if self.ftp_expected.len() >= ftp::MAX_EXPECTED && !self.ftp_expected.contains_key(&endpoint)
                {
                    if let Some(oldest) =
                        self.ftp_expected.iter().min_by_key(|(_, e)| e.since).map(|(k, _)| *k)
                    {
                        self.ftp_expected.remove(&oldest);
                    }
                }
                self.ftp_expected.insert(endpoint, e);
            }
        }
        let Some(f) = self.flows.get_mut(&rec.flow_id) else { return };
        if f.kind == Kind::Ignore {
            f.client.stream.release();
            f.server.stream.release();
        }
        let after = f.buffered();
        self.buffered = (self.buffered + after).saturating_sub(before);
    }
}

fn udp(rec: &FlowRecord, pkt: &IpPacket<'_>, ts: Micros, out: &mut Output) {
    let p = pkt.payload;
    let mut fail = |protocol, reason| out.failures.push(ParseFailure { protocol, reason });
    let app = if either(pkt, 53) || either(pkt, 5353) || either(pkt, 5355) {
        dns::parse(p).map(App::Dns).map_err(|r| fail("dns", r)).ok()
    } else if either(pkt, 67) || either(pkt, 68) {
        dhcp::parse(p).map(App::Dhcp).map_err(|r| fail("dhcp", r)).ok()
    } else if either(pkt, 123) {
        ntp::parse(p).map(App::Ntp).map_err(|r| fail("ntp", r)).ok()
    } else if either(pkt, 1900) {
        ssdp::parse(p).map(App::Ssdp).map_err(|r| fail("ssdp", r)).ok()
    } else if either(pkt, 37020) {
        sadp::parse(p).map(App::Sadp).map_err(|r| fail("sadp", r)).ok()
    } else if either(pkt, 37810) {
        dhip::parse(p).map(App::Dhip).map_err(|r| fail("dhip", r)).ok()
    } else if either(pkt, 3702) {
        onvif::parse_ws_discovery(p).map(App::Wsd).map_err(|r| fail("wsd", r)).ok()
    } else {
        None
    };
    if let Some(app) = app {
        out.events.push(ctx(rec, pkt, ts, app));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The first line, without its line end (devices and scripts send bare LF too).
fn first_line(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.iter().position(|b| *b == b'\n')?;
    let line = buf.get(..end)?;
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Recognises a stream from its first bytes.
fn recognise(buf: &[u8], rec: &FlowRecord) -> Kind {
    if buf.len() >= 3 && buf[0] == 0x16 && buf[1] == 0x03 {
        return Kind::Tls;
    }
    // Baichuan's magic, at the start or after binary bytes (a capture that joined the stream
    // inside a message); its own last byte is a line feed, so this comes before line parsing.
    if baichuan::resync(buf).is_some_and(|at| !buf[..at].contains(&b'\n')) {
        return Kind::Baichuan;
    }
    if rec.dest_port == 53 {
        return Kind::DnsTcp;
    }
    if rec.dest_port == 21 {
        return Kind::Ftp;
    }
    match first_line(buf) {
        Some(line) if line.ends_with(b"RTSP/1.0") || line.ends_with(b"RTSP/2.0") => Kind::Rtsp,
        Some(line) if HTTP_METHODS.iter().any(|m| line.starts_with(m)) || contains(line, b" HTTP/") => {
            Kind::Http
        }
        // Another text protocol (SMTP, IMAP, POP3, FTP, a vendor's hello) may upgrade to TLS.
        Some(_) => Kind::Preamble,
        // A binary hello with a ClientHello after it (a push channel's plaintext preamble).
        None if find_client_hello(buf).is_some() => Kind::Preamble,
        // Wait for a whole first line, but not forever.
        None if buf.len() < 2048 => Kind::Unknown,
        None => Kind::Ignore,
    }
}

/// Plaintext before TLS: the client's bytes up to a ClientHello are dropped and the flow is
/// followed as TLS from there (STARTTLS, a vendor's preamble). The server's plaintext answers
/// are not kept.
fn preamble_step(f: &mut AppFlow, to_server: bool) -> bool {
    if !to_server {
        f.server.buf.clear();
        return false;
    }
    match find_client_hello(&f.client.buf) {
        Some(at) => {
            f.client.buf.drain(..at);
            f.kind = Kind::Tls;
            true
        }
        None => {
            if f.client.buf.len() >= PREAMBLE_BYTES {
                f.kind = Kind::Ignore;
                f.client.buf = Vec::new();
            }
            false
        }
    }
}

fn consume(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, fresh: &[u8], ts: Micros, out: &mut Output) {
    if f.kind == Kind::Baichuan {
        return baichuan::consume(f, rec, to_server, fresh, ts, out);
    }
    if f.kind == Kind::FtpData {
        return ftp::data(f, rec, to_server, fresh);
    }
    let mut input = fresh;
    loop {
        // A body in progress takes the bytes first.
        let dir = if to_server { &mut f.client } else { &mut f.server };
        if let Some(body) = &mut dir.body {
            let used = feed_body(body, input);
            input = &input[used..];
            if !body_done(body) {
                return;
            }
            if let Some(body) = dir.body.take() {
                body_finished(f, rec, to_server, *body, ts, out);
            }
        }
        let dir = if to_server { &mut f.client } else { &mut f.server };
        let room = STREAM_BYTES.saturating_sub(dir.buf.len());
        let take = input.len().min(room);
        dir.buf.extend_from_slice(&input[..take]);
        input = &input[take..];
        if f.kind == Kind::Unknown && to_server {
            f.kind = recognise(&f.client.buf, rec);
            if f.kind == Kind::Baichuan {
                let seen = std::mem::take(&mut f.client.buf);
                let at = baichuan::resync(&seen).unwrap_or(0);
                return baichuan::consume(f, rec, to_server, &[&seen[at..], input].concat(), ts, out);
            }
        }
        let progressed = parse_buffered(f, rec, to_server, ts, out);
        let dir = if to_server { &mut f.client } else { &mut f.server };
        if !progressed && dir.buf.len() >= STREAM_BYTES {
            // A full buffer that parses as nothing: stop following this direction.
            dir.done = true;
            dir.buf = Vec::new();
            return;
        }
        if input.is_empty() || !progressed {
            return;
        }
    }
}

/// Parses whatever complete messages the buffer holds. Returns whether anything was consumed.
fn parse_buffered(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, ts: Micros, out: &mut Output) -> bool {
    let mut progressed = false;
    loop {
        let step = match f.kind {
            Kind::Unknown | Kind::Ignore => return progressed,
            Kind::Tls => tls_step(f, rec, to_server, ts, out),
            Kind::Http => http_step(f, rec, to_server, ts, out),
            Kind::Rtsp => rtsp_step(f, rec, to_server, ts, out),
            Kind::DnsTcp => dns_tcp_step(f, rec, to_server, ts, out),
            Kind::Preamble => preamble_step(f, to_server),
            // Followed by `baichuan::consume`, never buffered here.
            Kind::Baichuan | Kind::FtpData => return progressed,
            // Lines are read by `ftp::control` once the bytes are buffered.
            Kind::Ftp => return progressed,
        };
        if !step {
            return progressed;
        }
        progressed = true;
        let dir = if to_server { &f.client } else { &f.server };
        if dir.body.is_some() || dir.buf.is_empty() || dir.done {
            return progressed;
        }
    }
}

fn tls_step(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, ts: Micros, out: &mut Output) -> bool {
    if !to_server {
        f.server.done = true;
        f.server.buf = Vec::new();
        return false;
    }
    match tls::parse_client_hello(&f.client.buf) {
        Ok(tls::Parsed::Complete(hello, _)) => {
            if !f.sent_client_hello {
                out.events.push(tcp_ctx(rec, ts, App::Tls(hello)));
                f.sent_client_hello = true;
            }
            f.kind = Kind::Ignore;
            f.client.buf = Vec::new();
            true
        }
        Ok(tls::Parsed::Incomplete) => false,
        Err(reason) => {
            out.failures.push(ParseFailure { protocol: "tls", reason });
            f.kind = Kind::Ignore;
            f.client.buf = Vec::new();
            false
        }
    }
}

fn dns_tcp_step(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, ts: Micros, out: &mut Output) -> bool {
    let dir = if to_server { &mut f.client } else { &mut f.server };
    match dns::parse_tcp(&dir.buf) {
        Ok((msg, used)) => {
            dir.buf.drain(..used.min(dir.buf.len()));
            let mut e = tcp_ctx(rec, ts, App::Dns(msg));
            if !to_server {
                std::mem::swap(&mut e.src_ip, &mut e.dest_ip);
                std::mem::swap(&mut e.src_port, &mut e.dest_port);
            }
            out.events.push(e);
            true
        }
        Err("incomplete") => false,
        Err(reason) => give_up(dir, out, "dns", reason),
    }
}

fn rtsp_step(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, ts: Micros, out: &mut Output) -> bool {
    let dir = if to_server { &mut f.client } else { &mut f.server };
    if rtsp::is_interleaved_frame(&dir.buf) {
        // Video: stop following this direction.
        dir.done = true;
        dir.buf = Vec::new();
        return false;
    }
    if to_server {
        match rtsp::parse_request(&dir.buf) {
            Ok(rtsp::Parsed::Complete(req, used)) => {
                dir.buf.drain(..used.min(dir.buf.len()));
                if f.rtsp_pending.len() < MAX_TRANSACTIONS {
                    f.rtsp_pending.push(req);
                }
                true
            }
            Ok(rtsp::Parsed::Incomplete) => false,
            Err(reason) => give_up(dir, out, "rtsp", reason),
        }
    } else {
        match rtsp::parse_response(&dir.buf) {
            Ok(rtsp::Parsed::Complete(resp, used)) => {
                let skip = used
                    .saturating_add(usize::try_from(resp.content_length.unwrap_or(0)).unwrap_or(usize::MAX));
                if skip > dir.buf.len() {
                    return false;
                }
                dir.buf.drain(..skip);
                let request = (!f.rtsp_pending.is_empty()).then(|| f.rtsp_pending.remove(0));
                let msg = RtspMessage { request, response: Some(resp) };
                out.events.push(tcp_ctx(rec, ts, App::Rtsp(Box::new(msg))));
                true
            }
            Ok(rtsp::Parsed::Incomplete) => false,
            Err(reason) => give_up(dir, out, "rtsp", reason),
        }
    }
}

/// Stops following a direction that failed to parse, counting why.
fn give_up(dir: &mut Direction, out: &mut Output, protocol: &'static str, reason: &'static str) -> bool {
    out.failures.push(ParseFailure { protocol, reason });
    dir.done = true;
    dir.buf = Vec::new();
    false
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::tftp::MAX_TFTP;
    use super::*;
    use crate::model::packet::tcp_flags;

    fn segment(client: u32, to_server: bool, flags: u8, seq: u32, payload: &[u8]) -> IpPacket<'_> {
        let (c, s) = (IpAddr::from(Ipv4Addr::from(0x0a00_0000 + client)), IpAddr::from([10, 9, 0, 1]));
        let (cp, sp) = (40_000 + (client % 20_000) as u16, 80);
        let (src_ip, dst_ip, src_port, dst_port) = if to_server { (c, s, cp, sp) } else { (s, c, sp, cp) };
        IpPacket {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src_ip,
            dst_ip,
            proto: PROTO_TCP,
            src_port,
            dst_port,
            tcp_flags: flags,
            tcp_seq: seq,
            ip_len: 40 + payload.len() as u32,
            payload,
            fragment: false,
            frag: None,
            tunnel: None,
        }
    }

    /// A flood of connections whose requests never complete (each holding 64 KB of out-of-order
    /// data, which used to sit outside the budget) spends the worker's buffer budget; the
    /// CVE-2017-7921 request that follows is still parsed, because the oldest streams make room.
    #[test]
    fn a_flood_of_stalled_streams_cannot_hide_the_request_after_it() {
        let mut app = AppLayer::default();
        let mut out = Output::default();
        let junk = vec![b'a'; 4000];
        let flows = 1_200u32;
        for n in 0..flows {
            let syn = segment(n, true, tcp_flags::SYN, 1000, &[]);
            let rec = FlowRecord::open(u64::from(n), &syn, 1);
            app.packet(&rec, &syn, true, 1, &mut out);
            // Sixteen segments after a one-byte gap that never fills: all held out of order.
            for i in 0..16u32 {
                let p = segment(n, true, tcp_flags::ACK | tcp_flags::PSH, 1002 + i * 4000, &junk);
                app.packet(&rec, &p, true, 2, &mut out);
            }
            assert!(app.buffered <= WORKER_BUFFER_BYTES + 2 * 64 * 1024, "{} buffered", app.buffered);
        }
        assert!(app.evicted > 0, "the budget was never spent");
        let request = b"GET /Security/users?auth=YWRtaW46MTEK HTTP/1.1\r\nHost: 10.9.0.1\r\n\r\n";
        let syn = segment(flows, true, tcp_flags::SYN, 5000, &[]);
        let rec = FlowRecord::open(u64::from(flows), &syn, 3);
        app.packet(&rec, &syn, true, 3, &mut out);
        let p = segment(flows, true, tcp_flags::ACK | tcp_flags::PSH, 5001, request);
        app.packet(&rec, &p, true, 3, &mut out);
        app.end(&rec, &mut out);
        let seen = out.events.iter().any(|e| match &e.app {
            App::Http(t) => t.request.url.starts_with("/Security/users?auth="),
            _ => false,
        });
        assert!(seen, "the exploit request after the flood was not parsed");
    }

    /// A full TFTP table takes the new transfer in and drops the oldest.
    #[test]
    fn a_full_tftp_table_evicts_the_oldest_transfer() {
        let mut app = AppLayer::default();
        let mut out = Output::default();
        for n in 0..(MAX_TFTP as u32 + 5) {
            let req = [&[0u8, 1][..], b"digicap.dav\0octet\0"].concat();
            let mut p = segment(n, true, 0, 0, &req);
            p.proto = PROTO_UDP;
            p.dst_port = 69;
            let rec = FlowRecord::open(u64::from(n), &p, u64::from(n));
            app.packet(&rec, &p, true, u64::from(n), &mut out);
        }
        assert_eq!(app.tftp.len(), MAX_TFTP);
        assert_eq!(app.tftp_evicted, 5);
        let newest =
            (IpAddr::from(Ipv4Addr::from(0x0a00_0000 + MAX_TFTP as u32 + 4)), 40_000 + MAX_TFTP as u16 + 4);
        assert!(app.tftp.contains_key(&newest));
    }

    /// A minimal TLS 1.2 ClientHello naming `sni`.
    fn client_hello(sni: &str) -> Vec<u8> {
        let name = sni.as_bytes();
        let n = name.len() as u16;
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(n + 5).to_be_bytes());
        ext.extend_from_slice(&(n + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&n.to_be_bytes());
        ext.extend_from_slice(name);
        let mut body = vec![3, 3];
        body.extend((0..32u8).collect::<Vec<_>>());
        body.extend_from_slice(&[0, 0, 2, 0, 0x2f, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    /// The SNIs of the TLS events a conversation (client/server segments in order) produced.
    fn snis(exchange: &[(bool, Vec<u8>)]) -> Vec<String> {
        let mut app = AppLayer::default();
        let mut out = Output::default();
        let syn = segment(7, true, tcp_flags::SYN, 999, &[]);
        let rec = FlowRecord::open(7, &syn, 1);
        app.packet(&rec, &syn, true, 1, &mut out);
        let synack = segment(7, false, tcp_flags::SYN | tcp_flags::ACK, 4999, &[]);
        app.packet(&rec, &synack, false, 1, &mut out);
        let (mut c, mut s) = (1000u32, 5000u32);
        for (to_server, data) in exchange {
            let seq = if *to_server { c } else { s };
            let p = segment(7, *to_server, tcp_flags::ACK, seq, data);
            app.packet(&rec, &p, *to_server, 2, &mut out);
            if *to_server {
                c += data.len() as u32;
            } else {
                s += data.len() as u32;
            }
        }
        out.events
            .iter()
            .filter_map(|e| match &e.app {
                App::Tls(h) => h.sni.clone(),
                _ => None,
            })
            .collect()
    }

    /// TLS that starts after plaintext is followed: SMTP's STARTTLS, an HTTP CONNECT through a
    /// proxy, and a vendor push channel's binary hello before its ClientHello.
    #[test]
    fn tls_after_starttls_connect_or_a_preamble_is_followed() {
        let hello = client_hello("push.vendor.example");
        let starttls = snis(&[
            (false, b"220 mail ESMTP\r\n".to_vec()),
            (true, b"EHLO cam\r\n".to_vec()),
            (false, b"250-mail\r\n250 STARTTLS\r\n".to_vec()),
            (true, b"STARTTLS\r\n".to_vec()),
            (false, b"220 go ahead\r\n".to_vec()),
            (true, hello.clone()),
        ]);
        assert_eq!(starttls, ["push.vendor.example"]);
        let connect = snis(&[
            (
                true,
                b"CONNECT push.vendor.example:443 HTTP/1.1\r\nHost: push.vendor.example:443\r\n\r\n".to_vec(),
            ),
            (false, b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec()),
            (true, hello.clone()),
        ]);
        assert_eq!(connect, ["push.vendor.example"]);
        let mut preamble = vec![0x5a, 0xa5, 0, 12, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef];
        preamble.extend_from_slice(&hello);
        assert_eq!(snis(&[(true, preamble)]), ["push.vendor.example"]);
        // Plaintext that never upgrades yields nothing, and a refused CONNECT is not followed.
        assert!(snis(&[(true, b"EHLO cam\r\nQUIT\r\n".to_vec())]).is_empty());
        let refused = snis(&[
            (true, b"CONNECT x:443 HTTP/1.1\r\n\r\n".to_vec()),
            (false, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()),
            (true, hello),
        ]);
        assert!(refused.is_empty(), "{refused:?}");
    }
}
