//! Alertmanager (API v2, `POST /api/v2/alerts`). Alertmanager keeps alerts in memory and expires
//! a firing alert at its `endsAt`, so the sink keeps the set of active alerts, sends each firing
//! alert with `endsAt` a few re-send intervals ahead, and re-sends them all every interval: an
//! Alertmanager that restarted has them back within one interval, and one that stops hearing from
//! camwatch lets them expire. A resolved record is sent with its `ends_at`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::journal::{self, Record, Status};
use super::{check_url, http_client, http_outcome, Failure, Sink, Telemetry};

/// Most active alerts kept per Alertmanager; beyond it the oldest is dropped (with a warning) and
/// expires in Alertmanager. About 1 KB each.
pub const MAX_ACTIVE: usize = 10_000;

/// Firing alerts are sent with `endsAt` this many re-send intervals ahead.
const ENDS_AT_INTERVALS: u32 = 4;

/// Alerts per request when re-sending.
const RESEND_CHUNK: usize = 500;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://alertmanager:9093`). Each gets every alert through its own delivery
    /// and cursor (sink `alertmanager`, or `alertmanager-1`, `alertmanager-2`… for several): list
    /// every member of an HA cluster, which de-duplicates.
    pub urls: Vec<String>,
    /// How often every active alert is sent again. Firing alerts carry `endsAt` four intervals
    /// ahead, so Alertmanager resolves them if camwatch stops.
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Time allowed for one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// camwatch's address as Alertmanager's users reach it; alerts link to
    /// `{external_url}/alerts/{id}` (`generatorURL`).
    pub external_url: String,
    /// TLS to an `https://` Alertmanager: CA, client certificate (Prometheus's `tls_config`).
    pub tls_config: super::tls::TlsClientConfig,
    /// Basic authentication (an Alertmanager behind `--web.config.file` or a proxy).
    pub basic_auth: Option<super::tls::BasicAuth>,
    /// A file holding a bearer token (read at startup).
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            external_url: "http://localhost:9477".into(),
            tls_config: Default::default(),
            basic_auth: None,
            bearer_token_file: None,
        }
    }
}

impl AlertmanagerConfig {
    /// The sink name of the `i`th URL.
    pub fn sink_name(&self, i: usize) -> String {
        if self.urls.len() == 1 {
            "alertmanager".into()
        } else {
            format!("alertmanager-{}", i + 1)
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("sinks.alertmanager.urls: give at least one URL".into());
        }
        for url in &self.urls {
            check_url("sinks.alertmanager.urls", url)?;
        }
        if self.resend_interval.is_zero() || self.timeout.is_zero() {
            return Err("sinks.alertmanager: resend_interval and timeout must be above zero".into());
        }
        Ok(())
    }
}

/// An alert as Alertmanager's API takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PostableAlert {
    pub labels: BTreeMap<&'static str, String>,
    pub annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "startsAt", skip_serializing_if = "String::is_empty")]
    pub starts_at: String,
    #[serde(rename = "endsAt", skip_serializing_if = "String::is_empty")]
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

fn put(map: &mut BTreeMap<&'static str, String>, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        map.insert(name, v.to_string());
    }
}

