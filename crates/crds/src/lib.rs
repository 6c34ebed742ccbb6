//! Kubernetes API types of the Secrets Store CSI driver, and their CRDs.
//!
//! Group `secrets-store.csi.x-k8s.io`: [`v1`] is the storage version and
//! [`v1alpha1`] is served, deprecated, for older manifests. The schemas are
//! the same as the upstream driver's (v1.6.0), which a test checks against the
//! upstream CRD YAML. This crate also owns the label keys and the
//! SecretProviderClassPodStatus naming rule that driver and sync share, and
//! the pod-bound TokenRequest kubelet makes for a CSIDriver's
//! `tokenRequests`.
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

/// The TokenRequest kubelet makes for one of a CSIDriver's `tokenRequests`:
/// a token for `audience`, valid `expiration_seconds`, bound to the pod
/// `pod` (`uid`). The driver's refresh and the kubelet simulator both mint
/// with it.
pub fn pod_token_request(
    audience: String,
    expiration_seconds: i64,
    pod: &str,
    uid: &str,
) -> k8s_openapi::api::authentication::v1::TokenRequest {
    use k8s_openapi::api::authentication::v1::{
        BoundObjectReference, TokenRequest, TokenRequestSpec,
    };
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience]),
            expiration_seconds: Some(expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                uid: Some(uid.into()),
            }),
        }),
        ..Default::default()
    }
}

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
