//! Mount failures: upstream's messages, with a gRPC code each (upstream
//! answers every failure as `Unknown`).
//!
//! Backend errors are worded as the Go SDK words them (`operation error
//! Secrets Manager: GetSecretValue, https response error StatusCode: 400,
//! RequestID: …, ResourceNotFoundException: …`), so pod events read the
//! same after a switch. Whether an error is *fatal* (stops the mount
//! instead of trying the failover region) follows upstream: a client fault
//! the service models for that operation.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use secrets_store_provider_sdk::MountError;
use tonic::Code;

/// A failed mount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request or the class is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The pod's credentials could not be found or obtained.
    #[error("{0}")]
    Credentials(String),
    /// The Kubernetes API failed us.
    #[error("{0}")]
    Kubernetes(String),
    /// A backend call failed.
    #[error("{message}")]
    Backend {
        /// The gRPC code for it.
        code: Code,
        /// The message.
        message: String,
        /// A client fault the service models (no failover).
        fatal: bool,
        /// Worth retrying (throttling, 5xx, transport).
        retryable: bool,
    },
    /// A fetched value does not fit (jmesPath, file names).
    #[error("{0}")]
    Content(String),
}

/// Error codes that mean "slow down" or "try again".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "InternalServiceError",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "IDPCommunicationError",
    "InvalidIdentityToken",
];

/// Client faults modeled by the operations we call (upstream's fatal set).
const MODELED_CLIENT_FAULTS: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidParameterException",
    "InvalidRequestException",
    "DecryptionFailure",
    "InvalidKeyId",
    "InvalidNextTokenException",
    "ExpiredTokenException",
    "IDPRejectedClaim",
    "InvalidIdentityToken",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "RegionDisabledException",
];

fn code_for(error_code: &str, status: u16) -> Code {
    match error_code {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            Code::NotFound
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidIdentityToken"
        | "IDPRejectedClaim"
        | "MissingAuthenticationToken" => Code::PermissionDenied,
        "InvalidParameterException" | "ValidationException" => Code::InvalidArgument,
        c if RETRYABLE_CODES.contains(&c) => Code::Unavailable,
        _ if status >= 500 => Code::Unavailable,
        _ => Code::FailedPrecondition,
    }
}

/// A service message made safe for events and logs: control characters
/// dropped, at most 300 characters.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

impl Error {
    /// An SDK error of `service` (`Secrets Manager`, `SSM`, `STS`) calling
    /// `op`, worded as the Go SDK does.
    pub fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
        service: &str,
        op: &str,
        err: &SdkError<E>,
    ) -> Self {
        match err {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or("UnknownError");
                let request_id = se
                    .raw()
                    .headers()
                    .get("x-amzn-requestid")
                    .or_else(|| se.raw().headers().get("x-amz-request-id"))
                    .unwrap_or_default();
                let message = format!(
                    "operation error {service}: {op}, https response error StatusCode: {status}, RequestID: {}, {}: {}",
                    clean(request_id),
                    clean(code),
                    clean(se.err().message().unwrap_or_default()),
                );
                Self::Backend {
                    code: code_for(code, status),
                    message,
                    fatal: MODELED_CLIENT_FAULTS.contains(&code),
                    retryable: RETRYABLE_CODES.contains(&code) || status >= 500 || status == 429,
                }
            }
            other => Self::Backend {
                code: Code::Unavailable,
                message: format!(
                    "operation error {service}: {op}, {}",
                    clean(&error_chain(other))
                ),
                fatal: false,
                retryable: true,
            },
        }
    }

    /// Prefixes a backend message with the region (`<region>: …`).
    pub fn in_region(self, region: &str) -> Self {
        self.map_message(|m| format!("{region}: {m}"))
    }

    /// Rewrites the message, keeping the kind.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Backend {
                code,
                message,
                fatal,
                retryable,
            } => Self::Backend {
                code,
                message: f(message),
                fatal,
                retryable,
            },
            Self::Invalid(m) => Self::Invalid(f(m)),
            Self::Credentials(m) => Self::Credentials(f(m)),
            Self::Kubernetes(m) => Self::Kubernetes(f(m)),
            Self::Content(m) => Self::Content(f(m)),
        }
    }

    /// Worth retrying after a pause.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                retryable: true,
                ..
            }
        )
    }

    /// Stops the mount instead of trying the failover region.
    pub fn fatal(&self) -> bool {
        matches!(self, Self::Backend { fatal: true, .. })
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid(_) | Self::Content(_) => Code::InvalidArgument,
            Self::Credentials(_) => Code::PermissionDenied,
            Self::Kubernetes(_) => Code::Unavailable,
            Self::Backend { code, .. } => *code,
        }
    }
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<Error> for MountError {
    fn from(e: Error) -> Self {
        MountError::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_service_error() {
        assert_eq!(code_for("ResourceNotFoundException", 400), Code::NotFound);
        assert_eq!(
            code_for("UnrecognizedClientException", 400),
            Code::PermissionDenied
        );
        assert_eq!(code_for("ThrottlingException", 400), Code::Unavailable);
        assert_eq!(code_for("Whatever", 503), Code::Unavailable);
        assert_eq!(code_for("Whatever", 400), Code::FailedPrecondition);
        assert_eq!(clean("a\nb\u{1b}c"), "abc");
    }
}
