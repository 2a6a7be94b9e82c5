//! The HTTP endpoint's web configuration file, in the format of the Prometheus
//! exporter-toolkit (`--web.config.file`, as node_exporter, Prometheus and Alertmanager read it):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/camwatch/tls.crt
//!   key_file: /etc/camwatch/tls.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default)
//!   client_ca_file: /etc/camwatch/clients-ca.pem
//!   min_version: TLS12                              # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...                          # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! TLS is served with rustls; basic authentication checks bcrypt hashes (a successful check is
//! cached, keyed by a SHA-256 of the credentials, so each scrape does not pay bcrypt's cost, as
//! the exporter-toolkit does). Every path (`/metrics`, `/healthz`, `/alerts/…`) requires it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub tls_server_config: Option<TlsServerConfig>,
    /// User name → bcrypt hash of the password.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub min_version: Option<String>,
}

impl WebConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg: WebConfig = crate::model::yaml::read_yaml(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (user, hash) in &cfg.basic_auth_users {
            anyhow::ensure!(
                hash.parse::<bcrypt::HashParts>().is_ok(),
                "{}: basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
                path.display()
            );
        }
        Ok(cfg)
    }

    /// The TLS acceptor, when TLS is configured.
    pub fn acceptor(&self) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
        let Some(t) = &self.tls_server_config else { return Ok(None) };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
            None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some("TLS13") => &[&rustls::version::TLS13],
            Some(v) => anyhow::bail!("tls_server_config.min_version: {v} (TLS12 or TLS13)"),
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .context("TLS protocol versions")?;
        let builder = match t.client_auth_type.as_deref() {
            None | Some("NoClientCert") => builder.with_no_client_auth(),
            Some("RequireAndVerifyClientCert") => {
                let ca = t
                    .client_ca_file
                    .as_ref()
                    .context("tls_server_config: RequireAndVerifyClientCert needs client_ca_file")?;
                let roots = Arc::new(crate::sink::tls::roots(ca)?);
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .context("tls_server_config.client_ca_file")?;
                builder.with_client_cert_verifier(verifier)
            }
            Some(other) => anyhow::bail!(
                "tls_server_config.client_auth_type: {other} (NoClientCert or RequireAndVerifyClientCert)"
            ),
        };
        let (certs, key) = crate::sink::tls::server_identity(&t.cert_file, &t.key_file)?;
        let config = builder
            .with_single_cert(certs, key)
            .context("tls_server_config: the certificate and key do not match")?;
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    /// The basic-auth check, when users are configured.
    pub fn auth(&self) -> Option<BasicAuthCheck> {
        (!self.basic_auth_users.is_empty()).then(|| BasicAuthCheck {
            users: Arc::new(self.basic_auth_users.clone()),
            verified: Arc::new(Mutex::new(HashSet::new())),
        })
    }
}

/// Most distinct credentials remembered as verified.
const VERIFIED_CACHE: usize = 1024;

#[derive(Clone)]
pub struct BasicAuthCheck {
    users: Arc<BTreeMap<String, String>>,
    /// SHA-256 of `user:password` pairs that matched their bcrypt hash.
    verified: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl BasicAuthCheck {
    /// Whether an `Authorization` header value carries a configured user and its password.
    pub fn allows(&self, header: Option<&str>) -> bool {
        use base64::Engine;
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else { return false };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(pair) = String::from_utf8(decoded) else { return false };
        let Some((user, password)) = pair.split_once(':') else { return false };
        let Some(hash) = self.users.get(user) else { return false };
        let key: [u8; 32] = Sha256::digest(pair.as_bytes()).into();
        if self.verified.lock().is_ok_and(|v| v.contains(&key)) {
            return true;
        }
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return false;
        }
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= VERIFIED_CACHE {
                v.clear();
            }
            v.insert(key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_checks_the_bcrypt_hash() {
        let hash = bcrypt::hash("s3cret", 4).unwrap_or_else(|e| panic!("{e}"));
        let cfg = WebConfig { basic_auth_users: [("prom".to_string(), hash)].into(), ..WebConfig::default() };
        let check = cfg.auth().unwrap_or_else(|| panic!("no check"));
        let header = |pair: &str| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        };
        assert!(check.allows(Some(&header("prom:s3cret"))));
        assert!(check.allows(Some(&header("prom:s3cret"))), "cached");
        assert!(!check.allows(Some(&header("prom:wrong"))));
        assert!(!check.allows(Some(&header("other:s3cret"))));
        assert!(!check.allows(Some("Bearer x")));
        assert!(!check.allows(None));
        assert!(!check.allows(Some("Basic !!!")));
        assert!(WebConfig::default().auth().is_none());
    }
}
