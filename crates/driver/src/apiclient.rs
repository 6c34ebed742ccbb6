//! The Kubernetes client, created on first use so the driver starts (and
//! answers Probe) without API access. One per process, shared by publish,
//! events, the refresh loop and secret sync.

use std::sync::Arc;

use tokio::sync::OnceCell;

/// No Kubernetes API configuration could be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoConfig(String);

/// A client made on first use from `--kubeconfig`, `$KUBECONFIG` or the
/// in-cluster configuration.
#[derive(Clone, Default)]
pub struct LazyClient {
    kubeconfig: String,
    cell: Arc<OnceCell<kube::Client>>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("kubeconfig", &self.kubeconfig)
            .field("ready", &self.cell.initialized())
            .finish()
    }
}

impl LazyClient {
    /// A client for `kubeconfig` (empty: in-cluster or `$KUBECONFIG`).
    pub fn new(kubeconfig: impl Into<String>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            cell: Arc::default(),
        }
    }

    /// The client, created on the first call that succeeds.
    pub async fn get(&self) -> Result<&kube::Client, NoConfig> {
        let err = |e: &dyn std::fmt::Display| NoConfig(e.to_string());
        self.cell
            .get_or_try_init(|| async {
                let config = if self.kubeconfig.is_empty() {
                    kube::Config::infer().await.map_err(|e| err(&e))?
                } else {
                    let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
                        .map_err(|e| err(&e))?;
                    kube::Config::from_custom_kubeconfig(kc, &Default::default())
                        .await
                        .map_err(|e| err(&e))?
                };
                kube::Client::try_from(config).map_err(|e| err(&e))
            })
            .await
    }
}
