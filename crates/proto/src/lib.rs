//! Generated gRPC code, nothing else.
//!
//! Two wire APIs live here, both generated from this crate's own `.proto`
//! files (see `proto/`):
//! - [`csi::v1`]: the CSI Identity and Node services (spec v1.12.0), served by
//!   the driver to kubelet;
//! - [`provider::v1alpha1`]: the `CSIDriverProvider` service, served by
//!   providers and called by the driver.
//!
//! Behaviour (validation, redaction, dialling) belongs to the crates that use
//! these types. [`PROTO_DIR`] points at the sources so tests can prove wire
//! compatibility with upstream.

/// Keys of the volume context kubelet sends and of the `attributes` JSON
/// the driver passes to providers: part of both wire contracts.
pub mod attributes {
    /// Pod name (CSIDriver `podInfoOnMount`).
    pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
    /// Pod namespace.
    pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
    /// Pod UID.
    pub const POD_UID: &str = "csi.storage.k8s.io/pod.uid";
    /// The pod's service account name.
    pub const SERVICE_ACCOUNT_NAME: &str = "csi.storage.k8s.io/serviceAccount.name";
    /// `"true"` for ephemeral inline volumes.
    pub const EPHEMERAL: &str = "csi.storage.k8s.io/ephemeral";
    /// Service-account tokens, JSON `{audience: {token, expirationTimestamp}}`
    /// (in the volume context, or in the CSI `secrets` on newer kubelets).
    pub const SERVICE_ACCOUNT_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";
    /// Volume attribute naming the SecretProviderClass.
    pub const SECRET_PROVIDER_CLASS: &str = "secretProviderClass";
}

/// Directory holding this crate's `.proto` sources.
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// Container Storage Interface.
pub mod csi {
    /// CSI v1 (package `csi.v1`): Identity and Node services.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("csi.v1");
    }
}

/// Secrets Store CSI driver provider API.
pub mod provider {
    /// Provider API v1alpha1 (package `v1alpha1`, service `CSIDriverProvider`).
    #[allow(missing_docs, clippy::all)]
    pub mod v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}
