//! The node-scoped secret sync controller: a kube-runtime `Controller` over
//! the SecretProviderClassPodStatus objects labelled with this node (all
//! namespaces), so memory is bounded by this node's volumes; no Secret or
//! Pod watch. One pass per object: check the status against the pod, read
//! the class, read the files through [`MountedFiles`], write the Secrets.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use secrets_store_crds::NODE_NAME_LABEL;
use secrets_store_crds::v1::SecretProviderClassPodStatus;
use tokio::sync::mpsc;

use super::files::{Files, MountedFiles, VolumeClaim};
use super::report::{self, Pass, SecretResult, Skip, Synced};
use super::{Error, secret, write};
use crate::config::Config;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::provider::ProviderName;
use crate::provider::dirs::find_socket;
use crate::status::PodRef;

type Spcps = SecretProviderClassPodStatus;

/// Pending immediate passes; beyond this, requests are dropped and the
/// periodic resync catches up.
const TRIGGER_CAPACITY: usize = 1024;
/// First retry delay after a failed pass.
const MIN_RETRY: Duration = Duration::from_secs(1);
/// Longest retry delay (shorter when the resync interval is).
const MAX_RETRY: Duration = Duration::from_secs(300);
/// Passes that run at the same time.
const CONCURRENCY: u16 = 4;

/// What the controller needs to know about the driver.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// This node's name (the status objects' node label).
    pub node_id: String,
    /// This driver's name (pod volumes must use it).
    pub driver_name: String,
    /// Provider socket directories (a provider label is only reported for
    /// a provider installed here).
    pub provider_dirs: Vec<PathBuf>,
    /// Interval of the periodic resync of every volume.
    pub resync: Duration,
    /// Where classes are read (the publish path's watch-fed cache, or
    /// `Default`: a GET each time).
    pub classes: crate::spc::Cache,
}

impl SyncConfig {
    /// From the driver's configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            node_id: config.node_id.clone(),
            driver_name: config.driver_name.clone(),
            provider_dirs: config.provider_dirs.clone(),
            resync: config.secret_sync_resync_interval,
            classes: crate::spc::Cache::default(),
        }
    }
}

/// Asks the controller for an immediate pass over one volume (after the
/// publish path wrote or changed its files). Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    tx: Option<mpsc::Sender<ObjectRef<Spcps>>>,
}

impl SyncHandle {
    /// A handle that goes nowhere (no controller runs).
    pub fn disconnected() -> Self {
        Self { tx: None }
    }

    /// The status object `namespace/name` (named by
    /// [`secrets_store_crds::spcps_name`]) or its files changed.
    pub fn changed(&self, namespace: &str, name: &str) {
        let Some(tx) = &self.tx else { return };
        let key = ObjectRef::new(name).within(namespace);
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(key) {
            tracing::debug!(
                namespace,
                name,
                "sync trigger queue full; the resync will catch up"
            );
        }
    }
}

/// The receiving end of [`SyncHandle`]s, consumed by [`run`].
#[derive(Debug)]
pub struct Trigger(mpsc::Receiver<ObjectRef<Spcps>>);

/// A connected handle and trigger.
pub fn trigger() -> (SyncHandle, Trigger) {
    let (tx, rx) = mpsc::channel(TRIGGER_CAPACITY);
    (SyncHandle { tx: Some(tx) }, Trigger(rx))
}

/// Runs the controller until the watch ends (it retries by itself).
pub async fn run(
    client: kube::Client,
    config: SyncConfig,
    files: Arc<dyn MountedFiles>,
    metrics: Arc<Metrics>,
    trigger: Trigger,
) {
    let selector = format!("{NODE_NAME_LABEL}={}", config.node_id);
    let watch = watcher::Config::default().labels(&selector).any_semantic();
    // One object per volume on this node: `managedFields` (a JSON tree per
    // writer, the largest part of a stored status) are dropped first.
    let (reader, writer) = reflector::store();
    let objects = watcher(Api::<Spcps>::all(client.clone()), watch)
        .default_backoff()
        .modify(|s| s.metadata.managed_fields = None)
        .reflect(writer)
        .applied_objects();
    let ctl = Controller::for_stream(objects, reader)
        .with_config(controller::Config::default().concurrency(CONCURRENCY))
        .reconcile_on(tokio_stream::wrappers::ReceiverStream::new(trigger.0));
    tracing::info!(node = %config.node_id, resync = ?config.resync, "secret sync controller started");
    let ctx = Arc::new(Context {
        events: Events::new(client.clone(), &config.node_id),
        client,
        config,
        files,
        metrics,
        store: ctl.store(),
        memory: Mutex::default(),
    });
    ctl.run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(controller::Error::ObjectNotFound(key)) => {
                    tracing::debug!(object = %key, "sync trigger for an object not on this node");
                }
                Err(e) => tracing::warn!(error = %e, "secret sync controller: watch failed"),
            }
        })
        .await;
}

