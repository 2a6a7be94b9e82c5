//! The one delivery loop every sink shares: journal → sink, at least once, in bounded batches,
//! retried with full-jitter backoff, woken on each journal write, stopped by shutdown.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    alertmanager, syslog, webhook, Batch, Journal, Record, RetryConfig, SinkMetrics, SinksConfig, Telemetry,
};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The receiver may take these alerts later: it is down, overloaded, slow, or refuses us
    /// (authentication, wrong path) until someone fixes the configuration. Retried, never dropped.
    Transient(String),
    /// The receiver refused these alerts themselves (400, 413, 422): no retry can help.
    Permanent(String),
}

/// What a sink does; the delivery loop does the rest (batches, cursor, retries, shutdown).
pub(crate) trait Sink: Send + 'static {
    /// Most records in one delivery.
    fn max_batch(&self) -> usize;

    /// How long a short batch waits for more records before it is delivered.
    fn batch_wait(&self) -> Duration {
        Duration::ZERO
    }

    /// Runs once before delivery starts, given the committed cursor.
    fn start(&mut self, _cursor: u64) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Delivers `records` (in journal order): `Ok` once the receiver has accepted them all.
    fn deliver(&mut self, records: &[Record]) -> impl Future<Output = Result<(), Failure>> + Send;

    /// When [`Sink::tick`] is next due, if ever.
    fn next_tick(&self) -> Option<Instant> {
        None
    }

    /// Periodic work between batches (Alertmanager's re-send).
    fn tick(&mut self, _telemetry: &Telemetry) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Full-jitter exponential backoff: a random wait up to `initial × 2^attempt`, capped at `max`.
fn backoff(retry: &RetryConfig, attempt: u32) -> Duration {
    let cap = retry.initial.saturating_mul(1u32 << attempt.min(20)).min(retry.max);
    cap.mul_f64(rand::random::<f64>())
}

/// Resolves once shutdown is asked for (the flag turns true, or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A delivery was cut short by shutdown.
struct Stopped;

enum Settled {
    Accepted,
    Rejected(String),
}

/// One sink's task: journal → sink, at least once.
struct Delivery<S: Sink> {
    name: String,
    sink: S,
    journal: Arc<Mutex<Journal>>,
    queue: usize,
    retry: RetryConfig,
    poll: Duration,
    grace: Duration,
    telemetry: Telemetry,
    notify: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    /// Set once shutdown is asked for: delivery goes on until then, without retries.
    deadline: Option<Instant>,
}

