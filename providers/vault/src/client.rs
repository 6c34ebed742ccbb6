//! Vault's HTTP API, as the Vault Go API client speaks it: the address
//! joined with a `/v1/` path, `X-Vault-Token`, `X-Vault-Namespace` and
//! `X-Vault-Request` headers, a JSON body, retries on connection errors,
//! 412, 429 and 5xx (not 501), a per-request timeout and a body cap.
//!
//! Errors name the method and URL path and Vault's own `errors` (bounded,
//! on one line); never a token, a request body or an answer body.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::backoff::Backoff;

use crate::tls::HttpClient;

/// Answers larger than this are refused.
pub const MAX_BODY: usize = 8 << 20;
/// Longest Vault error text kept.
const MAX_ERRORS: usize = 512;
/// Characters escaped in a request path (Go's `url.URL` escapes these).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// A Vault call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// The address or path does not make a URL.
    #[error("invalid request URL {0:?}")]
    Url(String),
    /// Connecting or sending failed.
    #[error("{method} {url}: {message}")]
    Connect {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// The transport error chain.
        message: String,
        /// The TLS handshake refused the server (not worth retrying).
        tls: bool,
    },
    /// No answer in time.
    #[error("{method} {url}: timed out after {seconds}s")]
    Timeout {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// Vault answered with an error status.
    #[error("{method} {url}: Code: {status}. Errors: {errors}")]
    Status {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// HTTP status.
        status: u16,
        /// Vault's `errors`, joined.
        errors: String,
    },
    /// The answer was too large or cut off.
    #[error("{method} {url}: reading the answer failed ({message})")]
    Body {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// What happened.
        message: String,
    },
}

impl VaultError {
    /// The HTTP status Vault answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Self::Connect { tls, .. } => !tls,
            Self::Timeout { .. } => true,
            Self::Status { status, .. } => {
                matches!(status, 412 | 429) || (*status >= 500 && *status != 501)
            }
            _ => false,
        }
    }
}

/// One call: method, path (with optional `?query`), token, JSON body.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path below the address; `/v1/` is added when missing.
    pub path: &'a str,
    /// `X-Vault-Token`.
    pub token: Option<&'a Redacted<String>>,
    /// JSON body.
    pub body: Option<Redacted<Vec<u8>>>,
}

/// A Vault server at one address, namespace and TLS set-up.
#[derive(Clone)]
pub struct VaultClient {
    http: HttpClient,
    address: String,
    namespace: Option<String>,
    timeout: Duration,
    backoff: Backoff,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// `path` starting with `/v1/`, as the upstream provider normalises it.
pub fn ensure_v1_prefix(path: &str) -> String {
    if path.starts_with("/v1/") {
        path.to_string()
    } else if path.starts_with("v1/") {
        format!("/{path}")
    } else if path.starts_with('/') {
        format!("/v1{path}")
    } else {
        format!("/v1/{path}")
    }
}

/// Go's `path.Clean` of an absolute path: `.` and `..` resolved, repeated
/// and trailing slashes dropped.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

impl VaultClient {
    /// A client for `address` (scheme, host, port and an optional path
    /// prefix).
    pub fn new(
        http: HttpClient,
        address: &str,
        namespace: Option<String>,
        timeout: Duration,
        retries: u32,
    ) -> Self {
        Self {
            http,
            address: address.trim_end_matches('/').to_string(),
            namespace,
            timeout,
            backoff: Backoff {
                attempts: retries + 1,
                // backon waits in [c/2, c): 1 s to 1.5 s, as Vault's Go API.
                initial: Duration::from_secs(2),
                max: Duration::from_secs(3),
            },
        }
    }

