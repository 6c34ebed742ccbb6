//! Fleet simulation: K driver processes (node ids `fleet-<i>`) against one
//! API server, M volumes each: API load at steady state and during a
//! rotation wave, watches, total memory.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::{Kubelet, TokenOptions};

use crate::procfs;
use crate::run::{ROTATION_FLAGS, timed};
use crate::setup::{Env, Kind};

/// Figures of one fleet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fleet {
    /// Driver.
    pub driver: Kind,
    /// Driver processes.
    pub nodes: usize,
    /// Volumes per node.
    pub volumes_per_node: usize,
    /// Wall time to start every driver.
    pub start_s: f64,
    /// Wall time of all publishes (16 in flight across the fleet).
    pub publish_s: f64,
    /// Sum of the drivers' RSS with every volume mounted.
    pub rss_total_kib: u64,
    /// Watches the fleet holds.
    pub watches: usize,
    /// API requests per second over the steady window.
    pub steady_req_per_s: f64,
    /// Length of the steady window.
    pub steady_s: f64,
    /// CPU seconds per second of the whole fleet over the steady window.
    pub steady_cpu_s_per_s: f64,
    /// A rotation wave (every volume republished once due): wall time.
    pub wave_s: f64,
    /// API requests of the wave.
    pub wave_requests: u64,
    /// API requests per second during the wave.
    pub wave_req_per_s: f64,
    /// Fleet CPU seconds of the wave.
    pub wave_cpu_s: f64,
}

/// Runs a fleet of `kind` over `pods` (one list per node).
pub async fn run(
    env: &Env,
    kind: Kind,
    pods: &[Vec<Pod>],
    steady: Duration,
) -> anyhow::Result<Fleet> {
    let user = env.user(kind).to_string();
    let started = Instant::now();
    let mut drivers: Vec<(DriverProcess, Kubelet)> = futures::stream::iter(0..pods.len())
        .map(|i| async move {
            let root = env.dir.path().join(format!("kubelet-fleet-{kind:?}-{i}"));
            let driver = env
                .start_driver(kind, &format!("fleet-{i}"), &root, ROTATION_FLAGS)
                .await?;
            let kubelet = Kubelet::new(env.client.clone(), driver.socket(), &root).await?;
            anyhow::Ok((driver, kubelet))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let start_s = started.elapsed().as_secs_f64();
    let mut requests = Vec::new();
    for ((_, kubelet), node_pods) in drivers.iter().zip(pods) {
        for pod in node_pods {
            let r = kubelet
                .publish_request(pod, "secrets", &TokenOptions::default())
                .await?;
            requests.push((kubelet.clone(), r));
        }
    }
    let again = requests.clone();
    let publish = |(k, r): (Kubelet, _)| async move { Ok(k.send_publish(r).await.map(|_| ())?) };
    let (_, publish_wall) = timed(requests, 16, publish).await?;
    let published_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let pids: Vec<u32> = drivers.iter().map(|(d, _)| d.pid()).collect();
    let cpu = || pids.iter().map(|p| procfs::cpu_s(*p)).sum::<f64>();
    let (a0, c0) = (env.counts(&user)?, cpu());
    tokio::time::sleep(steady).await;
    let (a1, c1) = (env.counts(&user)?, cpu());
    let rss_total_kib = pids.iter().map(|p| procfs::rss_kib(*p)).sum();
    let watches = env.watches(&user)?;

    let due = Duration::from_millis(5_500);
    tokio::time::sleep(due.saturating_sub(published_at.elapsed())).await;
    let (w0, wc0) = (env.counts(&user)?, cpu());
    let (_, wave) = timed(again, 16, publish).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let wave_requests = env.counts(&user)?.since(&w0).total();
    let wave_cpu_s = cpu() - wc0;

    for (driver, _) in &mut drivers {
        driver.stop()?;
    }
    for i in 0..pods.len() {
        let root = env.dir.path().join(format!("kubelet-fleet-{kind:?}-{i}"));
        secrets_store_testkit::mounts::unmount_all_under(&root);
    }
    env.reset_status().await?;
    Ok(Fleet {
        driver: kind,
        nodes: pods.len(),
        volumes_per_node: pods.first().map(Vec::len).unwrap_or(0),
        start_s,
        publish_s: publish_wall.as_secs_f64(),
        rss_total_kib,
        watches,
        steady_req_per_s: a1.since(&a0).total() as f64 / steady.as_secs_f64(),
        steady_s: steady.as_secs_f64(),
        steady_cpu_s_per_s: (c1 - c0) / steady.as_secs_f64(),
        wave_s: wave.as_secs_f64(),
        wave_requests,
        wave_req_per_s: wave_requests as f64 / wave.as_secs_f64(),
        wave_cpu_s,
    })
}
