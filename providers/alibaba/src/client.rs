//! The HTTP side of Alibaba Cloud APIs: endpoints, credentials, signed
//! RPC-style calls and their error shape.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::cache::Expiring;
use serde::Deserialize;

use crate::sign::{self, Canonical};

/// Calls that take longer fail.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "ServiceUnavailableTemporary",
    "InternalFailure",
    "ServiceUnavailable",
];

/// A host (HTTPS) or a full `http(s)://host[:port]` base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// Host and optional port; also the signed `host` header.
    pub authority: String,
}

impl Endpoint {
    /// Parses a host name or URL; a bare host means HTTPS.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        let (scheme, authority) = match s.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => {
                (scheme, rest.strip_suffix('/').unwrap_or(rest))
            }
            Some(_) => return Err(ApiError::Endpoint(s.to_string())),
            None => ("https", s),
        };
        if authority.is_empty()
            || authority.contains('/')
            || authority.contains(char::is_whitespace)
        {
            return Err(ApiError::Endpoint(s.to_string()));
        }
        Ok(Self {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
        })
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{}", self.scheme, self.authority, path_and_query)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// An access key, possibly an STS session.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Access key id (not secret; used as identity in logs and keys).
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: Redacted<String>,
    /// STS security token, for temporary keys.
    pub security_token: Option<Redacted<String>>,
    /// Expiry of temporary keys.
    pub expiration: Option<SystemTime>,
}

impl Expiring for Credential {
    fn expires_at(&self) -> Option<SystemTime> {
        self.expiration
    }
}

/// An STS-style `Credentials` object (STS and ECS metadata answers).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: Redacted<String>,
    /// Security token.
    pub security_token: Redacted<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiration: String,
}

impl SessionCredentials {
    /// Converts to a [`Credential`], parsing the expiry.
    pub fn into_credential(self) -> Result<Credential, ApiError> {
        let exp = time::OffsetDateTime::parse(
            &self.expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| ApiError::Decode(format!("bad Expiration {:?}", self.expiration)))?;
        Ok(Credential {
            access_key_id: self.access_key_id,
            access_key_secret: self.access_key_secret,
            security_token: Some(self.security_token),
            expiration: Some(SystemTime::from(exp)),
        })
    }
}

/// API call errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The endpoint is not a host or http(s) URL.
    #[error("invalid endpoint {0:?}")]
    Endpoint(String),
    /// The request could not be sent or the answer read.
    #[error("request to {endpoint} failed: {message}")]
    Transport {
        /// Where.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// The service answered with an error.
    #[error("{code}: {message} (HTTP {status}, RequestId {request_id})")]
    Service {
        /// HTTP status.
        status: u16,
        /// Alibaba error code, e.g. `Forbidden.ResourceNotFound`.
        code: String,
        /// Service message.
        message: String,
        /// Request id, for support tickets.
        request_id: String,
    },
    /// The answer is not the expected JSON.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ApiError {
    /// The service error code, if the service answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Throttling or temporary unavailability: worth a retry.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Service { code, status, .. } => {
                code.contains("Throttling")
                    || TRANSIENT_CODES.contains(&code.as_str())
                    || *status == 503
            }
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// The gRPC code a mount failing with this error gets.
    pub fn grpc_code(&self) -> tonic::Code {
        match self.code() {
            Some(c)
                if c.starts_with("Forbidden.ResourceNotFound")
                    || c.starts_with("EntityNotExist")
                    || c.starts_with("ParameterNotFound") =>
            {
                tonic::Code::NotFound
            }
            Some(c)
                if c.starts_with("Forbidden")
                    || c.starts_with("InvalidAccessKeyId")
                    || c.starts_with("SignatureDoesNotMatch")
                    || c.starts_with("InvalidSecurityToken")
                    || c.starts_with("AuthenticationFail")
                    || c.starts_with("NoPermission") =>
            {
                tonic::Code::PermissionDenied
            }
            _ if self.is_transient() => tonic::Code::Unavailable,
            Some(_) => tonic::Code::FailedPrecondition,
            None => tonic::Code::Internal,
        }
    }
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

