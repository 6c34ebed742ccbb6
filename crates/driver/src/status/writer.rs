//! The SecretProviderClassPodStatus write, off the publish critical path.
//!
//! A publish saves its volume record with the status it still has to write
//! (`VolumeRecord::status_pending`) and hands the write to this writer; the
//! CSI call returns without waiting for the API server. The writer keeps
//! upstream's guarantee that every published volume has its status:
//!
//! - one task per volume writes it, retrying failures with capped
//!   exponential backoff (`backon`) for as long as the volume is published;
//!   a newer submission (a refresh) replaces the content the task writes;
//! - after a write the volume store notes in memory what the object holds
//!   (`volume::Store::status_held`): the record is not rewritten for it, its
//!   pending status is dropped at the record's next write;
//! - [`StatusWriter::reconcile`] at start-up lists this node's status objects
//!   once, notes what each holds for a mounted volume, and resubmits every
//!   volume whose record asks for a status no object holds (the driver died
//!   between the mount and the write).
//! - unpublish runs under the volume's lock ([`StatusWriter::unpublish`]):
//!   it waits for a write in flight, and once the record is gone the task is
//!   cancelled, so no status is written for a volume after its unpublish.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use secrets_store_crds::v1::SecretProviderClassObject;
use tokio::sync::{Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};

use secrets_store_crds::spcps_name;
use secrets_store_crds::v1::SecretProviderClassPodStatus;

use super::{Expect, PodRef, held_objects, upsert};
use crate::apiclient::LazyClient;
use crate::target::Target;
use crate::volume::{Store, VolumeRecord};

/// Retries of a failed status write: from 100 ms, doubling, capped at 30 s,
/// without a limit (the volume stays published, so its status must follow).
const RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(30))
    .with_factor(2.0)
    .with_jitter()
    .without_max_times();

/// Status writes in flight at once. Each one holds an HTTP/1.1 connection to
/// the API server (kube's client does not multiplex), and the client keeps
/// idle connections: unbounded, a burst of publishes grew the pool to ~80
/// TLS connections with their buffers, half the driver's heap at 1000
/// volumes (BENCHMARKS.md, heap profile). A few suffice: the API server
/// serialises much of the work anyway.
const MAX_IN_FLIGHT: usize = 4;

/// One status to write.
#[derive(Debug, Clone)]
pub struct StatusJob {
    /// The volume's pod.
    pub pod: PodRef,
    /// SecretProviderClass name.
    pub class: String,
    /// Sorted object versions.
    pub objects: Vec<SecretProviderClassObject>,
    /// Whether the object probably exists.
    pub expect: Expect,
}

impl StatusJob {
    /// The pending status of `record`, if it has one.
    pub fn of(record: &VolumeRecord) -> Option<Self> {
        Some(Self {
            pod: PodRef::from(&record.pod),
            class: record.class.clone(),
            objects: record.status_pending.clone()?,
            expect: Expect::New,
        })
    }
}

/// What the writer holds for a volume with a write not yet done.
struct Slot {
    /// Held by each write attempt and by unpublish.
    lock: Arc<AsyncMutex<()>>,
    /// Bumped by every submission.
    generation: u64,
    job: StatusJob,
    task: Option<tokio::task::AbortHandle>,
}

/// Writes SecretProviderClassPodStatus objects in the background.
#[derive(Clone)]
pub struct StatusWriter {
    inner: Arc<Inner>,
}

struct Inner {
    kube: LazyClient,
    store: Store,
    node: String,
    slots: Mutex<HashMap<PathBuf, Slot>>,
    /// Bounds the writes in flight (see [`MAX_IN_FLIGHT`]).
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("node", &self.inner.node)
            .field("pending", &self.pending())
            .finish()
    }
}

