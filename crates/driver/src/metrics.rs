//! Prometheus metrics on `--metrics-addr`, with upstream's names and labels
//! (declared here once), shared by the publish path, secret sync and
//! rotation. Each is recorded where its event happens.
//!
//! | metric | labels |
//! | --- | --- |
//! | `node_publish_total` | provider, os_type |
//! | `node_publish_error_total` | provider, error_type, os_type |
//! | `node_unpublish_total`, `node_unpublish_error_total` | os_type |
//! | `sync_k8s_secret_total` | provider, os_type |
//! | `sync_k8s_secret_duration_sec` | os_type |
//! | `rotation_reconcile_total` | provider, os_type, rotated |
//! | `rotation_reconcile_error_total` | provider, error_type, os_type, rotated |
//! | `rotation_reconcile_duration_sec` | os_type |
//! | `node_publish_duration_seconds` (ours) | provider, os_type |
//! | `provider_healthy` (ours) | provider |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const OS_TYPE: &str = std::env::consts::OS;

/// Upstream's histogram buckets: 11 exponential steps from 0.1 s to 2 s.
const UPSTREAM_BUCKETS: [f64; 11] = [
    0.1, 0.1349, 0.1821, 0.2456, 0.3314, 0.4472, 0.6034, 0.8142, 1.0986, 1.4823, 2.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderErrorLabels {
    provider: String,
    error_type: String,
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OsLabels {
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationLabels {
    provider: String,
    os_type: String,
    rotated: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationErrorLabels {
    provider: String,
    error_type: String,
    os_type: String,
    rotated: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn upstream_histogram() -> Histogram {
    Histogram::new(UPSTREAM_BUCKETS)
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Every metric of the driver.
pub struct Metrics {
    registry: Registry,
    node_publish: Family<ProviderLabels, Counter>,
    node_publish_error: Family<ProviderErrorLabels, Counter>,
    node_unpublish: Family<OsLabels, Counter>,
    node_unpublish_error: Family<OsLabels, Counter>,
    sync_k8s_secret: Family<ProviderLabels, Counter>,
    sync_k8s_secret_duration: Histograms<OsLabels>,
    rotation_reconcile: Family<RotationLabels, Counter>,
    rotation_reconcile_error: Family<RotationErrorLabels, Counter>,
    rotation_reconcile_duration: Histograms<OsLabels>,
    node_publish_duration: Histograms<ProviderLabels>,
    provider_healthy: Family<ProviderOnly, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOnly {
    provider: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let node_publish = Family::default();
        let node_publish_error = Family::default();
        let node_unpublish = Family::default();
        let node_unpublish_error = Family::default();
        let sync_k8s_secret = Family::default();
        let sync_k8s_secret_duration: Histograms<OsLabels> =
            Family::new_with_constructor(upstream_histogram);
        let rotation_reconcile = Family::default();
        let rotation_reconcile_error = Family::default();
        let rotation_reconcile_duration: Histograms<OsLabels> =
            Family::new_with_constructor(upstream_histogram);
        let node_publish_duration: Histograms<ProviderLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "node_publish",
            "Total number of successful volume mount requests",
            node_publish.clone(),
        );
        registry.register(
            "node_publish_error",
            "Total number of errors with volume mount requests",
            node_publish_error.clone(),
        );
        registry.register(
            "node_unpublish",
            "Total number of successful volume unmount requests",
            node_unpublish.clone(),
        );
        registry.register(
            "node_unpublish_error",
            "Total number of errors with volume unmount requests",
            node_unpublish_error.clone(),
        );
        registry.register(
            "sync_k8s_secret",
            "Total number of k8s secrets synced",
            sync_k8s_secret.clone(),
        );
        registry.register(
            "sync_k8s_secret_duration_sec",
            "Distribution of how long it took to sync k8s secret",
            sync_k8s_secret_duration.clone(),
        );
        registry.register(
            "rotation_reconcile",
            "Total number of rotation reconciles",
            rotation_reconcile.clone(),
        );
        registry.register(
            "rotation_reconcile_error",
            "Total number of rotation reconciles with error",
            rotation_reconcile_error.clone(),
        );
        registry.register(
            "rotation_reconcile_duration_sec",
            "Distribution of how long it took to rotate secrets-store content for pods",
            rotation_reconcile_duration.clone(),
        );
        registry.register(
            "node_publish_duration_seconds",
            "Latency of successful volume mount requests",
            node_publish_duration.clone(),
        );
        let provider_healthy = Family::default();
        registry.register(
            "provider_healthy",
            "1 if the provider answered its last health check (--provider-health-check), else 0",
            provider_healthy.clone(),
        );
        Self {
            provider_healthy,
            registry,
            node_publish,
            node_publish_error,
            node_unpublish,
            node_unpublish_error,
            sync_k8s_secret,
            sync_k8s_secret_duration,
            rotation_reconcile,
            rotation_reconcile_error,
            rotation_reconcile_duration,
            node_publish_duration,
        }
    }

    /// A publish succeeded (including one that had nothing to do).
    pub fn publish_ok(&self, provider: &str, took: Duration) {
        let labels = ProviderLabels {
            provider: provider.into(),
            os_type: OS_TYPE.into(),
        };
        self.node_publish_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.node_publish.get_or_create(&labels).inc();
    }

    /// A publish failed (or a refresh failure was masked).
    pub fn publish_error(&self, provider: &str, error_type: &str) {
        self.node_publish_error
            .get_or_create(&ProviderErrorLabels {
                provider: provider.into(),
                error_type: error_type.into(),
                os_type: OS_TYPE.into(),
            })
            .inc();
    }

    /// An unpublish succeeded or failed.
    pub fn unpublish(&self, ok: bool) {
        let labels = OsLabels {
            os_type: OS_TYPE.into(),
        };
        if ok {
            &self.node_unpublish
        } else {
            &self.node_unpublish_error
        }
        .get_or_create(&labels)
        .inc();
    }

    /// A Kubernetes Secret was synced.
    pub fn secret_synced(&self, provider: &str, took: Duration) {
        self.sync_k8s_secret
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
                os_type: OS_TYPE.into(),
            })
            .inc();
        self.sync_k8s_secret_duration
            .get_or_create(&OsLabels {
                os_type: OS_TYPE.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A refresh of a mounted volume finished.
    pub fn rotation(&self, provider: &str, rotated: bool, took: Duration) {
        self.rotation_reconcile
            .get_or_create(&RotationLabels {
                provider: provider.into(),
                os_type: OS_TYPE.into(),
                rotated: rotated.to_string(),
            })
            .inc();
        self.rotation_reconcile_duration
            .get_or_create(&OsLabels {
                os_type: OS_TYPE.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A refresh of a mounted volume failed.
    pub fn rotation_error(&self, provider: &str, error_type: &str) {
        self.rotation_reconcile_error
            .get_or_create(&RotationErrorLabels {
                provider: provider.into(),
                error_type: error_type.into(),
                os_type: OS_TYPE.into(),
                rotated: "false".into(),
            })
            .inc();
    }

    /// Result of a provider health check.
    pub fn provider_health(&self, provider: &str, healthy: bool) {
        self.provider_healthy
            .get_or_create(&ProviderOnly {
                provider: provider.into(),
            })
            .set(i64::from(healthy));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Parses `--metrics-addr` (`:8095` means every interface).
pub fn parse_addr(addr: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    if let Some(port) = addr.strip_prefix(':') {
        format!("0.0.0.0:{port}").parse()
    } else {
        addr.parse()
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_appear_in_the_exposition() {
        let m = Metrics::new();
        m.publish_ok("vault", Duration::from_millis(3));
        m.publish_error("", "SecretProviderClassNotFound");
        m.unpublish(true);
        m.unpublish(false);
        m.secret_synced("vault", Duration::from_millis(300));
        m.rotation("vault", true, Duration::from_millis(200));
        m.rotation_error("vault", "ProviderError");
        let text = m.encode();
        for line in [
            "node_publish_total{provider=\"vault\",os_type=\"linux\"} 1",
            "node_publish_error_total{provider=\"\",error_type=\"SecretProviderClassNotFound\",os_type=\"linux\"} 1",
            "node_unpublish_total{os_type=\"linux\"} 1",
            "node_unpublish_error_total{os_type=\"linux\"} 1",
            "sync_k8s_secret_total{provider=\"vault\",os_type=\"linux\"} 1",
            "sync_k8s_secret_duration_sec_count{os_type=\"linux\"} 1",
            "rotation_reconcile_total{provider=\"vault\",os_type=\"linux\",rotated=\"true\"} 1",
            "rotation_reconcile_error_total{provider=\"vault\",error_type=\"ProviderError\",os_type=\"linux\",rotated=\"false\"} 1",
            "rotation_reconcile_duration_sec_bucket{le=\"0.2456\",os_type=\"linux\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn metrics_addr_forms() {
        assert_eq!(parse_addr(":8095").expect("ok").to_string(), "0.0.0.0:8095");
        assert_eq!(
            parse_addr("127.0.0.1:9000").expect("ok").to_string(),
            "127.0.0.1:9000"
        );
        assert!(parse_addr("nonsense").is_err());
    }
}