/// Shared state of all passes.
struct Context {
    client: kube::Client,
    config: SyncConfig,
    files: Arc<dyn MountedFiles>,
    metrics: Arc<Metrics>,
    events: Events,
    store: Store<Spcps>,
    memory: Mutex<HashMap<ObjectRef<Spcps>, Memory>>,
}

/// What the controller remembers of one volume between passes.
#[derive(Default)]
struct Memory {
    /// Digest of the files of the last successful pass.
    digest: Option<u64>,
    /// Retry delays since the last success (boxed: most volumes never
    /// fail, and every entry of the map is as large as its largest value).
    retry: Option<Box<ExponentialBackoff>>,
}

impl Context {
    fn memory<T>(&self, key: &ObjectRef<Spcps>, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut all = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() > 2 * self.store.len() + 16 {
            all.retain(|k, _| self.store.get(k).is_some());
        }
        f(all.entry(key.clone()).or_default())
    }

    /// The result of a pass as the controller's result; a success resets
    /// the retry delays and remembers the files' digest.
    fn settle(&self, key: &ObjectRef<Spcps>, pass: Pass) -> Result<Action, Error> {
        let (digest, error) = match pass {
            Pass::Skipped(_) => (None, None),
            Pass::Failed { error, .. } => (None, Some(error)),
            Pass::Synced(s) => (
                Some(s.digest),
                s.secrets.into_iter().find_map(|r| r.result.err()),
            ),
        };
        match error {
            Some(e) => Err(e),
            None => {
                self.succeeded(key, digest);
                Ok(Action::requeue(self.config.resync))
            }
        }
    }

    /// A successful pass: the retry delays are reset; a volume with nothing
    /// to remember (no files read, e.g. a class without `secretObjects`)
    /// keeps no entry.
    fn succeeded(&self, key: &ObjectRef<Spcps>, digest: Option<u64>) {
        let known = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .and_then(|m| m.digest);
        match digest.or(known) {
            Some(d) => self.memory(key, |m| {
                m.retry = None;
                m.digest = Some(d);
            }),
            None => {
                self.memory
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(key);
            }
        }
    }

    /// The next retry delay of `key` (see [`retry_delays`]).
    fn next_retry(&self, key: &ObjectRef<Spcps>) -> Duration {
        let cap = retry_cap(self.config.resync);
        self.memory(key, |m| {
            let delays = m.retry.get_or_insert_with(|| Box::new(retry_delays(cap)));
            delays.next().unwrap_or(cap).min(cap)
        })
    }
}

/// Longest retry delay: the resync interval, within [`MIN_RETRY`] and [`MAX_RETRY`].
fn retry_cap(resync: Duration) -> Duration {
    resync.clamp(MIN_RETRY, MAX_RETRY)
}

/// Retry delays after consecutive failures: exponential from [`MIN_RETRY`],
/// with jitter (callers cap each at `cap`).
fn retry_delays(cap: Duration) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(MIN_RETRY)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
}

async fn reconcile(obj: Arc<Spcps>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(&*obj);
    let started = Instant::now();
    let pass = sync_volume(&obj, &key, &ctx).await;
    report::record(&ctx.metrics, &ctx.events, &key, &pass, started.elapsed()).await;
    ctx.settle(&key, pass)
}

fn error_policy(obj: Arc<Spcps>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.next_retry(&ObjectRef::from_obj(&*obj)))
}

