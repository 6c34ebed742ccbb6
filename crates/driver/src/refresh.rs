//! The driver-side refresh loop (`--enable-refresh-loop`), for clusters
//! whose CSIDriver has no `requiresRepublish`, so kubelet never calls
//! NodePublishVolume again.
//!
//! Every `--rotation-poll-interval` it walks this node's mount table, and
//! for each volume this driver completed (marker and saved request on the
//! tmpfs) it rebuilds what kubelet would send:
//! - the pod is read to check it still exists and to find the volume's
//!   `nodePublishSecretRef`; that Secret is read only if it carries the
//!   label `secrets-store.csi.k8s.io/used=true` (as upstream's v1.5
//!   rotation required);
//! - service-account tokens are minted with TokenRequest, bound to the pod,
//!   for the CSIDriver object's `tokenRequests` audiences;
//!
//! then runs a refresh through [`Publisher::publish`], so the interval, the
//! per-class settings, change detection and "keep the last good content"
//! apply exactly as on a republish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::USED_LABEL;

use crate::publish::{POD_NAME, POD_NAMESPACE, POD_UID, PUBLISHED_MARKER, Publisher, SavedVolume};

use secrets_store_proto::attributes::{SERVICE_ACCOUNT_NAME, ServiceAccountTokens};

/// Why one volume could not be refreshed by the loop.
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error("pod is gone")]
    PodGone,
    #[error("volume {0} not found in the pod spec")]
    NoVolume(String),
    #[error(
        "nodePublishSecretRef {0} is not labelled {USED_LABEL}=true; label it so the driver can refresh this volume"
    )]
    SecretNotLabelled(String),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Publish(#[from] crate::publish::Error),
}

/// Runs the loop forever (spawn it as a task).
pub async fn run(publisher: Arc<Publisher>, driver_name: String, interval: Duration) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for target in published_targets() {
            let Some(saved) = SavedVolume::load(&target) else {
                continue;
            };
            match refresh(&publisher, &driver_name, &target, &saved).await {
                Ok(()) => {}
                Err(Skip::PodGone) => {
                    tracing::debug!(target = %target.display(), "pod gone; kubelet will unpublish")
                }
                Err(e) => {
                    tracing::warn!(target = %target.display(), error = %e, "refresh loop skipped a volume")
                }
            }
        }
    }
}

/// tmpfs mount points holding a completed volume of this driver.
fn published_targets() -> Vec<PathBuf> {
    let Ok(entries) = crate::mount::table::read() else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| e.fs_type == "tmpfs" && e.mount_point.join(PUBLISHED_MARKER).exists())
        .map(|e| e.mount_point)
        .collect()
}

async fn refresh(
    publisher: &Publisher,
    driver_name: &str,
    target: &Path,
    saved: &SavedVolume,
) -> Result<(), Skip> {
    let get = |k: &str| saved.context.get(k).cloned().unwrap_or_default();
    let (ns, name, uid) = (get(POD_NAMESPACE), get(POD_NAME), get(POD_UID));
    let client = publisher.client().await?.clone();
    let pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let pod = pod
        .filter(|p| p.metadata.uid.as_deref() == Some(uid.as_str()))
        .ok_or(Skip::PodGone)?;
    // kubelet's target is .../volumes/kubernetes.io~csi/<volume>/mount.
    let volume_name = target
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|vs| vs.iter().find(|v| v.name == volume_name))
        .and_then(|v| v.csi.clone())
        .filter(|c| c.driver == driver_name)
        .ok_or_else(|| Skip::NoVolume(volume_name.clone()))?;

    let mut secrets = BTreeMap::new();
    if let Some(secret_ref) = source.node_publish_secret_ref {
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get(&secret_ref.name)
            .await?;
        let labelled = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(USED_LABEL))
            .is_some_and(|v| v == "true");
        if !labelled {
            return Err(Skip::SecretNotLabelled(secret_ref.name));
        }
        for (k, v) in secret.data.unwrap_or_default() {
            secrets.insert(k, String::from_utf8_lossy(&v.0).into_owned());
        }
    }
    let tokens = mint_tokens(
        &client,
        driver_name,
        &ns,
        &get(SERVICE_ACCOUNT_NAME),
        &name,
        &uid,
    )
    .await?;
    publisher
        .publish(saved.request(target, secrets, tokens))
        .await?;
    Ok(())
}

/// Tokens for the CSIDriver's `tokenRequests`, encoded as kubelet encodes
/// them, or `None` when the CSIDriver asks for none.
async fn mint_tokens(
    client: &kube::Client,
    driver_name: &str,
    ns: &str,
    service_account: &str,
    pod: &str,
    uid: &str,
) -> Result<Option<String>, kube::Error> {
    let Some(driver) = Api::<CSIDriver>::all(client.clone())
        .get_opt(driver_name)
        .await?
    else {
        return Ok(None);
    };
    let requests = driver.spec.token_requests.unwrap_or_default();
    if requests.is_empty() {
        return Ok(None);
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let mut out = ServiceAccountTokens::default();
    for r in requests {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![r.audience.clone()]),
                expiration_seconds: Some(r.expiration_seconds.unwrap_or(3600)),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.into()),
                    uid: Some(uid.into()),
                }),
            }),
            ..Default::default()
        };
        let status = accounts
            .create_token_request(service_account, &PostParams::default(), &request)
            .await?
            .status;
        if let Some(status) = status {
            let expiry = status.expiration_timestamp.map(|t| t.0.to_string());
            out.insert(
                r.audience,
                status.token.unwrap_or_default(),
                expiry.unwrap_or_default(),
            );
        }
    }
    Ok(Some(out.to_json()))
}
