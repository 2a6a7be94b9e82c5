//! The read-only web view, served beside `/metrics` when `outputs.web_view` is on (off by
//! default): `/ui/` the estate review with each device linked, `/ui/devices/{ip}` a device's
//! timeline (`?since=…&until=…`), `/ui/alerts` the alert journal, `/ui/evidence/{id}` an alert's
//! evidence pcap. Only GET routes exist; it shares the endpoint's bind, TLS, basic
//! authentication and connection bounds, and its pages are the ones `camwatch report` and
//! `camwatch investigate --format html` write (self-contained, no scripts, a CSP that forbids
//! every fetch).
//!
//! Each page reads the state database and the journal afresh (SQLite in WAL mode lets it read
//! while the sensor writes), in a blocking task, at most two at once with the journal lookups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::detect::RuleSet;
use crate::review::{html, investigate, report, Estate};

/// Event logs larger than this are not read for a device page (each page would scan it):
/// `camwatch investigate` reads them whole.
pub const MAX_EVENT_LOG_BYTES: u64 = 256 * 1024 * 1024;

/// What the view reads.
#[derive(Clone)]
pub struct WebView {
    pub state: PathBuf,
    pub journal: Option<PathBuf>,
    pub events: Option<PathBuf>,
    /// The evidence directory: a pcap is served only from inside it.
    pub evidence: Option<PathBuf>,
    /// The site's own networks (the sensor's `devices.networks`).
    pub site: crate::model::netset::NetSet,
    /// The sensor's current rules (for the firmware findings).
    pub rules: Arc<dyn Fn() -> Option<Arc<RuleSet>> + Send + Sync>,
}

#[derive(Clone)]
struct Shared {
    view: Arc<WebView>,
    pages: Arc<tokio::sync::Semaphore>,
}

const NAV: &[(&str, &str)] = &[("/ui/", "Estate"), ("/ui/alerts", "Alerts")];

pub fn routes(view: WebView, pages: Arc<tokio::sync::Semaphore>) -> Router {
    Router::new()
        .route("/ui", get(|| async { axum::response::Redirect::permanent("/ui/") }))
        .route("/ui/", get(estate_page))
        .route("/ui/alerts", get(alerts_page))
        .route("/ui/devices/{device}", get(device_page))
        .route("/ui/evidence/{id}", get(evidence))
        .with_state(Shared { view: Arc::new(view), pages })
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn problem(status: StatusCode, what: &str) -> Response {
    let body =
        html::page("camwatch", what, NAV, &format!("<p id=\"problem\">{}</p>", html::esc(what)), "camwatch");
    page(status, body)
}

/// Runs `f` on the blocking pool under the page limit.
async fn blocking<F>(s: &Shared, f: F) -> Response
where
    F: FnOnce(&WebView) -> Result<Response, String> + Send + 'static,
{
    let Ok(permit) = s.pages.clone().try_acquire_owned() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Busy: try again in a moment.");
    };
    let view = s.view.clone();
    // The permit goes with the work: a client that hangs up does not free it while the page is
    // still being built.
    let work = move || {
        let _permit = permit;
        f(&view)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!("Web view: {e}");
            problem(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "The page could not be made."),
    }
}

fn load(v: &WebView) -> Result<Estate, String> {
    let journal = v.journal.as_deref().filter(|p| p.is_file());
    Estate::load(&v.state, journal, (v.rules)(), v.site.clone()).map_err(|e| format!("{e:#}"))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

async fn estate_page(State(s): State<Shared>) -> Response {
    blocking(&s, |v| {
        if !v.state.is_file() {
            return Ok(problem(StatusCode::OK, "No devices yet: the state database has not been written."));
        }
        let estate = load(v)?;
        let r = report::build(&estate, now());
        let href = |ip: &str| format!("/ui/devices/{ip}");
        Ok(page(StatusCode::OK, report::html_with(&r, Some(&href), NAV)))
    })
    .await
}

async fn device_page(
    State(s): State<Shared>,
    UrlPath(device): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if device.len() > 128 {
        return problem(StatusCode::NOT_FOUND, "No such device.");
    }
    blocking(&s, move |v| {
        let time = |k: &str| -> Result<Option<u64>, String> {
            match q.get(k).map(String::as_str).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => crate::review::estate::parse_time(t)
                    .map(Some)
                    .ok_or_else(|| format!("{k}: not a time: {t}")),
            }
        };
        let (since, until) = match (time("since"), time("until")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Ok(problem(StatusCode::BAD_REQUEST, &e)),
        };
        let estate = load(v)?;
        let events: Vec<PathBuf> = v
            .events
            .iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() <= MAX_EVENT_LOG_BYTES))
            .cloned()
            .collect();
        let query = investigate::Query { since, until, events, flows: false, max_items: 2_000 };
        let t = match investigate::build(&estate, &device, &query) {
            Ok(t) => t,
            Err(e) => return Ok(problem(StatusCode::NOT_FOUND, &format!("{e:#}"))),
        };
        let href = |e: &investigate::Evidence| Some(format!("/ui/evidence/{}", e.alert));
        Ok(page(StatusCode::OK, investigate::html(&t, &href, NAV)))
    })
    .await
}

