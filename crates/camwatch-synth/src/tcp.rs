//! A TCP connection model with exact sequence/acknowledgement bookkeeping.
//!
//! Segments must be planned in time order per connection. Delivery is immediate: whatever one
//! side has sent is acknowledged by the next segment the other side sends, unless the caller
//! passes an explicit acknowledgement number (used to model a long round-trip time). Pure ACKs
//! are only sent when they acknowledge something new, so no duplicate ACKs or window updates
//! ever appear; window sizes are constant per side and no retransmissions are modelled.

use rand::RngExt;

use super::net::HostId;
use super::wire::{FlowId, Peer, Plan, TcpSeg, TCP};

/// Payload bytes per full-sized segment (MSS 1460 minus 12 bytes of timestamps in a typical
/// Linux stack; also leaves room for RTSP interleaved framing).
pub(crate) const SEG_PAYLOAD: usize = 1448;
const MSS: u16 = 1460;

#[derive(Debug, Clone, Copy)]
struct Side {
    /// Next sequence number this side sends.
    nxt: u32,
    /// Acknowledgement number this side would send (all the peer has sent so far).
    rcv: u32,
    /// Last acknowledgement number this side actually sent.
    acked: Option<u32>,
    window: u16,
}

/// One TCP connection; `fwd == true` means client→server.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub flow: FlowId,
    client: Side,
    server: Side,
}

/// Who connects to whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dial {
    pub client: HostId,
    pub server: HostId,
    pub port: u16,
    /// Anomaly label recorded with the flow.
    pub kind: Option<&'static str>,
}

/// Timing of a three-way handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rtt {
    /// Client packet → server answer, as seen by the capture point.
    pub server: u64,
    /// Server packet → client answer.
    pub client: u64,
}

impl Conn {
    /// Registers the flow (client port from the ephemeral range) and plans the three-way
    /// handshake starting at `ts`. Returns the connection and the time of the final ACK.
    pub(crate) fn connect(
        plan: &mut Plan,
        rng: &mut impl RngExt,
        dial: Dial,
        ts: u64,
        rtt: Rtt,
    ) -> anyhow::Result<(Conn, u64)> {
        let port = plan.ephemeral_port(rng, dial.client, TCP);
        let flow = plan.flow(TCP, dial.client, port, Peer::Host(dial.server), dial.port, dial.kind)?;
        let c_isn: u32 = rng.random();
        let s_isn: u32 = rng.random();
        let mut conn = Conn {
            flow,
            client: Side {
                nxt: c_isn.wrapping_add(1),
                rcv: s_isn.wrapping_add(1),
                acked: None,
                window: 64_240,
            },
            server: Side {
                nxt: s_isn.wrapping_add(1),
                rcv: c_isn.wrapping_add(1),
                acked: None,
                window: 65_160,
            },
        };
        let syn =
            TcpSeg { seq: c_isn, syn: true, window: conn.client.window, mss: Some(MSS), ..TcpSeg::default() };
        plan.tcp(ts, flow, true, syn, Vec::new());
        let synack = TcpSeg {
            seq: s_isn,
            ack: Some(c_isn.wrapping_add(1)),
            syn: true,
            window: conn.server.window,
            mss: Some(MSS),
            ..TcpSeg::default()
        };
        let t = ts + rtt.server;
        plan.tcp(t, flow, false, synack, Vec::new());
        conn.server.acked = Some(c_isn.wrapping_add(1));
        let t = t + rtt.client;
        conn.pure_ack(plan, true, t);
        Ok((conn, t))
    }

    fn sides(&mut self, fwd: bool) -> (&mut Side, &mut Side) {
        if fwd {
            (&mut self.client, &mut self.server)
        } else {
            (&mut self.server, &mut self.client)
        }
    }

    /// One data segment (PSH/ACK) carrying all of `payload`, which must fit one segment.
    pub(crate) fn segment(&mut self, plan: &mut Plan, fwd: bool, ts: u64, payload: Vec<u8>) {
        let flow = self.flow;
        let (me, peer) = self.sides(fwd);
        let seg =
            TcpSeg { seq: me.nxt, ack: Some(me.rcv), psh: true, window: me.window, ..TcpSeg::default() };
        // usize → u32: segments are at most a few KiB.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        me.nxt = me.nxt.wrapping_add(len);
        me.acked = Some(me.rcv);
        peer.rcv = me.nxt;
        plan.tcp(ts, flow, fwd, seg, payload);
    }

    /// Sends `data` as back-to-back segments of at most [`SEG_PAYLOAD`] bytes, `gap` apart.
    /// Returns the time of the last segment.
    pub(crate) fn send(&mut self, plan: &mut Plan, fwd: bool, ts: u64, gap: u64, data: &[u8]) -> u64 {
        let mut t = ts;
        for (i, chunk) in data.chunks(SEG_PAYLOAD).enumerate() {
            t = ts + gap * i as u64;
            self.segment(plan, fwd, t, chunk.to_vec());
        }
        t
    }

    /// A pure ACK of everything received, if that acknowledges anything new.
    pub(crate) fn pure_ack(&mut self, plan: &mut Plan, fwd: bool, ts: u64) -> bool {
        let rcv = self.sides(fwd).0.rcv;
        self.ack_to(plan, fwd, ts, rcv)
    }

    /// A pure ACK with an explicit acknowledgement number (the peer's data seen so far at the
    /// far end of a long path), if that acknowledges anything new.
    pub(crate) fn ack_to(&mut self, plan: &mut Plan, fwd: bool, ts: u64, ack: u32) -> bool {
        let flow = self.flow;
        let (me, _) = self.sides(fwd);
        if me.acked == Some(ack) {
            return false;
        }
        let seg = TcpSeg { seq: me.nxt, ack: Some(ack), window: me.window, ..TcpSeg::default() };
        me.acked = Some(ack);
        plan.tcp(ts, flow, fwd, seg, Vec::new());
        true
    }

    /// Next sequence number of one side (what the peer acknowledges once it has everything).
    pub(crate) fn next_seq(&self, fwd: bool) -> u32 {
        if fwd {
            self.client.nxt
        } else {
            self.server.nxt
        }
    }

    /// Orderly close: FIN/ACK from the `fwd` side at `ts`, FIN/ACK back after `answer`, final
    /// ACK after `last`. Returns the time of the final ACK.
    pub(crate) fn close(&mut self, plan: &mut Plan, fwd: bool, ts: u64, answer: u64, last: u64) -> u64 {
        self.fin(plan, fwd, ts);
        let t = ts + answer;
        self.fin(plan, !fwd, t);
        let t = t + last;
        self.pure_ack(plan, fwd, t);
        t
    }

    /// A FIN/ACK from one side.
    pub(crate) fn fin(&mut self, plan: &mut Plan, fwd: bool, ts: u64) {
        let flow = self.flow;
        let (me, peer) = self.sides(fwd);
        let seg =
            TcpSeg { seq: me.nxt, ack: Some(me.rcv), fin: true, window: me.window, ..TcpSeg::default() };
        me.nxt = me.nxt.wrapping_add(1);
        me.acked = Some(me.rcv);
        peer.rcv = me.nxt;
        plan.tcp(ts, flow, fwd, seg, Vec::new());
    }
}
