//! Writing one desired Secret: create it, or update a Secret the driver
//! manages, adding the owners of every consuming volume ([`owners`]) and
//! never dropping one. Never adopts a Secret without the managed label;
//! writes only when something would change.

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::PostParams;
use kube::api::entry::{CommitError, Entry};
use kube::{Api, Resource};
use secrets_store_crds::MANAGED_LABEL;
use secrets_store_crds::v1::{SecretObject, SecretProviderClassPodStatus};

use super::secret::Desired;
use super::{Change, Error};
use crate::status::PodRef;

/// Writes lost to a concurrent writer (another pod's sync of the same
/// Secret) are retried from a fresh read this many times.
const CONFLICT_ATTEMPTS: usize = 3;

/// The owners a synced Secret gets from one consuming volume, as upstream
/// sets them: the pod's own owners (e.g. its ReplicaSet), so the Secret
/// outlives pod restarts and goes with the workload; for a pod without
/// owners, the volume's status object (owned by the pod, so it goes with
/// the pod). Only apiVersion, kind, name and uid are copied: never
/// `controller` or `blockOwnerDeletion`.
pub fn owners(pod: &Pod, status: &SecretProviderClassPodStatus) -> Vec<OwnerReference> {
    let reference = |api_version: String, kind: String, name: String, uid: String| OwnerReference {
        api_version,
        kind,
        name,
        uid,
        ..Default::default()
    };
    let of_pod: Vec<OwnerReference> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|o| {
            reference(
                o.api_version.clone(),
                o.kind.clone(),
                o.name.clone(),
                o.uid.clone(),
            )
        })
        .collect();
    if !of_pod.is_empty() {
        return of_pod;
    }
    let meta = &status.metadata;
    let (Some(name), Some(uid)) = (&meta.name, &meta.uid) else {
        return Vec::new();
    };
    vec![reference(
        SecretProviderClassPodStatus::api_version(&()).into_owned(),
        SecretProviderClassPodStatus::kind(&()).into_owned(),
        name.clone(),
        uid.clone(),
    )]
}

/// Creates or updates the Secret `desired` for `object`, consumed by `pod`,
/// with `owners` (from [`owners`]) added to its owners.
pub async fn write(
    client: &kube::Client,
    pod: &PodRef,
    owners: &[OwnerReference],
    object: &SecretObject,
    desired: &Desired,
) -> Result<Change, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &pod.namespace);
    let mut attempt = 1;
    loop {
        match apply_once(&api, pod, owners, object, desired).await {
            Err(Error::Api { source, .. })
                if is_conflict(&source) && attempt < CONFLICT_ATTEMPTS =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

async fn apply_once(
    api: &Api<Secret>,
    pod: &PodRef,
    owners: &[OwnerReference],
    object: &SecretObject,
    desired: &Desired,
) -> Result<Change, Error> {
    let name = desired.name.as_str();
    let api_err = |source| Error::Api {
        namespace: pod.namespace.clone(),
        secret: name.to_string(),
        source,
    };
    let (mut entry, change) = match api.entry(name).await.map_err(api_err)? {
        Entry::Vacant(vacant) => (
            vacant.insert(new_secret(owners, object, desired)),
            Change::Created,
        ),
        Entry::Occupied(mut occupied) => {
            let existing = occupied.get();
            if !is_managed(existing) {
                return Err(Error::NotManaged {
                    namespace: pod.namespace.clone(),
                    secret: name.to_string(),
                });
            }
            let updated = merged(existing, owners, object, desired);
            let change = if updated == *existing {
                return Ok(Change::Unchanged);
            } else if updated.data != existing.data {
                Change::Updated
            } else {
                Change::MetadataUpdated
            };
            *occupied.get_mut() = updated;
            (occupied, change)
        }
    };
    // Create, or replace carrying resourceVersion: a concurrent writer makes
    // this fail with a conflict rather than lose its owner references.
    entry
        .commit(&PostParams::default())
        .await
        .map_err(|e| match e {
            CommitError::Save(source) => api_err(source),
            CommitError::Validate(source) => Error::Commit {
                namespace: pod.namespace.clone(),
                secret: name.to_string(),
                source,
            },
        })?;
    Ok(change)
}

fn is_managed(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_LABEL))
        .is_some_and(|v| v == "true")
}