impl<S: Sink> Delivery<S> {
    /// Runs a journal operation off the async threads (reads and fsyncs block).
    async fn with_journal<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Journal) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || {
            let mut j = journal.lock().map_err(|_| io::Error::other("journal reader lock poisoned"))?;
            f(&mut j)
        })
        .await
        .map_err(io::Error::other)?
    }

    fn begin_shutdown(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.grace);
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    async fn read(&self) -> io::Result<Batch> {
        let queue = self.queue;
        let (batch, backlog) = self
            .with_journal(move |j| {
                let batch = j.read_batch(queue)?;
                let backlog = j.backlog()?;
                Ok((batch, backlog))
            })
            .await?;
        self.telemetry.backlog(backlog);
        Ok(batch)
    }

    /// Counts what was journaled since, so the backlog shows an outage growing.
    async fn refresh_backlog(&self) {
        if let Ok(backlog) = self.with_journal(|j| j.backlog()).await {
            self.telemetry.backlog(backlog);
        }
    }

    async fn commit(&self, end: u64) {
        match self.with_journal(move |j| j.commit(end).and_then(|()| j.backlog())).await {
            Ok(backlog) => self.telemetry.backlog(backlog),
            Err(e) => tracing::error!(
                sink = %self.name,
                "Delivery cursor not saved; these alerts may be delivered again after a restart: {e}."
            ),
        }
    }

    async fn run(mut self) {
        let cursor = self.with_journal(|j| Ok(j.offset())).await.unwrap_or(0);
        tracing::info!(sink = %self.name, cursor, "Alert delivery started.");
        tokio::select! {
            () = self.sink.start(cursor) => {}
            () = stopped(&mut self.shutdown) => self.begin_shutdown(),
        }
        loop {
            if *self.shutdown.borrow() {
                self.begin_shutdown();
            }
            // Registered before reading, so a write that lands after the read still wakes us.
            let notify = self.notify.clone();
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            if self.deadline.is_none() && self.sink.next_tick().is_some_and(|t| t <= Instant::now()) {
                let telemetry = self.telemetry.clone();
                tokio::select! {
                    () = self.sink.tick(&telemetry) => {}
                    () = stopped(&mut self.shutdown) => self.begin_shutdown(),
                }
            }
            let batch = match self.read().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(sink = %self.name, "Alert journal unreadable: {e}.");
                    if self.deadline.is_some() {
                        break;
                    }
                    self.idle(notified).await;
                    continue;
                }
            };
            if batch.is_empty() {
                if self.deadline.is_some() {
                    break;
                }
                self.idle(notified).await;
                continue;
            }
            let batch = self.fill(batch).await;
            if self.deliver_batch(batch).await.is_err() || self.past_deadline() {
                break;
            }
        }
        let backlog = self.with_journal(|j| j.backlog()).await.unwrap_or(0);
        self.telemetry.backlog(backlog);
        tracing::info!(sink = %self.name, backlog, "Alert delivery stopped.");
    }

    /// Waits for a journal write, the poll interval, the sink's next tick, or shutdown.
    async fn idle(&mut self, notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) {
        let tick = self.sink.next_tick();
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(self.poll) => {}
            () = tokio::time::sleep_until(tick.unwrap_or(far)), if tick.is_some() => {}
            () = stopped(&mut self.shutdown) => self.begin_shutdown(),
        }
    }

    /// A short batch waits up to the sink's `batch_wait` for more records.
    async fn fill(&mut self, mut batch: Batch) -> Batch {
        let wait = self.sink.batch_wait();
        let want = self.sink.max_batch().min(self.queue);
        if wait.is_zero() || self.deadline.is_some() {
            return batch;
        }
        let until = Instant::now() + wait;
        let notify = self.notify.clone();
        while batch.records.len() < want {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(until) => break,
                () = stopped(&mut self.shutdown) => {
                    self.begin_shutdown();
                    break;
                }
            }
            match self.read().await {
                Ok(b) => batch = b,
                Err(e) => {
                    tracing::error!(sink = %self.name, "Alert journal unreadable: {e}.");
                    break;
                }
            }
        }
        batch
    }

    async fn deliver_batch(&mut self, batch: Batch) -> Result<(), Stopped> {
        let max = self.sink.max_batch().max(1);
        for chunk in batch.records.chunks(max) {
            self.deliver_chunk(chunk).await?;
        }
        if batch.malformed > 0 {
            tracing::warn!(
                sink = %self.name,
                lines = batch.malformed,
                first_offset = batch.first_malformed,
                "Skipped alert journal lines that are not alert records."
            );
            self.telemetry.malformed(batch.malformed);
        }
        self.commit(batch.end).await;
        Ok(())
    }

    /// Delivers `chunk` and commits it. When the receiver refuses the chunk, its records are
    /// delivered one at a time, so only the bad ones are skipped.
    async fn deliver_chunk(&mut self, chunk: &[Record]) -> Result<(), Stopped> {
        let Some(last) = chunk.last() else { return Ok(()) };
        match self.settle(chunk).await? {
            Settled::Accepted => {}
            Settled::Rejected(reason) if chunk.len() == 1 => self.skip(&chunk[0], &reason),
            Settled::Rejected(reason) => {
                tracing::warn!(
                    sink = %self.name,
                    alerts = chunk.len(),
                    "Receiver refused a batch ({reason}); delivering its alerts one at a time."
                );
                for record in chunk {
                    if let Settled::Rejected(reason) = self.settle(std::slice::from_ref(record)).await? {
                        self.skip(record, &reason);
                    }
                    self.commit(record.end).await;
                }
            }
        }
        self.commit(last.end).await;
        Ok(())
    }

    fn skip(&self, record: &Record, reason: &str) {
        tracing::error!(
            sink = %self.name,
            id = %record.id,
            rule = %record.rule.id,
            fingerprint = %record.fingerprint(),
            offset = record.end,
            "Receiver refused an alert ({reason}); skipped, it stays in the journal."
        );
        self.telemetry.delivered(false, 1);
    }

    /// Attempts `records` until the receiver accepts or refuses them, retrying transient
    /// failures with backoff. After shutdown, one last attempt bounded by the grace period.
    async fn settle(&mut self, records: &[Record]) -> Result<Settled, Stopped> {
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let result = self.attempt(records).await.ok_or(Stopped)?;
            self.telemetry.attempt(started.elapsed());
            let reason = match result {
                Ok(()) => {
                    self.telemetry.delivered(true, records.len());
                    return Ok(Settled::Accepted);
                }
                Err(Failure::Permanent(reason)) => return Ok(Settled::Rejected(reason)),
                Err(Failure::Transient(reason)) => reason,
            };
            self.telemetry.delivered(false, records.len());
            self.refresh_backlog().await;
            if self.deadline.is_some() {
                tracing::warn!(
                    sink = %self.name,
                    "Alert delivery failed at shutdown ({reason}); the journal keeps the rest for the next start."
                );
                return Err(Stopped);
            }
            self.telemetry.retried();
            let wait = backoff(&self.retry, attempt);
            attempt = attempt.saturating_add(1);
            tracing::warn!(
                sink = %self.name,
                alerts = records.len(),
                attempt,
                retry_in = ?wait,
                "Alert delivery failed, will retry: {reason}."
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(&mut self.shutdown) => self.begin_shutdown(),
            }
        }
    }

    /// One attempt; `None` when the shutdown grace ran out first. Shutdown during an attempt
    /// lets it finish within the grace period.
    async fn attempt(&mut self, records: &[Record]) -> Option<Result<(), Failure>> {
        let Self { sink, shutdown, deadline, grace, .. } = self;
        let delivery = sink.deliver(records);
        tokio::pin!(delivery);
        loop {
            let until = *deadline;
            tokio::select! {
                result = &mut delivery => return Some(result),
                () = stopped(shutdown), if until.is_none() => *deadline = Some(Instant::now() + *grace),
                () = tokio::time::sleep_until(until.unwrap_or_else(Instant::now)), if until.is_some() => return None,
            }
        }
    }
}

