//! Webhooks: batches of alerts POSTed as JSON,
//! `{"version":"1","sensor":"…","alerts":[…]}`, each alert exactly as its journal line.
//!
//! With a secret, the request carries `X-Camwatch-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! the exact body bytes under the secret. A receiver recomputes it over the raw body before
//! parsing and compares in constant time. The signature covers no timestamp: a receiver that must
//! refuse replays de-duplicates on the alerts' `id`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use sha2::Sha256;

use super::journal::Record;
use super::{check_name, check_url, http_client, http_outcome, read_secret, Failure, Sink};

type HmacSha256 = Hmac<Sha256>;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-camwatch-signature";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The sink's name, in metrics and logs and as its cursor file; unique among sinks.
    pub name: String,
    pub url: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// A file holding the bearer token (read at startup; a trailing newline is ignored).
    pub bearer_token_file: Option<PathBuf>,
    /// Signs each body (`X-Camwatch-Signature`).
    pub hmac_secret: Option<String>,
    /// A file holding the signing secret (read at startup; a trailing newline is ignored).
    pub hmac_secret_file: Option<PathBuf>,
    /// Most alerts per request.
    pub batch_size: usize,
    /// How long a short batch waits for more alerts, from when the first is seen.
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Time allowed for one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS to an `https://` receiver: CA, client certificate (Prometheus's `tls_config`).
    pub tls_config: super::tls::TlsClientConfig,
    /// Basic authentication; excludes a bearer token.
    pub basic_auth: Option<super::tls::BasicAuth>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            name: "webhook".into(),
            url: String::new(),
            headers: BTreeMap::new(),
            bearer_token: None,
            bearer_token_file: None,
            hmac_secret: None,
            hmac_secret_file: None,
            batch_size: 100,
            batch_wait: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            tls_config: Default::default(),
            basic_auth: None,
        }
    }
}

impl WebhookConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let what = format!("sinks.webhooks[{}]", self.name);
        check_name(&what, &self.name)?;
        if self.url.is_empty() {
            return Err(format!("{what}.url: required"));
        }
        check_url(&format!("{what}.url"), &self.url)?;
        if self.batch_size == 0 {
            return Err(format!("{what}.batch_size: must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(format!("{what}.timeout: must be above zero"));
        }
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(format!("{what}: give bearer_token or bearer_token_file, not both"));
        }
        if self.hmac_secret.is_some() && self.hmac_secret_file.is_some() {
            return Err(format!("{what}: give hmac_secret or hmac_secret_file, not both"));
        }
        headers(&self.headers).map_err(|e| format!("{what}.headers: {e}"))?;
        Ok(())
    }
}

fn headers(map: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::new();
    for (name, value) in map {
        let n =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a header name"))?;
        let v = HeaderValue::from_str(value).map_err(|_| format!("{name}: value is not a header value"))?;
        out.insert(n, v);
    }
    Ok(out)
}

/// `sha256=<hex>`: the signature of `body` under `secret`, as the header carries it.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mac = match <HmacSha256 as KeyInit>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(body);
            m.finalize().into_bytes()
        }
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    format!("sha256={}", hex::encode(mac))
}

/// One webhook.
pub(crate) struct Webhook {
    url: String,
    client: reqwest::Client,
    headers: HeaderMap,
    secret: Option<Vec<u8>>,
    sensor_json: String,
    batch_size: usize,
    batch_wait: Duration,
}

impl Webhook {
    /// Reads the token and secret files; fails naming the file.
    pub fn new(cfg: &WebhookConfig, sensor: &str) -> anyhow::Result<Self> {
        let what = format!("sinks.webhooks[{}]", cfg.name);
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        map.extend(headers(&cfg.headers).map_err(|e| anyhow::anyhow!("{what}.headers: {e}"))?);
        if let Some(v) = super::delivery::authorization(
            &what,
            cfg.basic_auth.as_ref(),
            cfg.bearer_token.as_deref(),
            cfg.bearer_token_file.as_deref(),
        )? {
            map.insert(AUTHORIZATION, v);
        }
        let secret = match (&cfg.hmac_secret, &cfg.hmac_secret_file) {
            (Some(s), _) => Some(s.clone().into_bytes()),
            (None, Some(path)) => Some(read_secret(&format!("{what}.hmac_secret_file"), path)?.into_bytes()),
            (None, None) => None,
        };
        Ok(Self {
            url: cfg.url.clone(),
            client: http_client(cfg.timeout, &cfg.tls_config, &what)?,
            headers: map,
            secret,
            sensor_json: serde_json::Value::String(sensor.to_string()).to_string(),
            batch_size: cfg.batch_size,
            batch_wait: cfg.batch_wait,
        })
    }

