//! The CSI socket: bind (replacing a stale socket), serve until shutdown,
//! drain in-flight calls, remove the socket.

use std::future::Future;
use std::path::Path;

use tokio::net::UnixListener;
use tonic::service::Routes;

use crate::csi::identity::Readiness;

pub use secrets_store_grpc_uds::bind;

/// Serving errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the socket failed.
    #[error(transparent)]
    Bind(#[from] secrets_store_grpc_uds::Error),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` on `listener` until `shutdown` resolves, marking
/// `readiness` while serving, then removes the socket file.
pub async fn serve(
    socket: &Path,
    listener: UnixListener,
    routes: Routes,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    readiness.set(true);
    let result = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(secrets_store_grpc_uds::incoming(listener), shutdown)
        .await;
    readiness.set(false);
    let _ = std::fs::remove_file(socket);
    Ok(result?)
}
