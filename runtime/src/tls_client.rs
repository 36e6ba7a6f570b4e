//! The TLS client side the components share (hookd's `https://` webhooks, the relayer's
//! `rtmps://` destinations): rustls on ring, trusting the system's root certificates
//! (rustls-native-certs) plus, with `--ca-file`, the certificates of a PEM file (a private
//! CA, or a self-signed server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why the trust roots could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    /// `--ca-file` could not be read or holds no certificate.
    #[error("--ca-file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Connects TLS sessions to servers, verifying them against the roots it was built with.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    /// How many roots it trusts (for the start-up log line).
    roots: usize,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("roots", &self.roots)
            .finish()
    }
}

impl TlsClient {
    /// A client trusting the system's roots and those in `ca_file`. System roots that
    /// cannot be loaded are logged (a `--ca-file` may be all that is needed).
    pub fn new(ca_file: Option<&Path>) -> Result<TlsClient, TlsClientError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        if let Some(e) = native.errors.first() {
            tracing::debug!(error = %e, "some system root certificates could not be loaded");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 && ca_file.is_none() {
            tracing::warn!(
                "no system root certificates found: TLS servers will not verify (give --ca-file)"
            );
        }
        if let Some(path) = ca_file {
            let bad = |why: String| TlsClientError::CaFile {
                path: path.to_owned(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            roots: roots.len(),
        })
    }

    /// Trusted root certificates.
    pub fn roots(&self) -> usize {
        self.roots
    }

    /// The TLS handshake over `tcp` with the server named `host` (a DNS name or an IP
    /// address, as in the URL), verifying its certificate for that name.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("server name {host:?}: {e}"),
            )
        })?;
        self.connector.connect(name, tcp).await
    }
}
