//! The daemon's one way to stop. A signal, a test or the caller triggers it once; the blocking
//! pipeline sees it as a flag it polls between packets, async tasks await it, and the sinks take
//! a receiver. A second instance stops the sinks after the pipeline has drained, so the journal
//! they deliver from is complete.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    flag: AtomicBool,
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self { inner: Arc::new(Inner { flag: AtomicBool::new(false), tx: watch::channel(false).0 }) }
    }

    /// Asks everything holding this shutdown to stop. Idempotent.
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// The flag the packet pipeline polls.
    pub fn flag(&self) -> &AtomicBool {
        &self.inner.flag
    }

    /// A receiver that turns `true` when triggered (what the sinks wait on).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.tx.subscribe()
    }

    /// Resolves once triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_view_sees_one_trigger() {
        let s = Shutdown::new();
        let rx = s.subscribe();
        assert!(!s.is_triggered() && !*rx.borrow());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        s.clone().trigger();
        waiter.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(s.flag().load(Ordering::SeqCst));
        assert!(*rx.borrow());
        // Waiting after the trigger returns at once.
        s.wait().await;
    }
}
