//! NodePublishVolume and NodeUnpublishVolume, as straight-line steps.
//!
//! Publish: validate → decide the mode from the mount table → read the
//! SecretProviderClass → mount a tmpfs (first mount) → ask the provider →
//! validate its answer → write the files atomically → record the
//! SecretProviderClassPodStatus → mark the volume complete.
//!
//! A volume counts as published only when the completion marker exists on
//! its tmpfs, so a publish interrupted at any step (even by `kill -9`) is
//! finished by kubelet's retry: a mounted target without the marker is
//! resumed, not reported as done. A failed first publish unmounts and
//! removes the target; a failed refresh keeps the last good content.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use secrets_store_atomic_writer::{AtomicWriter, Outcome, Ownership, Payload};
use secrets_store_crds::v1::SecretProviderClassObject;
use secrets_store_proto::provider::v1alpha1 as api;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::events::{self, Events};
use crate::metrics::Metrics;
use crate::mount::{self, Mounter, TmpfsOptions};
use crate::provider::{self, ProviderClients};
use crate::redact::Redacted;
use crate::spc;
use crate::status::{self, PodRef};
use crate::sync;

pub use secrets_store_proto::attributes::{
    POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS, SERVICE_ACCOUNT_TOKENS,
};

/// Marker written on the tmpfs once a publish has completed.
pub const PUBLISHED_MARKER: &str = "..secrets-store-published";
/// File permission sent to providers (JSON of 0644, as upstream).
const PERMISSION: &str = "420";

/// Why a publish or unpublish failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (kubelet or csi-sanity sent it wrong).
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// `volume_mount_group` is not a numeric group id.
    #[error("invalid volume_mount_group {0:?}: must be a numeric group id")]
    MountGroup(String),
    /// The volume attributes do not name a SecretProviderClass.
    #[error("secretProviderClass is not set")]
    NoClassName,
    /// kubelet did not send pod information.
    #[error("{0} missing in volume context; the CSIDriver object must set podInfoOnMount: true")]
    NoPodInfo(&'static str),
    /// No Kubernetes API configuration was found.
    #[error("no Kubernetes API configuration: {0}")]
    NoKubeConfig(String),
    /// The SecretProviderClass cannot be used.
    #[error(transparent)]
    Class(#[from] spc::Error),
    /// The target directory could not be prepared or removed.
    #[error("target path {path}: {source}")]
    TargetPath {
        /// Target path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Mounting or unmounting failed.
    #[error(transparent)]
    Mount(#[from] mount::Error),
    /// The provider could not be called.
    #[error("failed to mount secrets store objects for pod {pod}, err: {source}")]
    Provider {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: provider::Error,
    },
    /// The provider reported an error code.
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: mount request failed with provider error code {code}"
    )]
    ProviderCode {
        /// `namespace/name` of the pod.
        pod: String,
        /// The provider's code.
        code: String,
    },
    /// The provider's answer is unusable (bad paths, modes, no versions).
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: invalid provider response: {reason}"
    )]
    BadResponse {
        /// `namespace/name` of the pod.
        pod: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the files failed.
    #[error(
        "failed to mount secrets store objects for pod {pod}, err: failed to write files: {source}"
    )]
    Write {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: secrets_store_atomic_writer::Error,
    },
    /// The SecretProviderClassPodStatus could not be written.
    #[error("failed to create secret provider class pod status for pod {pod}, err: {source}")]
    Status {
        /// `namespace/name` of the pod.
        pod: String,
        /// Cause.
        source: kube::Error,
    },
    /// Another call for the same target is running.
    #[error("an operation for target {0} is already in progress")]
    InProgress(String),
}

