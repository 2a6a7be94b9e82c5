//! TCP stream following for the first bytes of each direction: segments are put in sequence
//! order (retransmissions and overlaps trimmed, a few out-of-order segments held), and the
//! in-order bytes are handed to the caller, who decides whether to keep, hash or ignore them.
//! Memory is bounded per direction: at most `MAX_PENDING` held segments of `MAX_PENDING_BYTES`.

/// Out-of-order segments held while waiting for a gap to fill.
const MAX_PENDING: usize = 16;
const MAX_PENDING_BYTES: usize = 64 * 1024;

/// One direction of a TCP connection.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    /// Sequence number of the next byte expected; `None` until the first SYN or data segment.
    next: Option<u32>,
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    /// Bytes were skipped (a gap that never filled, or the stream was joined mid-way).
    pub gaps: u32,
    /// In-order bytes delivered so far.
    pub delivered: u64,
}

impl Stream {
    /// A SYN fixes the initial sequence number; data starts at ISN + 1.
    pub fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// Accounts a segment and hands every byte that is now in order to `deliver`, in order.
    pub fn segment(&mut self, seq: u32, payload: &[u8], deliver: &mut dyn FnMut(&[u8])) {
        if payload.is_empty() {
            return;
        }
        let next = match self.next {
            Some(n) => n,
            None => {
                // Joined mid-stream (no SYN seen): start here.
                self.gaps += 1;
                seq
            }
        };
        let offset = seq.wrapping_sub(next) as i32;
        if offset > 0 {
            self.hold(seq, payload);
            if self.pending.len() > MAX_PENDING || self.pending_bytes > MAX_PENDING_BYTES {
                // The gap is not filling: skip to the earliest held segment.
                self.gaps += 1;
                if let Some(first) = self.pending.iter().map(|(s, _)| *s).min_by_key(|s| s.wrapping_sub(next))
                {
                    self.next = Some(first);
                    self.drain(deliver);
                }
            }
            return;
        }
        let skip = offset.unsigned_abs() as usize;
        if skip < payload.len() {
            let fresh = &payload[skip..];
            self.next = Some(next.wrapping_add(fresh.len() as u32));
            self.delivered += fresh.len() as u64;
            deliver(fresh);
        } else {
            self.next = Some(next);
        }
        self.drain(deliver);
    }

    fn hold(&mut self, seq: u32, payload: &[u8]) {
        if self.pending.iter().any(|(s, p)| *s == seq && p.len() >= payload.len()) {
            return;
        }
        self.pending_bytes += payload.len();
        self.pending.push((seq, payload.to_vec()));
    }

    /// Delivers held segments that have become in order.
    fn drain(&mut self, deliver: &mut dyn FnMut(&[u8])) {
        loop {
            let Some(next) = self.next else { return };
            let Some(i) = self.pending.iter().position(|(s, _)| (s.wrapping_sub(next) as i32) <= 0) else {
                return;
            };
            let (seq, data) = self.pending.swap_remove(i);
            self.pending_bytes -= data.len();
            let skip = next.wrapping_sub(seq) as usize;
            if skip < data.len() {
                let fresh = &data[skip..];
                self.next = Some(next.wrapping_add(fresh.len() as u32));
                self.delivered += fresh.len() as u64;
                deliver(fresh);
            }
        }
    }

    /// Bytes held out of order, waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.pending_bytes
    }

    /// Drops held segments (when the caller no longer wants bytes).
    pub fn release(&mut self) {
        self.pending = Vec::new();
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &mut Stream, segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, p) in segs {
            s.segment(*seq, p, &mut |b| out.extend_from_slice(b));
        }
        out
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut s = Stream::default();
        s.syn(1000);
        let out = run(
            &mut s,
            &[(1001, b"GET "), (1009, b"HTTP"), (1005, b"/ x "), (1001, b"GET "), (1007, b"x HTTP/1.1")],
        );
        assert_eq!(out, b"GET / x HTTP/1.1");
        assert_eq!(s.gaps, 0);
        assert_eq!(s.delivered, 16);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 1);
        let out = run(&mut s, &[(u32::MAX, b"ab"), (1, b"cd")]);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn joined_mid_stream_and_persistent_gap_are_counted_and_bounded() {
        let mut s = Stream::default();
        let mut out = run(&mut s, &[(500, b"hello")]);
        assert_eq!(s.gaps, 1);
        // A gap at 505 that never fills: after MAX_PENDING held segments, skip ahead.
        for i in 0..(MAX_PENDING as u32 + 1) {
            out.extend(run(&mut s, &[(600 + i * 10, b"0123456789")]));
        }
        assert_eq!(s.gaps, 2);
        assert!(out.len() > 5);
        assert!(s.pending.len() <= MAX_PENDING);
    }
}
