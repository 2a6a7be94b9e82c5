//! Finishing a capture (flush, fsync, publish) off the packet worker: an fsync can take a slow
//! disk hundreds of milliseconds, during which a worker would drop packets. Each worker's
//! recorder hands finished captures to its own closer thread and collects the outcomes on its
//! next call; at the end of a run it waits for every one.

use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::model::evidence::EvidenceOutcome;

use super::writer::Capture;

pub(super) struct Closer {
    jobs: Option<Sender<Capture>>,
    done: Receiver<EvidenceOutcome>,
    /// Captures handed over whose outcome has not been collected; counted against `max_open`,
    /// so a stalled disk makes new requests `busy` instead of queueing without bound.
    pub(super) pending: usize,
    thread: Option<JoinHandle<()>>,
}

impl Closer {
    pub(super) fn start() -> std::io::Result<Self> {
        let (jobs, rx) = unbounded::<Capture>();
        let (tx, done) = unbounded();
        let thread = std::thread::Builder::new().name("evidence-close".into()).spawn(move || {
            for cap in rx {
                if tx.send(cap.finish()).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { jobs: Some(jobs), done, pending: 0, thread: Some(thread) })
    }

    /// Hands a capture over; should the thread be gone, finishes it here.
    pub(super) fn close(&mut self, cap: Capture, out: &mut Vec<EvidenceOutcome>) {
        let Some(jobs) = &self.jobs else {
            out.push(cap.finish());
            return;
        };
        match jobs.send(cap) {
            Ok(()) => self.pending += 1,
            Err(e) => out.push(e.into_inner().finish()),
        }
    }

    /// Outcomes ready now.
    pub(super) fn collect(&mut self, out: &mut Vec<EvidenceOutcome>) {
        while let Ok(o) = self.done.try_recv() {
            self.pending = self.pending.saturating_sub(1);
            out.push(o);
        }
    }

    /// Every outcome still to come.
    pub(super) fn wait(&mut self, out: &mut Vec<EvidenceOutcome>) {
        while self.pending > 0 {
            match self.done.recv() {
                Ok(o) => {
                    self.pending -= 1;
                    out.push(o);
                }
                Err(_) => break,
            }
        }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