impl Error {
    /// The gRPC code kubelet receives.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Error::InvalidArgument(_) | Error::MountGroup(_) | Error::NoClassName => {
                Code::InvalidArgument
            }
            Error::NoPodInfo(_) => Code::FailedPrecondition,
            Error::NoKubeConfig(_) => Code::Unavailable,
            Error::Class(spc::Error::NotFound { .. }) => Code::NotFound,
            Error::Class(spc::Error::Api { .. }) => Code::Unavailable,
            Error::Class(_) => Code::InvalidArgument,
            Error::TargetPath { .. } | Error::Mount(_) | Error::Write { .. } => Code::Internal,
            Error::Provider { source, .. } => match source {
                provider::Error::NotFound(_) | provider::Error::Unavailable { .. } => {
                    Code::Unavailable
                }
                provider::Error::Timeout(..) => Code::DeadlineExceeded,
                provider::Error::TooLarge(..) => Code::ResourceExhausted,
                provider::Error::Status { .. } => Code::Internal,
            },
            Error::ProviderCode { .. } => Code::FailedPrecondition,
            Error::BadResponse { .. } => Code::Internal,
            Error::Status { .. } => Code::Unavailable,
            Error::InProgress(_) => Code::Aborted,
        }
    }

    /// Upstream's error reason (metric label, event reason), or the
    /// provider's own code.
    pub fn reason(&self) -> &str {
        match self {
            Error::Class(spc::Error::NotFound { .. }) | Error::Class(spc::Error::Api { .. }) => {
                "SecretProviderClassNotFound"
            }
            Error::TargetPath { .. } => "FailedToEnsureMountPoint",
            Error::Mount(_) => "FailedToMount",
            Error::Provider {
                source: provider::Error::NotFound(_),
                ..
            } => "FailedToLookupProviderGRPCClient",
            Error::Provider { .. } | Error::BadResponse { .. } => "GRPCProviderError",
            Error::ProviderCode { code, .. } => code,
            Error::Write { .. } => "FileWriteError",
            _ => "",
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

/// A validated NodePublishVolume request.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Volume id.
    pub volume_id: String,
    /// Target directory.
    pub target: PathBuf,
    /// `readonly` as sent.
    pub readonly: bool,
    /// Volume context (attributes and pod info; may hold tokens).
    pub context: Redacted<BTreeMap<String, String>>,
    /// CSI secrets (nodePublishSecretRef data; may hold tokens).
    pub secrets: Redacted<BTreeMap<String, String>>,
    /// Group to own the files (VOLUME_MOUNT_GROUP).
    pub mount_group: Option<u32>,
}

impl PublishRequest {
    /// Validates the CSI request, in upstream's order and with its messages.
    pub fn from_csi(
        req: secrets_store_proto::csi::v1::NodePublishVolumeRequest,
    ) -> Result<Self, Error> {
        use secrets_store_proto::csi::v1::volume_capability::AccessType;
        let capability = req
            .volume_capability
            .as_ref()
            .ok_or(Error::InvalidArgument(
                "Volume capability missing in request",
            ))?;
        if req.volume_id.is_empty() {
            return Err(Error::InvalidArgument("Volume ID missing in request"));
        }
        if req.target_path.is_empty() {
            return Err(Error::InvalidArgument("Target path missing in request"));
        }
        if req.volume_context.is_empty() {
            return Err(Error::InvalidArgument(
                "Volume attributes missing in request",
            ));
        }
        let mount_group = match &capability.access_type {
            Some(AccessType::Mount(m)) if !m.volume_mount_group.is_empty() => Some(
                m.volume_mount_group
                    .parse::<u32>()
                    .map_err(|_| Error::MountGroup(m.volume_mount_group.clone()))?,
            ),
            Some(AccessType::Block(_)) => {
                return Err(Error::InvalidArgument(
                    "Block access is not supported; use a mount volume",
                ));
            }
            _ => None,
        };
        Ok(Self {
            volume_id: req.volume_id,
            target: PathBuf::from(req.target_path),
            readonly: req.readonly,
            context: Redacted(req.volume_context.into_iter().collect()),
            secrets: Redacted(req.secrets.into_iter().collect()),
            mount_group,
        })
    }

    fn context(&self, key: &'static str) -> Result<&str, Error> {
        self.context
            .expose()
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(Error::NoPodInfo(key))
    }
}

/// How the driver sees a target when a publish starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not mounted: mount, fill, record.
    First,
    /// Mounted but never completed (an interrupted publish): fill, record.
    Resume,
    /// Completed earlier; refresh the content (rotation).
    Refresh,
}

/// Driver settings the publish path needs.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// This node's name.
    pub node_id: String,
    /// Refresh mounted volumes on republish, at most once per interval.
    pub rotation: Option<Duration>,
    /// Kubeconfig file; empty means in-cluster or `$KUBECONFIG`.
    pub kubeconfig: String,
}

/// Publishes and unpublishes volumes.
pub struct Publisher {
    config: PublishConfig,
    mounter: Arc<dyn Mounter>,
    providers: Arc<ProviderClients>,
    metrics: Arc<Metrics>,
    kube: OnceCell<kube::Client>,
    events: OnceCell<Events>,
    in_flight: Mutex<HashSet<PathBuf>>,
}

