//! NodePublishVolume and NodeUnpublishVolume as a pipeline of typed steps.
//!
//! - [`request`]: the CSI request validated into types (target path rules
//!   included) before anything is touched;
//! - mode: the target's mount state and the driver's record
//!   ([`crate::volume`]) decide *first* (not mounted), *resume* (mounted,
//!   never completed: an interrupted publish, or a volume of an older
//!   driver) or *refresh* (completed; a no-op unless rotation is on and the
//!   class's [`policy`] says it is due);
//! - the SecretProviderClass ([`crate::spc`]), the tmpfs ([`crate::mount`]),
//!   the provider call and the check of its answer ([`response`]), the
//!   atomic write, the SecretProviderClassPodStatus ([`crate::status`]) and
//!   the volume record, in that order.
//!
//! Each call returns an [`Outcome`] or a [`Failure`]; metrics, events and
//! the log line are recorded once, by the caller ([`crate::report`]).
//! Filesystem and mount work runs on the blocking pool, never on the async
//! worker threads. A failed first publish unmounts and removes the target;
//! a failed refresh keeps the last good content.

pub mod error;
pub mod policy;
pub mod request;
pub mod response;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrets_store_atomic_writer::{AtomicWriter, Outcome as WriteOutcome, Ownership, Payload};

pub use error::{Error, Reason};
pub use policy::{
    Intervals, REFRESH_INTERVAL_ANNOTATION, REFRESH_TRIGGER_ANNOTATION, RefreshPolicy,
};
pub use request::{PublishRequest, UnpublishRequest};

use crate::apiclient::LazyClient;
use crate::mount::{Mounter, TmpfsOptions};
use crate::provider::ProviderClients;
use crate::spc::{self, ProviderClass};
use crate::status::{self, PodRef, StatusJob, StatusWriter};
use crate::sync::SyncHandle;
use crate::target::{self, Target};
use crate::volume::{Phase, RECORD_VERSION, Store, VolumeRecord};
use secrets_store_crds::spcps_name;

/// Files an older driver kept on the tmpfs; removed when such a volume is
/// resumed (the state now lives in the state directory).
const LEGACY_FILES: [&str; 2] = ["..secrets-store-published", "..secrets-store-volume.json"];

/// How the driver finds a target when a publish starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not mounted: mount, fill, record.
    First,
    /// Mounted but never completed: fill, record.
    Resume,
    /// Completed earlier: refresh the content if due.
    Refresh,
}

impl Mode {
    /// The mode for a target's mount state and record.
    pub fn of(mounted: bool, record: Option<&VolumeRecord>) -> Self {
        match (mounted, record.map(|r| r.phase)) {
            (false, _) => Mode::First,
            (true, Some(Phase::Published)) => Mode::Refresh,
            (true, _) => Mode::Resume,
        }
    }
}

/// What a publish did.
#[derive(Debug)]
pub enum Outcome {
    /// A first (or resumed) publish completed.
    Published {
        /// Provider of the class.
        provider: String,
    },
    /// Already published and no refresh due: nothing done.
    Unchanged {
        /// Provider recorded for the volume.
        provider: String,
    },
    /// A refresh ran; `changed` when the content differed.
    Refreshed {
        /// Provider of the class.
        provider: String,
        /// Whether the files changed.
        changed: bool,
        /// How long the refresh took.
        took: Duration,
    },
    /// A refresh failed; the last good content stays and kubelet sees success.
    RefreshFailed {
        /// Provider of the class.
        provider: String,
        /// Why.
        error: Error,
    },
}

/// A failed publish, with the class's provider when it was known.
#[derive(Debug)]
pub struct Failure {
    /// Provider (empty before the class was read).
    pub provider: String,
    /// Why.
    pub error: Error,
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            provider: String::new(),
            error: e.into(),
        }
    }
}

/// Driver settings the publish path needs.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// This node's name.
    pub node_id: String,
    /// Refresh on republish (`--enable-secret-rotation`).
    pub rotation: bool,
    /// Refresh intervals.
    pub intervals: Intervals,
    /// `size=` of each tmpfs.
    pub tmpfs_size: u64,
}

