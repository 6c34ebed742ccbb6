//! API call errors, their classification (retry, gRPC code) and the one
//! place they become a [`MountError`].
//!
//! No variant carries a response body or a decoder message (serde's can
//! quote the input): a backend answer shows up as its status, size, the
//! service's `Code`/`RequestId` and a bounded, printable `Message`.

use std::error::Error as StdError;
use std::sync::Arc;

use secrets_store_provider_sdk::MountError;

use crate::credential::CredentialError;

/// Error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "ServiceUnavailableTemporary",
    "InternalFailure",
    "ServiceUnavailable",
];
/// Longest service `Message` kept.
const MAX_MESSAGE: usize = 256;
/// Longest service `Code`/`RequestId` kept.
const MAX_TOKEN: usize = 80;

/// An API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request could not be built.
    #[error("invalid request to {endpoint}")]
    Request {
        /// Where.
        endpoint: String,
        /// Why.
        #[source]
        source: Arc<http::Error>,
    },
    /// No answer in time.
    #[error("request to {endpoint} timed out after {seconds}s")]
    Timeout {
        /// Where.
        endpoint: String,
        /// The limit.
        seconds: u64,
    },
    /// Connecting or sending failed (DNS, TCP, TLS, HTTP).
    #[error("request to {endpoint} failed")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        #[source]
        source: Arc<hyper_util::client::legacy::Error>,
    },
    /// Reading the answer failed.
    #[error("reading the answer from {endpoint} failed")]
    Body {
        /// Where.
        endpoint: String,
        /// Why.
        #[source]
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// The answer is larger than the cap.
    #[error("the answer from {endpoint} exceeds {limit} bytes")]
    TooLarge {
        /// Where.
        endpoint: String,
        /// The cap.
        limit: usize,
    },
    /// The service answered with its error JSON.
    #[error("{code}: {message} (HTTP {status}, RequestId {request_id})")]
    Service {
        /// HTTP status.
        status: u16,
        /// Alibaba error code, e.g. `Forbidden.ResourceNotFound`.
        code: String,
        /// Service message (bounded, printable).
        message: String,
        /// Request id, for support tickets.
        request_id: String,
    },
    /// A failure status without an error JSON.
    #[error("HTTP {status} from {endpoint} ({len} bytes, not an error JSON)")]
    Status {
        /// Where.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Body size.
        len: usize,
    },
    /// A success status whose body is not the expected JSON.
    #[error(
        "unexpected answer from {endpoint} ({len} bytes): {category} at line {line} column {column}"
    )]
    Decode {
        /// Where.
        endpoint: String,
        /// Body size.
        len: usize,
        /// `syntax`, `data` (wrong shape) or `eof`.
        category: &'static str,
        /// Position of the problem.
        line: usize,
        /// Position of the problem.
        column: usize,
    },
    /// The ECS metadata service refused.
    #[error("ECS metadata: {what} unavailable (HTTP {status})")]
    Metadata {
        /// What was asked for.
        what: &'static str,
        /// HTTP status.
        status: u16,
    },
    /// Session credentials are malformed.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// Keeps printable characters of a service-provided string, bounded.
pub fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl ApiError {
    /// A service error from its JSON fields, bounded.
    pub fn service(status: u16, code: &str, message: &str, request_id: &str) -> Self {
        Self::Service {
            status,
            code: bounded(code, MAX_TOKEN),
            message: bounded(message, MAX_MESSAGE),
            request_id: bounded(request_id, MAX_TOKEN),
        }
    }

    /// A decode error from serde's classification, without its message.
    pub fn decode(endpoint: &str, len: usize, e: &serde_json::Error) -> Self {
        let category = match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected JSON",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        Self::Decode {
            endpoint: endpoint.to_string(),
            len,
            category,
            line: e.line(),
            column: e.column(),
        }
    }

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
            Self::Status { status, .. } => *status >= 500,
            Self::Timeout { .. } | Self::Connect { .. } | Self::Body { .. } => true,
            _ => false,
        }
    }

    /// The session was refused as such: forget it.
    pub fn is_rejected_credential(&self) -> bool {
        self.code().is_some_and(|c| {
            c.starts_with("InvalidSecurityToken") || c.starts_with("InvalidAccessKeyId")
        })
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

/// `error: cause: cause…`, for messages that reach the pod's events.
pub fn report(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A failure of one mount step, with its gRPC code.
pub trait Coded: StdError + Sized {
    /// The gRPC code.
    fn grpc_code(&self) -> tonic::Code;
}

/// Converts any coded error to a [`MountError`] with its whole chain.
pub fn mount_error(e: &impl Coded, context: Option<&str>) -> MountError {
    let message = match context {
        Some(c) => format!("{c}: {}", report(e)),
        None => report(e),
    };
    MountError::new(e.grpc_code(), message)
}

impl Coded for ApiError {
    fn grpc_code(&self) -> tonic::Code {
        ApiError::grpc_code(self)
    }
}

impl From<ApiError> for MountError {
    fn from(e: ApiError) -> Self {
        mount_error(&e, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = ApiError::service(400, "Rejected.Throttling", "slow down", "r1");
        assert!(e.is_transient());
        assert_eq!(e.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(
            e.to_string(),
            "Rejected.Throttling: slow down (HTTP 400, RequestId r1)"
        );
        let e = ApiError::service(404, "Forbidden.ResourceNotFound", "m", "r");
        assert!(!e.is_transient());
        assert_eq!(e.grpc_code(), tonic::Code::NotFound);
        let e = ApiError::service(400, "InvalidSecurityToken.Expired", "m", "r");
        assert!(e.is_rejected_credential());
        assert_eq!(e.grpc_code(), tonic::Code::PermissionDenied);
        let e = ApiError::Status {
            endpoint: "https://h".into(),
            status: 502,
            len: 6,
        };
        assert!(e.is_transient());
        let m: MountError = e.into();
        assert_eq!(
            (m.code(), m.message()),
            (
                tonic::Code::Unavailable,
                "HTTP 502 from https://h (6 bytes, not an error JSON)"
            )
        );
    }

    #[test]
    fn service_fields_are_bounded_and_printable() {
        let e = ApiError::service(400, "C\nX", &"m".repeat(10_000), "r\u{7}");
        let s = e.to_string();
        assert!(s.starts_with("CX: mmm"), "{s}");
        assert!(s.len() < 400, "{}", s.len());
        assert!(!s.contains('\u{7}'));
    }

    #[test]
    fn decode_errors_do_not_quote_the_body() {
        let err = serde_json::from_str::<u64>("\"canary-secret\"").expect_err("type");
        let e = ApiError::decode("https://h", 15, &err);
        assert_eq!(
            e.to_string(),
            "unexpected answer from https://h (15 bytes): unexpected JSON at line 1 column 15"
        );
    }
}
