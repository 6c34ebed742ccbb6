//! gRPC over a unix socket, as kubelet and csi-sanity dial a CSI driver.

use std::path::Path;

use tonic::transport::Channel;

/// Connects a gRPC channel to the unix socket at `path`.
pub async fn connect(path: &Path) -> anyhow::Result<Channel> {
    Ok(secrets_store_grpc_uds::connect(path).await?)
}