impl StatusWriter {
    /// A writer for this node's volumes.
    pub fn new(kube: LazyClient, store: Store, node: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kube,
                store,
                node: node.into(),
                slots: Mutex::default(),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many volumes have a write not yet done.
    pub fn pending(&self) -> usize {
        self.slots().len()
    }

    /// Writes `job` for `target` soon (the record already holds it as
    /// pending). Replaces what an earlier submission still had to write.
    pub fn submit(&self, target: &Target, job: StatusJob) {
        let mut slots = self.slots();
        let slot = slots
            .entry(target.path().to_path_buf())
            .or_insert_with(|| Slot {
                lock: Arc::default(),
                generation: 0,
                job: job.clone(),
                task: None,
            });
        slot.generation += 1;
        slot.job = job;
        if slot.task.is_none() {
            let task = tokio::spawn(self.clone().queued(target.clone()));
            slot.task = Some(task.abort_handle());
        }
    }

    /// Runs `f` (the unpublish of `target`) under the volume's lock, so it
    /// never overlaps a write; when `f` succeeds (the record is gone) the
    /// pending write is dropped.
    pub async fn unpublish<T, E>(
        &self,
        target: &Target,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let lock = self.slots().get(target.path()).map(|s| s.lock.clone());
        let Some(lock) = lock else {
            return f.await;
        };
        let _held = lock.lock().await;
        let out = f.await?;
        if let Some(slot) = self.slots().remove(target.path())
            && let Some(task) = slot.task
        {
            task.abort();
            tracing::info!(target = %target.path().display(), "pending status write dropped: volume unpublished");
        }
        Ok(out)
    }

    /// After a restart: notes what `listed` (this node's status objects)
    /// holds for each mounted volume, then resubmits every volume whose
    /// record still asks for a status no object holds. Returns how many.
    pub fn reconcile(
        &self,
        volumes: Vec<(Target, VolumeRecord)>,
        listed: &[SecretProviderClassPodStatus],
    ) -> usize {
        let by_name: HashMap<(&str, &str), &SecretProviderClassPodStatus> = listed
            .iter()
            .filter_map(|s| {
                Some((
                    (
                        s.metadata.namespace.as_deref()?,
                        s.metadata.name.as_deref()?,
                    ),
                    s,
                ))
            })
            .collect();
        let mut n = 0;
        for (target, mut record) in volumes {
            let pod = PodRef::from(&record.pod);
            let name = spcps_name(&pod.name, &pod.namespace, &record.class);
            let held = by_name
                .get(&(pod.namespace.as_str(), name.as_str()))
                .and_then(|s| held_objects(s, &pod, &record.class, &record.target));
            if let Some(objects) = held {
                if record.status_pending.as_ref() == Some(&objects) {
                    record.status_pending = None;
                }
                self.inner.store.status_held(&target, objects, true);
            }
            if let Some(job) = StatusJob::of(&record) {
                tracing::info!(target = %target.path().display(), "status write pending from before the restart");
                self.submit(&target, job);
                n += 1;
            }
        }
        n
    }

    /// The task of one volume while it waits for its turn: small (a burst
    /// of publishes queues a few hundred bytes per volume, not the state of
    /// a whole write), then the write loop, boxed.
    async fn queued(self, target: Target) {
        let Ok(permit) = self.inner.in_flight.clone().acquire_owned().await else {
            return;
        };
        Box::pin(self.run(target, permit)).await
    }

    /// Writes the latest submission for `target` until none is newer than
    /// the one written; the first attempt uses `permit`, each later one
    /// waits for its own (none is held while a retry waits).
    async fn run(self, target: Target, permit: OwnedSemaphorePermit) {
        let mut first = Some(permit);
        loop {
            let Some((lock, generation, job)) = self
                .slots()
                .get(target.path())
                .map(|s| (s.lock.clone(), s.generation, s.job.clone()))
            else {
                return;
            };
            let (this, lock, target, job) = (&self, &lock, &target, &job);
            let attempt = || {
                let given = first.take();
                async move {
                    let _permit = match given {
                        Some(p) => Ok(p),
                        None => this.inner.in_flight.clone().acquire_owned().await,
                    };
                    let _held = lock.lock().await;
                    this.write(target, job).await
                }
            };
            let _ = attempt
                .retry(RETRY)
                .notify(|e, after| {
                    tracing::warn!(target = %target.path().display(), error = %e, retry_in = ?after, "status write failed; retrying");
                })
                .await;
            let mut slots = self.slots();
            if slots
                .get(target.path())
                .is_some_and(|s| s.generation == generation)
            {
                slots.remove(target.path());
                return;
            }
        }
    }

    /// One attempt: the object, then what it holds noted in the store.
    async fn write(&self, target: &Target, job: &StatusJob) -> Result<(), WriteError> {
        let client = self.inner.kube.get().await.map_err(WriteError::Client)?;
        let target_path = target.path().display().to_string();
        upsert(
            client,
            &job.pod,
            &job.class,
            &self.inner.node,
            &target_path,
            &job.objects,
            job.expect,
        )
        .await
        .map_err(WriteError::Api)?;
        self.inner
            .store
            .status_held(target, job.objects.clone(), false);
        Ok(())
    }
}

/// Why one status write attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No Kubernetes client.
    #[error("no Kubernetes client: {0}")]
    Client(crate::apiclient::NoConfig),
    /// The API server refused or could not be reached.
    #[error("writing the SecretProviderClassPodStatus: {0}")]
    Api(kube::Error),
}