/// `record` as an Alertmanager alert, without `endsAt`. The labels identify the alert (the same
/// for its firing and resolved records); the annotations describe it.
pub(crate) fn postable(record: &Record, sensor: &str, external_url: &str) -> PostableAlert {
    let mut labels = BTreeMap::new();
    put(&mut labels, "alertname", Some(&record.rule.id));
    put(&mut labels, "severity", Some(&record.rule.severity));
    put(&mut labels, "category", Some(&record.category));
    put(&mut labels, "sensor", Some(if record.sensor.is_empty() { sensor } else { &record.sensor }));
    put(&mut labels, "device", record.device.ip.as_deref());
    put(&mut labels, "key", Some(&record.key));

    let mut annotations = BTreeMap::new();
    put(&mut annotations, "summary", Some(&record.summary));
    put(&mut annotations, "description", Some(&record.rule.description));
    put(&mut annotations, "rule_name", Some(&record.rule.name));
    put(&mut annotations, "community_id", record.community_id.as_deref());
    if let Some(ip) = record.dest_ip.as_deref().filter(|ip| !ip.is_empty()) {
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        let dest = match (record.dest_port, record.proto.as_deref().filter(|p| !p.is_empty())) {
            (Some(port), Some(proto)) => format!("{host}:{port}/{proto}"),
            (Some(port), None) => format!("{host}:{port}"),
            (None, Some(proto)) => format!("{ip}/{proto}"),
            (None, None) => ip.to_string(),
        };
        put(&mut annotations, "dest", Some(&dest));
    }
    put(&mut annotations, "dest_name", record.dest_name.as_deref());
    put(&mut annotations, "evidence_pcap", record.evidence.pcap.as_deref());
    put(&mut annotations, "evidence_sha256", record.evidence.sha256.as_deref());
    if !record.evidence.values.is_empty() {
        // Annotations are strings: the values as one compact JSON object.
        let values = serde_json::to_string(&record.evidence.values).ok();
        put(&mut annotations, "matched_values", values.as_deref());
    }
    put(&mut annotations, "references", Some(&record.rule.references.join(", ")));
    put(&mut annotations, "vendor", record.device.vendor.as_deref());
    put(&mut annotations, "model", record.device.model.as_deref());
    put(&mut annotations, "firmware", record.device.firmware.as_deref());

    let starts_at =
        record.starts_at.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| record.timestamp.clone());
    let base = external_url.trim_end_matches('/');
    let generator_url =
        if record.id.is_empty() { base.to_string() } else { format!("{base}/alerts/{}", record.id) };
    PostableAlert { labels, annotations, starts_at, ends_at: String::new(), generator_url }
}

fn rfc3339(t: SystemTime) -> String {
    humantime_serde::re::humantime::format_rfc3339_millis(t).to_string()
}

/// Firing alerts not yet resolved, by fingerprint, oldest first; at most `cap`.
#[derive(Debug)]
pub(crate) struct ActiveAlerts {
    by_fingerprint: HashMap<String, (u64, PostableAlert)>,
    order: BTreeMap<u64, String>,
    next: u64,
    cap: usize,
}

impl ActiveAlerts {
    pub fn new(cap: usize) -> Self {
        Self { by_fingerprint: HashMap::new(), order: BTreeMap::new(), next: 0, cap: cap.max(1) }
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    pub fn get(&self, fingerprint: &str) -> Option<&PostableAlert> {
        self.by_fingerprint.get(fingerprint).map(|(_, a)| a)
    }

    /// Adds or refreshes an alert; returns the oldest one when that made room for it.
    pub fn insert(&mut self, fingerprint: String, alert: PostableAlert) -> Option<(String, PostableAlert)> {
        let seq = self.next;
        self.next += 1;
        if let Some((old, _)) = self.by_fingerprint.insert(fingerprint.clone(), (seq, alert)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, fingerprint);
        if self.by_fingerprint.len() <= self.cap {
            return None;
        }
        let (_, oldest) = self.order.pop_first()?;
        self.by_fingerprint.remove(&oldest).map(|(_, a)| (oldest, a))
    }

    pub fn remove(&mut self, fingerprint: &str) -> Option<PostableAlert> {
        let (seq, alert) = self.by_fingerprint.remove(fingerprint)?;
        self.order.remove(&seq);
        Some(alert)
    }

    /// Fingerprints and alerts, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &PostableAlert)> {
        self.order.values().filter_map(|f| self.by_fingerprint.get(f).map(|(_, a)| (f, a)))
    }
}