/// Removes a target from the in-flight set when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<PathBuf>>,
    target: PathBuf,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.target);
    }
}

impl Publisher {
    /// A publisher; the Kubernetes client is created on first use, so the
    /// driver starts (and answers Probe) even without API access.
    pub fn new(
        config: PublishConfig,
        mounter: Arc<dyn Mounter>,
        providers: Arc<ProviderClients>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            config,
            mounter,
            providers,
            metrics,
            kube: OnceCell::new(),
            events: OnceCell::new(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// The Kubernetes client (created on first use).
    pub async fn client(&self) -> Result<&kube::Client, Error> {
        self.kube().await
    }

    async fn kube(&self) -> Result<&kube::Client, Error> {
        self.kube
            .get_or_try_init(|| async {
                let config = if self.config.kubeconfig.is_empty() {
                    kube::Config::infer()
                        .await
                        .map_err(|e| Error::NoKubeConfig(e.to_string()))?
                } else {
                    let kc = kube::config::Kubeconfig::read_from(&self.config.kubeconfig)
                        .map_err(|e| Error::NoKubeConfig(e.to_string()))?;
                    kube::Config::from_custom_kubeconfig(kc, &Default::default())
                        .await
                        .map_err(|e| Error::NoKubeConfig(e.to_string()))?
                };
                kube::Client::try_from(config).map_err(|e| Error::NoKubeConfig(e.to_string()))
            })
            .await
    }

    fn claim(&self, target: &Path) -> Result<InFlight<'_>, Error> {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(target.to_path_buf()) {
            return Err(Error::InProgress(target.display().to_string()));
        }
        Ok(InFlight {
            set: &self.in_flight,
            target: target.to_path_buf(),
        })
    }

    fn mode(&self, target: &Path) -> Result<Mode, Error> {
        if !self.mounter.is_mounted(target)? {
            return Ok(Mode::First);
        }
        if target.join(PUBLISHED_MARKER).exists() {
            Ok(Mode::Refresh)
        } else {
            Ok(Mode::Resume)
        }
    }

    /// NodePublishVolume, with its metrics.
    pub async fn publish(&self, req: PublishRequest) -> Result<(), Error> {
        let started = Instant::now();
        let mut provider = String::new();
        let result = self.publish_steps(req, &mut provider).await;
        match &result {
            Ok(()) => self.metrics.publish_ok(&provider, started.elapsed()),
            Err(e) => self.metrics.publish_error(&provider, e.reason()),
        }
        result
    }

    async fn publish_steps(
        &self,
        req: PublishRequest,
        provider_label: &mut String,
    ) -> Result<(), Error> {
        let _guard = self.claim(&req.target)?;
        let mode = self.mode(&req.target)?;
        if mode == Mode::Refresh && self.config.rotation.is_none() {
            tracing::debug!("already published");
            return Ok(());
        }
        let class_name = req
            .context
            .expose()
            .get(SECRET_PROVIDER_CLASS)
            .filter(|s| !s.is_empty())
            .cloned()
            .ok_or(Error::NoClassName)?;
        if !req.readonly {
            return Err(Error::InvalidArgument("Readonly is not true in request"));
        }
        let pod = PodRef {
            name: req.context(POD_NAME)?.to_string(),
            namespace: req.context(POD_NAMESPACE)?.to_string(),
            uid: req.context(POD_UID)?.to_string(),
        };
        let kube = self.kube().await?;
        let class = spc::get(kube, &pod.namespace, &class_name).await?;
        *provider_label = class.provider.to_string();
        let span = tracing::Span::current();
        span.record("provider", class.provider.as_str());

        let refresh = RefreshPolicy::of(&class, self.config.rotation);
        if mode == Mode::Refresh && !refresh.due(&req.target) {
            tracing::debug!("refreshed less than the rotation interval ago");
            return Ok(());
        }
        if mode == Mode::First {
            std::fs::DirBuilder::new()
                .recursive(true)
                .create(&req.target)
                .map_err(|source| Error::TargetPath {
                    path: req.target.display().to_string(),
                    source,
                })?;
            self.mounter.mount_tmpfs(
                &req.target,
                TmpfsOptions {
                    gid: req.mount_group,
                },
            )?;
        }
        let started = Instant::now();
        let result = self
            .fill(&req, &pod, &class, mode, &refresh)
            .instrument(span)
            .await;
        match (result, mode) {
            (Err(e), Mode::First | Mode::Resume) => {
                self.undo(&req.target);
                Err(e)
            }
            (Err(e), Mode::Refresh) => {
                // Keep the last good content; kubelet must not see the
                // volume as failed (kubernetes/kubernetes#121271).
                tracing::warn!(error = %e, reason = e.reason(), "refresh failed, keeping the current content");
                self.metrics.publish_error(provider_label, e.reason());
                self.metrics.rotation_error(provider_label, e.reason());
                self.event_warning(&pod, events::MOUNT_ROTATION_FAILED, format!(
                    "refreshing the content of volume for SecretProviderClass {class_name} failed, the previous content is kept: {e}"
                ))
                .await;
                Ok(())
            }
            (Ok(outcome), Mode::Refresh) => {
                let rotated = outcome == Outcome::Written;
                self.metrics
                    .rotation(provider_label, rotated, started.elapsed());
                if rotated {
                    self.event_normal(&pod, events::MOUNT_ROTATION_COMPLETE, format!(
                        "the content of the volume for SecretProviderClass {class_name} was refreshed"
                    ))
                    .await;
                }
                Ok(())
            }
            (Ok(_), _) => Ok(()),
        }
    }

