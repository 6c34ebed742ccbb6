//! Why a mount failed, with upstream's wording (`error making mount
//! request: couldn't read secret "<object>": …`), and its gRPC code
//! (upstream answers everything as `Unknown`; the driver reports ours in
//! events and metrics).

use secrets_store_provider_sdk::MountError;
use secrets_store_provider_sdk::request::RequestError;
use secrets_store_provider_sdk::response::ResponseError;
use tonic::Code;

use crate::auth::AuthError;
use crate::client::VaultError;
use crate::params::ParamError;
use crate::response::ContentError;
use crate::tls::TlsError;

/// Reading one object failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// Logging in failed.
    #[error(transparent)]
    Auth(AuthError),
    /// Vault answered with an error or could not be reached.
    #[error("error requesting secret: {0}")]
    Vault(VaultError),
    /// A 403, then logging in again failed.
    #[error("failed to fetch secret: {first}; and failed to reauthenticate: {auth}")]
    Reauth {
        /// The 403.
        first: VaultError,
        /// The failed login.
        auth: AuthError,
    },
    /// The answer is not a Vault response.
    #[error(transparent)]
    Answer(ContentError),
}

/// A failed mount.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MountFailure {
    /// The request's JSON fields are malformed.
    #[error("{0}")]
    Request(String),
    /// The SPC parameters are wrong (upstream: not wrapped).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The TLS settings cannot be used.
    #[error("error making mount request: {0}")]
    Tls(#[from] TlsError),
    /// An object could not be read.
    #[error("error making mount request: couldn't read secret {object:?}: {source}")]
    Read {
        /// `objectName`.
        object: String,
        /// Why.
        source: ReadError,
    },
    /// Vault answered with no data.
    #[error("error making mount request: empty response from {path:?}, warnings: [{}]", .warnings.join(" "))]
    Empty {
        /// `secretPath`.
        path: String,
        /// Vault's warnings.
        warnings: Vec<String>,
    },
    /// The key or encoding does not fit the data.
    #[error("error making mount request: {{{path}}}: {{{source}}}")]
    Content {
        /// `secretPath`.
        path: String,
        /// Why.
        source: ContentError,
    },
    /// The file cannot be written (bad or duplicate path).
    #[error("error making mount request: object {object:?}: {source}")]
    File {
        /// `objectName`.
        object: String,
        /// Why.
        source: ResponseError,
    },
}

impl From<RequestError> for MountFailure {
    fn from(e: RequestError) -> Self {
        Self::Request(e.to_string())
    }
}

fn vault_code(e: &VaultError) -> Code {
    match e {
        VaultError::Url(_) => Code::InvalidArgument,
        VaultError::Connect { .. } => Code::Unavailable,
        VaultError::Timeout { .. } => Code::DeadlineExceeded,
        VaultError::Body { .. } => Code::Internal,
        VaultError::Status { status, .. } => match status {
            400 => Code::InvalidArgument,
            401 | 403 => Code::PermissionDenied,
            404 => Code::NotFound,
            429 => Code::ResourceExhausted,
            s if *s >= 500 => Code::Unavailable,
            _ => Code::FailedPrecondition,
        },
    }
}

fn auth_code(e: &AuthError) -> Code {
    match e {
        AuthError::NoKubeClient(_) => Code::FailedPrecondition,
        AuthError::TokenRequest { .. } => Code::Unavailable,
        AuthError::Login(v) => vault_code(v),
        AuthError::LoginResponse(_) => Code::Internal,
    }
}

impl MountFailure {
    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            Self::Request(_) | Self::Params(_) | Self::Tls(_) | Self::File { .. } => {
                Code::InvalidArgument
            }
            Self::Read { source, .. } => match source {
                ReadError::Auth(a) | ReadError::Reauth { auth: a, .. } => auth_code(a),
                ReadError::Vault(v) => vault_code(v),
                ReadError::Answer(_) => Code::Internal,
            },
            Self::Empty { .. } => Code::NotFound,
            Self::Content { source, .. } => match source {
                ContentError::MissingKey(_) => Code::NotFound,
                _ => Code::InvalidArgument,
            },
        }
    }
}

impl From<MountFailure> for MountError {
    fn from(e: MountFailure) -> Self {
        MountError::new(e.code(), e.to_string())
    }
}
