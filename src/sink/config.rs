//! The `sinks:` section of the config file: which sinks deliver, and how they retry.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{AlertmanagerConfig, SyslogConfig, WebhookConfig};

/// The `sinks:` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// Alertmanager (API v2); one delivery per URL.
    pub alertmanager: Option<AlertmanagerConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub syslog: Vec<SyslogConfig>,
    /// Most journal records a sink holds in memory at once (one read batch). A record is about
    /// 1-2 KB; a batch never holds more than 8 MiB.
    pub queue: usize,
    /// Backoff between failed attempts: exponential from `initial`, capped at `max`, with full
    /// jitter. Delivery never gives up on an alert a receiver may still take.
    pub retry: RetryConfig,
    /// Where the delivery cursors are kept (`<sink>.cursor`); default beside the journal,
    /// `<journal>.cursors/`.
    pub state_dir: Option<PathBuf>,
    /// How often an idle sink looks at the journal when no wake-up comes.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// At shutdown, how long a sink may go on delivering what is already journaled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            alertmanager: None,
            webhooks: Vec::new(),
            syslog: Vec::new(),
            queue: 256,
            retry: RetryConfig::default(),
            state_dir: None,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Cap of the first wait.
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// Cap of every wait.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

/// Sink names must be usable as a file name and a metric label.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || name.starts_with('.')
    {
        return Err(format!(
            "{what}.name: {name:?} must be 1-64 letters, digits, '-', '_' or '.', not starting with '.'"
        ));
    }
    Ok(())
}

pub(crate) fn check_url(what: &str, url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(_) => Err(format!("{what}: {url:?} is not an http or https URL")),
        Err(e) => Err(format!("{what}: {url:?}: {e}")),
    }
}

impl SinksConfig {
    /// The names of the configured sinks: their metric label and cursor file.
    pub fn sink_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(am) = &self.alertmanager {
            names.extend((0..am.urls.len()).map(|i| am.sink_name(i)));
        }
        names.extend(self.webhooks.iter().map(|w| w.name.clone()));
        names.extend(self.syslog.iter().map(|s| s.name.clone()));
        names
    }

    /// Checks what deserialisation cannot; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue == 0 {
            return Err("sinks.queue: must be at least 1".into());
        }
        if self.retry.initial.is_zero() || self.retry.max < self.retry.initial {
            return Err("sinks.retry: initial must be above zero and max at least initial".into());
        }
        if self.poll_interval.is_zero() {
            return Err("sinks.poll_interval: must be above zero".into());
        }
        if let Some(am) = &self.alertmanager {
            am.validate()?;
        }
        for w in &self.webhooks {
            w.validate()?;
        }
        for s in &self.syslog {
            s.validate()?;
        }
        let mut seen = BTreeSet::new();
        for name in self.sink_names() {
            if !seen.insert(name.clone()) {
                return Err(format!("sinks: two sinks are named {name:?}; give each a distinct name"));
            }
        }
        Ok(())
    }
}
