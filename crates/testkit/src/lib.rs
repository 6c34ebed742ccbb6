//! Dev-only test harness: the real components our tests run against.
//!
//! - [`tools`]: finds the binaries `hack/install-tools.sh` built (kube-apiserver,
//!   etcd, csi-sanity, ...) and downloads upstream Go modules for compatibility
//!   tests.
//! - [`process`]: child processes that die with the test process, logs to files.
//! - [`control_plane`]: etcd + kube-apiserver (RBAC, service-account tokens,
//!   our CRDs) on loopback, optionally kube-controller-manager, shared by the
//!   tests of one binary or started alone.
//! - [`kubelet`]: plays kubelet against a CSI socket: creates the pod and its
//!   service account, mints tokens, sends NodePublishVolume and
//!   NodeUnpublishVolume exactly as kubelet shapes them.
//! - [`node`]: a real single-node cluster (control plane, containerd,
//!   kubelet, bridge CNI) whose images are imported, never pulled.
//! - [`csi`]: a gRPC channel over a unix socket.
//! - [`driver`]: a CSI driver binary under test in its own process.
//! - [`fake_provider`]: a scriptable provider on a unix socket.
//! - [`mounts`]: unmounts what a test left mounted under its directory.
//! - [`vault`]: OpenBao with Kubernetes auth on a control plane, and the
//!   Vault providers (ours, HashiCorp's) against it.
//! - [`provider_peer`]: a provider binary (ours or upstream's) in its own
//!   mount namespace, reaching a test's server under real endpoint names.
//! - [`differential`]: a table of Mount cases sent to ours and the upstream
//!   peer, answers judged against each case's expected difference.
//!
//! Nothing here is a mock of the API server: if a tool is missing the harness
//! fails with the command that installs it.

pub mod control_plane;
pub mod csi;
pub mod differential;
pub mod driver;
pub mod fake_provider;
pub mod kubelet;
pub mod mounts;
pub mod node;
pub mod pki;
pub mod process;
pub mod provider_peer;
pub mod tools;
pub mod vault;

pub use control_plane::{ControlPlane, ControlPlaneOptions};
pub use kubelet::{Kubelet, TestPod, TestVolume, TokenOptions};
pub use node::Node;

/// Waits until `check` returns `Ok(Some(v))`, polling every `every`, for at
/// most `timeout`. Returns the last error (or a timeout error) otherwise.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    every: std::time::Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(match last {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits (up to 20 s) until a process has created the socket at `socket`.
pub async fn wait_for_socket(socket: &std::path::Path) -> anyhow::Result<()> {
    wait_for(
        &format!("the socket {}", socket.display()),
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || {
            let exists = socket.exists();
            async move { Ok(exists.then_some(())) }
        },
    )
    .await
}
