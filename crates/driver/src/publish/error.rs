//! Why a publish or unpublish failed: one variant per failure, each with
//! the gRPC code kubelet receives and a [`Reason`] from a closed set (the
//! metric label and event reason; never a string a provider or a pod
//! chose).

use crate::{mount, provider, spc, target, volume};

/// Why a publish or unpublish failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (kubelet or csi-sanity sent it wrong).
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// `volume_mount_group` is not a numeric group id.
    #[error("invalid volume_mount_group {0:?}: must be a numeric group id")]
    MountGroup(String),
    /// The volume attributes do not name a SecretProviderClass.
    #[error("secretProviderClass is not set")]
    NoClassName,
    /// kubelet did not send pod information.
    #[error("{0} missing in volume context; the CSIDriver object must set podInfoOnMount: true")]
    NoPodInfo(&'static str),
    /// The target path breaks the rules or could not be prepared.
    #[error(transparent)]
    Target(#[from] target::Error),
    /// No Kubernetes API configuration was found.
    #[error("no Kubernetes API configuration: {0}")]
    NoKubeConfig(String),
    /// The SecretProviderClass cannot be used.
    #[error(transparent)]
    Class(#[from] spc::Error),
    /// Mounting or unmounting failed.
    #[error(transparent)]
    Mount(#[from] mount::Error),
    /// The driver's volume state could not be read or written.
    #[error(transparent)]
    State(#[from] volume::Error),
    /// The provider could not be called.
    #[error("failed to mount secrets store objects for pod {pod}, err: {source}")]
    Provider {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: provider::Error,
    },
    /// The provider reported an error code (shown, never used as a label).
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: mount request failed with provider error code {code}"
    )]
    ProviderCode {
        /// `namespace/name` of the pod.
        pod: String,
        /// The provider's code.
        code: String,
    },
    /// The provider's answer is unusable (bad paths, modes, no versions).
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: invalid provider response: {source}"
    )]
    BadResponse {
        /// `namespace/name` of the pod.
        pod: String,
        /// What is wrong with it.
        source: super::response::ResponseError,
    },
    /// Writing the files failed (a full tmpfs lands here).
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: failed to write files: {source}"
    )]
    Write {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: secrets_store_atomic_writer::Error,
    },
    /// The SecretProviderClassPodStatus could not be written.
    #[error("failed to create secret provider class pod status for pod {pod}, err: {source}")]
    Status {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: kube::Error,
    },
    /// Another call for the same target is running.
    #[error("an operation for target {0} is already in progress")]
    InProgress(String),
    /// A blocking filesystem task did not finish (panicked or cancelled).
    #[error("internal error: {0}")]
    Task(String),
}

/// The closed set of failure reasons (metric `error_type`, event reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The request was malformed.
    InvalidRequest,
    /// The target path was refused or could not be prepared.
    FailedToEnsureMountPoint,
    /// The SecretProviderClass was not found or unusable.
    SecretProviderClassNotFound,
    /// mount/umount failed.
    FailedToMount,
    /// No provider socket.
    FailedToLookupProviderGRPCClient,
    /// The provider call failed or answered something unusable.
    GRPCProviderError,
    /// The provider answered with an error code.
    ProviderError,
    /// The files could not be written.
    FileWriteError,
    /// The Kubernetes API could not be used.
    KubernetesApiError,
    /// The driver's own state failed.
    InternalError,
    /// Another call for the target was running.
    OperationInProgress,
}

impl Reason {
    /// The label value (upstream's spelling where upstream has one).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidRequest => "InvalidRequest",
            Reason::FailedToEnsureMountPoint => "FailedToEnsureMountPoint",
            Reason::SecretProviderClassNotFound => "SecretProviderClassNotFound",
            Reason::FailedToMount => "FailedToMount",
            Reason::FailedToLookupProviderGRPCClient => "FailedToLookupProviderGRPCClient",
            Reason::GRPCProviderError => "GRPCProviderError",
            Reason::ProviderError => "ProviderError",
            Reason::FileWriteError => "FileWriteError",
            Reason::KubernetesApiError => "KubernetesAPIError",
            Reason::InternalError => "InternalError",
            Reason::OperationInProgress => "OperationInProgress",
        }
    }
}

impl Error {
    /// A target path the rules refuse, found directly or through a mount
    /// call.
    fn target_refusal(&self) -> bool {
        match self {
            Error::Target(e) | Error::Mount(mount::Error::Target(e)) => e.is_refusal(),
            _ => false,
        }
    }

    /// The gRPC code kubelet receives.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Error::InvalidArgument(_) | Error::MountGroup(_) | Error::NoClassName => {
                Code::InvalidArgument
            }
            e if e.target_refusal() => Code::InvalidArgument,
            Error::NoPodInfo(_) => Code::FailedPrecondition,
            Error::NoKubeConfig(_) | Error::Status { .. } => Code::Unavailable,
            Error::Class(spc::Error::NotFound { .. }) => Code::NotFound,
            Error::Class(spc::Error::Api { .. }) => Code::Unavailable,
            Error::Class(_) => Code::InvalidArgument,
            Error::Provider { source, .. } => match source {
                provider::Error::NotFound(_) | provider::Error::Unavailable { .. } => {
                    Code::Unavailable
                }
                provider::Error::Timeout(..) => Code::DeadlineExceeded,
                provider::Error::TooLarge(..) => Code::ResourceExhausted,
                provider::Error::Status { .. } => Code::Internal,
            },
            Error::ProviderCode { .. } => Code::FailedPrecondition,
            Error::InProgress(_) => Code::Aborted,
            Error::Target(_)
            | Error::Mount(_)
            | Error::State(_)
            | Error::Write { .. }
            | Error::BadResponse { .. }
            | Error::Task(_) => Code::Internal,
        }
    }

    /// The reason label.
    pub fn reason(&self) -> Reason {
        match self {
            Error::InvalidArgument(_)
            | Error::MountGroup(_)
            | Error::NoClassName
            | Error::NoPodInfo(_) => Reason::InvalidRequest,
            e if e.target_refusal() => Reason::InvalidRequest,
            Error::Target(_) => Reason::FailedToEnsureMountPoint,
            Error::NoKubeConfig(_) | Error::Status { .. } => Reason::KubernetesApiError,
            Error::Class(_) => Reason::SecretProviderClassNotFound,
            Error::Mount(_) => Reason::FailedToMount,
            Error::State(_) | Error::Task(_) => Reason::InternalError,
            Error::Provider {
                source: provider::Error::NotFound(_),
                ..
            } => Reason::FailedToLookupProviderGRPCClient,
            Error::Provider { .. } | Error::BadResponse { .. } => Reason::GRPCProviderError,
            Error::ProviderCode { .. } => Reason::ProviderError,
            Error::Write { .. } => Reason::FileWriteError,
            Error::InProgress(_) => Reason::OperationInProgress,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}
