//! Both drivers idle side by side (nothing mounted): API requests per
//! minute, watches held, memory, CPU.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::procfs;
use crate::run::{NODE, ROTATION_FLAGS};
use crate::setup::{Env, Kind};

/// One driver's idle figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Idle {
    /// Driver.
    pub driver: Kind,
    /// API requests per minute.
    pub requests_per_min: f64,
    /// The requests, by verb and resource.
    pub requests: BTreeMap<String, u64>,
    /// Watches held at the end.
    pub watches: usize,
    /// RSS at the end.
    pub rss_kib: u64,
    /// CPU seconds per minute.
    pub cpu_s_per_min: f64,
    /// Start-up: API requests from spawn until settled.
    pub startup_requests: u64,
}

/// Runs every driver of `kinds` at once for `seconds` after a settle.
pub async fn measure(env: &Env, kinds: &[Kind], seconds: u64) -> anyhow::Result<Vec<Idle>> {
    let mut drivers = Vec::new();
    let mut before = Vec::new();
    for kind in kinds {
        before.push(env.counts(env.user(*kind))?);
        let root = env.dir.path().join(format!("kubelet-idle-{kind:?}"));
        drivers.push(env.start_driver(*kind, NODE, &root, ROTATION_FLAGS).await?);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut start = Vec::new();
    for (kind, driver) in kinds.iter().zip(&drivers) {
        start.push((env.counts(env.user(*kind))?, procfs::cpu_s(driver.pid())));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let per_min = 60.0 / seconds as f64;
    let mut out = Vec::new();
    for (i, (kind, driver)) in kinds.iter().zip(drivers.iter_mut()).enumerate() {
        let user = env.user(*kind);
        let delta = env.counts(user)?.since(&start[i].0);
        out.push(Idle {
            driver: *kind,
            requests_per_min: delta.total() as f64 * per_min,
            requests: delta.by_kind,
            watches: env.watches(user)?,
            rss_kib: procfs::rss_kib(driver.pid()),
            cpu_s_per_min: (procfs::cpu_s(driver.pid()) - start[i].1) * per_min,
            startup_requests: start[i].0.since(&before[i]).total(),
        });
        driver.stop()?;
    }
    Ok(out)
}
