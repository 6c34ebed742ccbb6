//! Events on the pod a volume belongs to, with upstream's reasons, so
//! `kubectl describe pod` tells the operator what happened and what to fix.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::status::PodRef;

/// Reason: a synced Secret could not be created or updated.
pub const FAILED_TO_CREATE_SECRET: &str = "FailedToCreateSecret";
/// Reason: a refresh changed the mounted content.
pub const MOUNT_ROTATION_COMPLETE: &str = "MountRotationComplete";
/// Reason: a refresh failed; the old content stays.
pub const MOUNT_ROTATION_FAILED: &str = "MountRotationFailed";
/// Reason: a refresh updated synced Secrets.
pub const SECRET_ROTATION_COMPLETE: &str = "SecretRotationComplete";
/// Reason: a refresh could not update synced Secrets.
pub const SECRET_ROTATION_FAILED: &str = "SecretRotationFailed";

/// Longest `action` the API server accepts.
const MAX_ACTION_LEN: usize = 128;

/// Publishes events for one node's driver.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// A recorder reporting as this driver on `node`.
    pub fn new(client: kube::Client, node: &str) -> Self {
        let reporter = Reporter {
            controller: "secrets-store-csi-driver".into(),
            instance: Some(node.to_string()).filter(|n| !n.is_empty()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records a Normal event on `pod`.
    pub async fn normal(&self, pod: &PodRef, reason: &str, note: String) {
        self.publish(pod, EventType::Normal, reason, note).await
    }

    /// Records a Warning event on `pod`.
    pub async fn warning(&self, pod: &PodRef, reason: &str, note: String) {
        self.publish(pod, EventType::Warning, reason, note).await
    }

    /// Records a Warning event on `pod` about `subject` (one Secret, say).
    /// The recorder folds events with the same reason and action on one
    /// object into a series that keeps the first note, so the subject goes
    /// into the action: different subjects stay separate events.
    pub async fn warning_about(&self, pod: &PodRef, reason: &str, subject: &str, note: String) {
        let mut action = format!("{reason} {subject}");
        if action.len() > MAX_ACTION_LEN {
            let mut end = MAX_ACTION_LEN;
            while !action.is_char_boundary(end) {
                end -= 1;
            }
            action.truncate(end);
        }
        self.publish_as(pod, EventType::Warning, reason, action, note)
            .await
    }

    async fn publish(&self, pod: &PodRef, type_: EventType, reason: &str, note: String) {
        self.publish_as(pod, type_, reason, reason.to_string(), note)
            .await
    }

    async fn publish_as(
        &self,
        pod: &PodRef,
        type_: EventType,
        reason: &str,
        action: String,
        note: String,
    ) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        };
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action,
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, reason, "could not record event");
        }
    }
}