/// `<journal>.cursors`, the default home of the delivery cursors.
pub fn default_state_dir(journal: &Path) -> PathBuf {
    let mut dir = journal.as_os_str().to_owned();
    dir.push(".cursors");
    PathBuf::from(dir)
}

/// The HTTP client of one sink: its TLS settings (CA, client certificate; see
/// [`super::tls::TlsClientConfig`]) for `https://` receivers.
pub(crate) fn http_client(
    timeout: Duration,
    tls: &super::tls::TlsClientConfig,
    what: &str,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("camwatch/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(tls.client_config(what)?)
        .build()
        .context("cannot build the HTTP client")
}

/// `Authorization` for a receiver: Basic (user and password file) or Bearer (a token or token
/// file), marked sensitive so it is never logged. Both is a configuration error.
pub(crate) fn authorization(
    what: &str,
    basic: Option<&super::tls::BasicAuth>,
    bearer: Option<&str>,
    bearer_file: Option<&Path>,
) -> anyhow::Result<Option<reqwest::header::HeaderValue>> {
    use base64::Engine;
    let token = match (bearer, bearer_file) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(path)) => Some(read_secret(&format!("{what}.bearer_token_file"), path)?),
        (None, None) => None,
    };
    let value = match (basic, token) {
        (Some(_), Some(_)) => anyhow::bail!("{what}: basic_auth and a bearer token exclude each other"),
        (Some(b), None) => {
            let (user, password) = b.credentials(what)?;
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {pair}")
        }
        (None, Some(t)) => format!("Bearer {t}"),
        (None, None) => return Ok(None),
    };
    let mut v = reqwest::header::HeaderValue::from_str(&value)
        .map_err(|_| anyhow::anyhow!("{what}: the credentials are not a valid header value"))?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// An error and its causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads a secret from a file, without its trailing newline.