fn dropped_warning(sink: &str, fingerprint: &str, alert: &PostableAlert) {
    tracing::warn!(
        sink,
        fingerprint,
        rule = alert.labels.get("alertname").map(String::as_str).unwrap_or_default(),
        limit = MAX_ACTIVE,
        "Too many active alerts; the oldest is no longer re-sent and will expire in Alertmanager."
    );
}

/// One Alertmanager.
pub(crate) struct Alertmanager {
    name: String,
    endpoint: String,
    client: reqwest::Client,
    authorization: Option<reqwest::header::HeaderValue>,
    resend: Duration,
    external_url: String,
    sensor: String,
    journal: PathBuf,
    active: ActiveAlerts,
    next_resend: Instant,
}

impl Alertmanager {
    /// The delivery to `url`, the `index`th of `cfg.urls`.
    pub fn new(
        cfg: &AlertmanagerConfig,
        index: usize,
        url: &str,
        journal: &Path,
        sensor: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            name: cfg.sink_name(index),
            endpoint: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
            client: http_client(cfg.timeout, &cfg.tls_config, "sinks.alertmanager")?,
            authorization: super::delivery::authorization(
                "sinks.alertmanager",
                cfg.basic_auth.as_ref(),
                None,
                cfg.bearer_token_file.as_deref(),
            )?,
            resend: cfg.resend_interval,
            external_url: cfg.external_url.clone(),
            sensor: sensor.to_string(),
            journal: journal.to_path_buf(),
            active: ActiveAlerts::new(MAX_ACTIVE),
            next_resend: Instant::now(),
        })
    }

    fn firing_until(&self) -> String {
        rfc3339(SystemTime::now() + self.resend * ENDS_AT_INTERVALS)
    }

    async fn post(&self, alerts: &[PostableAlert]) -> Result<(), Failure> {
        let mut request = self.client.post(&self.endpoint).json(alerts);
        if let Some(auth) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        http_outcome(request.send().await).await
    }

    /// What to send for `records`: Alertmanager keeps one state per alert, so only the last record
    /// of each fingerprint in the batch is sent.
    fn payload(&self, records: &[Record]) -> Vec<PostableAlert> {
        let mut last = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            last.insert(r.fingerprint(), i);
        }
        let firing_until = self.firing_until();
        let now = rfc3339(SystemTime::now());
        records
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(&r.fingerprint()) == Some(i))
            .map(|(_, r)| match r.status {
                Status::Firing => PostableAlert {
                    ends_at: firing_until.clone(),
                    ..postable(r, &self.sensor, &self.external_url)
                },
                Status::Resolved => {
                    // The labels the alert fired with, so Alertmanager matches the two.
                    let alert = match self.active.get(&r.fingerprint()) {
                        Some(a) => a.clone(),
                        None => postable(r, &self.sensor, &self.external_url),
                    };
                    let ends_at = r.ends_at.clone().filter(|e| !e.is_empty()).unwrap_or_else(|| now.clone());
                    PostableAlert { ends_at, ..alert }
                }
            })
            .collect()
    }

    /// Sends every active alert again. A refused request is split, and the alerts Alertmanager
    /// refuses on their own are no longer re-sent.
    async fn resend(&mut self, telemetry: &Telemetry) {
        self.next_resend = Instant::now() + self.resend;
        if self.active.is_empty() {
            return;
        }
        let ends_at = self.firing_until();
        let alerts: Vec<(String, PostableAlert)> = self
            .active
            .iter()
            .map(|(f, a)| (f.clone(), PostableAlert { ends_at: ends_at.clone(), ..a.clone() }))
            .collect();
        let mut sent = 0;
        for chunk in alerts.chunks(RESEND_CHUNK) {
            let payload: Vec<PostableAlert> = chunk.iter().map(|(_, a)| a.clone()).collect();
            let started = Instant::now();
            let result = self.post(&payload).await;
            telemetry.attempt(started.elapsed());
            match result {
                Ok(()) => {
                    telemetry.delivered(true, payload.len());
                    sent += payload.len();
                }
                Err(Failure::Transient(reason)) => {
                    telemetry.delivered(false, payload.len());
                    tracing::warn!(
                        sink = %self.name,
                        active = self.active.len(),
                        retry_in = ?self.resend,
                        "Re-sending active alerts failed: {reason}."
                    );
                    return;
                }
                Err(Failure::Permanent(reason)) => {
                    for (fingerprint, alert) in chunk {
                        match self.post(std::slice::from_ref(alert)).await {
                            Ok(()) => {
                                telemetry.delivered(true, 1);
                                sent += 1;
                            }
                            Err(Failure::Permanent(why)) => {
                                telemetry.delivered(false, 1);
                                tracing::error!(
                                    sink = %self.name,
                                    fingerprint = %fingerprint,
                                    "Alertmanager refused an active alert ({why}); no longer re-sent."
                                );
                                self.active.remove(fingerprint);
                            }
                            Err(Failure::Transient(why)) => {
                                telemetry.delivered(false, 1);
                                tracing::warn!(sink = %self.name, "Re-sending active alerts failed: {reason}; {why}.");
                                return;
                            }
                        }
                    }
                }
            }
        }
        tracing::debug!(sink = %self.name, alerts = sent, "Re-sent the active alerts.");
    }

    fn apply(&mut self, records: &[Record]) {
        for r in records {
            let fingerprint = r.fingerprint().into_owned();
            match r.status {
                Status::Firing => {
                    let alert = postable(r, &self.sensor, &self.external_url);
                    if let Some((f, a)) = self.active.insert(fingerprint, alert) {
                        dropped_warning(&self.name, &f, &a);
                    }
                }
                Status::Resolved => {
                    self.active.remove(&fingerprint);
                }
            }
        }
    }
}

