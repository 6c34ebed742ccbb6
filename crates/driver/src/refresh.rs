//! The driver-side refresh loop (`--enable-refresh-loop`), for clusters
//! whose CSIDriver has no `requiresRepublish`, so kubelet never calls
//! NodePublishVolume again.
//!
//! Every `--rotation-poll-interval` it walks the driver's own volume
//! records ([`crate::volume`]: a directory no pod can write), never the
//! mount table or files on a tmpfs. Each record is cross-checked before
//! use: the target must still be a mount point, and the API server must
//! show the pod with that UID, the same service account, and the volume in
//! its spec for this driver and the recorded class. Then it rebuilds what
//! kubelet would send:
//! - the `nodePublishSecretRef` Secret of the pod's volume, read only if it
//!   carries the label `secrets-store.csi.k8s.io/used=true` (as upstream's
//!   v1.5 rotation required);
//! - service-account tokens minted with TokenRequest, bound to the pod, for
//!   the CSIDriver object's `tokenRequests` audiences;
//!
//! and runs [`Publisher::publish`] (the interval, per-class settings,
//! change detection and "keep the last good content" apply exactly as on a
//! republish), reporting through the same [`Reporter`] as the RPC edge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{CSIVolumeSource, Pod, Secret, ServiceAccount};
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::USED_LABEL;
use secrets_store_proto::attributes::SECRET_PROVIDER_CLASS;

use tracing::Instrument;

use secrets_store_proto::attributes::ServiceAccountTokens;

use crate::publish::{PublishRequest, Publisher};
use crate::report::Reporter;
use crate::status::PodRef;
use crate::target::Target;
use crate::volume::VolumeRecord;

/// Why one volume was not refreshed by the loop.
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error("not mounted any more")]
    NotMounted,
    #[error("pod is gone")]
    PodGone,
    #[error("the pod in the API server does not match the driver's record: {0}")]
    Mismatch(&'static str),
    #[error(
        "nodePublishSecretRef {0} is not labelled {USED_LABEL}=true; label it so the driver can refresh this volume"
    )]
    SecretNotLabelled(String),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Publish(#[from] crate::publish::Error),
}

/// The loop's collaborators.
pub struct RefreshLoop {
    /// The publish pipeline.
    pub publisher: Arc<Publisher>,
    /// The reporting edge.
    pub reporter: Arc<Reporter>,
    /// The CSIDriver name (`--drivername`).
    pub driver_name: String,
    /// `--rotation-poll-interval`.
    pub interval: Duration,
}

impl RefreshLoop {
    /// Runs forever (spawn it as a task).
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.pass().await;
        }
    }

    /// One pass over every recorded volume.
    pub async fn pass(&self) {
        let (store, rules) = (
            self.publisher.store().clone(),
            self.publisher.rules().clone(),
        );
        let records = tokio::task::spawn_blocking(move || store.list(&rules)).await;
        let records = match records {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => {
                return tracing::warn!(error = %e, "refresh loop cannot read the volume state");
            }
            Err(e) => return tracing::warn!(error = %e, "refresh loop task failed"),
        };
        for (target, record) in records {
            let span = tracing::info_span!("refresh", target = %target.path().display(), pod = %format!("{}/{}", record.pod.namespace, record.pod.name), spc = %record.class);
            let result = self.refresh(target, &record).instrument(span.clone()).await;
            span.in_scope(|| match result {
                Ok(()) => {}
                Err(e @ (Skip::PodGone | Skip::NotMounted)) => {
                    tracing::debug!(reason = %e, "volume skipped")
                }
                Err(e) => tracing::warn!(error = %e, "refresh loop skipped a volume"),
            });
        }
    }

    async fn refresh(&self, target: Target, record: &VolumeRecord) -> Result<(), Skip> {
        let probe = target.clone();
        let mounted = tokio::task::spawn_blocking(move || probe.is_mount_point())
            .await
            .map_err(|e| crate::publish::Error::Task(e.to_string()))?
            .map_err(crate::publish::Error::from)?;
        if !mounted {
            return Err(Skip::NotMounted);
        }
        let client = self.publisher.client().await?.clone();
        let source = self.verified_source(&client, &target, record).await?;
        let secrets = node_publish_secrets(&client, &record.pod.namespace, &source).await?;
        let pod = &record.pod;
        let tokens = mint_tokens(
            &client,
            &self.driver_name,
            &pod.namespace,
            &pod.service_account,
            &pod.name,
            &pod.uid,
        )
        .await?;
        let started = Instant::now();
        let req = PublishRequest::from_record(target, record, secrets, tokens);
        let result = self.publisher.publish(req).await;
        let pod_ref = PodRef::from(pod);
        self.reporter
            .publish(Some(&pod_ref), &record.class, &result, started.elapsed())
            .await;
        Ok(())
    }

    /// The pod's CSI volume source, once the API server confirms the
    /// record: same UID, service account, driver and class.
    async fn verified_source(
        &self,
        client: &kube::Client,
        target: &Target,
        record: &VolumeRecord,
    ) -> Result<CSIVolumeSource, Skip> {
        let pod = Api::<Pod>::namespaced(client.clone(), &record.pod.namespace)
            .get_opt(&record.pod.name)
            .await?
            .ok_or(Skip::PodGone)?;
        if pod.metadata.uid.as_deref() != Some(target.pod_uid())
            || record.pod.uid != target.pod_uid()
        {
            return Err(Skip::PodGone);
        }
        let spec = pod.spec.unwrap_or_default();
        if spec
            .service_account_name
            .unwrap_or_else(|| "default".into())
            != record.pod.service_account
        {
            return Err(Skip::Mismatch("service account"));
        }
        let source = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == target.volume())
            .and_then(|v| v.csi)
            .filter(|c| c.driver == self.driver_name)
            .ok_or(Skip::Mismatch("volume not in the pod spec for this driver"))?;
        let class = source
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(SECRET_PROVIDER_CLASS));
        if class != Some(&record.class) {
            return Err(Skip::Mismatch("secretProviderClass"));
        }
        Ok(source)
    }
}

/// The volume's `nodePublishSecretRef` data, if it has one and it is
/// labelled `used=true`.
async fn node_publish_secrets(
    client: &kube::Client,
    ns: &str,
    source: &CSIVolumeSource,
) -> Result<BTreeMap<String, String>, Skip> {
    let mut secrets = BTreeMap::new();
    let Some(secret_ref) = &source.node_publish_secret_ref else {
        return Ok(secrets);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(&secret_ref.name)
        .await?;
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(USED_LABEL))
        .is_some_and(|v| v == "true");
    if !labelled {
        return Err(Skip::SecretNotLabelled(secret_ref.name.clone()));
    }
    for (k, v) in secret.data.unwrap_or_default() {
        secrets.insert(k, String::from_utf8_lossy(&v.0).into_owned());
    }
    Ok(secrets)
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
        let request = secrets_store_crds::pod_token_request(
            r.audience.clone(),
            r.expiration_seconds.unwrap_or(3600),
            pod,
            uid,
        );
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
