//! The reporting edge. Every publish, refresh and unpublish result becomes
//! its metrics, its pod event and its log line here, once, whoever caused
//! it (kubelet through [`crate::csi::node`], or the refresh loop). Metric
//! labels come from closed sets ([`crate::publish::Reason`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::apiclient::LazyClient;
use crate::events::{self, Events};
use crate::metrics::Metrics;
use crate::publish::{Error, Failure, Outcome, Reason};
use crate::status::PodRef;

/// Records results.
pub struct Reporter {
    metrics: Arc<Metrics>,
    kube: LazyClient,
    node_id: String,
    events: OnceCell<Events>,
}

impl Reporter {
    /// A reporter for this node.
    pub fn new(metrics: Arc<Metrics>, kube: LazyClient, node_id: impl Into<String>) -> Self {
        Self {
            metrics,
            kube,
            node_id: node_id.into(),
            events: OnceCell::new(),
        }
    }

    async fn event(&self, pod: &PodRef, warning: bool, reason: &str, note: String) {
        let Ok(client) = self.kube.get().await else {
            return;
        };
        let events = self
            .events
            .get_or_init(|| async { Events::new(client.clone(), &self.node_id) })
            .await;
        if warning {
            events.warning(pod, reason, note).await;
        } else {
            events.normal(pod, reason, note).await;
        }
    }

    /// Records one publish or refresh. `pod` is known once the request
    /// was valid; `took` is the whole call.
    pub async fn publish(
        &self,
        pod: Option<&PodRef>,
        class: &str,
        result: &Result<Outcome, Failure>,
        took: Duration,
    ) {
        match result {
            Ok(Outcome::Published { provider }) => {
                self.metrics.publish_ok(provider, took);
                tracing::info!(provider, "volume published");
            }
            Ok(Outcome::Unchanged { .. }) => {
                tracing::debug!("volume already published, no refresh due")
            }
            Ok(Outcome::Refreshed {
                provider,
                changed,
                took,
            }) => {
                self.metrics.rotation(provider, *changed, *took);
                tracing::info!(provider, changed, "volume refreshed");
                if let (true, Some(pod)) = (*changed, pod) {
                    let note = format!(
                        "the content of the volume for SecretProviderClass {class} was refreshed"
                    );
                    self.event(pod, false, events::MOUNT_ROTATION_COMPLETE, note)
                        .await;
                }
            }
            Ok(Outcome::RefreshFailed { provider, error }) => {
                let reason = error.reason().as_str();
                self.metrics.rotation_error(provider, reason);
                tracing::warn!(provider, error = %error, reason, "refresh failed, keeping the current content");
                if let Some(pod) = pod {
                    let note = format!(
                        "refreshing the content of the volume for SecretProviderClass {class} failed, the previous content is kept: {error}"
                    );
                    self.event(pod, true, events::MOUNT_ROTATION_FAILED, note)
                        .await;
                }
            }
            Err(Failure { provider, error }) => {
                if error.reason() != Reason::OperationInProgress {
                    self.metrics
                        .publish_error(provider, error.reason().as_str());
                }
                log_failure(error, "publish");
            }
        }
    }

    /// Records one unpublish.
    pub fn unpublish(&self, result: &Result<(), Error>) {
        match result {
            Ok(()) => {
                self.metrics.unpublish(true);
                tracing::info!("volume unpublished");
            }
            Err(error) => {
                if error.reason() != Reason::OperationInProgress {
                    self.metrics.unpublish(false);
                }
                log_failure(error, "unpublish");
            }
        }
    }
}

/// Logs a failure at a level chosen by who is at fault.
fn log_failure(e: &Error, what: &str) {
    use tonic::Code::*;
    let reason = e.reason().as_str();
    match e.code() {
        InvalidArgument | NotFound | FailedPrecondition | Aborted => {
            tracing::info!(error = %e, reason, "{what} failed")
        }
        _ => tracing::error!(error = %e, reason, "{what} failed"),
    }
}
