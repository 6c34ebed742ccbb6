//! `--provider-health-check`: every interval, call Version on each provider
//! socket found in the provider directories and report the result (log
//! line and the `provider_healthy` gauge).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{ProviderClients, ProviderName};
use crate::metrics::Metrics;

/// Provider names with a socket in any of `dirs`.
fn discover(dirs: &[std::path::PathBuf]) -> BTreeSet<String> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".sock"))
                .map(str::to_string)
        })
        .collect()
}

/// Polls providers forever (run it as a task).
pub async fn run(
    clients: Arc<ProviderClients>,
    dirs: Vec<std::path::PathBuf>,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        for name in discover(&dirs) {
            let Ok(provider) = ProviderName::new(&name) else {
                continue;
            };
            match clients.version(&provider).await {
                Ok(v) => {
                    metrics.provider_health(&name, true);
                    tracing::info!(provider = %name, runtime = %v.runtime_name, version = %v.runtime_version, "provider healthy");
                }
                Err(e) => {
                    metrics.provider_health(&name, false);
                    tracing::warn!(provider = %name, error = %e, "provider unhealthy");
                }
            }
        }
    }
}
