//! Version `v1alpha1`: served for older manifests, deprecated.
//!
//! The spec is the same as [`crate::v1`]; only the SecretProviderClass status
//! differs (a `byPod` list upstream no longer writes). The driver itself reads
//! and writes [`crate::v1`] only; the API server serves both.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::v1::{SecretObject, SecretObjectData, SecretProviderClassPodStatusStatus};

/// Desired state of a v1alpha1 SecretProviderClass; same fields as v1.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "secrets-store.csi.x-k8s.io",
    version = "v1alpha1",
    kind = "SecretProviderClass",
    namespaced,
    status = "SecretProviderClassStatus",
    schema = "derived",
    deprecated = "secrets-store.csi.x-k8s.io/v1alpha1 is deprecated. Use secrets-store.csi.x-k8s.io/v1 instead."
)]
pub struct SecretProviderClassSpec {
    /// Same fields as the v1 spec.
    #[serde(flatten)]
    pub spec: crate::v1::SecretProviderClassSpec,
}

/// Observed state of a v1alpha1 SecretProviderClass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClassStatus {
    /// Pods that use this class, as reported by old drivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_pod: Vec<ByPodStatus>,
}

/// One pod that reported using a SecretProviderClass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ByPodStatus {
    /// Id of the pod that wrote the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Namespace of the pod that wrote the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}