/// Publishes and unpublishes volumes.
pub struct Publisher {
    config: PublishConfig,
    rules: target::Rules,
    mounter: Arc<dyn Mounter>,
    providers: Arc<ProviderClients>,
    store: Store,
    kube: LazyClient,
    classes: spc::Cache,
    sync: SyncHandle,
    status: StatusWriter,
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

/// Runs blocking filesystem or mount work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

impl Publisher {
    /// A publisher over its collaborators.
    pub fn new(
        config: PublishConfig,
        rules: target::Rules,
        mounter: Arc<dyn Mounter>,
        providers: Arc<ProviderClients>,
        store: Store,
        kube: LazyClient,
    ) -> Self {
        let status = StatusWriter::new(kube.clone(), store.clone(), config.node_id.clone());
        Self {
            config,
            rules,
            mounter,
            providers,
            store,
            kube,
            status,
            classes: spc::Cache::default(),
            sync: SyncHandle::disconnected(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// Asks the secret sync controller for a pass after each fill (it
    /// also sees the SecretProviderClassPodStatus change through its watch;
    /// this covers content that changed under unchanged versions).
    pub fn with_sync(mut self, sync: SyncHandle) -> Self {
        self.sync = sync;
        self
    }

    /// Reads SecretProviderClasses through `classes` (a watch-fed cache)
    /// rather than a GET on every publish.
    pub fn with_classes(mut self, classes: spc::Cache) -> Self {
        self.classes = classes;
        self
    }

    /// The target path rules.
    pub fn rules(&self) -> &target::Rules {
        &self.rules
    }

    /// The volume state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The background SecretProviderClassPodStatus writer.
    pub fn status_writer(&self) -> &StatusWriter {
        &self.status
    }

    /// After a restart: notes what this node's status objects hold (one
    /// LIST) and resubmits the status writes a previous run left pending
    /// (mounted volumes whose record asks for a status no object holds).
    /// Returns how many; without a listing every pending one is resubmitted.
    pub async fn reconcile_status(&self) -> Result<usize, Error> {
        let (mounter, store, rules) =
            (self.mounter.clone(), self.store.clone(), self.rules.clone());
        let volumes = blocking(move || {
            let mut out = store.list(&rules)?;
            out.retain(|(target, _)| mounter.is_mounted(target).unwrap_or(false));
            Ok(out)
        })
        .await?;
        if volumes.is_empty() {
            return Ok(0);
        }
        let listed = match self.client().await {
            Ok(client) => status::list_node(client, &self.config.node_id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let listed = listed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "status objects not listed; every pending status is rewritten");
            Vec::new()
        });
        Ok(self.status.reconcile(volumes, &listed))
    }

    /// The Kubernetes client.
    pub async fn client(&self) -> Result<&kube::Client, Error> {
        self.kube
            .get()
            .await
            .map_err(|e| Error::NoKubeConfig(e.to_string()))
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

    /// Whether the target is mounted and the driver's record of it; when it
    /// is not mounted and `mount` is given, also creates and mounts it (one
    /// trip to the blocking pool). Returns whether it mounted.
    async fn inspect(
        &self,
        target: &Target,
        mount: Option<TmpfsOptions>,
    ) -> Result<(bool, Option<VolumeRecord>, bool), Error> {
        let (mounter, store, target) = (self.mounter.clone(), self.store.clone(), target.clone());
        blocking(move || {
            let mounted = mounter.is_mounted(&target)?;
            let record = store.load(&target)?;
            let prepared = match mount {
                Some(options) if !mounted => {
                    mount_new(mounter.as_ref(), &target, options)?;
                    true
                }
                _ => false,
            };
            Ok((mounted, record, prepared))
        })
        .await
    }

    fn tmpfs_options(&self, req: &PublishRequest) -> TmpfsOptions {
        TmpfsOptions {
            gid: req.mount_group,
            size: self.config.tmpfs_size,
        }
    }

    /// NodePublishVolume (and the refresh loop's refreshes).
    pub async fn publish(&self, req: PublishRequest) -> Result<Outcome, Failure> {
        let _guard = self.claim(req.target.path())?;
        // A class the watch holds is known without a request, so a first
        // publish can mount in the same blocking trip as the inspection.
        let early = spc::cached(&self.classes, &req.pod.namespace, &req.class);
        let mount = early.as_ref().map(|_| self.tmpfs_options(&req));
        let (mounted, record, prepared) =
            self.inspect(&req.target, mount)
                .await
                .map_err(|error| Failure {
                    provider: early
                        .as_ref()
                        .map(|c| c.provider.to_string())
                        .unwrap_or_default(),
                    error,
                })?;
        let mode = Mode::of(mounted, record.as_ref());
        if mode == Mode::Refresh && !self.config.rotation {
            let provider = record.map(|r| r.provider).unwrap_or_default();
            return Ok(Outcome::Unchanged { provider });
        }
        let class = match early {
            Some(class) => class,
            None => {
                let kube = self.client().await?;
                spc::get(kube, &self.classes, &req.pod.namespace, &req.class).await?
            }
        };
        let provider = class.provider.to_string();
        let policy = RefreshPolicy::of(&class, self.config.intervals);
        let now = policy::now();
        if let (Mode::Refresh, Some(record)) = (mode, &record)
            && !policy.due(record, now)
        {
            return Ok(Outcome::Unchanged { provider });
        }
        if mode == Mode::First && !prepared {
            self.prepare(&req).await.map_err(|error| Failure {
                provider: provider.clone(),
                error,
            })?;
        }
        let started = Instant::now();
        let filled = self.fill(&req, &class, &policy, mode, record, now).await;
        match (filled, mode) {
            (Ok(changed), Mode::Refresh) => Ok(Outcome::Refreshed {
                provider,
                changed,
                took: started.elapsed(),
            }),
            (Ok(_), _) => Ok(Outcome::Published { provider }),
            (Err(error), Mode::Refresh) => Ok(Outcome::RefreshFailed { provider, error }),
            (Err(error), _) => {
                self.undo(&req.target).await;
                Err(Failure { provider, error })
            }
        }
    }

    /// Creates the target directory and mounts a bounded tmpfs on it.
    async fn prepare(&self, req: &PublishRequest) -> Result<(), Error> {
        let (mounter, target) = (self.mounter.clone(), req.target.clone());
        let options = self.tmpfs_options(req);
        blocking(move || mount_new(mounter.as_ref(), &target, options)).await
    }

    /// Asks the provider, writes the files, records status and state
    /// (`previous`: the record loaded before). Returns whether the files
    /// changed.
    async fn fill(
        &self,
        req: &PublishRequest,
        class: &ProviderClass,
        policy: &RefreshPolicy,
        mode: Mode,
        previous: Option<VolumeRecord>,
        now: u64,
    ) -> Result<bool, Error> {
        let pod = req.pod_key();
        let response = self
            .providers
            .mount(
                &class.provider,
                response::mount_request(req, &class.parameters),
            )
            .await
            .map_err(|source| Error::Provider {
                pod: pod.clone(),
                source,
            })?;
        let checked = response::check(response).map_err(|source| match source {
            response::ResponseError::Code(code) => Error::ProviderCode {
                pod: pod.clone(),
                code,
            },
            source => Error::BadResponse {
                pod: pod.clone(),
                source,
            },
        })?;
        let mut objects = checked.objects;
        objects.sort();
        let record = VolumeRecord {
            version: RECORD_VERSION,
            target: req.target.path().display().to_string(),
            volume_id: req.volume_id.clone(),
            pod: req.pod.clone(),
            class: class.name.clone(),
            provider: class.provider.to_string(),
            mount_group: req.mount_group,
            context: req.context_without_tokens(),
            phase: Phase::Published,
            refreshed_at_ms: now,
            trigger: policy.trigger.clone(),
            status_pending: Some(objects.clone()),
        };
        let (changed, pending) = self
            .write(req, checked.payload, mode == Mode::Resume, record, previous)
            .await?;
        // The record says the status is pending (unless the status object
        // already holds it); the writer writes it (ARCHITECTURE.md,
        // "Publish cost").
        if pending {
            self.submit_status(req, class, &objects, mode);
        }
        if changed && !class.object.spec.secret_objects.is_empty() {
            let spcps = spcps_name(&req.pod.name, &req.pod.namespace, &class.name);
            self.sync.changed(&req.pod.namespace, &spcps);
        }
        Ok(changed)
    }

    /// Hands the volume's status to the background writer.
    fn submit_status(
        &self,
        req: &PublishRequest,
        class: &ProviderClass,
        objects: &[secrets_store_crds::v1::SecretProviderClassObject],
        mode: Mode,
    ) {
        self.status.submit(
            &req.target,
            StatusJob {
                pod: PodRef::from(&req.pod),
                class: class.name.clone(),
                objects: objects.to_vec(),
                expect: match mode {
                    Mode::Refresh => status::Expect::Existing,
                    Mode::First | Mode::Resume => status::Expect::New,
                },
            },
        );
    }

    /// Writes the payload atomically, then saves the volume's record
    /// (`Store::save_fill` over the previous one), in one trip to the
    /// blocking pool. An empty payload means the provider wrote the files
    /// itself (legacy mode). Returns whether the files changed and whether
    /// the status is still to be written.
    async fn write(
        &self,
        req: &PublishRequest,
        payload: Payload,
        resume: bool,
        record: VolumeRecord,
        previous: Option<VolumeRecord>,
    ) -> Result<(bool, bool), Error> {
        let (target, pod, store) = (req.target.clone(), req.pod_key(), self.store.clone());
        let ownership = Ownership {
            group: req.mount_group,
        };
        blocking(move || {
            if resume {
                remove_legacy_files(&target)?;
            }
            let changed = if payload.is_empty() {
                tracing::info!(
                    "provider returned no files; it is expected to have written them itself"
                );
                true
            } else {
                let outcome = AtomicWriter::new(target.path())
                    .with_ownership(ownership)
                    .write(&payload)
                    .map_err(|source| Error::Write { pod, source })?;
                outcome == WriteOutcome::Written
            };
            let pending = store.save_fill(&target, record, previous.as_ref())?;
            Ok((changed, pending))
        })
        .await
    }

    /// Unmounts and removes a target after a failed first publish.
    async fn undo(&self, target: &Target) {
        let (mounter, target) = (self.mounter.clone(), target.clone());
        let result = blocking(move || {
            unmount_all(mounter.as_ref(), &target)?;
            Ok(target.remove()?)
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cleanup after a failed publish did not finish");
        }
    }

    /// NodeUnpublishVolume: unmount, remove the target directory (never
    /// recursively) and forget the volume. A missing target is success.
    pub async fn unpublish(&self, req: UnpublishRequest) -> Result<(), Error> {
        let _guard = self.claim(req.target.path())?;
        let (mounter, store, target) =
            (self.mounter.clone(), self.store.clone(), req.target.clone());
        let work = blocking(move || {
            unmount_all(mounter.as_ref(), &target)?;
            match target.remove() {
                Err(target::Error::NotEmpty { path }) => {
                    tracing::warn!(target = %path, "target not empty after unmount; left for kubelet")
                }
                other => other?,
            }
            Ok(store.remove(&target)?)
        });
        self.status.unpublish(&req.target, work).await
    }
}

/// Creates the target directory and mounts a bounded tmpfs on it; a
/// directory it created is removed again when the mount fails.
fn mount_new(mounter: &dyn Mounter, target: &Target, options: TmpfsOptions) -> Result<(), Error> {
    let created = target.create()?;
    if let Err(e) = mounter.mount_tmpfs(target, options) {
        if created {
            let _ = target.remove();
        }
        return Err(e.into());
    }
    Ok(())
}

/// Unmounts until the target is no longer a mount point (volumes stacked
/// by an older driver are unmounted one by one).
fn unmount_all(mounter: &dyn Mounter, target: &Target) -> Result<(), Error> {
    for _ in 0..8 {
        if !mounter.is_mounted(target)? {
            return Ok(());
        }
        mounter.unmount(target)?;
    }
    if mounter.is_mounted(target)? {
        return Err(Error::Mount(crate::mount::Error::Unmount {
            target: target.path().display().to_string(),
            source: std::io::Error::other("still mounted after 8 unmounts"),
        }));
    }
    Ok(())
}

/// Removes an older driver's state files from a volume being resumed,
/// without following links.
fn remove_legacy_files(target: &Target) -> Result<(), Error> {
    use std::os::fd::AsFd;
    let Some(dir) = target.open()? else {
        return Ok(());
    };
    for name in LEGACY_FILES {
        match nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) => tracing::info!(
                file = name,
                "removed an older driver's state file from the volume"
            ),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Target(target::Error::Io {
                    path: target.path().display().to_string(),
                    op: "remove legacy state",
                    source: e.into(),
                }));
            }
        }
    }
    Ok(())
}
