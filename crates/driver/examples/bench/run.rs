//! One single-node run: N publishes through the kubelet simulator at a
//! given concurrency, memory and CPU of the driver, its API requests, an
//! optional rotation pass, then N unpublishes.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use secrets_store_proto::csi::v1::NodePublishVolumeRequest;
use secrets_store_testkit::{Kubelet, TokenOptions};

use crate::procfs;
use crate::setup::{Env, Kind, ProviderKind};
use crate::stats::Latency;

/// The node every single-node run uses.
pub const NODE: &str = "bench-node";
/// Rotation interval of the rotation pass (both drivers).
const ROTATION_INTERVAL: Duration = Duration::from_secs(5);
/// Time given to a driver to settle (watches established, follow-up
/// writes done) before and after a measured phase.
const SETTLE: Duration = Duration::from_secs(2);

/// What one run measures.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Case {
    /// Driver.
    pub driver: Kind,
    /// Provider.
    pub provider: ProviderKind,
    /// Volumes published.
    pub n: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Whether to measure a rotation pass over the N volumes.
    pub rotation: bool,
}

/// Figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The case.
    pub case: Case,
    /// NodePublishVolume latency.
    pub publish: Latency,
    /// NodeUnpublishVolume latency.
    pub unpublish: Latency,
    /// RSS after start, nothing mounted.
    pub rss_idle_kib: u64,
    /// Peak RSS up to the end of the publishes (VmHWM).
    pub rss_peak_kib: u64,
    /// RSS with N volumes mounted, after settling.
    pub rss_steady_kib: u64,
    /// CPU seconds from the first publish until settled after the last.
    pub cpu_publish_s: f64,
    /// API requests from the first publish until settled after the last.
    pub api_publish: BTreeMap<String, u64>,
    /// API requests per publish.
    pub api_per_publish: f64,
    /// API server time (received to complete) per publish, ms.
    pub api_ms_per_publish: f64,
    /// API requests per unpublish.
    pub api_per_unpublish: f64,
    /// Watches held with N volumes mounted.
    pub watches: usize,
    /// The rotation pass, if measured.
    pub rotation: Option<Rotation>,
}

/// One rotation pass over the mounted volumes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    /// Wall time of the N republishes.
    pub wall_s: f64,
    /// Driver CPU seconds for the pass.
    pub cpu_s: f64,
    /// Provider calls (N expected; counted for the zero-latency provider).
    pub provider_calls: Option<usize>,
    /// API requests of the pass.
    pub api_requests: u64,
}

/// Runs `case` over `pods` (at least `case.n`). Both drivers run with
/// [`ROTATION_FLAGS`].
pub async fn run(env: &Env, case: Case, pods: &[Pod]) -> anyhow::Result<RunResult> {
    let root = env.dir.path().join(format!(
        "kubelet-{:?}-{:?}-{}-{}",
        case.driver, case.provider, case.n, case.concurrency
    ));
    let result = measure(env, case, &pods[..case.n], &root).await;
    if result.is_err() {
        // The driver is gone (killed on drop); leave nothing mounted.
        secrets_store_testkit::mounts::unmount_all_under(&root);
        env.reset_status().await?;
    }
    result
}