    async fn events(&self) -> Option<&Events> {
        let kube = self.kube().await.ok()?;
        Some(
            self.events
                .get_or_init(|| async { Events::new(kube.clone(), &self.config.node_id) })
                .await,
        )
    }

    async fn event_normal(&self, pod: &PodRef, reason: &str, note: String) {
        if let Some(events) = self.events().await {
            events.normal(pod, reason, note).await;
        }
    }

    async fn event_warning(&self, pod: &PodRef, reason: &str, note: String) {
        if let Some(events) = self.events().await {
            events.warning(pod, reason, note).await;
        }
    }

    async fn fill(
        &self,
        req: &PublishRequest,
        pod: &PodRef,
        class: &spc::ProviderClass,
        mode: Mode,
        refresh: &RefreshPolicy,
    ) -> Result<Outcome, Error> {
        let pod_key = format!("{}/{}", pod.namespace, pod.name);
        let request = mount_request(req, &class.parameters);
        let response = self
            .providers
            .mount(&class.provider, request)
            .await
            .map_err(|source| Error::Provider {
                pod: pod_key.clone(),
                source,
            })?;
        if let Some(code) = response
            .error
            .as_ref()
            .map(|e| e.code.as_str())
            .filter(|c| !c.is_empty())
        {
            return Err(Error::ProviderCode {
                pod: pod_key,
                code: code.to_string(),
            });
        }
        if response.object_version.is_empty() {
            return Err(Error::BadResponse {
                pod: pod_key,
                reason: "missing object versions".into(),
            });
        }
        let mut payload = Payload::new();
        for f in response.files {
            payload
                .insert(&f.path, f.contents, i64::from(f.mode))
                .map_err(|e| Error::BadResponse {
                    pod: pod_key.clone(),
                    reason: e.to_string(),
                })?;
        }
        let outcome = if payload.is_empty() {
            tracing::info!(
                "provider returned no files; it is expected to have written them itself"
            );
            Outcome::Written
        } else {
            let writer = AtomicWriter::new(&req.target).with_ownership(Ownership {
                group: req.mount_group,
            });
            let outcome = writer.write(&payload).map_err(|source| Error::Write {
                pod: pod_key.clone(),
                source,
            })?;
            tracing::debug!(
                files = payload.len(),
                changed = (outcome == Outcome::Written),
                "files written"
            );
            outcome
        };
        let objects: Vec<SecretProviderClassObject> = response
            .object_version
            .into_iter()
            .map(|v| SecretProviderClassObject {
                id: v.id,
                version: v.version,
            })
            .collect();
        let kube = self.kube().await?;
        status::upsert(
            kube,
            pod,
            &class.name,
            &self.config.node_id,
            &req.target.display().to_string(),
            &objects,
        )
        .await
        .map_err(|source| Error::Status {
            pod: pod_key,
            source,
        })?;
        if !class.object.spec.secret_objects.is_empty() {
            let files = if payload.is_empty() {
                read_mounted_files(&req.target)
            } else {
                payload
                    .files()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.contents.clone()))
                    .collect()
            };
            self.sync_secrets(pod, class, &files, mode == Mode::Refresh)
                .await;
        }
        if mode != Mode::Refresh {
            save_volume(req)?;
        }
        mark_published(&req.target, refresh)?;
        Ok(outcome)
    }

    /// Syncs the class's `secretObjects`. A failure is reported (event,
    /// log) but does not fail the mount, as upstream's asynchronous sync.
    async fn sync_secrets(
        &self,
        pod: &PodRef,
        class: &spc::ProviderClass,
        files: &BTreeMap<String, Vec<u8>>,
        refresh: bool,
    ) {
        let Ok(kube) = self.kube().await else { return };
        for (index, object) in class.object.spec.secret_objects.iter().enumerate() {
            let started = Instant::now();
            let result = match sync::desired(index, object, files) {
                Ok((name, type_, data)) => sync::apply(kube, pod, object, &name, &type_, data)
                    .await
                    .map(|c| (name, c)),
                Err(e) => Err(e),
            };
            match result {
                Ok((name, change)) => {
                    self.metrics
                        .secret_synced(class.provider.as_str(), started.elapsed());
                    tracing::debug!(secret = %name, ?change, "secret synced");
                    if refresh && change == sync::Change::Updated {
                        self.event_normal(
                            pod,
                            events::SECRET_ROTATION_COMPLETE,
                            format!(
                                "secret {}/{name} was updated with the refreshed content",
                                pod.namespace
                            ),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "secret sync failed");
                    let reason = if refresh {
                        events::SECRET_ROTATION_FAILED
                    } else {
                        events::FAILED_TO_CREATE_SECRET
                    };
                    self.event_warning(
                        pod,
                        reason,
                        format!(
                            "failed to sync secretObjects of SecretProviderClass {}: {e}",
                            class.name
                        ),
                    )
                    .await;
                }
            }
        }
    }

    /// Unmounts and removes a target after a failed first publish.
    fn undo(&self, target: &Path) {
        if let Err(e) = self.unmount_all(target) {
            tracing::warn!(error = %e, "cleanup after failed publish: unmount failed");
            return;
        }
        if let Err(e) = remove_target(target) {
            tracing::warn!(error = %e, "cleanup after failed publish: remove failed");
        }
    }

    fn unmount_all(&self, target: &Path) -> Result<(), Error> {
        // Stacked mounts (from an older driver) are unmounted one by one.
        for _ in 0..8 {
            if !self.mounter.is_mounted(target)? {
                return Ok(());
            }
            self.mounter.unmount(target)?;
        }
        if self.mounter.is_mounted(target)? {
            return Err(Error::TargetPath {
                path: target.display().to_string(),
                source: std::io::Error::other("still mounted after 8 unmounts"),
            });
        }
        Ok(())
    }

    /// NodeUnpublishVolume: unmount and remove the target; a target that is
    /// already gone is success.
    pub async fn unpublish(&self, volume_id: &str, target: &str) -> Result<(), Error> {
        let result = self.unpublish_steps(volume_id, target);
        self.metrics.unpublish(result.is_ok());
        result
    }

    fn unpublish_steps(&self, volume_id: &str, target: &str) -> Result<(), Error> {
        if volume_id.is_empty() {
            return Err(Error::InvalidArgument("Volume ID missing in request"));
        }
        if target.is_empty() {
            return Err(Error::InvalidArgument("Target path missing in request"));
        }
        let target = Path::new(target);
        let _guard = self.claim(target)?;
        self.unmount_all(target)?;
        remove_target(target)
    }
}