fn new_secret(owners: &[OwnerReference], object: &SecretObject, desired: &Desired) -> Secret {
    let mut labels = object.labels.clone();
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    let mut secret = Secret::default();
    secret.metadata.name = Some(desired.name.clone());
    secret.metadata.labels = Some(labels);
    secret.metadata.annotations =
        (!object.annotations.is_empty()).then(|| object.annotations.clone());
    secret.metadata.owner_references = (!owners.is_empty()).then(|| owners.to_vec());
    secret.type_ = Some(desired.type_.clone());
    secret.data = Some(desired.data.clone());
    secret
}

/// `existing` with the desired type, data, labels and annotations, and
/// `owners` added to its owners (by uid; owners are only ever added: the
/// garbage collector drops those that no longer exist).
fn merged(
    existing: &Secret,
    owners: &[OwnerReference],
    object: &SecretObject,
    desired: &Desired,
) -> Secret {
    let mut updated = existing.clone();
    let meta = &mut updated.metadata;
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.extend(object.labels.clone());
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    if !object.annotations.is_empty() {
        meta.annotations
            .get_or_insert_with(Default::default)
            .extend(object.annotations.clone());
    }
    let current = meta.owner_references.get_or_insert_with(Vec::new);
    for owner in owners {
        if !current.iter().any(|o| o.uid == owner.uid) {
            current.push(owner.clone());
        }
    }
    if current.is_empty() {
        meta.owner_references = None;
    }
    updated.type_ = Some(desired.type_.clone());
    updated.data = Some(desired.data.clone());
    updated
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn owner(kind: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: format!("{kind}-{uid}").to_lowercase(),
            uid: uid.into(),
            ..Default::default()
        }
    }

    fn desired(value: &str) -> Desired {
        Desired {
            name: "s".into(),
            type_: "Opaque".into(),
            data: [("k".to_string(), ByteString(value.as_bytes().to_vec()))].into(),
        }
    }

    fn status(name: &str, uid: &str) -> SecretProviderClassPodStatus {
        let mut status = SecretProviderClassPodStatus::default();
        status.metadata.name = Some(name.into());
        status.metadata.uid = Some(uid.into());
        status
    }

    #[test]
    fn owners_are_the_pods_owners_without_flags_else_the_status_object() {
        let mut pod = Pod::default();
        let mut rs = owner("ReplicaSet", "rs1");
        rs.controller = Some(true);
        rs.block_owner_deletion = Some(true);
        pod.metadata.owner_references = Some(vec![rs, owner("Job", "j1")]);
        let got = owners(&pod, &status("web-ns-db", "st1"));
        assert_eq!(got, [owner("ReplicaSet", "rs1"), owner("Job", "j1")]);
        assert!(
            got.iter()
                .all(|o| o.controller.is_none() && o.block_owner_deletion.is_none())
        );

        let bare = owners(&Pod::default(), &status("web-ns-db", "st1"));
        let want = OwnerReference {
            api_version: "secrets-store.csi.x-k8s.io/v1".into(),
            kind: "SecretProviderClassPodStatus".into(),
            name: "web-ns-db".into(),
            uid: "st1".into(),
            ..Default::default()
        };
        assert_eq!(bare, [want]);
        let unsaved = SecretProviderClassPodStatus::default();
        assert_eq!(owners(&Pod::default(), &unsaved), []);
    }

    #[test]
    fn merging_keeps_owners_and_foreign_metadata_and_adds_ours() {
        let object = SecretObject {
            labels: [("env".to_string(), "test".to_string())].into(),
            annotations: [("team".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        let first = [owner("ReplicaSet", "1")];
        let mut existing = new_secret(&first, &object, &desired("v1"));
        existing
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("other".into(), "kept".into());
        let same = merged(&existing, &first, &object, &desired("v1"));
        assert_eq!(same, existing, "nothing to write");
        let second = [owner("ReplicaSet", "2"), owner("ReplicaSet", "1")];
        let next = merged(&existing, &second, &object, &desired("v2"));
        let uids: Vec<&str> = next
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.as_str())
            .collect();
        assert_eq!(uids, ["1", "2"]);
        let labels = next.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["other"], "kept");
        assert_eq!(labels["env"], "test");
        assert_eq!(labels[MANAGED_LABEL], "true");
        assert_eq!(next.data.unwrap_or_default()["k"].0, b"v2");
        assert!(is_managed(&existing));
        assert!(!is_managed(&Secret::default()));
        let ownerless = new_secret(&[], &object, &desired("v1"));
        assert_eq!(ownerless.metadata.owner_references, None);
        assert_eq!(merged(&ownerless, &[], &object, &desired("v1")), ownerless);
    }
}