/// One pass over one volume.
async fn sync_volume(obj: &Spcps, key: &ObjectRef<Spcps>, ctx: &Context) -> Pass {
    let Some(claim) = claim(obj) else {
        return Pass::Skipped(Skip::NoStatus);
    };
    // The class first: without secretObjects there is nothing to write, and
    // the pod need not be read (one request per publish saved).
    let class = ctx
        .config
        .classes
        .object(&ctx.client, &claim.namespace, &claim.class)
        .await;
    if class
        .as_ref()
        .is_ok_and(|c| c.spec.secret_objects.is_empty())
    {
        return Pass::Skipped(Skip::NoSecretObjects);
    }
    let (pod, owners) = match checked_pod(ctx, &claim).await {
        Ok(Ok(pod)) => (PodRef::from(&claim), write::owners(&pod, obj)),
        Ok(Err(skip)) => return Pass::Skipped(skip),
        Err(error) => return Pass::Failed { pod: None, error },
    };
    let class = match class {
        Ok(class) => class,
        Err(source) => {
            let error = Error::Class {
                namespace: claim.namespace.clone(),
                name: claim.class.clone(),
                source,
            };
            return Pass::Failed {
                pod: Some(pod),
                error,
            };
        }
    };
    let files = match read_files(ctx, &claim).await {
        Ok(Some(files)) => files,
        Ok(None) => return Pass::Skipped(Skip::NotPublished),
        Err(error) => {
            return Pass::Failed {
                pod: Some(pod),
                error,
            };
        }
    };
    let digest = report::digest(&files);
    let rotated = ctx.memory(key, |m| m.digest.is_some_and(|d| d != digest));
    let mut secrets = Vec::with_capacity(class.spec.secret_objects.len());
    for (index, object) in class.spec.secret_objects.iter().enumerate() {
        let started = Instant::now();
        let result = match secret::build(index, object, &files) {
            Ok(desired) => write::write(&ctx.client, &pod, &owners, object, &desired)
                .await
                .map(|change| (desired.name, change)),
            Err(e) => Err(e),
        };
        let (name, result) = match result {
            Ok((name, change)) => (name, Ok(change)),
            Err(e) => (object.secret_name.trim().to_string(), Err(e)),
        };
        secrets.push(SecretResult {
            name,
            took: started.elapsed(),
            result,
        });
    }
    Pass::Synced(Synced {
        pod,
        class: claim.class,
        provider: provider_label(&class.spec.provider, &ctx.config.provider_dirs),
        rotated,
        digest,
        secrets,
    })
}

/// The volume a status object claims: its namespace, `status.podName`, the
/// uid of its pod owner, `status.secretProviderClassName` and `status.targetPath`.
fn claim(obj: &Spcps) -> Option<VolumeClaim> {
    let status = obj.status.as_ref()?;
    let pod_uid = obj
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Pod" && o.api_version == "v1" && o.name == status.pod_name)?
        .uid
        .clone();
    let claim = VolumeClaim {
        namespace: obj.metadata.namespace.clone()?,
        pod_name: status.pod_name.clone(),
        pod_uid,
        class: status.secret_provider_class_name.clone(),
        target: status.target_path.clone(),
    };
    let complete = [&claim.pod_name, &claim.pod_uid, &claim.class, &claim.target]
        .iter()
        .all(|s| !s.is_empty());
    complete.then_some(claim)
}

/// The claimed pod, if it exists with the claimed uid, is still running,
/// and mounts the claimed class through this driver in the claimed volume.
async fn checked_pod(ctx: &Context, claim: &VolumeClaim) -> Result<Result<Pod, Skip>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &claim.namespace);
    let pod = pods
        .get_opt(&claim.pod_name)
        .await
        .map_err(|source| Error::Pod {
            namespace: claim.namespace.clone(),
            name: claim.pod_name.clone(),
            source,
        })?;
    let Some(pod) = pod else {
        return Ok(Err(Skip::PodGone));
    };
    if pod.metadata.uid.as_deref() != Some(claim.pod_uid.as_str()) {
        return Ok(Err(Skip::PodMismatch));
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if pod.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Succeeded" | "Failed")) {
        return Ok(Err(Skip::PodFinished));
    }
    if !mounts_class(&pod, &ctx.config.driver_name, claim) {
        return Ok(Err(Skip::NotMountedByPod));
    }
    Ok(Ok(pod))
}

impl From<&VolumeClaim> for PodRef {
    fn from(claim: &VolumeClaim) -> Self {
        PodRef {
            name: claim.pod_name.clone(),
            namespace: claim.namespace.clone(),
            uid: claim.pod_uid.clone(),
        }
    }
}

/// Whether `pod` has a CSI volume of `driver` for the claimed class, named
/// as the volume directory of the claimed target (`.../<volume>/mount`).
fn mounts_class(pod: &Pod, driver: &str, claim: &VolumeClaim) -> bool {
    let volume = Path::new(&claim.target).parent().and_then(Path::file_name);
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            volume == Some(OsStr::new(&v.name))
                && v.csi.as_ref().is_some_and(|csi| {
                    csi.driver == driver
                        && csi
                            .volume_attributes
                            .as_ref()
                            .and_then(|a| a.get("secretProviderClass"))
                            == Some(&claim.class)
                })
        })
}

