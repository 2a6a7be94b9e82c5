//! The last line against a bug in a parser or an analysis step: a panic while handling one
//! packet (in a worker) or one event (in the analysis stage) is caught, counted by stage
//! (`camwatch_analysis_panics_total{stage}`) and logged once per guard with what was being
//! handled; the thread goes on with the next one. Parsers are written not to panic on any input
//! and are fuzzed; this keeps one that still does from switching the sensor off from the wire.
//!
//! State touched by the failed step may be left half-updated (a flow's parser state, say). That
//! is contained to the flow or device the input was about, and is the lesser harm: the
//! alternative is a sensor that an attacker stops with one packet.

use std::panic::{catch_unwind, AssertUnwindSafe};

use prometheus_client::metrics::counter::Counter;

pub(super) struct PanicGuard {
    stage: &'static str,
    panics: Counter,
    logged: bool,
}

impl PanicGuard {
    pub(super) fn new(stage: &'static str, panics: Counter) -> Self {
        Self { stage, panics, logged: false }
    }

    /// Runs `step`; on a panic counts it, logs the first one with `context()`, and returns
    /// `None`.
    pub(super) fn run<R>(&mut self, context: impl FnOnce() -> String, step: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(step)) {
            Ok(r) => Some(r),
            Err(payload) => {
                self.panics.inc();
                if !self.logged {
                    self.logged = true;
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    // The context is built only now, and itself guarded: it may read the input.
                    let context = catch_unwind(AssertUnwindSafe(context)).unwrap_or_default();
                    tracing::error!(
                        stage = self.stage,
                        input = %context,
                        panic = %message,
                        "A bug in the analysis panicked on this input; it was skipped and the sensor goes on \
                         (counted in camwatch_analysis_panics_total; later ones are counted, not logged)."
                    );
                }
                None
            }
        }
    }
}

/// Installs a panic hook that prints the first few panics in full and then stays quiet, so a
/// flood of inputs that hit the same bug cannot flood the log; [`PanicGuard`] counts them all.
pub fn quiet_repeated_panics() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if SEEN.fetch_add(1, Ordering::Relaxed) < 10 {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_counted_logged_once_and_the_caller_goes_on() {
        let counter = Counter::default();
        let mut guard = PanicGuard::new("worker", counter.clone());
        assert_eq!(guard.run(String::new, || 7), Some(7));
        let mut contexts = 0;
        for i in 0..3 {
            let r: Option<()> = guard.run(
                || {
                    contexts += 1;
                    "10.0.0.1:1 -> 10.0.0.2:53 UDP".to_string()
                },
                || panic!("bug {i}"),
            );
            assert_eq!(r, None);
        }
        assert_eq!(counter.get(), 3);
        assert_eq!(contexts, 1, "the context is built for the one logged panic only");
        assert_eq!(guard.run(String::new, || "after"), Some("after"));
    }
}
