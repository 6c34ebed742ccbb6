//! The HTTP(S) client for one set of [`TlsSettings`]: hyper's client over
//! rustls, with the roots, server name, client certificate and
//! verification Vault's Go API would use for the same settings.
//!
//! Roots: a CA file replaces the system roots (and wins over a CA
//! directory); a CA directory loads every PEM file in it. A server name
//! replaces the URL's host for SNI and verification. Skipping verification
//! still checks the handshake signatures.

use std::sync::{Arc, LazyLock};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_rustls::FixedServerNameResolver;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::params::TlsSettings;

/// The HTTP client type.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// TLS set-up errors. Paths come from the SPC or flags; file contents are
/// never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// Only one of client certificate and key is set.
    #[error("both client cert and client key must be provided")]
    ClientPair,
    /// A file or directory could not be read.
    #[error("reading {path}: {message}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path}: no {what} found")]
    Pem {
        /// The path.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// The server name is not a DNS name or an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the client certificate and key.
    #[error("client certificate: {0}")]
    ClientCert(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

static SYSTEM_ROOTS: LazyLock<Vec<CertificateDer<'static>>> = LazyLock::new(|| {
    let native = rustls_native_certs::load_native_certs();
    if let Some(e) = native.errors.first() {
        tracing::warn!(error = %e, "some system root certificates could not be loaded");
    }
    native.certs
});

fn read(path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.into(),
        message: e.kind().to_string(),
    })
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    Ok(CertificateDer::pem_slice_iter(&pem).flatten().collect())
}

fn roots(tls: &TlsSettings) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let found = if let Some(file) = &tls.ca_cert {
        let found = certs(file)?;
        if found.is_empty() {
            return Err(TlsError::Pem {
                path: file.clone(),
                what: "CA certificate",
            });
        }
        found
    } else if let Some(dir) = &tls.ca_directory {
        let entries = std::fs::read_dir(dir).map_err(|e| TlsError::Read {
            path: dir.clone(),
            message: e.kind().to_string(),
        })?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                found.extend(certs(&entry.path().to_string_lossy())?);
            }
        }
        found
    } else {
        SYSTEM_ROOTS.clone()
    };
    store.add_parsable_certificates(found);
    Ok(store)
}

fn client_auth(
    tls: &TlsSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let chain = certs(cert)?;
            if chain.is_empty() {
                return Err(TlsError::Pem {
                    path: cert.clone(),
                    what: "certificate",
                });
            }
            let key_pem = read(key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
                path: key.clone(),
                what: "private key",
            })?;
            Ok(Some((chain, key_der)))
        }
        _ => Err(TlsError::ClientPair),
    }
}

/// Builds a client for `tls`; plain `http://` addresses work too.
pub fn client(tls: &TlsSettings) -> Result<HttpClient, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"));
    let builder = if tls.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    let config = match client_auth(tls)? {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::ClientCert(e.to_string()))?,
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config);
    let connector = match &tls.server_name {
        None => connector.https_or_http().enable_http1().build(),
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|_| TlsError::ServerName(name.clone()))?;
            connector
                .https_or_http()
                .with_server_name_resolver(FixedServerNameResolver::new(name))
                .enable_http1()
                .build()
        }
    };
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// `vaultSkipTLSVerify`: any certificate is accepted; handshake signatures
/// are still verified.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_errors() {
        let half = TlsSettings {
            client_cert: Some("/nonexistent".into()),
            ..TlsSettings::default()
        };
        assert_eq!(client(&half).err(), Some(TlsError::ClientPair));
        let missing = TlsSettings {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..TlsSettings::default()
        };
        assert_eq!(
            client(&missing).err().map(|e| e.to_string()),
            Some("reading /nonexistent/ca.pem: entity not found".into())
        );
        let bad_name = TlsSettings {
            server_name: Some("not a name".into()),
            skip_verify: true,
            ..TlsSettings::default()
        };
        assert_eq!(
            client(&bad_name).err(),
            Some(TlsError::ServerName("not a name".into()))
        );
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").expect("write");
        let no_pem = TlsSettings {
            ca_cert: Some(empty.to_string_lossy().into()),
            ..TlsSettings::default()
        };
        assert!(matches!(client(&no_pem), Err(TlsError::Pem { .. })));
        assert!(client(&TlsSettings::default()).is_ok());
    }
}
