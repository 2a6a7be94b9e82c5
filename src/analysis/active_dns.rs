//! Active DNS: the daemon resolves the plain domain names in the rules' lists (not globs) with
//! hickory-resolver and refreshes them as their TTLs run out, so a listed cloud name maps to its
//! current addresses even when the camera's own lookup was not seen (DNS over TLS, a cached
//! answer, a lookup before the sensor started). Answers feed the same passive DNS map as
//! captured responses. Failures are counted, never fatal. Off unless the config enables it:
//! a sensor on an isolated camera network may have no resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use serde::Deserialize;

use crate::proto::dns::{DnsAnswer, DnsMessage, DnsQuery};

/// The `active_dns:` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveDnsConfig {
    pub enabled: bool,
    /// Name servers (`address:port`); empty means the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Shortest time between two lookups of a name, whatever its TTL.
    #[serde(with = "humantime_serde")]
    pub min_refresh: Duration,
    /// Most names resolved.
    pub max_names: usize,
    /// How long start-up waits for the first round of answers before capture begins.
    #[serde(with = "humantime_serde")]
    pub startup_wait: Duration,
}

impl Default for ActiveDnsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            servers: Vec::new(),
            min_refresh: Duration::from_secs(60),
            max_names: 1000,
            startup_wait: Duration::from_secs(3),
        }
    }
}

/// A resolved name: its addresses and how long they are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub ttl: u32,
}

impl Resolved {
    /// The answer as a DNS response, so the passive DNS map learns it like a captured one.
    pub fn as_message(&self) -> DnsMessage {
        let answers = self
            .addrs
            .iter()
            .map(|ip| DnsAnswer {
                rrname: self.name.clone(),
                rrtype: if ip.is_ipv4() { "A".into() } else { "AAAA".into() },
                ttl: self.ttl,
                rdata: ip.to_string(),
            })
            .collect();
        DnsMessage {
            id: 0,
            response: true,
            opcode: "QUERY".into(),
            rcode: "NOERROR".into(),
            flags: "8180".into(),
            aa: false,
            tc: false,
            rd: true,
            ra: true,
            queries: vec![DnsQuery { rrname: self.name.clone(), rrtype: "A".into() }],
            answers,
            authorities: Vec::new(),
            anomalies: Vec::new(),
        }
    }
}

/// The plain domain names among the rules' list entries (globs cannot be resolved; addresses
/// need not be).
pub fn names<'a>(entries: impl IntoIterator<Item = &'a String>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = entries
        .into_iter()
        .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|s| {
            s.contains('.')
                && !s.contains(['*', '?', '/', ' '])
                && s.parse::<IpAddr>().is_err()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && s.chars().any(|c| c.is_ascii_alphabetic())
        })
        .collect();
    out.sort();
    out.dedup();
    out.truncate(max);
    out
}

pub fn resolver(cfg: &ActiveDnsConfig) -> anyhow::Result<TokioResolver> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 1;
    let builder = if cfg.servers.is_empty() {
        Resolver::builder_tokio()?
    } else {
        let servers = cfg
            .servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp])
            })
            .collect();
        Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    Ok(builder.with_options(opts).build()?)
}

/// Resolves one name; `None` when it failed (or had no address).
pub async fn resolve(resolver: &TokioResolver, name: &str) -> Option<Resolved> {
    let lookup = resolver.lookup_ip(name).await.ok()?;
    let addrs: Vec<IpAddr> = lookup.iter().collect();
    if addrs.is_empty() {
        return None;
    }
    let ttl = lookup.valid_until().saturating_duration_since(Instant::now()).as_secs();
    Some(Resolved { name: name.to_string(), addrs, ttl: u32::try_from(ttl).unwrap_or(u32::MAX) })
}
