//! The SecretProviderClassPodStatus of a mounted volume: created or updated
//! after the files are written, named `<pod>-<namespace>-<spc>`, labelled
//! with this node, owned by the pod (so it goes away with it). A publish
//! does not wait for it: [`writer`] writes it in the background, retried,
//! reconciled from the volume records after a restart.

pub mod writer;

pub use writer::{StatusJob, StatusWriter};

use std::collections::BTreeMap;

use kube::Api;
use kube::api::{ListParams, PostParams};
use secrets_store_crds::v1::{
    SecretProviderClassObject, SecretProviderClassPodStatus, SecretProviderClassPodStatusStatus,
};
use secrets_store_crds::{NODE_NAME_LABEL, spcps_name};

/// The pod a volume belongs to.
#[derive(Debug, Clone)]
pub struct PodRef {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
}

impl From<&crate::volume::PodInfo> for PodRef {
    fn from(p: &crate::volume::PodInfo) -> Self {
        Self {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            uid: p.uid.clone(),
        }
    }
}

impl PodRef {
    /// An owner reference to this pod (objects go away with it).
    pub fn owner_reference(
        &self,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }
}

/// Whether the status object probably exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A first publish: create it (one request when it does not exist).
    New,
    /// A refresh: read it first and write only what changed (one request
    /// when nothing changed, instead of a refused create and a read).
    Existing,
}

/// Creates or updates the status object for one pod's volume.
pub async fn upsert(
    client: &kube::Client,
    pod: &PodRef,
    spc: &str,
    node: &str,
    target: &str,
    objects: &[SecretProviderClassObject],
    expect: Expect,
) -> Result<(), kube::Error> {
    let api: Api<SecretProviderClassPodStatus> = Api::namespaced(client.clone(), &pod.namespace);
    let name = spcps_name(&pod.name, &pod.namespace, spc);
    let mut objects = objects.to_vec();
    objects.sort();
    let status = SecretProviderClassPodStatusStatus {
        pod_name: pod.name.clone(),
        secret_provider_class_name: spc.to_string(),
        mounted: true,
        target_path: target.to_string(),
        objects,
    };
    let owner = pod.owner_reference();
    let mut obj = SecretProviderClassPodStatus::default();
    obj.metadata.name = Some(name.clone());
    obj.metadata.namespace = Some(pod.namespace.clone());
    obj.metadata.labels = Some(BTreeMap::from([(
        NODE_NAME_LABEL.to_string(),
        node.to_string(),
    )]));
    obj.metadata.owner_references = Some(vec![owner.clone()]);
    obj.status = Some(status.clone());
    let found = match expect {
        Expect::Existing => api.get_opt(&name).await?,
        Expect::New => None,
    };
    let mut existing = match found {
        Some(existing) => existing,
        None => match api.create(&PostParams::default(), &obj).await {
            Ok(_) => return Ok(()),
            // It exists: from an earlier publish, or from a pod of the same
            // name (StatefulSet) that ran on another node. Take it over.
            Err(kube::Error::Api(s)) if s.code == 409 => api.get(&name).await?,
            Err(e) => return Err(e),
        },
    };
    let before = existing.clone();
    existing
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(NODE_NAME_LABEL.to_string(), node.to_string());
    existing.metadata.owner_references = Some(vec![owner]);
    existing.status = Some(status);
    if existing != before {
        api.replace(&name, &PostParams::default(), &existing)
            .await?;
    }
    Ok(())
}

/// This node's status objects (by the node label), in one request.
pub async fn list_node(
    client: &kube::Client,
    node: &str,
) -> Result<Vec<SecretProviderClassPodStatus>, kube::Error> {
    let api: Api<SecretProviderClassPodStatus> = Api::all(client.clone());
    let params = ListParams::default().labels(&format!("{NODE_NAME_LABEL}={node}"));
    Ok(api.list(&params).await?.items)
}

/// The sorted object versions `obj` holds for the volume of `pod` and
/// class `spc` at `target`, when it describes exactly that mounted volume
/// (owned by the pod with that UID).
pub fn held_objects(
    obj: &SecretProviderClassPodStatus,
    pod: &PodRef,
    spc: &str,
    target: &str,
) -> Option<Vec<SecretProviderClassObject>> {
    let owned = obj
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Pod" && o.uid == pod.uid);
    let status = obj.status.as_ref()?;
    let same = owned
        && status.mounted
        && status.pod_name == pod.name
        && status.secret_provider_class_name == spc
        && status.target_path == target;
    let mut objects = same.then(|| status.objects.clone())?;
    objects.sort();
    Some(objects)
}
