//! Sync as Kubernetes Secret: the `secretObjects` of a SecretProviderClass
//! become Kubernetes Secrets built from the mounted files.
//!
//! A node-scoped controller ([`controller`]) watches the
//! SecretProviderClassPodStatus objects labelled with this node, checks each
//! against the API server (the pod exists with that uid and mounts that
//! class through this driver), reads the volume's files only through
//! [`MountedFiles`] (the driver's own record of what it published, never
//! the status object alone), and writes the Secrets ([`write`]). It resyncs
//! every `--secret-sync-resync-interval`, so a Secret deleted or edited by
//! hand is repaired, and retries failures with a capped exponential
//! backoff. The publish path asks for an immediate pass with
//! [`SyncHandle::changed`]. Each Secret:
//! - carries the declared type, labels and annotations, plus
//!   `secrets-store.csi.k8s.io/managed=true`;
//! - is owned, as upstream's, by the owners of every pod that mounts it
//!   (e.g. one ReplicaSet per Deployment), or by the volume's status object
//!   for a pod without owners ([`write::owners`]); the driver never drops
//!   an owner, the garbage collector drops those deleted and deletes the
//!   Secret with the last one;
//! - is written only when its content would change;
//! - is never taken over if it exists without the managed label;
//! - is never of a type that makes the control plane mint a credential
//!   ([`secret::forbidden`]).
//!
//! Metrics, events and the log line of a pass are recorded in one place
//! ([`report`]).

pub mod controller;
pub mod files;
mod report;
pub mod secret;
pub mod write;

use secrets_store_crds::MANAGED_LABEL;

pub use controller::{SyncConfig, SyncHandle, Trigger, run, trigger};
pub use files::{Files, MountedFiles, TrustedVolumes, VolumeClaim};

/// Why a Secret could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required field of a `secretObjects` entry is empty.
    #[error("secretObjects[{index}]: {field} is required")]
    Incomplete {
        /// Index in `secretObjects`.
        index: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A data entry names an object that is not mounted.
    #[error("secret {secret}: file matching objectName {object} not found in the pod")]
    MissingObject {
        /// Secret name.
        secret: String,
        /// The objectName.
        object: String,
    },
    /// The type requires keys the data does not have.
    #[error("secret {secret} of type {type_} needs key {key}")]
    MissingKey {
        /// Secret name.
        secret: String,
        /// Secret type.
        type_: String,
        /// The missing key.
        key: &'static str,
    },
    /// The type would make the control plane mint or honour a credential.
    #[error("secret {secret}: type {type_} is refused: {why}")]
    ForbiddenType {
        /// Secret name.
        secret: String,
        /// Secret type as written.
        type_: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A Secret of that name exists and is not managed by the driver.
    #[error(
        "secret {namespace}/{secret} exists and is not managed by the Secrets Store CSI driver \
         (no label {MANAGED_LABEL}=true); it was left untouched: rename secretObjects[].secretName or delete the Secret"
    )]
    NotManaged {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
    },
    /// The API server refused or failed a Secret read or write.
    #[error("secret {namespace}/{secret}: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
        /// Cause.
        source: kube::Error,
    },
    /// The Secret to write did not match the entry it was read from.
    #[error("secret {namespace}/{secret}: {source}")]
    Commit {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
        /// Cause.
        source: kube::api::entry::CommitValidationError,
    },
    /// The SecretProviderClass could not be read.
    #[error("failed to get secretproviderclass {namespace}/{name}: {source}")]
    Class {
        /// Namespace.
        namespace: String,
        /// Class name.
        name: String,
        /// Cause (names a missing object).
        source: kube::Error,
    },
    /// The pod could not be read.
    #[error("failed to get pod {namespace}/{name}: {source}")]
    Pod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// The volume's files could not be read.
    #[error("failed to read the mounted files at {target}: {source}")]
    Files {
        /// Target path.
        target: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Error {
    /// A short name of the failure, from a closed set (log field).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Incomplete { .. } => "IncompleteSecretObject",
            Error::MissingObject { .. } => "ObjectNotMounted",
            Error::MissingKey { .. } => "MissingKey",
            Error::ForbiddenType { .. } => "ForbiddenSecretType",
            Error::NotManaged { .. } => "SecretNotManaged",
            Error::Api { .. } | Error::Commit { .. } => "SecretWriteFailed",
            Error::Class { .. } => "SecretProviderClassNotReadable",
            Error::Pod { .. } => "PodNotReadable",
            Error::Files { .. } => "FilesNotReadable",
        }
    }
}

/// What a sync did to one Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Created,
    /// Its data changed (and possibly more).
    Updated,
    /// Only its type, labels, annotations or owners changed.
    MetadataUpdated,
    /// Already as desired; not written.
    Unchanged,
}