impl Sink for Alertmanager {
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    /// Rebuilds the active alerts from the journal up to the cursor (the records after it arrive
    /// through delivery) and has them re-sent at once.
    async fn start(&mut self, cursor: u64) {
        let (path, sensor, external_url) =
            (self.journal.clone(), self.sensor.clone(), self.external_url.clone());
        let rebuilt = tokio::task::spawn_blocking(move || {
            let mut active = ActiveAlerts::new(MAX_ACTIVE);
            let mut dropped = 0u64;
            journal::scan(&path, cursor, |r| {
                let fingerprint = r.fingerprint().into_owned();
                match r.status {
                    Status::Firing => {
                        if active.insert(fingerprint, postable(&r, &sensor, &external_url)).is_some() {
                            dropped += 1;
                        }
                    }
                    Status::Resolved => {
                        active.remove(&fingerprint);
                    }
                }
            })
            .map(|_| (active, dropped))
        })
        .await;
        match rebuilt {
            Ok(Ok((active, dropped))) => {
                if dropped > 0 {
                    tracing::warn!(
                        sink = %self.name,
                        dropped,
                        limit = MAX_ACTIVE,
                        "More active alerts in the journal than are kept; the oldest are not re-sent."
                    );
                }
                tracing::info!(sink = %self.name, active = active.len(), "Active alerts rebuilt from the journal.");
                self.active = active;
            }
            Ok(Err(e)) => {
                tracing::error!(sink = %self.name, "Active alerts not rebuilt from the journal: {e}.")
            }
            Err(e) => tracing::error!(sink = %self.name, "Active alerts not rebuilt from the journal: {e}."),
        }
        self.next_resend = Instant::now();
    }

    async fn deliver(&mut self, records: &[Record]) -> Result<(), Failure> {
        let payload = self.payload(records);
        self.post(&payload).await?;
        self.apply(records);
        Ok(())
    }

    fn next_tick(&self) -> Option<Instant> {
        Some(self.next_resend)
    }

