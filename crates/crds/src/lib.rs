//! Kubernetes API types of the Secrets Store CSI driver, and their CRDs.
//!
//! Group `secrets-store.csi.x-k8s.io`: [`v1`] is the storage version and
//! [`v1alpha1`] is served, deprecated, for older manifests. The schemas are
//! the same as the upstream driver's (v1.6.0), which a test checks against the
//! upstream CRD YAML. This crate also owns the label keys and the
//! SecretProviderClassPodStatus naming rule that driver and sync share.
//!
//! It does no I/O; reading and writing these objects is the driver's job.

pub mod crd;
pub mod v1;
pub mod v1alpha1;

/// The API group of every type in this crate.
pub const GROUP: &str = "secrets-store.csi.x-k8s.io";

/// Label on a SecretProviderClassPodStatus naming the node whose driver wrote it.
pub const NODE_NAME_LABEL: &str = "internal.secrets-store.csi.k8s.io/node-name";

/// Label on a synced Kubernetes Secret marking it as managed by the driver.
pub const MANAGED_LABEL: &str = "secrets-store.csi.k8s.io/managed";

/// Label an operator puts on a nodePublishSecretRef Secret so the driver watches it.
pub const USED_LABEL: &str = "secrets-store.csi.k8s.io/used";

/// Name of the SecretProviderClassPodStatus for one pod and one class:
/// `<pod>-<namespace>-<spc>`, untruncated, exactly as upstream names it.
pub fn spcps_name(pod: &str, namespace: &str, spc: &str) -> String {
    format!("{pod}-{namespace}-{spc}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spcps_name_joins_pod_namespace_and_class() {
        assert_eq!(spcps_name("web-0", "prod", "db"), "web-0-prod-db");
    }
}
