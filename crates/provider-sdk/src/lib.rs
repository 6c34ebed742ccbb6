//! Everything Secrets Store CSI providers share, so that a provider crate
//! holds only its backend code.
//!
//! - [`server`]: the `CSIDriverProvider` gRPC server on
//!   `<providers-dir>/<name>.sock` (stale socket replaced, `0600`, removed at
//!   exit, graceful stop) with gRPC health and an HTTP `/healthz`.
//! - [`request`]: the JSON fields of a `MountRequest` decoded into types;
//!   secrets and tokens are redacted in `Debug`.
//! - [`objects`]: a strict parser for the `objects` YAML parameter whose
//!   errors name the object at fault.
//! - [`path`]: path translation and file-path validation.
//! - [`parameters`]: the strict parameter check each provider exposes for
//!   `secrets-store validate`.
//! - [`jmes`]: jmesPath extraction of string values from JSON secrets.
//! - [`response`]: `MountResponse` building with object versions.
//! - [`ops`]: credential caching, coalescing of identical fetches, rate
//!   limiting and jittered retries.
//! - [`shutdown`]: the SIGTERM/SIGINT future to pass to [`Server::serve`].
//! - [`LogFlags`]: the logging flags (klog's, `-v`, `--log-format-json`) to
//!   flatten into a provider's clap flags, and the one logging set-up.
//!
//! Backends, authentication and parameter meaning are left to providers,
//! which implement [`Provider`].

use std::future::Future;

pub mod jmes;
pub mod objects;
pub mod ops;
pub mod parameters;
pub mod path;
pub mod request;
pub mod response;
pub mod server;

pub use request::{MountRequest, Redacted};
pub use response::Mounted;
pub use secrets_store_logging::LogFlags;
pub use secrets_store_signal::shutdown;
pub use server::{Server, ServerConfig};

/// A secrets backend served over the provider API.
pub trait Provider: Send + Sync + 'static {
    /// Fetches the objects a mount asks for. The driver writes the files.
    fn mount(
        &self,
        request: MountRequest,
    ) -> impl Future<Output = Result<Mounted, MountError>> + Send;
}

/// A failed mount: the gRPC code and a message for the pod's events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MountError {
    code: tonic::Code,
    message: String,
}

impl MountError {
    /// A failure with an explicit gRPC code.
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The request or its SecretProviderClass is wrong (`InvalidArgument`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(tonic::Code::InvalidArgument, message)
    }

    /// The gRPC code.
    pub fn code(&self) -> tonic::Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<MountError> for tonic::Status {
    fn from(e: MountError) -> Self {
        tonic::Status::new(e.code, e.message)
    }
}