    async fn tick(&mut self, telemetry: &Telemetry) {
        self.resend(telemetry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{RetryConfig, SinksConfig};
    use super::*;
    use humantime_serde::re::humantime;
    use serde_json::Value;

    fn config(urls: Vec<String>, resend: Duration) -> SinksConfig {
        SinksConfig {
            alertmanager: Some(AlertmanagerConfig {
                urls,
                resend_interval: resend,
                external_url: "https://camwatch.example/".into(),
                ..AlertmanagerConfig::default()
            }),
            retry: RetryConfig { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
            ..SinksConfig::default()
        }
    }

    fn alerts(request: &Request) -> Vec<Value> {
        assert_eq!(request.path, "/api/v2/alerts");
        request.json().as_array().unwrap().clone()
    }

    fn fingerprints(request: &Request) -> Vec<String> {
        alerts(request)
            .iter()
            .map(|a| a["labels"]["key"].as_str().unwrap().rsplit("fp=").next().unwrap().to_string())
            .collect()
    }

    fn ends_at(alert: &Value) -> SystemTime {
        humantime::parse_rfc3339_weak(alert["endsAt"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn firing_alert_carries_labels_annotations_and_a_future_end() {
        let fx = Fixture::new();
        let mut am = Server::start(|_, _| 200).await;
        let resend = Duration::from_secs(3600);
        let mut r = record("9f3c", "a1b2", "firing");
        r["dest_name"] = Value::Null;
        r["device"]["firmware"] = Value::String(String::new());
        r["sensor"] = Value::Null;
        fx.append(&r);
        let before = SystemTime::now();
        let tasks = fx.spawn(&config(vec![am.url("/")], resend));
        let request = am.next().await;
        let after = SystemTime::now();
        let sent = alerts(&request);
        assert_eq!(sent.len(), 1);
        let a = &sent[0];
        assert_eq!(
            a["labels"],
            serde_json::json!({
                "alertname": "egress-outside-allowed", "severity": "high", "category": "egress",
                "sensor": "site-a", "device": "10.0.0.5", "key": "device=10.0.0.5 dest_ip=8.8.8.8 fp=a1b2"
            })
        );
        let ann = a["annotations"].as_object().unwrap();
        assert_eq!(ann["summary"], "Camera reached the internet: 10.0.0.5 (Hikvision) → 8.8.8.8:443/tcp");
        assert_eq!(ann["rule_name"], "Camera reached the internet");
        assert_eq!(ann["dest"], "8.8.8.8:443/tcp");
        assert_eq!(ann["references"], "CVE-2021-36260, https://example.org/advisory");
        assert_eq!(ann["evidence_pcap"], "/var/lib/camwatch/evidence/x.pcap");
        assert_eq!(ann["evidence_sha256"], "5e88");
        assert_eq!(ann["community_id"], "1:abc=");
        assert_eq!(ann["vendor"], "Hikvision");
        assert!(!ann.contains_key("dest_name") && !ann.contains_key("firmware"), "{ann:?}");
        assert_eq!(a["startsAt"], "2024-05-01T10:00:00.000000Z");
        assert_eq!(a["generatorURL"], "https://camwatch.example/alerts/9f3c");
        let ends = ends_at(a);
        // Millisecond precision on the wire.
        assert!(ends + Duration::from_millis(1) >= before + resend * 4, "{ends:?}");
        assert!(ends <= after + resend * 4, "{ends:?}");
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("alertmanager"), fx.journal_len());
        assert_eq!(fx.deliveries("alertmanager", "ok"), 1);
    }

    #[tokio::test]
    async fn active_alerts_are_resent_until_resolved() {
        let fx = Fixture::new();
        let mut am = Server::start(|_, _| 200).await;
        let tasks = fx.spawn(&config(vec![am.url("")], Duration::from_millis(20)));
        fx.append(&record("1", "A", "firing"));
        fx.append(&record("2", "B", "firing"));
        // Re-sends carry both until A resolves.
        let mut resent_both = 0;
        while resent_both < 2 {
            if fingerprints(&am.next().await) == ["A", "B"] {
                resent_both += 1;
            }
        }
        fx.append(&record("3", "A", "resolved"));
        let resolution = loop {
            let request = am.next().await;
            let sent = alerts(&request);
            if sent.len() == 1 && sent[0]["endsAt"] == "2024-05-01T10:12:00.000000Z" {
                break sent[0].clone();
            }
        };
        assert!(resolution["labels"]["key"].as_str().unwrap().ends_with("fp=A"));
        assert_eq!(resolution["labels"]["alertname"], "egress-outside-allowed");
        // From then on only B, with an end in the future.
        for _ in 0..3 {
            let request = am.next().await;
            assert_eq!(fingerprints(&request), ["B"]);
            assert!(ends_at(&alerts(&request)[0]) > SystemTime::now());
        }
        fx.stop(tasks).await;
    }

    #[tokio::test]
    async fn one_batch_sends_each_alert_once_in_its_last_state() {
        let fx = Fixture::new();
        let mut am = Server::start(|_, _| 200).await;
        fx.append(&record("1", "A", "firing"));
        fx.append(&record("2", "B", "firing"));
        fx.append(&record("3", "A", "resolved"));
        let tasks = fx.spawn(&config(vec![am.url("")], Duration::from_secs(3600)));
        let request = am.next().await;
        assert_eq!(fingerprints(&request), ["B", "A"]);
        assert_eq!(alerts(&request)[1]["endsAt"], "2024-05-01T10:12:00.000000Z");
        fx.stop(tasks).await;
        assert_eq!(fx.deliveries("alertmanager", "ok"), 3);
    }

    #[tokio::test]
    async fn a_restart_rebuilds_and_resends_the_active_alerts_at_once() {
        let fx = Fixture::new();
        let mut am = Server::start(|_, _| 200).await;
        let cfg = config(vec![am.url("")], Duration::from_secs(3600));
        fx.append(&record("1", "A", "firing"));
        fx.append(&record("2", "B", "firing"));
        fx.append(&record("3", "A", "resolved"));
        fx.append(&record("4", "C", "firing"));
        let tasks = fx.spawn(&cfg);
        assert_eq!(fingerprints(&am.next().await), ["B", "A", "C"]);
        fx.stop(tasks).await;

        // An Alertmanager restart loses its alerts; camwatch's restart sends them again.
        let fx = fx.restart();
        fx.append(&record("5", "C", "resolved"));
        let tasks = fx.spawn(&cfg);
        let first = am.next().await;
        assert_eq!(fingerprints(&first), ["B", "C"], "active set");
        assert!(ends_at(&alerts(&first)[0]) > SystemTime::now());
        let second = am.next().await;
        assert_eq!(fingerprints(&second), ["C"]);
        assert_eq!(alerts(&second)[0]["endsAt"], "2024-05-01T10:12:00.000000Z");
        fx.stop(tasks).await;
    }

    #[tokio::test]
    async fn each_member_of_a_pair_has_its_own_delivery() {
        let fx = Fixture::new();
        let mut up = Server::start(|_, _| 200).await;
        let down = closed_port().await;
        let cfg = config(vec![format!("http://{down}"), up.url("")], Duration::from_secs(3600));
        fx.append(&record("1", "A", "firing"));
        let tasks = fx.spawn(&cfg);
        assert_eq!(fingerprints(&up.next().await), ["A"]);
        fx.append(&record("2", "B", "firing"));
        assert_eq!(fingerprints(&up.next().await), ["B"]);
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("alertmanager-2"), fx.journal_len());
        assert_eq!(fx.deliveries("alertmanager-2", "ok"), 2);
        assert_eq!(fx.cursor("alertmanager-1"), 0);
        assert_eq!(fx.deliveries("alertmanager-1", "ok"), 0);
        assert!(fx.deliveries("alertmanager-1", "error") >= 1);
        assert_eq!(fx.backlog("alertmanager-1"), 2);
    }

    #[tokio::test]
    async fn unavailable_is_retried_until_accepted() {
        let fx = Fixture::new();
        let mut am = Server::start(|_, n| if n < 2 { 503 } else { 200 }).await;
        fx.append(&record("1", "A", "firing"));
        let tasks = fx.spawn(&config(vec![am.url("")], Duration::from_secs(3600)));
        let bodies: Vec<Value> = [am.next().await, am.next().await, am.next().await]
            .iter()
            .map(|r| {
                let mut alerts = r.json();
                alerts[0]["endsAt"] = Value::Null;
                alerts
            })
            .collect();
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
        fx.stop(tasks).await;
        assert_eq!(fx.retries("alertmanager"), 2);
        assert_eq!(fx.deliveries("alertmanager", "error"), 2);
        assert_eq!(fx.deliveries("alertmanager", "ok"), 1);
        assert_eq!(fx.cursor("alertmanager"), fx.journal_len());
    }

    #[tokio::test]
    async fn a_refused_alert_is_skipped_and_the_rest_delivered() {
        let fx = Fixture::new();
        let mut am =
            Server::start(|r, _| if r.body.windows(6).any(|w| w == b"poison") { 400 } else { 200 }).await;
        let mut poison = record("2", "P", "firing");
        poison["rule"]["id"] = "poison".into();
        fx.append(&record("1", "A", "firing"));
        fx.append(&poison);
        fx.append(&record("3", "B", "firing"));
        let tasks = fx.spawn(&config(vec![am.url("")], Duration::from_secs(3600)));
        assert_eq!(fingerprints(&am.next().await), ["A", "P", "B"]);
        assert_eq!(fingerprints(&am.next().await), ["A"]);
        assert_eq!(fingerprints(&am.next().await), ["P"]);
        assert_eq!(fingerprints(&am.next().await), ["B"]);
        fx.append(&record("4", "C", "firing"));
        assert_eq!(fingerprints(&am.next().await), ["C"], "the queue moved on");
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("alertmanager"), fx.journal_len());
        assert_eq!(fx.deliveries("alertmanager", "ok"), 3);
        assert_eq!(fx.deliveries("alertmanager", "error"), 1);
        assert_eq!(fx.retries("alertmanager"), 0);
    }

    #[test]
    fn active_alerts_are_bounded_oldest_first() {
        let mut active = ActiveAlerts::new(2);
        let alert = |n: &str| PostableAlert {
            labels: BTreeMap::from([("alertname", n.to_string())]),
            annotations: BTreeMap::new(),
            starts_at: String::new(),
            ends_at: String::new(),
            generator_url: String::new(),
        };
        assert!(active.insert("a".into(), alert("a")).is_none());
        assert!(active.insert("b".into(), alert("b")).is_none());
        // Refreshing `a` makes `b` the oldest.
        assert!(active.insert("a".into(), alert("a2")).is_none());
        let (dropped, _) = active.insert("c".into(), alert("c")).unwrap();
        assert_eq!(dropped, "b");
        let keys: Vec<&String> = active.iter().map(|(f, _)| f).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(active.get("a").unwrap().labels["alertname"], "a2");
        assert!(active.remove("a").is_some());
        assert_eq!(active.len(), 1);
    }

    #[test]
    fn destination_annotation_brackets_ipv6() {
        let mut r = Record::parse(&record("1", "A", "firing").to_string()).unwrap();
        r.dest_ip = Some("2001:db8::1".into());
        assert_eq!(postable(&r, "s", "http://x").annotations["dest"], "[2001:db8::1]:443/tcp");
        r.dest_port = None;
        r.proto = None;
        assert_eq!(postable(&r, "s", "http://x").annotations["dest"], "2001:db8::1");
    }
}
