//! The HTTP endpoint: `/metrics` (OpenMetrics text), `/healthz`, and `/alerts/{id}` (an alert's
//! journal records: the link Alertmanager shows as an alert's source), on tokio with axum; and,
//! when enabled, the read-only web view under `/ui/` ([`crate::telemetry::view`]).
//!
//! Anyone on the network may reach this port, so the connection loop is hardened: a request
//! header must arrive whole within [`HEADER_TIMEOUT`] and be at most [`MAX_HEADER_BYTES`], and at
//! most [`MAX_CONNECTIONS`] are served at once; a new connection past that closes the oldest (a
//! scrape takes milliseconds, so the oldest is an idle or stalled one), so idle connections can
//! neither starve `/metrics` nor exhaust the process's file descriptors.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::telemetry::metrics::Metrics;

/// Connections served at once; a new one past it closes the oldest.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send a whole request header within this time (slow-header attacks).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request header read; a longer one closes the connection.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    journal: Option<PathBuf>,
    /// Journal scans at once: a lookup reads the whole journal, so a burst of requests must not
    /// take the cores capture needs.
    lookups: Arc<tokio::sync::Semaphore>,
}

/// The endpoint's routes; with `view`, the read-only web view under `/ui/` too (its pages and
/// the journal lookups share one limit of two at once).
pub fn router(
    metrics: Arc<Metrics>,
    journal: Option<PathBuf>,
    view: Option<crate::telemetry::view::WebView>,
) -> Router {
    let lookups = Arc::new(tokio::sync::Semaphore::new(2));
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/alerts/{id}", get(serve_alert))
        .with_state(Shared { metrics, journal, lookups: lookups.clone() });
    match view {
        Some(v) => app.merge(crate::telemetry::view::routes(v, lookups)),
        None => app,
    }
}

/// Every path behind basic authentication (`basic_auth_users` of the web config).
pub fn with_auth(app: Router, check: Option<crate::telemetry::web::BasicAuthCheck>) -> Router {
    let Some(check) = check else { return app };
    app.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let check = check.clone();
        async move {
            let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            if check.allows(header) {
                next.run(req).await
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"camwatch\"")],
                    "authentication required\n",
                )
                    .into_response()
            }
        }
    }))
}

/// OpenMetrics to scrapers that ask for it (Prometheus does), the classic text format otherwise.
async fn serve_metrics(State(s): State<Shared>, headers: axum::http::HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("application/openmetrics-text") {
        ([(header::CONTENT_TYPE, OPENMETRICS)], s.metrics.encode())
    } else {
        ([(header::CONTENT_TYPE, TEXT_FORMAT)], s.metrics.encode_text())
    }
}

/// The journal records of one alert (firing, and resolved when it was), as a JSON array.
async fn serve_alert(State(s): State<Shared>, Path(id): Path<String>) -> axum::response::Response {
    let valid = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(journal) = s.journal.filter(|_| valid) else {
        return (StatusCode::NOT_FOUND, "no such alert\n").into_response();
    };
    // The permit goes with the scan: a client that hangs up does not free it while the scan
    // still runs.
    let Ok(permit) = s.lookups.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy: try again\n").into_response();
    };
    let found = tokio::task::spawn_blocking(move || {
        let records = records_of(&journal, &id);
        drop(permit);
        records
    })
    .await;
    match found {
        Ok(Ok(records)) if !records.is_empty() => {
            let body = format!("[{}]\n", records.join(","));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(Ok(_)) => (StatusCode::NOT_FOUND, "no such alert\n").into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "the alert journal could not be read\n").into_response(),
    }
}

/// Lines of the journal whose `id` is `id` (the journal is scanned: alerts are looked up rarely).
/// Lines are read as the review reads them ([`crate::review::estate::for_each_line`]): at most
/// 1 MiB each, so a damaged journal cannot make a lookup hold it whole in memory; a torn or
/// overlong record is skipped, not an error for every later lookup.
fn records_of(journal: &std::path::Path, id: &str) -> anyhow::Result<Vec<String>> {
    let needle = format!("\"id\":\"{id}\"");
    let mut out = Vec::new();
    crate::review::estate::for_each_line(journal, |line| {
        if !line.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else { return };
        if serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["id"] == id) {
            out.push(line.to_string());
        }
    })?;
    Ok(out)
}

/// Serves `app` on `listener` until `shutdown` resolves, with the bounds above (over TLS when
/// `tls` is given: the handshake too must finish within [`HEADER_TIMEOUT`]); then stops
/// accepting and closes every connection.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut open: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!("Metrics endpoint: accept failed: {e}.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        open.retain(|closer| !closer.is_closed());
        if open.len() >= MAX_CONNECTIONS {
            if let Some(oldest) = open.pop_front() {
                let _ = oldest.send(());
            }
        }
        let (closer, closed) = oneshot::channel::<()>();
        open.push_back(closer);
        let service = TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tasks.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_HEADER_BYTES);
            match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = closed => {}
                    }
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream));
                    let mut closed = closed;
                    let stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(s)) => s,
                            // A failed handshake (plain HTTP, an unknown client certificate) or a
                            // stalled one closes the connection.
                            _ => return,
                        },
                        _ = &mut closed => return,
                    };
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = closed => {}
                    }
                }
            }
        });
    }
    tasks.shutdown().await;
}

/// Binds the listener now, so a port in use is reported before capture starts.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for /metrics: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_lookup_skips_torn_and_overlong_lines_and_finds_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = dir.path().join("alerts.jsonl");
        let firing = r#"{"id":"00ab","status":"firing","x":1}"#;
        let resolved = r#"{"id":"00ab","status":"resolved","x":2}"#;
        let other = r#"{"id":"00ac","status":"firing"}"#;
        // Over the 1 MiB line bound, naming the id: skipped, never held whole.
        let overlong = format!(r#"{{"id":"00ab","pad":"{}"}}"#, "a".repeat(2 << 20));
        let torn = r#"{"id":"00ab","sta"#;
        let text = format!("{firing}\n{other}\n{overlong}\n{torn}\n{resolved}\n");
        std::fs::write(&journal, text).expect("write");
        let got = records_of(&journal, "00ab").expect("read");
        assert_eq!(got, vec![firing.to_string(), resolved.to_string()]);
        assert!(records_of(&journal, "00ff").expect("read").is_empty());
        assert!(records_of(&dir.path().join("missing"), "00ab").is_err());
    }
}