async fn alerts_page(State(s): State<Shared>) -> Response {
    blocking(&s, |v| {
        let Some(journal) = v.journal.as_deref().filter(|p| p.is_file()) else {
            return Ok(problem(StatusCode::OK, "No alert journal yet."));
        };
        let (mut alerts, skipped) =
            crate::review::estate::read_alerts(journal).map_err(|e| format!("{e:#}"))?;
        alerts.reverse();
        let rows: Vec<(String, Vec<String>)> = alerts
            .iter()
            .take(5_000)
            .map(|a| {
                let device = a.device.map_or_else(
                    || "-".to_string(),
                    |ip| format!("<a href=\"/ui/devices/{ip}\"><code>{ip}</code></a>"),
                );
                let evidence = if a.pcap.is_some() {
                    format!("<a class=\"evidence\" href=\"/ui/evidence/{}\">pcap</a>", html::esc(&a.id))
                } else {
                    String::new()
                };
                (
                    String::new(),
                    vec![
                        html::esc(&html::when(a.starts)),
                        html::badge(&a.severity, &a.severity),
                        device,
                        html::esc(&a.summary),
                        a.resolved_at
                            .as_deref()
                            .map(html::esc)
                            .unwrap_or_else(|| html::badge("medium", "firing")),
                        evidence,
                    ],
                )
            })
            .collect();
        let mut body = html::table(
            "table-alerts",
            &["Started (UTC)", "Severity", "Device", "Alert", "Resolved", "Evidence"],
            &rows,
        );
        if alerts.len() > 5_000 {
            body.push_str(&format!("<p class=\"muted\">The newest 5000 of {} alerts.</p>", alerts.len()));
        }
        if skipped > 0 {
            body.push_str(&format!("<p class=\"muted\">{skipped} journal lines could not be read.</p>"));
        }
        let title = format!("{} alerts, newest first", alerts.len());
        Ok(page(StatusCode::OK, html::page("Alerts", &title, NAV, &body, "camwatch")))
    })
    .await
}

/// The pcap of one alert, from inside the evidence directory only.
async fn evidence(State(s): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let id = id.strip_suffix(".pcap").unwrap_or(&id).to_string();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return problem(StatusCode::NOT_FOUND, "No such alert.");
    }
    blocking(&s, move |v| {
        let (Some(journal), Some(dir)) = (v.journal.as_deref(), v.evidence.as_deref()) else {
            return Ok(problem(StatusCode::NOT_FOUND, "No evidence is kept."));
        };
        let found = crate::review::estate::find_alert(journal, &id).map_err(|e| format!("{e:#}"))?;
        let Some(pcap) = found.and_then(|a| a.pcap) else {
            return Ok(problem(StatusCode::NOT_FOUND, "That alert has no evidence."));
        };
        let Some(path) = inside(dir, &pcap) else {
            return Ok(problem(
                StatusCode::NOT_FOUND,
                "The evidence is gone (retention removes old captures).",
            ));
        };
        let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/vnd.tcpdump.pcap".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"camwatch-{id}.pcap\"")),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            ],
            data,
        )
            .into_response())
    })
    .await
}

/// `file` when it exists and resolves to a file inside `dir`.
fn inside(dir: &Path, file: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let by_name = dir.join(file.file_name()?);
    let real = file.canonicalize().or_else(|_| by_name.canonicalize()).ok()?;
    (real.starts_with(&dir) && real.is_file()).then_some(real)
}