/// The MountRequest upstream would build: parameters overlaid with the
/// volume context; tokens from `secrets` win over the context.
fn mount_request(req: &PublishRequest, parameters: &BTreeMap<String, String>) -> api::MountRequest {
    let mut attributes = parameters.clone();
    attributes.extend(
        req.context
            .expose()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if let Some(tokens) = req.secrets.expose().get(SERVICE_ACCOUNT_TOKENS) {
        attributes.insert(SERVICE_ACCOUNT_TOKENS.to_string(), tokens.clone());
    }
    let secrets = if req.secrets.expose().is_empty() {
        "null".to_string()
    } else {
        serde_json::to_string(req.secrets.expose()).unwrap_or_else(|_| "null".into())
    };
    api::MountRequest {
        attributes: serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into()),
        secrets,
        target_path: req.target.display().to_string(),
        permission: PERMISSION.to_string(),
        current_object_version: Vec::new(),
    }
}

/// SecretProviderClass annotation: minimum refresh interval for volumes of
/// this class (Go duration), overriding `--rotation-poll-interval`.
pub const REFRESH_INTERVAL_ANNOTATION: &str = "secrets-store.csi.k8s.io/rotation-poll-interval";
/// SecretProviderClass annotation: any change of its value makes the next
/// republish refresh at once, whatever the interval.
pub const REFRESH_TRIGGER_ANNOTATION: &str = "secrets-store.csi.k8s.io/refresh-trigger";