async fn read_files(ctx: &Context, claim: &VolumeClaim) -> Result<Option<Files>, Error> {
    let files = ctx.files.clone();
    let owned = claim.clone();
    let read = tokio::task::spawn_blocking(move || files.files(&owned)).await;
    read.map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| Error::Files {
            target: claim.target.clone(),
            source,
        })
}

/// The metrics label for a class's provider: its name when that provider
/// is installed on this node, else empty (labels never take arbitrary
/// values from a class).
fn provider_label(provider: &str, dirs: &[PathBuf]) -> String {
    ProviderName::new(provider)
        .ok()
        .filter(|p| find_socket(dirs, p).is_some())
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{CSIVolumeSource, PodSpec, Volume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use secrets_store_crds::v1::SecretProviderClassPodStatusStatus;

    const TARGET: &str = "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount";

    fn status(owner: (&str, &str, &str)) -> Spcps {
        let mut obj = Spcps::default();
        obj.metadata.namespace = Some("ns".into());
        obj.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: owner.0.into(),
            name: owner.1.into(),
            uid: owner.2.into(),
            ..Default::default()
        }]);
        obj.status = Some(SecretProviderClassPodStatusStatus {
            pod_name: "web".into(),
            secret_provider_class_name: "db".into(),
            mounted: true,
            target_path: TARGET.into(),
            objects: vec![],
        });
        obj
    }

    #[test]
    fn a_claim_needs_the_pod_owner_named_in_the_status() {
        let got = claim_of(("Pod", "web", "u1")).expect("claim");
        assert_eq!(
            (
                got.namespace.as_str(),
                got.pod_name.as_str(),
                got.pod_uid.as_str()
            ),
            ("ns", "web", "u1")
        );
        assert_eq!((got.class.as_str(), got.target.as_str()), ("db", TARGET));
        for owner in [
            ("ReplicaSet", "web", "u1"),
            ("Pod", "other", "u1"),
            ("Pod", "web", ""),
        ] {
            assert_eq!(claim_of(owner), None, "{owner:?}");
        }
        let mut no_status = status(("Pod", "web", "u1"));
        no_status.status = None;
        assert_eq!(claim(&no_status), None);
    }

    fn claim_of(owner: (&str, &str, &str)) -> Option<VolumeClaim> {
        claim(&status(owner))
    }

    fn pod(volume: &str, driver: &str, class: &str) -> Pod {
        let csi = CSIVolumeSource {
            driver: driver.into(),
            volume_attributes: Some(
                [("secretProviderClass".to_string(), class.to_string())].into(),
            ),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: volume.into(),
                    csi: Some(csi),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_pod_must_mount_the_class_through_this_driver_in_that_volume() {
        let claim = claim_of(("Pod", "web", "u1")).expect("claim");
        let driver = "secrets-store.csi.k8s.io";
        assert!(mounts_class(&pod("secrets", driver, "db"), driver, &claim));
        assert!(!mounts_class(&pod("other", driver, "db"), driver, &claim));
        assert!(!mounts_class(
            &pod("secrets", "other.csi.k8s.io", "db"),
            driver,
            &claim
        ));
        assert!(!mounts_class(
            &pod("secrets", driver, "another"),
            driver,
            &claim
        ));
        assert!(!mounts_class(&Pod::default(), driver, &claim));
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_resync_interval() {
        assert_eq!(retry_cap(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(retry_cap(Duration::from_millis(10)), MIN_RETRY);
        assert_eq!(retry_cap(Duration::from_secs(3600)), MAX_RETRY);
        let cap = Duration::from_secs(60);
        let delays: Vec<Duration> = retry_delays(cap).take(12).map(|d| d.min(cap)).collect();
        assert!(
            (MIN_RETRY..=2 * MIN_RETRY).contains(&delays[0]),
            "{delays:?}"
        );
        assert!(delays[3] >= Duration::from_secs(8), "{delays:?}");
        assert_eq!(delays[11], cap, "{delays:?}");
    }

    #[test]
    fn provider_labels_only_name_installed_providers() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("vault.sock"), "").expect("touch");
        let dirs = vec![dir.path().to_path_buf()];
        assert_eq!(provider_label("vault", &dirs), "vault");
        assert_eq!(provider_label("random-1234", &dirs), "");
        assert_eq!(provider_label("../vault", &dirs), "");
    }
}