async fn measure(
    env: &Env,
    case: Case,
    pods: &[Pod],
    root: &std::path::Path,
) -> anyhow::Result<RunResult> {
    let user = env.user(case.driver).to_string();
    let mut driver = env
        .start_driver(case.driver, NODE, root, ROTATION_FLAGS)
        .await?;
    tokio::time::sleep(SETTLE).await;
    let pid = driver.pid();
    let rss_idle_kib = procfs::rss_kib(pid);
    let kubelet = Kubelet::new(env.client.clone(), driver.socket(), root).await?;
    let mut requests = Vec::with_capacity(pods.len());
    for pod in pods {
        requests.push(
            kubelet
                .publish_request(pod, "secrets", &TokenOptions::default())
                .await?,
        );
    }

    let (api0, cpu0) = (env.counts(&user)?, procfs::cpu_s(pid));
    let again = requests.clone();
    let (samples, wall) = timed(requests, case.concurrency, |r| {
        let k = kubelet.clone();
        async move { Ok(k.send_publish(r).await.map(|_| ())?) }
    })
    .await?;
    let published_at = Instant::now();
    // Ours writes the statuses after the publishes return: their cost
    // belongs to the publishes, so wait for them (upstream's are done).
    statuses_written(env, &user, &api0, case.n).await?;
    tokio::time::sleep(SETTLE).await;
    let api = env.counts(&user)?.since(&api0);
    let cpu_publish_s = procfs::cpu_s(pid) - cpu0;
    let (rss_peak_kib, rss_steady_kib) = (procfs::peak_kib(pid), procfs::rss_kib(pid));
    let watches = env.watches(&user)?;

    let rotation = match case.rotation {
        true => Some(rotation_pass(env, case, &kubelet, pid, again, published_at).await?),
        false => None,
    };

    let api0 = env.counts(&user)?;
    let (un_samples, un_wall) = timed(pods.to_vec(), case.concurrency, |pod| {
        let k = kubelet.clone();
        async move { Ok(k.unpublish(&pod, "secrets").await?.map(|_| ())?) }
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    let api_un = env.counts(&user)?.since(&api0).total();
    driver.stop()?;
    secrets_store_testkit::mounts::unmount_all_under(root);
    env.reset_status().await?;
    Ok(RunResult {
        case,
        publish: Latency::of(samples, wall),
        unpublish: Latency::of(un_samples, un_wall),
        rss_idle_kib,
        rss_peak_kib,
        rss_steady_kib,
        cpu_publish_s,
        api_per_publish: api.total() as f64 / case.n as f64,
        api_ms_per_publish: api.server_ms.values().sum::<f64>() / case.n as f64,
        api_publish: api.by_kind,
        api_per_unpublish: api_un as f64 / case.n as f64,
        watches,
        rotation,
    })
}

/// Runs `f` over `items`, `concurrency` at a time; each call's latency and
/// the wall time of all.
pub async fn timed<T, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let results: Vec<anyhow::Result<Duration>> =
        futures::stream::iter(items.into_iter().map(|i| {
            let call = f(i);
            async move {
                let t = Instant::now();
                call.await.map(|()| t.elapsed())
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let wall = start.elapsed();
    Ok((
        results.into_iter().collect::<anyhow::Result<Vec<_>>>()?,
        wall,
    ))
}

/// Both drivers refresh a volume on a republish once
/// [`ROTATION_INTERVAL`] has passed since its last refresh (upstream v1.6.0
/// has no rotation loop of its own: kubelet's periodic NodePublishVolume
/// with `requiresRepublish` drives it).
pub const ROTATION_FLAGS: &[&str] = &["--enable-secret-rotation", "--rotation-poll-interval=5s"];

/// Times one rotation pass: every volume republished (kubelet's periodic
/// call) once it is due.
async fn rotation_pass(
    env: &Env,
    case: Case,
    kubelet: &Kubelet,
    pid: u32,
    requests: Vec<NodePublishVolumeRequest>,
    published_at: Instant,
) -> anyhow::Result<Rotation> {
    // Every volume must be older than the interval when the pass runs.
    let age = ROTATION_INTERVAL + Duration::from_millis(500);
    tokio::time::sleep(age.saturating_sub(published_at.elapsed())).await;
    let user = env.user(case.driver).to_string();
    let (api0, calls0, cpu0) = (env.counts(&user)?, env.zero.calls(), procfs::cpu_s(pid));
    let (_, wall) = timed(requests, case.concurrency, |r| {
        let k = kubelet.clone();
        async move { Ok(k.send_publish(r).await.map(|_| ())?) }
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    Ok(Rotation {
        wall_s: wall.as_secs_f64(),
        cpu_s: procfs::cpu_s(pid) - cpu0,
        provider_calls: (case.provider == ProviderKind::Zero).then(|| env.zero.calls() - calls0),
        api_requests: env.counts(&user)?.since(&api0).total(),
    })
}

/// Waits (up to a minute) until `user` has created `n` status objects
/// since `before`.
async fn statuses_written(
    env: &Env,
    user: &str,
    before: &crate::audit::Counts,
    n: usize,
) -> anyhow::Result<()> {
    let key = "create secretproviderclasspodstatuses";
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let done = env.counts(user)?.since(before).by_kind.get(key).copied();
        if done.unwrap_or(0) >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
