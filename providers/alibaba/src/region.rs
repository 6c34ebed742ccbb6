//! The node's region, for SecretProviderClasses that set none: the node's
//! `topology.kubernetes.io/region` label (or the legacy
//! `failure-domain.beta.kubernetes.io/region` label, or annotation), read
//! once per node and cached.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Node, Pod};

/// Region labels, in order of preference.
pub const REGION_KEYS: &[&str] = &[
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
];

/// Region lookup errors.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// No Kubernetes client.
    #[error("region is not set and the node cannot be read (no Kubernetes client)")]
    NoClient,
    /// API error.
    #[error("region is not set and reading {what} failed: {source}")]
    Api {
        /// Object.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// The pod is not scheduled.
    #[error("region is not set and pod {0} has no node")]
    NoNode(String),
    /// The node has no region label.
    #[error("region is not set and node {0} has no region label")]
    NoLabel(String),
}

/// Finds and caches node regions.
pub struct RegionLookup {
    client: Option<kube::Client>,
    node_name: Option<String>,
    cache: Mutex<HashMap<String, String>>,
}

impl RegionLookup {
    /// Lookups through `client`; `node_name` (from `NODE_NAME`) skips the
    /// pod read.
    pub fn new(client: Option<kube::Client>, node_name: Option<String>) -> Self {
        Self {
            client,
            node_name,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The region of the node running pod `namespace/name`.
    pub async fn region(&self, namespace: &str, name: &str) -> Result<String, RegionError> {
        let client = self.client.as_ref().ok_or(RegionError::NoClient)?;
        let node = match &self.node_name {
            Some(n) => n.clone(),
            None => {
                let pod = kube::Api::<Pod>::namespaced(client.clone(), namespace)
                    .get(name)
                    .await
                    .map_err(|source| RegionError::Api {
                        what: format!("pod {namespace}/{name}"),
                        source,
                    })?;
                pod.spec
                    .and_then(|s| s.node_name)
                    .ok_or_else(|| RegionError::NoNode(format!("{namespace}/{name}")))?
            }
        };
        if let Some(r) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
        {
            return Ok(r.clone());
        }
        let n = kube::Api::<Node>::all(client.clone())
            .get(&node)
            .await
            .map_err(|source| RegionError::Api {
                what: format!("node {node}"),
                source,
            })?;
        let labels = n.metadata.labels.unwrap_or_default();
        let annotations = n.metadata.annotations.unwrap_or_default();
        let region = REGION_KEYS
            .iter()
            .find_map(|k| labels.get(*k).or_else(|| annotations.get(*k)))
            .filter(|r| !r.is_empty())
            .cloned()
            .ok_or_else(|| RegionError::NoLabel(node.clone()))?;
        tracing::info!(node = %node, region = %region, "node region cached");
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, region.clone());
        Ok(region)
    }
}