/// When a mounted volume of one class is due for a refresh.
#[derive(Debug, Clone)]
struct RefreshPolicy {
    interval: Duration,
    trigger: String,
}

impl RefreshPolicy {
    fn of(class: &spc::ProviderClass, default: Option<Duration>) -> Self {
        let annotations = class
            .object
            .metadata
            .annotations
            .clone()
            .unwrap_or_default();
        let interval = annotations
            .get(REFRESH_INTERVAL_ANNOTATION)
            .and_then(|v| match crate::config::parse_duration(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring annotation {REFRESH_INTERVAL_ANNOTATION}");
                    None
                }
            })
            .or(default)
            .unwrap_or(Duration::MAX);
        let trigger = annotations
            .get(REFRESH_TRIGGER_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        Self { interval, trigger }
    }

    /// Due when the trigger changed since the last refresh, or the interval
    /// has passed since it.
    fn due(&self, target: &Path) -> bool {
        let marker = target.join(PUBLISHED_MARKER);
        let last_trigger = std::fs::read_to_string(&marker).unwrap_or_default();
        if last_trigger != self.trigger {
            return true;
        }
        let age = std::fs::metadata(&marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        age.is_none_or(|age| age >= self.interval)
    }
}

/// Writes the completion marker; it records the refresh trigger seen, and
/// its mtime is the time of the last successful refresh.
fn mark_published(target: &Path, refresh: &RefreshPolicy) -> Result<(), Error> {
    let path = target.join(PUBLISHED_MARKER);
    let err = |source| Error::TargetPath {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&path, refresh.trigger.as_bytes()).map_err(err)?;
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .map_err(err)
}

/// Hidden file on the tmpfs holding what a refresh without kubelet needs
/// to rebuild the request: volume id, readonly, mount group and the volume
/// context without tokens (owner-only mode; no secret material).
pub const VOLUME_FILE: &str = "..secrets-store-volume.json";

/// The non-secret part of a publish request, saved on the tmpfs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedVolume {
    /// Volume id.
    pub volume_id: String,
    /// `readonly` as sent.
    pub readonly: bool,
    /// Group owning the files.
    pub mount_group: Option<u32>,
    /// Volume context without service-account tokens.
    pub context: BTreeMap<String, String>,
}

impl SavedVolume {
    /// Reads the saved request of a published target.
    pub fn load(target: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(target.join(VOLUME_FILE)).ok()?).ok()
    }

    /// A publish request for a refresh, with freshly obtained `secrets`
    /// (nodePublishSecretRef data) and `tokens` (JSON, if any).
    pub fn request(
        &self,
        target: &Path,
        secrets: BTreeMap<String, String>,
        tokens: Option<String>,
    ) -> PublishRequest {
        let mut context = self.context.clone();
        if let Some(tokens) = tokens {
            context.insert(SERVICE_ACCOUNT_TOKENS.to_string(), tokens);
        }
        PublishRequest {
            volume_id: self.volume_id.clone(),
            target: target.to_path_buf(),
            readonly: self.readonly,
            context: Redacted(context),
            secrets: Redacted(secrets),
            mount_group: self.mount_group,
        }
    }
}

fn save_volume(req: &PublishRequest) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut context = req.context.expose().clone();
    context.remove(SERVICE_ACCOUNT_TOKENS);
    let saved = SavedVolume {
        volume_id: req.volume_id.clone(),
        readonly: req.readonly,
        mount_group: req.mount_group,
        context,
    };
    let path = req.target.join(VOLUME_FILE);
    let err = |source| Error::TargetPath {
        path: path.display().to_string(),
        source,
    };
    let body = serde_json::to_vec(&saved).map_err(|e| err(std::io::Error::other(e)))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&body))
        .map_err(err)
}

/// Files a provider wrote into the target itself (legacy providers), by
/// relative path, skipping the writer's and driver's `..` entries.
fn read_mounted_files(target: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![target.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if dir == target && entry.file_name().to_string_lossy().starts_with("..") {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) if m.is_file() => {
                    if let (Ok(rel), Ok(contents)) =
                        (path.strip_prefix(target), std::fs::read(&path))
                    {
                        out.insert(rel.to_string_lossy().into_owned(), contents);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn remove_target(target: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::TargetPath {
            path: target.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
