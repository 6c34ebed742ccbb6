//! The HTTP transport for Alibaba Cloud APIs: TLS roots (the system's, or
//! Alibaba's private KMS CAs for dedicated instances), timeouts, a cap on
//! answer sizes, and V3-signed RPC calls decoded from JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::sign::{self, Canonical};

/// Calls that take longer fail.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers larger than this are refused unread (secrets are at most 64 KiB).
pub const MAX_BODY: usize = 1 << 20;

/// Alibaba's private KMS CA certificates, trusted only for dedicated KMS
/// instance endpoints (`*.cryptoservice.kms.aliyuncs.com`).
pub const DEDICATED_KMS_CA_PEM: &str = include_str!("dedicated_kms_ca.pem");

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client for Alibaba Cloud APIs.
#[derive(Clone)]
pub struct HttpClient {
    public: HttpsClient,
    dedicated: HttpsClient,
    user_agent: String,
}

fn tls_client(roots: rustls::RootCertStore) -> HttpsClient {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"))
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The system roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured) plus `extra`.
fn public_roots(extra: &[CertificateDer<'static>]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if let Some(e) = native.errors.first() {
        tracing::warn!(error = %e, "some system root certificates could not be loaded");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    let (extra_added, _) = roots.add_parsable_certificates(extra.iter().cloned());
    if added + extra_added == 0 {
        tracing::warn!("no usable root certificates; HTTPS endpoints will fail");
    }
    roots
}

/// The bundled private KMS CAs.
pub fn dedicated_kms_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(DEDICATED_KMS_CA_PEM.as_bytes()).flatten();
    roots.add_parsable_certificates(certs);
    roots
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
}

impl HttpClient {
    /// A client trusting the system's root certificates and `extra_roots`
    /// (and, for dedicated KMS instances, only Alibaba's private KMS CAs).
    pub fn new(user_agent: &str, extra_roots: &[CertificateDer<'static>]) -> Self {
        Self {
            public: tls_client(public_roots(extra_roots)),
            dedicated: tls_client(dedicated_kms_roots()),
            user_agent: user_agent.to_string(),
        }
    }

    /// Sends a request to `endpoint`; returns status and body (at most
    /// [`MAX_BODY`] bytes).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        req: http::request::Builder,
        body: Bytes,
    ) -> Result<(u16, Bytes), ApiError> {
        let name = endpoint.to_string();
        let req = req
            .header("user-agent", self.user_agent.as_str())
            .body(Full::new(body))
            .map_err(|e| ApiError::Request {
                endpoint: name.clone(),
                source: Arc::new(e),
            })?;
        let client = if endpoint.is_dedicated_kms() {
            &self.dedicated
        } else {
            &self.public
        };
        let timeout = || ApiError::Timeout {
            endpoint: name.clone(),
            seconds: REQUEST_TIMEOUT.as_secs(),
        };
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, client.request(req))
            .await
            .map_err(|_| timeout())?
            .map_err(|e| ApiError::Connect {
                endpoint: name.clone(),
                source: Arc::new(e),
            })?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY);
        let body = tokio::time::timeout(REQUEST_TIMEOUT, body.collect())
            .await
            .map_err(|_| timeout())?
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::TooLarge {
                        endpoint: name.clone(),
                        limit: MAX_BODY,
                    }
                } else {
                    ApiError::Body {
                        endpoint: name.clone(),
                        source: Arc::from(e),
                    }
                }
            })?
            .to_bytes();
        Ok((status, body))
    }

    /// Calls an RPC-style API (`Action`, `Version`), signed with
    /// `ACS3-HMAC-SHA256`; parameters go in the query.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        action: &str,
        version: &str,
        params: &BTreeMap<String, String>,
        credential: &Credential,
    ) -> Result<T, ApiError> {
        let query: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), endpoint.authority()),
            ("x-acs-action".into(), action.into()),
            ("x-acs-version".into(), version.into()),
            ("x-acs-date".into(), timestamp(SystemTime::now())),
            ("x-acs-signature-nonce".into(), nonce()),
            ("x-acs-content-sha256".into(), sign::EMPTY_SHA256.into()),
            ("accept".into(), "application/json".into()),
        ];
        if let Some(token) = &credential.security_token {
            headers.push((
                "x-acs-accesskey-id".into(),
                credential.access_key_id.clone(),
            ));
            headers.push(("x-acs-security-token".into(), token.expose().clone()));
        }
        let canonical = Canonical {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: sign::EMPTY_SHA256,
        };
        let authorization = canonical.authorization(
            &credential.access_key_id,
            credential.access_key_secret.expose(),
        );
        let mut req = http::Request::post(endpoint.url(&format!("/?{}", sign::query(&query))));
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.header("authorization", authorization);
        let (status, body) = self.send(endpoint, req, Bytes::new()).await?;
        decode(endpoint, status, &body)
    }
}

/// Decodes a JSON answer, or the service's error JSON for non-2xx. Neither
/// the body nor serde's message (which may quote it) reaches the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    endpoint: &Endpoint,
    status: u16,
    body: &[u8],
) -> Result<T, ApiError> {
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) if !e.code.is_empty() => {
                ApiError::service(status, &e.code, &e.message, &e.request_id)
            }
            _ => ApiError::Status {
                endpoint: endpoint.to_string(),
                status,
                len: body.len(),
            },
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::decode(&endpoint.to_string(), body.len(), &e))
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

/// A unique request nonce.
pub fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:016x}{:016x}", fastrand::u64(..), nanos as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint::parse("kms.cn-x.aliyuncs.com").expect("endpoint")
    }

    #[test]
    fn error_answers_are_bounded_and_never_echoed() {
        let e = decode::<serde_json::Value>(
            &ep(),
            400,
            br#"{"Code":"Rejected.Throttling","Message":"slow down","RequestId":"r1"}"#,
        )
        .expect_err("err");
        assert_eq!(
            e.to_string(),
            "Rejected.Throttling: slow down (HTTP 400, RequestId r1)"
        );
        let e = decode::<serde_json::Value>(&ep(), 502, b"<html>canary</html>").expect_err("err");
        assert_eq!(
            e.to_string(),
            "HTTP 502 from https://kms.cn-x.aliyuncs.com (19 bytes, not an error JSON)"
        );
        let e = decode::<serde_json::Value>(&ep(), 200, b"canary").expect_err("err");
        assert!(!e.to_string().contains("canary"), "{e}");
    }

    #[test]
    fn timestamps_nonces_and_the_ca_bundle() {
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1698310861)),
            "2023-10-26T09:01:01Z"
        );
        assert_ne!(nonce(), nonce());
        let pems = CertificateDer::pem_slice_iter(DEDICATED_KMS_CA_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("pem");
        assert_eq!(pems.len(), 27, "26 regions and pre-env");
        assert!(dedicated_kms_roots().len() >= 26);
    }
}