    /// The request body: the journal lines as they are, in an envelope.
    fn body(&self, records: &[Record]) -> Vec<u8> {
        let size = records.iter().map(|r| r.line.len() + 1).sum::<usize>() + self.sensor_json.len() + 40;
        let mut body = String::with_capacity(size);
        body.push_str(r#"{"version":"1","sensor":"#);
        body.push_str(&self.sensor_json);
        body.push_str(r#","alerts":["#);
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&r.line);
        }
        body.push_str("]}");
        body.into_bytes()
    }
}

impl Sink for Webhook {
    fn max_batch(&self) -> usize {
        self.batch_size
    }

    fn batch_wait(&self) -> Duration {
        self.batch_wait
    }

    async fn deliver(&mut self, records: &[Record]) -> Result<(), Failure> {
        let body = self.body(records);
        let mut request = self.client.post(&self.url).headers(self.headers.clone());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        http_outcome(request.body(body).send().await).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{RetryConfig, SinksConfig};
    use super::*;

    fn config(hook: WebhookConfig) -> SinksConfig {
        SinksConfig {
            webhooks: vec![hook],
            retry: RetryConfig { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
            ..SinksConfig::default()
        }
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn body_is_signed_authorised_and_carries_the_journal_lines() {
        let fx = Fixture::new();
        let mut server = Server::start(|_, _| 200).await;
        let secret_file = fx.dir().join("hmac");
        std::fs::write(&secret_file, "s3cret\n").unwrap();
        let cfg = config(WebhookConfig {
            name: "soc".into(),
            url: server.url("/hooks/camwatch"),
            headers: BTreeMap::from([("X-Site".to_string(), "a".to_string())]),
            bearer_token: Some("tok".into()),
            hmac_secret_file: Some(secret_file),
            batch_size: 3,
            batch_wait: Duration::from_secs(30),
            ..WebhookConfig::default()
        });
        let lines: Vec<String> =
            (0..3).map(|i| record(&format!("a{i}"), "f", "firing").to_string()).collect();
        let tasks = fx.spawn(&cfg);
        for line in &lines {
            fx.append_raw(line);
        }
        // One request: the batch is full long before its 30 s wait.
        let request = server.next().await;
        assert_eq!(request.path, "/hooks/camwatch");
        assert_eq!(request.header("authorization"), Some("Bearer tok"));
        assert_eq!(request.header("x-site"), Some("a"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"s3cret").unwrap();
        mac.update(&request.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(request.header(SIGNATURE_HEADER), Some(want.as_str()));

        let text = std::str::from_utf8(&request.body).unwrap();
        for line in &lines {
            assert!(text.contains(line.as_str()), "journal line changed in {text}");
        }
        let body = request.json();
        assert_eq!(body["version"], "1");
        assert_eq!(body["sensor"], "site-a");
        assert_eq!(body["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(body["alerts"][2]["id"], "a2");
        fx.stop(tasks).await;
        assert_eq!(fx.deliveries("soc", "ok"), 3);
        assert!(server.try_next().is_none());
    }

    #[tokio::test]
    async fn a_short_batch_goes_after_its_wait_and_large_ones_are_split() {
        let fx = Fixture::new();
        let mut server = Server::start(|_, _| 200).await;
        let cfg = config(WebhookConfig {
            url: server.url("/"),
            batch_size: 2,
            batch_wait: Duration::from_millis(20),
            ..WebhookConfig::default()
        });
        for i in 0..5 {
            fx.append(&record(&format!("a{i}"), "f", "firing"));
        }
        let tasks = fx.spawn(&cfg);
        let sizes: Vec<usize> = [server.next().await, server.next().await, server.next().await]
            .iter()
            .map(|r| r.json()["alerts"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        fx.append(&record("a5", "f", "firing"));
        assert_eq!(server.next().await.json()["alerts"][0]["id"], "a5");
        fx.stop(tasks).await;
        assert!(server.try_next().is_none());
        assert_eq!(fx.cursor("webhook"), fx.journal_len());
    }

    #[tokio::test]
    async fn unauthorised_is_retried_not_skipped() {
        let fx = Fixture::new();
        let mut server =
            Server::start(|r, _| if r.header("authorization").is_some() { 200 } else { 401 }).await;
        fx.append(&record("a", "f", "firing"));
        let mut cfg = config(WebhookConfig {
            url: server.url("/"),
            batch_wait: Duration::ZERO,
            ..WebhookConfig::default()
        });
        let tasks = fx.spawn(&cfg);
        assert_eq!(server.next().await.header("authorization"), None);
        assert_eq!(server.next().await.header("authorization"), None);
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("webhook"), 0, "a 401 must not drop the alert");

        // Fixed configuration, restarted: the alert is still there.
        let fx = fx.restart();
        cfg.webhooks[0].bearer_token = Some("tok".into());
        let tasks = fx.spawn(&cfg);
        loop {
            let request = server.next().await;
            if request.header("authorization").is_some() {
                assert_eq!(request.json()["alerts"][0]["id"], "a");
                break;
            }
        }
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("webhook"), fx.journal_len());
    }
}
