//! TLS and authentication to receivers (Alertmanager, webhooks, syslog over TLS), configured as
//! Prometheus configures its own clients: `tls_config` {`ca_file`, `cert_file`, `key_file`,
//! `server_name`, `insecure_skip_verify`} and `basic_auth` {`username`, `password_file`}.
//! Secrets are read from files at startup and never logged (their `Debug` shows only where they
//! came from).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::rustls;

/// `tls_config:` of a sink.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// CA certificates (PEM) that sign the receiver's certificate; without it, the public web
    /// roots (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for receivers that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the receiver's certificate must carry (default: the host it is reached at).
    pub server_name: Option<String>,
    /// Accept any certificate (a test bench only; logged as a warning at startup).
    pub insecure_skip_verify: bool,
}

/// `basic_auth:` of a sink: the password comes from a file (or, discouraged, inline).
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl BasicAuth {
    /// (user, password), the password read from its file.
    pub fn credentials(&self, what: &str) -> anyhow::Result<(String, String)> {
        anyhow::ensure!(!self.username.is_empty(), "{what}.basic_auth.username is empty");
        let password = match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("{what}.basic_auth: give password or password_file, not both")
            }
            (Some(p), None) => p.clone(),
            (None, Some(file)) => super::read_secret(&format!("{what}.basic_auth.password_file"), file)?,
            (None, None) => String::new(),
        };
        Ok((self.username.clone(), password))
    }
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{}: cannot read certificates", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: no certificate in it", path.display());
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("{}: no PEM private key in it", path.display()))
}

/// A server certificate chain and key (for the HTTP endpoint).
pub fn server_identity(
    cert: &Path,
    key_file: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    Ok((certs(cert)?, key(key_file)?))
}

/// CA certificates as a root store.
pub fn roots(ca_file: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_file)? {
        roots.add(c).with_context(|| format!("{}: a certificate rustls refuses", ca_file.display()))?;
    }
    Ok(roots)
}

/// Accepts any server certificate (`insecure_skip_verify`).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl TlsClientConfig {
    /// The rustls client configuration: the CA file's roots (else the public web roots), the
    /// client certificate when given.
    pub fn client_config(&self, what: &str) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = if self.insecure_skip_verify {
            tracing::warn!(
                "{what}: tls_config.insecure_skip_verify is set: the receiver's certificate is not checked."
            );
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let roots = match &self.ca_file {
                Some(ca) => roots(ca).with_context(|| format!("{what}.tls_config.ca_file"))?,
                None => rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            };
            builder.with_root_certificates(roots)
        };
        let config = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(certs(c)?, key(k)?)
                .with_context(|| format!("{what}.tls_config: the client certificate and key do not match"))?,
            (None, None) => builder.with_no_client_auth(),
            _ => anyhow::bail!("{what}.tls_config: cert_file and key_file go together"),
        };
        Ok(config)
    }
}
