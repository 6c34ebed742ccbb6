//! The outcome of one sync pass, and the one place that turns it into
//! metrics, pod events and log lines.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use secrets_store_crds::v1::SecretProviderClassPodStatus;

use super::{Change, Error};
use crate::events::{self, Events};
use crate::metrics::Metrics;
use crate::status::PodRef;

/// How one pass over one volume ended.
pub(super) enum Pass {
    /// Nothing to sync (and nothing wrong enough to retry early).
    Skipped(Skip),
    /// The pass stopped before any Secret was built.
    Failed {
        /// The pod, once checked.
        pod: Option<PodRef>,
        /// Why.
        error: Error,
    },
    /// Every `secretObjects` entry was tried.
    Synced(Synced),
}

/// Why a pass had nothing to do (closed set, log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skip {
    /// The status object has no status, pod owner or target yet.
    NoStatus,
    /// The pod does not exist (the status object goes with it).
    PodGone,
    /// The pod of that name has another uid than the status claims.
    PodMismatch,
    /// The pod is terminating or has finished.
    PodFinished,
    /// The pod has no volume of this driver for that class at that target.
    NotMountedByPod,
    /// The class has no `secretObjects`.
    NoSecretObjects,
    /// The driver holds no volume for that pod at that target.
    NotPublished,
}

impl Skip {
    fn reason(self) -> &'static str {
        match self {
            Skip::NoStatus => "NoStatus",
            Skip::PodGone => "PodGone",
            Skip::PodMismatch => "PodMismatch",
            Skip::PodFinished => "PodFinished",
            Skip::NotMountedByPod => "NotMountedByPod",
            Skip::NoSecretObjects => "NoSecretObjects",
            Skip::NotPublished => "NotPublished",
        }
    }
}

/// A pass that tried every Secret of the class.
pub(super) struct Synced {
    /// The checked pod.
    pub pod: PodRef,
    /// The class name.
    pub class: String,
    /// Metrics label of the class's provider.
    pub provider: String,
    /// Whether the files differ from those of the last successful pass.
    pub rotated: bool,
    /// Digest of the files.
    pub digest: u64,
    /// One result per `secretObjects` entry.
    pub secrets: Vec<SecretResult>,
}

/// What happened to one Secret.
pub(super) struct SecretResult {
    /// Secret name.
    pub name: String,
    /// Time to build and write it.
    pub took: Duration,
    /// The change, or why it failed.
    pub result: Result<Change, Error>,
}

/// A digest of the files, to tell a rotation from a repair. Not a
/// security boundary: a collision only loses one rotation event.
pub(super) fn digest(files: &BTreeMap<String, Vec<u8>>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

/// Records a pass: metrics, events on the pod, log lines.
pub(super) async fn record(
    metrics: &Metrics,
    events: &Events,
    key: &ObjectRef<SecretProviderClassPodStatus>,
    pass: &Pass,
    took: Duration,
) {
    let namespace = key.namespace.as_deref().unwrap_or_default();
    let spcps = key.name.as_str();
    match pass {
        Pass::Skipped(skip) => {
            tracing::debug!(
                namespace,
                spcps,
                reason = skip.reason(),
                "secret sync skipped"
            );
        }
        Pass::Failed { pod, error } => {
            tracing::warn!(namespace, spcps, reason = error.reason(), error = %error, "secret sync failed");
            if let (Some(pod), Error::Files { .. }) = (pod, error) {
                let note = format!("failed to get mounted files: {error}");
                events
                    .warning(pod, events::FAILED_TO_CREATE_SECRET, note)
                    .await;
            }
        }
        Pass::Synced(s) => record_synced(metrics, events, namespace, spcps, s, took).await,
    }
}

async fn record_synced(
    metrics: &Metrics,
    events: &Events,
    namespace: &str,
    spcps: &str,
    s: &Synced,
    took: Duration,
) {
    let mut rotated = Vec::new();
    let mut written = 0;
    for r in &s.secrets {
        match &r.result {
            Ok(Change::Unchanged) => {}
            Ok(change) => {
                written += 1;
                metrics.secret_synced(&s.provider, r.took);
                tracing::debug!(namespace, spcps, secret = %r.name, ?change, "secret written");
                if s.rotated && *change == Change::Updated {
                    rotated.push(format!("{namespace}/{}", r.name));
                }
            }
            Err(e) => {
                tracing::warn!(namespace, spcps, secret = %r.name, reason = e.reason(), error = %e, "secret sync failed");
                let reason = if s.rotated {
                    events::SECRET_ROTATION_FAILED
                } else {
                    events::FAILED_TO_CREATE_SECRET
                };
                let note = format!(
                    "failed to sync secretObjects of SecretProviderClass {}: {e}",
                    s.class
                );
                events.warning_about(&s.pod, reason, &r.name, note).await;
            }
        }
    }
    if !rotated.is_empty() {
        let note = format!(
            "secrets {} were updated with the rotated content of the volume",
            rotated.join(", ")
        );
        events
            .normal(&s.pod, events::SECRET_ROTATION_COMPLETE, note)
            .await;
    }
    if written > 0 {
        tracing::info!(namespace, spcps, written, took = ?took, "synced secrets");
    }
}