    /// The address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn uri(&self, path: &str) -> Result<(Uri, String), VaultError> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let (base, prefix) = match self.address.find("://") {
            Some(i) => match self.address[i + 3..].find('/') {
                Some(j) => self.address.split_at(i + 3 + j),
                None => (self.address.as_str(), ""),
            },
            None => (self.address.as_str(), ""),
        };
        let joined = clean(&format!("{prefix}/{}", ensure_v1_prefix(path)));
        let escaped = utf8_percent_encode(&joined, PATH).to_string();
        let shown = format!("{base}{escaped}");
        let full = match query {
            Some(q) if !q.is_empty() => format!("{shown}?{q}"),
            _ => shown.clone(),
        };
        let uri = full
            .parse::<Uri>()
            .map_err(|_| VaultError::Url(shown.clone()))?;
        Ok((uri, shown))
    }

    /// Sends `call`, retrying transient failures, and returns the body of
    /// a 2xx answer.
    pub async fn send(&self, call: &Call<'_>) -> Result<Bytes, VaultError> {
        let (uri, shown) = self.uri(call.path)?;
        self.backoff
            .retry(VaultError::retryable, || self.send_once(call, &uri, &shown))
            .await
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        uri: &Uri,
        shown: &str,
    ) -> Result<Bytes, VaultError> {
        let method = call.method.to_string();
        let url = shown.to_string();
        let mut req = Request::builder()
            .method(
                Method::from_bytes(call.method.as_bytes())
                    .map_err(|_| VaultError::Url(url.clone()))?,
            )
            .uri(uri.clone())
            .header("X-Vault-Request", "true");
        if let Some(t) = call.token {
            req = req.header("X-Vault-Token", t.expose().as_str());
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.as_str());
        }
        let body = call
            .body
            .as_ref()
            .map(|b| b.expose().clone())
            .unwrap_or_default();
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| VaultError::Url(url.clone()))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| VaultError::Connect {
                    method: method.clone(),
                    url: url.clone(),
                    message: chain(&e),
                    tls: tls_refused(&e),
                })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| VaultError::Body {
                    method: method.clone(),
                    url: url.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, VaultError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| VaultError::Timeout {
                method: method.clone(),
                url: url.clone(),
                seconds: self.timeout.as_secs(),
            })??;
        if status.is_success() {
            return Ok(body);
        }
        Err(VaultError::Status {
            method,
            url,
            status: status.as_u16(),
            errors: vault_errors(status, &body),
        })
    }
}

/// Whether rustls refused the handshake somewhere in `e`'s causes (an
/// untrusted or misnamed certificate), as Go's retrying client declines to
/// retry certificate errors.
fn tls_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        let io_inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if io_inner || c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The transport error and its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Vault's `{"errors": [...]}` joined, bounded and on one line; the status
/// text when the body has none.
fn vault_errors(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let joined = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.join("; "))
        .unwrap_or_default();
    let text = if joined.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        joined
    };
    one_line(&text, MAX_ERRORS)
}

/// At most `max` characters of `text`, control characters escaped so the
/// text stays on one line.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Shared handle for concurrent mounts.
pub type SharedClient = Arc<VaultClient>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_like_upstream() {
        for (input, want) in [
            ("/v1/secret/data/a", "/v1/secret/data/a"),
            ("v1/secret/a", "/v1/secret/a"),
            ("/secret/a", "/v1/secret/a"),
            ("secret/a", "/v1/secret/a"),
        ] {
            assert_eq!(ensure_v1_prefix(input), want);
        }
        assert_eq!(clean("/v1/secret/../sys//x/./y/"), "/v1/sys/x/y");
    }

    #[test]
    fn urls_keep_the_address_prefix_and_query() {
        let http = crate::tls::client(&Default::default()).expect("client");
        let c = VaultClient::new(
            http,
            "https://vault:8200/prefix/",
            None,
            Duration::from_secs(1),
            0,
        );
        let (uri, shown) = c.uri("pki/issue/r?ttl=1h&x=a%20b").expect("uri");
        assert_eq!(shown, "https://vault:8200/prefix/v1/pki/issue/r");
        assert_eq!(
            uri.to_string(),
            "https://vault:8200/prefix/v1/pki/issue/r?ttl=1h&x=a%20b"
        );
        let (_, shown) = c.uri("secret/a b").expect("escaped");
        assert_eq!(shown, "https://vault:8200/prefix/v1/secret/a%20b");
    }

    #[test]
    fn errors_are_one_bounded_line() {
        let body = br#"{"errors":["permission denied","line\nbreak"]}"#;
        assert_eq!(
            vault_errors(StatusCode::FORBIDDEN, body),
            "permission denied; line\\nbreak"
        );
        assert_eq!(vault_errors(StatusCode::NOT_FOUND, b"<html>"), "Not Found");
        let status = |status| VaultError::Status {
            method: "GET".into(),
            url: "u".into(),
            status,
            errors: String::new(),
        };
        for (code, retry) in [
            (503, true),
            (500, true),
            (429, true),
            (412, true),
            (501, false),
            (403, false),
            (404, false),
        ] {
            assert_eq!(status(code).retryable(), retry, "{code}");
        }
    }
}