/// An HTTP client for Alibaba Cloud APIs.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    user_agent: String,
}

impl HttpClient {
    /// A client trusting the system's root certificates.
    pub fn new(user_agent: &str) -> Self {
        let provider = rustls::crypto::ring::default_provider();
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_provider_and_native_roots(provider) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no usable system root certificates; HTTPS endpoints will fail");
                let config = rustls::ClientConfig::builder_with_provider(
                    rustls::crypto::ring::default_provider().into(),
                )
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
                match config {
                    Ok(c) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(c),
                    Err(e) => unreachable!("ring supports the default protocol versions: {e}"),
                }
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            user_agent: user_agent.to_string(),
        }
    }

    /// Sends a request; returns status and body.
    pub async fn send(&self, req: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), ApiError> {
        let endpoint = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let transport = |message: String| ApiError::Transport {
            endpoint: endpoint.clone(),
            message,
        };
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.inner.request(req))
            .await
            .map_err(|_| transport(format!("timed out after {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| transport("timed out reading the answer".into()))?
            .map_err(|e| transport(e.to_string()))?
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
            ("host".into(), endpoint.authority.clone()),
            ("x-acs-action".into(), action.into()),
            ("x-acs-version".into(), version.into()),
            ("x-acs-date".into(), timestamp(SystemTime::now())),
            ("x-acs-signature-nonce".into(), nonce()),
            ("x-acs-content-sha256".into(), sign::EMPTY_SHA256.into()),
            ("accept".into(), "application/json".into()),
            ("user-agent".into(), self.user_agent.clone()),
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
        let qs = query
            .iter()
            .map(|(k, v)| format!("{}={}", sign::encode(k), sign::encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http::Request::post(endpoint.url(&format!("/?{qs}")));
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let req = req
            .header("authorization", authorization)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ApiError::Endpoint(format!("{endpoint}: {e}")))?;
        let (status, body) = self.send(req).await?;
        decode(status, &body)
    }
}

/// Decodes a JSON answer, or the service's error JSON for non-2xx.
pub fn decode<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    if !(200..300).contains(&status) {
        let e: ErrorBody = serde_json::from_slice(body).unwrap_or(ErrorBody {
            code: format!("HTTP{status}"),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            request_id: String::new(),
        });
        return Err(ApiError::Service {
            status,
            code: e.code,
            message: e.message,
            request_id: e.request_id,
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Decode(e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("kms-vpc.cn-hangzhou.aliyuncs.com")
                .expect("host")
                .to_string(),
            "https://kms-vpc.cn-hangzhou.aliyuncs.com"
        );
        let e = Endpoint::parse("http://127.0.0.1:8080/").expect("url");
        assert_eq!(
            (e.scheme.as_str(), e.authority.as_str()),
            ("http", "127.0.0.1:8080")
        );
        for bad in ["", "ftp://x", "http://", "a/b", "a b"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_decode_and_classify() {
        let e = decode::<serde_json::Value>(
            400,
            br#"{"Code":"Rejected.Throttling","Message":"slow down","RequestId":"r1"}"#,
        )
        .expect_err("err");
        assert!(e.is_transient());
        assert_eq!(e.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(
            e.to_string(),
            "Rejected.Throttling: slow down (HTTP 400, RequestId r1)"
        );
        let e = decode::<serde_json::Value>(
            404,
            br#"{"Code":"Forbidden.ResourceNotFound","Message":"m","RequestId":"r"}"#,
        )
        .expect_err("err");
        assert!(!e.is_transient());
        assert_eq!(e.grpc_code(), tonic::Code::NotFound);
        let e = decode::<serde_json::Value>(502, b"<html>").expect_err("err");
        assert_eq!(e.code(), Some("HTTP502"));
    }

    #[test]
    fn timestamps_and_nonces() {
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1698310861)),
            "2023-10-26T09:01:01Z"
        );
        assert_ne!(nonce(), nonce());
    }
}
