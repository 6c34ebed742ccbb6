//! Writing one desired Secret: create it, or update a Secret the driver
//! manages, keeping every consuming pod as an owner. Never adopts a Secret
//! without the managed label; writes only when something would change.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use kube::api::entry::{CommitError, Entry};
use secrets_store_crds::MANAGED_LABEL;
use secrets_store_crds::v1::SecretObject;

use super::secret::Desired;
use super::{Change, Error};
use crate::status::PodRef;

/// Writes lost to a concurrent writer (another pod's sync of the same
/// Secret) are retried from a fresh read this many times.
const CONFLICT_ATTEMPTS: usize = 3;

/// Creates or updates the Secret `desired` for `object`, owned by `pod`.
pub async fn write(
    client: &kube::Client,
    pod: &PodRef,
    object: &SecretObject,
    desired: &Desired,
) -> Result<Change, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &pod.namespace);
    let mut attempt = 1;
    loop {
        match apply_once(&api, pod, object, desired).await {
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
            vacant.insert(new_secret(pod, object, desired)),
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
            let updated = merged(existing, pod, object, desired);
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
    // this fail with a conflict rather than lose its owner reference.
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

fn new_secret(pod: &PodRef, object: &SecretObject, desired: &Desired) -> Secret {
    let mut labels = object.labels.clone();
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    let mut secret = Secret::default();
    secret.metadata.name = Some(desired.name.clone());
    secret.metadata.labels = Some(labels);
    secret.metadata.annotations =
        (!object.annotations.is_empty()).then(|| object.annotations.clone());
    secret.metadata.owner_references = Some(vec![pod.owner_reference()]);
    secret.type_ = Some(desired.type_.clone());
    secret.data = Some(desired.data.clone());
    secret
}

/// `existing` with the desired type, data, labels and annotations, and
/// `pod` added to its owners (owners are only ever added).
fn merged(existing: &Secret, pod: &PodRef, object: &SecretObject, desired: &Desired) -> Secret {
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
    let owners = meta.owner_references.get_or_insert_with(Vec::new);
    if !owners.iter().any(|o| o.uid == pod.uid) {
        owners.push(pod.owner_reference());
    }
    updated.type_ = Some(desired.type_.clone());
    updated.data = Some(desired.data.clone());
    updated
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn pod(uid: &str) -> PodRef {
        PodRef {
            name: format!("pod-{uid}"),
            namespace: "ns".into(),
            uid: uid.into(),
        }
    }

    fn desired(value: &str) -> Desired {
        Desired {
            name: "s".into(),
            type_: "Opaque".into(),
            data: [("k".to_string(), ByteString(value.as_bytes().to_vec()))].into(),
        }
    }

    #[test]
    fn merging_keeps_owners_and_foreign_metadata_and_adds_ours() {
        let object = SecretObject {
            labels: [("env".to_string(), "test".to_string())].into(),
            annotations: [("team".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        let mut existing = new_secret(&pod("1"), &object, &desired("v1"));
        existing
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("other".into(), "kept".into());
        let same = merged(&existing, &pod("1"), &object, &desired("v1"));
        assert_eq!(same, existing, "nothing to write");
        let next = merged(&existing, &pod("2"), &object, &desired("v2"));
        let owners: Vec<&str> = next
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.as_str())
            .collect();
        assert_eq!(owners, ["1", "2"]);
        let labels = next.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["other"], "kept");
        assert_eq!(labels["env"], "test");
        assert_eq!(labels[MANAGED_LABEL], "true");
        assert_eq!(next.data.unwrap_or_default()["k"].0, b"v2");
        assert!(is_managed(&existing));
        assert!(!is_managed(&Secret::default()));
    }
}
