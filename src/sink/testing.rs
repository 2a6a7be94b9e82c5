//! Test support for the sinks: a journal in a temporary directory, the sinks' metrics, and an
//! HTTP server on loopback that records what it receives.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::{default_state_dir, spawn, SinkLabels, SinkMetrics, SinkResultLabels, SinksConfig};

/// Awaits `f`, failing the test after 10 s.
pub(crate) async fn within<T>(f: impl Future<Output = T>) -> T {
    within_ms(10_000, f).await
}

pub(crate) async fn within_ms<T>(ms: u64, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_millis(ms), f).await {
        Ok(v) => v,
        Err(_) => panic!("nothing happened within {ms} ms"),
    }
}

/// An address nothing listens on.
pub(crate) async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A full journal record, as the analysis stage writes it.
pub(crate) fn record(id: &str, fingerprint: &str, status: &str) -> Value {
    let mut v = json!({
        "id": id,
        "fingerprint": fingerprint,
        "status": status,
        "timestamp": "2024-05-01T10:00:00.000000Z",
        "starts_at": "2024-05-01T10:00:00.000000Z",
        "rule": {
            "id": "egress-outside-allowed",
            "name": "Camera reached the internet",
            "severity": "high",
            "description": "A camera talked to an address outside the allowed networks.",
            "references": ["CVE-2021-36260", "https://example.org/advisory"]
        },
        "category": "egress",
        "summary": "Camera reached the internet: 10.0.0.5 (Hikvision) → 8.8.8.8:443/tcp",
        "key": format!("device=10.0.0.5 dest_ip=8.8.8.8 fp={fingerprint}"),
        "device": {"ip": "10.0.0.5", "mac": "44:19:b6:00:00:01", "vendor": "Hikvision",
                   "model": "DS-2CD2032-I", "firmware": "V5.4.5"},
        "src_ip": "10.0.0.5", "src_port": 50000, "dest_ip": "8.8.8.8", "dest_port": 443, "proto": "tcp",
        "dest_name": "x.example",
        "community_id": "1:abc=",
        "flow_id": 12,
        "evidence": {"event_type": "flow_start", "matched": ["dest_ip not_in allowed"],
                     "pcap": "/var/lib/camwatch/evidence/x.pcap", "sha256": "5e88"},
        "sensor": "site-a"
    });
    if status == "resolved" {
        v["timestamp"] = json!("2024-05-01T10:12:00.000000Z");
        v["ends_at"] = json!("2024-05-01T10:12:00.000000Z");
    }
    v
}

/// A journal, its sinks' metrics, wake-ups and shutdown, as `spawn` takes them.
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
    pub journal: PathBuf,
    pub notify: Arc<Notify>,
    pub metrics: Arc<SinkMetrics>,
    stop_tx: watch::Sender<bool>,
}

impl Fixture {
    pub fn new() -> Self {
        Self::in_dir(tempfile::tempdir().unwrap())
    }

    fn in_dir(dir: tempfile::TempDir) -> Self {
        let mut registry = Registry::with_prefix("camwatch");
        let metrics = Arc::new(SinkMetrics::register(&mut registry));
        Self {
            journal: dir.path().join("alerts.jsonl"),
            dir,
            notify: Arc::new(Notify::new()),
            metrics,
            stop_tx: watch::channel(false).0,
        }
    }

    /// The same journal and cursors, as a restarted process sees them.
    pub fn restart(self) -> Self {
        Self::in_dir(self.dir)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Appends a line and wakes the sinks, as the analysis stage does.
    pub fn append_raw(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.journal).unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.notify.notify_waiters();
    }

    pub fn append(&self, record: &Value) {
        self.append_raw(&record.to_string());
    }

    pub fn stop_rx(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    pub fn spawn(&self, cfg: &SinksConfig) -> Vec<JoinHandle<()>> {
        spawn(
            cfg,
            self.journal.clone(),
            "site-a".into(),
            self.metrics.clone(),
            self.notify.clone(),
            self.stop_rx(),
        )
        .unwrap()
    }

    /// Asks the sinks to stop and waits until they have.
    pub async fn stop(&self, tasks: Vec<JoinHandle<()>>) {
        self.stop_tx.send_replace(true);
        for t in tasks {
            within(t).await.unwrap();
        }
    }

    pub fn cursor(&self, sink: &str) -> u64 {
        match std::fs::read_to_string(default_state_dir(&self.journal).join(format!("{sink}.cursor"))) {
            Ok(text) => text.split_whitespace().next().unwrap_or("0").parse().unwrap(),
            Err(_) => 0,
        }
    }

    pub fn journal_len(&self) -> u64 {
        std::fs::metadata(&self.journal).map(|m| m.len()).unwrap_or(0)
    }

    pub fn deliveries(&self, sink: &str, result: &'static str) -> u64 {
        self.metrics.deliveries.get_or_create(&SinkResultLabels { sink: sink.into(), result }).get()
    }

    pub fn retries(&self, sink: &str) -> u64 {
        self.metrics.retries.get_or_create(&SinkLabels { sink: sink.into() }).get()
    }

    pub fn backlog(&self, sink: &str) -> i64 {
        self.metrics.backlog.get_or_create(&SinkLabels { sink: sink.into() }).get()
    }

    pub fn malformed(&self, sink: &str) -> u64 {
        self.metrics.malformed.get_or_create(&SinkLabels { sink: sink.into() }).get()
    }

    /// Waits (yielding to the sinks, without sleeping) until `cond` holds; fails after 10 s.
    pub async fn until(&self, cond: impl Fn(&Self) -> bool) {
        within(async {
            while !cond(self) {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }
}

/// What the test server received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Respond = dyn Fn(&Request, usize) -> u16 + Send + Sync;

struct Recorder {
    respond: Box<Respond>,
    seen: AtomicUsize,
    tx: mpsc::UnboundedSender<Request>,
}

async fn record_request(
    State(rec): State<Arc<Recorder>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let request = Request { path: uri.path().to_string(), headers, body };
    let n = rec.seen.fetch_add(1, Ordering::SeqCst);
    let status = (rec.respond)(&request, n);
    let _ = rec.tx.send(request);
    StatusCode::from_u16(status).unwrap()
}

/// An HTTP server on loopback that answers each request with `respond(request, index)` and
/// hands it to the test.
pub(crate) struct Server {
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Request>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(respond: impl Fn(&Request, usize) -> u16 + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, respond)
    }

    pub async fn start_on(
        addr: SocketAddr,
        respond: impl Fn(&Request, usize) -> u16 + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, respond)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        respond: impl Fn(&Request, usize) -> u16 + Send + Sync + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Recorder { respond: Box::new(respond), seen: AtomicUsize::new(0), tx });
        let app = axum::Router::new().fallback(record_request).with_state(recorder);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, rx, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received; fails the test after 10 s.
    pub async fn next(&mut self) -> Request {
        within(self.rx.recv()).await.unwrap()
    }

    /// A request already received, if any.
    pub fn try_next(&mut self) -> Option<Request> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
