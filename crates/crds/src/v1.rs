//! Version `v1`: the storage version.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a SecretProviderClass: which provider serves the
/// volume, with what parameters, and which Kubernetes Secrets to sync.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "secrets-store.csi.x-k8s.io",
    version = "v1",
    kind = "SecretProviderClass",
    namespaced,
    status = "SecretProviderClassStatus",
    schema = "derived"
)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClassSpec {
    /// Name of the provider that serves this class (its socket is `<provider>.sock`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// Provider-specific parameters, passed to the provider as-is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Kubernetes Secrets to create from the mounted objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_objects: Vec<SecretObject>,
}

/// One Kubernetes Secret to keep in sync with mounted objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretObject {
    /// Name of the Kubernetes Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    /// Type of the Kubernetes Secret, e.g. `Opaque` or `kubernetes.io/tls`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// Labels to set on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to set on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Data keys of the Secret and the mounted objects they come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<SecretObjectData>,
}

/// One data key of a synced Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretObjectData {
    /// Mounted object (file path relative to the volume) to read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object_name: String,
    /// Key of the Secret's data to fill.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// Observed state of a SecretProviderClass (empty in v1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretProviderClassStatus {}

/// The mount state of one pod's volume for one SecretProviderClass, written
/// by the driver on the pod's node. Named by [`crate::spcps_name`].
///
/// Upstream defines this kind with a `status` and no `spec`, so it is written
/// by hand rather than derived.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SecretProviderClassPodStatus {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What is mounted, and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SecretProviderClassPodStatusStatus>,
}

/// What the driver mounted for one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClassPodStatusStatus {
    /// Name of the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    /// Name of the SecretProviderClass, in the pod's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_provider_class_name: String,
    /// Whether the volume is mounted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mounted: bool,
    /// The volume's target path on the node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_path: String,
    /// Version of each mounted object, sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SecretProviderClassObject>,
}

/// One object fetched from the external secret store.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct SecretProviderClassObject {
    /// Provider-defined id of the object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Version of the object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl k8s_openapi::Resource for SecretProviderClassPodStatus {
    const API_VERSION: &'static str = "secrets-store.csi.x-k8s.io/v1";
    const GROUP: &'static str = crate::GROUP;
    const KIND: &'static str = "SecretProviderClassPodStatus";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "secretproviderclasspodstatuses";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for SecretProviderClassPodStatus {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Serialize for SecretProviderClassPodStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use k8s_openapi::Resource;
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SecretProviderClassPodStatus", 4)?;
        st.serialize_field("apiVersion", Self::API_VERSION)?;
        st.serialize_field("kind", Self::KIND)?;
        st.serialize_field("metadata", &self.metadata)?;
        if let Some(status) = &self.status {
            st.serialize_field("status", status)?;
        }
        st.end()
    }
}