pub(crate) fn read_secret(what: &str, path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{what}: cannot read {}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!secret.is_empty(), "{what}: {} is empty", path.display());
    Ok(secret)
}

/// An HTTP answer as a delivery outcome: 2xx accepted; 400, 413 and 422 refuse the alerts
/// themselves (permanent); anything else, including other 4xx such as 401, 403 and 404 (a
/// configuration the operator must fix, not a bad alert), is retried.
pub(crate) async fn http_outcome(result: Result<reqwest::Response, reqwest::Error>) -> Result<(), Failure> {
    let mut response = match result {
        Ok(r) => r,
        // The URL may carry a token (in its query or userinfo): the log gets the error without it.
        Err(e) if e.is_builder() => return Err(Failure::Permanent(error_chain(&e.without_url()))),
        Err(e) => return Err(Failure::Transient(error_chain(&e.without_url()))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The start of the body says why, for the log.
    let detail = match response.chunk().await {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).trim().to_string();
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        }
        _ => String::new(),
    };
    let reason = format!("HTTP {status}{detail}");
    if matches!(status.as_u16(), 400 | 413 | 422) {
        Err(Failure::Permanent(reason))
    } else {
        Err(Failure::Transient(reason))
    }
}

/// Starts one delivery task per configured sink (one per Alertmanager URL), each reading
/// `journal` from its own cursor. Wake them with `notify.notify_waiters()` after each journal
/// write (they also poll once a second); stop them by sending `true` on `shutdown` (or dropping
/// its sender), then await the handles. Must run inside a tokio runtime. Fails, starting
/// nothing, on an invalid config, an unreadable token or secret file, or an unreadable cursor.
pub fn spawn(
    cfg: &SinksConfig,
    journal: PathBuf,
    sensor: String,
    metrics: Arc<SinkMetrics>,
    notify: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let state_dir = cfg.state_dir.clone().unwrap_or_else(|| default_state_dir(&journal));
    if !cfg.sink_names().is_empty() {
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("sinks.state_dir: cannot create {}", state_dir.display()))?;
    }
    let open = |name: &str| -> anyhow::Result<Arc<Mutex<Journal>>> {
        let j = Journal::open(&journal, &state_dir, name)
            .with_context(|| format!("sink {name}: cannot read its delivery cursor"))?;
        Ok(Arc::new(Mutex::new(j)))
    };

    // Everything that can fail happens before any task starts.
    let mut alertmanagers = Vec::new();
    if let Some(am) = &cfg.alertmanager {
        for (i, url) in am.urls.iter().enumerate() {
            let name = am.sink_name(i);
            let sink = alertmanager::Alertmanager::new(am, i, url, &journal, &sensor)?;
            alertmanagers.push((open(&name)?, name, sink));
        }
    }
    let mut webhooks = Vec::new();
    for w in &cfg.webhooks {
        webhooks.push((open(&w.name)?, w.name.clone(), webhook::Webhook::new(w, &sensor)?));
    }
    let mut syslogs = Vec::new();
    for s in &cfg.syslog {
        syslogs.push((open(&s.name)?, s.name.clone(), syslog::Syslog::try_new(s, &sensor)?));
    }

    let delivery = |name: String, journal: Arc<Mutex<Journal>>| {
        metrics.init_sink(&name);
        (name.clone(), journal, Telemetry { metrics: metrics.clone(), sink: name })
    };
    let mut handles = Vec::new();
    macro_rules! start {
        ($list:expr) => {
            for (journal, name, sink) in $list {
                let (name, journal, telemetry) = delivery(name, journal);
                let task = Delivery {
                    name,
                    sink,
                    journal,
                    queue: cfg.queue,
                    retry: cfg.retry,
                    poll: cfg.poll_interval,
                    grace: cfg.shutdown_grace,
                    telemetry,
                    notify: notify.clone(),
                    shutdown: shutdown.clone(),
                    deadline: None,
                };
                handles.push(tokio::spawn(task.run()));
            }
        };
    }
    start!(alertmanagers);
    start!(webhooks);
    start!(syslogs);
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testing::*;
    use crate::sink::{SyslogProtocol, WebhookConfig};
    use prometheus_client::registry::Registry;

    #[tokio::test]
    async fn a_failed_delivery_never_logs_the_url_or_its_token() {
        let client = http_client(Duration::from_secs(5), &Default::default(), "test")
            .unwrap_or_else(|e| panic!("{e}"));
        // Nothing listens on port 1: the connection is refused.
        let sent = client.post("http://user:pw0rd@127.0.0.1:1/hook?token=S3CRET").send().await;
        match http_outcome(sent).await {
            Err(Failure::Transient(reason)) => {
                assert!(!reason.contains("S3CRET") && !reason.contains("pw0rd"), "{reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_config_round_trips_and_parses() {
        let cfg: SinksConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, SinksConfig::default());
        assert_eq!(cfg.queue, 256);
        assert_eq!(cfg.retry.initial, Duration::from_millis(500));
        cfg.validate().unwrap();

        let text = r#"{
            "alertmanager": {"urls": ["http://am1:9093", "http://am2:9093/"], "resend_interval": "30s"},
            "webhooks": [{"name": "soc", "url": "https://soc.example/hook", "headers": {"X-Site": "a"},
                          "hmac_secret_file": "/etc/camwatch/hmac", "batch_wait": "250ms"}],
            "syslog": [{"address": "siem:6514", "protocol": "tcp", "facility": 4, "format": "text"}],
            "queue": 64, "retry": {"initial": "100ms", "max": "10s"}, "state_dir": "/var/lib/camwatch/cursors"
        }"#;
        let cfg: SinksConfig = serde_json::from_str(text).unwrap();
        cfg.validate().unwrap();
        let am = cfg.alertmanager.as_ref().unwrap();
        assert_eq!(am.resend_interval, Duration::from_secs(30));
        assert_eq!(am.timeout, Duration::from_secs(10));
        assert_eq!(cfg.webhooks[0].batch_size, 100);
        assert_eq!(cfg.webhooks[0].batch_wait, Duration::from_millis(250));
        assert_eq!(cfg.syslog[0].protocol, SyslogProtocol::Tcp);
        assert_eq!(cfg.retry.max, Duration::from_secs(10));
        assert_eq!(cfg.sink_names(), ["alertmanager-1", "alertmanager-2", "soc", "syslog"]);

        let err = serde_json::from_str::<SinksConfig>(r#"{"webhooks":[{"url":"http://x","nope":1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `nope`"), "{err}");
    }

    #[test]
    fn validation_names_the_problem() {
        let parse = |text: &str| serde_json::from_str::<SinksConfig>(text).unwrap().validate().unwrap_err();
        assert!(parse(r#"{"alertmanager":{"urls":[]}}"#).contains("alertmanager.urls"));
        assert!(parse(r#"{"alertmanager":{"urls":["am:9093"]}}"#).contains("alertmanager.urls"));
        assert!(parse(r#"{"webhooks":[{"url":""}]}"#).contains("webhooks[webhook].url"));
        assert!(parse(r#"{"webhooks":[{"url":"http://x","batch_size":0}]}"#).contains("batch_size"));
        assert!(parse(r#"{"webhooks":[{"url":"http://x","bearer_token":"a","bearer_token_file":"/f"}]}"#)
            .contains("bearer_token"));
        assert!(
            parse(r#"{"webhooks":[{"url":"http://x","headers":{"bad header":"v"}}]}"#).contains("headers")
        );
        assert!(parse(r#"{"syslog":[{"address":"h:514","facility":24}]}"#).contains("facility"));
        assert!(parse(r#"{"syslog":[{"address":"h"}]}"#).contains("address"));
        assert!(parse(r#"{"syslog":[{"address":"h:514"},{"address":"g:514"}]}"#).contains("\"syslog\""));
        assert!(parse(r#"{"webhooks":[{"name":"a/b","url":"http://x"}]}"#).contains("name"));
        assert!(parse(
            r#"{"alertmanager":{"urls":["http://a"]},"webhooks":[{"name":"alertmanager","url":"http://x"}]}"#
        )
        .contains("two sinks"));
        assert!(parse(r#"{"queue":0}"#).contains("queue"));
        assert!(parse(r#"{"retry":{"initial":"1s","max":"10ms"}}"#).contains("retry"));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let retry = RetryConfig { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        for attempt in 0..40 {
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(10))).min(retry.max);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(&retry, attempt)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "attempt {attempt}: {waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "no jitter at attempt {attempt}");
        }
    }

    #[test]
    fn series_exist_at_zero_from_the_start() {
        let mut registry = Registry::with_prefix("camwatch");
        let metrics = SinkMetrics::register(&mut registry);
        metrics.init_sink("soc");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            "camwatch_alert_deliveries_total{sink=\"soc\",result=\"ok\"} 0",
            "camwatch_alert_deliveries_total{sink=\"soc\",result=\"error\"} 0",
            "camwatch_alert_delivery_backlog{sink=\"soc\"} 0",
            "camwatch_alert_delivery_retries_total{sink=\"soc\"} 0",
            "camwatch_alert_delivery_duration_seconds_count{sink=\"soc\"} 0",
            "camwatch_alert_journal_malformed_lines_total{sink=\"soc\"} 0",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    fn hook(url: &str) -> SinksConfig {
        SinksConfig {
            webhooks: vec![WebhookConfig {
                name: "hook".into(),
                url: url.into(),
                batch_wait: Duration::ZERO,
                ..WebhookConfig::default()
            }],
            retry: RetryConfig { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
            ..SinksConfig::default()
        }
    }

    fn alert_ids(request: &Request) -> Vec<String> {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        body["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
    }

    #[tokio::test]
    async fn alerts_journaled_while_the_receiver_is_down_all_arrive_once_it_is_up() {
        let fx = Fixture::new();
        // "Down": a listener that closes every connection, telling us each time it does.
        let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = down.local_addr().unwrap();
        let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
        let refuser = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = down.accept().await else { break };
                drop(conn);
                let _ = refused_tx.send(());
            }
        });
        for i in 0..5 {
            fx.append(&record(&format!("a{i}"), &format!("f{i}"), "firing"));
        }
        let tasks = fx.spawn(&hook(&format!("http://{addr}/in")));
        for _ in 0..2 {
            within(refused.recv()).await.unwrap();
        }
        refuser.abort();
        let _ = refuser.await;
        fx.append(&record("a5", "f5", "firing"));
        // The backlog shows the outage growing.
        fx.until(|fx| fx.backlog("hook") == 6).await;
        let mut server = Server::start_on(addr, |_, _| 200).await;

        let mut got = Vec::new();
        while got.len() < 6 {
            got.extend(alert_ids(&server.next().await));
        }
        assert_eq!(got, ["a0", "a1", "a2", "a3", "a4", "a5"]);
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("hook"), fx.journal_len());
        assert!(fx.retries("hook") >= 2);
        assert_eq!(fx.deliveries("hook", "ok"), 6);
        assert!(fx.deliveries("hook", "error") >= 2);
        assert_eq!(fx.backlog("hook"), 0);
    }

    #[tokio::test]
    async fn a_restarted_sink_delivers_only_what_was_not_committed() {
        let fx = Fixture::new();
        let mut server = Server::start(|_, _| 200).await;
        let cfg = hook(&server.url("/in"));
        for i in 0..3 {
            fx.append(&record(&format!("a{i}"), &format!("f{i}"), "firing"));
        }
        let tasks = fx.spawn(&cfg);
        assert_eq!(alert_ids(&server.next().await), ["a0", "a1", "a2"]);
        fx.stop(tasks).await;
        let committed = fx.cursor("hook");
        assert_eq!(committed, fx.journal_len());

        fx.append(&record("a3", "f3", "firing"));
        fx.append_raw("this is not json");
        fx.append(&record("a4", "f4", "firing"));
        let fx2 = fx.restart();
        let tasks = fx2.spawn(&cfg);
        assert_eq!(alert_ids(&server.next().await), ["a3", "a4"]);
        fx2.stop(tasks).await;
        assert_eq!(fx2.cursor("hook"), fx2.journal_len());
        assert_eq!(fx2.malformed("hook"), 1);
        assert!(server.try_next().is_none(), "delivered again");
    }

    #[tokio::test]
    async fn new_records_wake_an_idle_sink() {
        let fx = Fixture::new();
        let mut server = Server::start(|_, _| 200).await;
        let mut cfg = hook(&server.url("/in"));
        // No poll in the test's lifetime: only the notification can wake the sink.
        cfg.poll_interval = Duration::from_secs(3600);
        let tasks = fx.spawn(&cfg);
        for i in 0..3 {
            fx.append(&record(&format!("n{i}"), "f", "firing"));
            assert_eq!(alert_ids(&server.next().await), [format!("n{i}")]);
        }
        fx.stop(tasks).await;
    }

    #[tokio::test]
    async fn shutdown_interrupts_the_backoff() {
        let fx = Fixture::new();
        let mut cfg = hook(&format!("http://{}/in", closed_port().await));
        cfg.retry = RetryConfig { initial: Duration::from_secs(600), max: Duration::from_secs(600) };
        cfg.shutdown_grace = Duration::from_millis(200);
        fx.append(&record("a", "f", "firing"));
        let tasks = fx.spawn(&cfg);
        // Once the first attempt has failed the task sits in a wait of up to ten minutes.
        fx.until(|fx| fx.retries("hook") >= 1).await;
        let started = Instant::now();
        fx.stop(tasks).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(fx.cursor("hook"), 0, "undelivered alert committed");
        assert_eq!(fx.backlog("hook"), 1);
    }

    #[tokio::test]
    async fn spawn_fails_before_starting_anything() {
        let fx = Fixture::new();
        let mut cfg = hook("http://127.0.0.1:9/in");
        cfg.webhooks[0].bearer_token_file = Some(fx.dir().join("missing-token"));
        let err = spawn(
            &cfg,
            fx.journal.clone(),
            "site-a".into(),
            fx.metrics.clone(),
            fx.notify.clone(),
            fx.stop_rx(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("missing-token"), "{err:#}");
        cfg.webhooks[0].bearer_token_file = None;
        cfg.queue = 0;
        assert!(spawn(
            &cfg,
            fx.journal.clone(),
            "s".into(),
            fx.metrics.clone(),
            fx.notify.clone(),
            fx.stop_rx()
        )
        .is_err());
    }

    #[test]
    fn default_state_dir_is_beside_the_journal() {
        assert_eq!(
            default_state_dir(Path::new("var/alerts.jsonl")),
            PathBuf::from("var/alerts.jsonl.cursors")
        );
    }
}
