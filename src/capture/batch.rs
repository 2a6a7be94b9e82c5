//! Batches: the unit in which packets travel from a capture thread to a worker.
//!
//! A capture thread copies each packet once, back to back, into the data buffer of the batch
//! for the packet's worker; a full batch goes to the worker through its queue in one send, and
//! the worker hands it back empty through the batch's home queue, so its buffers are reused for
//! the life of the run: no allocation and no channel operation per packet. Each capture thread
//! owns a fixed number of batches per worker (the ring); when all are in flight, a file source
//! waits for one to come back and a live source drops and counts.

use crossbeam_channel::{Receiver, Sender};

use crate::model::packet::Frame;
use crate::model::time::Micros;

/// Packets in a batch before it is sent.
pub const BATCH_PACKETS: usize = 256;
/// Bytes of packet data in a batch before it is sent (a packet may end past it: the buffer grows
/// once to hold the largest snaplen and is then reused).
pub const BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy)]
struct Meta {
    ts: Micros,
    linktype: i32,
    wire_len: u32,
    start: usize,
    len: usize,
}

/// Packets copied out of a source, with the queue that takes the batch back when its worker is
/// done with it.
#[derive(Debug)]
pub struct Batch {
    data: Vec<u8>,
    meta: Vec<Meta>,
    home: Sender<Batch>,
}

impl Batch {
    fn new(home: Sender<Batch>) -> Self {
        Self { data: Vec::with_capacity(BATCH_BYTES), meta: Vec::with_capacity(BATCH_PACKETS), home }
    }

    /// Copies a frame in.
    pub fn push(&mut self, f: Frame<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(f.data);
        self.meta.push(Meta {
            ts: f.ts,
            linktype: f.linktype,
            wire_len: f.wire_len,
            start,
            len: f.data.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Whether the batch should go now.
    pub fn is_full(&self) -> bool {
        self.meta.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    /// The batch's frames in capture order.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        self.meta.iter().map(|m| Frame {
            ts: m.ts,
            linktype: m.linktype,
            wire_len: m.wire_len,
            data: self.data.get(m.start..m.start + m.len).unwrap_or_default(),
        })
    }

    /// Empties the batch and sends it back to the capture thread that owns it (dropped if that
    /// thread has finished).
    pub fn recycle(mut self) {
        self.data.clear();
        self.meta.clear();
        let home = self.home.clone();
        let _ = home.send(self);
    }
}

/// A capture thread's ring of batches for one worker.
pub struct Ring {
    free: Receiver<Batch>,
    home: Sender<Batch>,
    /// Batches made so far, and the most this ring may make.
    made: usize,
    max: usize,
}

impl Ring {
    /// A ring of at most `max` batches (at least two: one filling while one is analysed).
    pub fn new(max: usize) -> Self {
        let max = max.max(2);
        let (home, free) = crossbeam_channel::bounded(max);
        Self { free, home, made: 0, max }
    }

    /// Ring size for a queue bound in packets.
    pub fn batches_for(queue_packets: usize) -> usize {
        queue_packets.div_ceil(BATCH_PACKETS).max(2)
    }

    /// An empty batch: one handed back, else a new one while fewer than the bound exist, else
    /// (`wait`) the next one handed back; `None` when all are in flight and `wait` is false.
    pub fn take(&mut self, wait: bool) -> Option<Batch> {
        if let Ok(b) = self.free.try_recv() {
            return Some(b);
        }
        if self.made < self.max {
            self.made += 1;
            return Some(Batch::new(self.home.clone()));
        }
        if wait {
            // The ring holds a sender itself, so this returns when a worker hands one back.
            self.free.recv().ok()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: u64, data: &[u8]) -> Frame<'_> {
        Frame { ts, linktype: 1, wire_len: data.len() as u32 + 4, data }
    }

    #[test]
    fn frames_come_out_as_they_went_in_and_batches_are_reused() {
        let mut ring = Ring::new(2);
        let mut b = ring.take(false).expect("first batch");
        b.push(frame(1, b"abc"));
        b.push(frame(2, b""));
        b.push(frame(3, &[9; 70_000]));
        let got: Vec<(u64, usize, u32)> = b.frames().map(|f| (f.ts, f.data.len(), f.wire_len)).collect();
        assert_eq!(got, vec![(1, 3, 7), (2, 0, 4), (3, 70_000, 70_004)]);
        assert_eq!(b.frames().next().map(|f| f.data), Some(&b"abc"[..]));
        let second = ring.take(false).expect("second batch");
        assert!(ring.take(false).is_none(), "the ring makes no more than its bound");
        let cap = b.data.capacity();
        b.recycle();
        let again = ring.take(false).expect("a recycled batch");
        assert!(again.is_empty());
        assert_eq!(again.data.capacity(), cap, "the buffer is reused, not reallocated");
        drop(second);
    }

    #[test]
    fn a_batch_is_full_by_packets_or_by_bytes() {
        let mut ring = Ring::new(2);
        let mut b = ring.take(false).expect("batch");
        for i in 0..BATCH_PACKETS - 1 {
            b.push(frame(i as u64, b"x"));
            assert!(!b.is_full());
        }
        b.push(frame(0, b"x"));
        assert!(b.is_full());
        let mut big = ring.take(false).expect("batch");
        big.push(frame(0, &vec![0; BATCH_BYTES]));
        assert!(big.is_full());
        assert_eq!(big.len(), 1);
    }

    #[test]
    fn a_waiting_take_returns_when_a_worker_hands_a_batch_back() {
        let mut ring = Ring::new(2);
        let a = ring.take(false).expect("a");
        let _b = ring.take(false).expect("b");
        let t = std::thread::spawn(move || a.recycle());
        assert!(ring.take(true).is_some());
        t.join().expect("recycler");
    }
}
