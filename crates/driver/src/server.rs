//! The CSI socket: remove a stale socket, bind with owner-only permissions,
//! serve until shutdown, drain in-flight calls, remove the socket.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;

use crate::csi::identity::Readiness;

/// Socket errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something that is not a socket sits at the socket path.
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    /// Preparing, binding or serving the socket failed.
    #[error("socket {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds `socket`, replacing a stale socket left by a previous run.
pub fn bind(socket: &Path) -> Result<UnixListener, Error> {
    let io = |source| Error::Io {
        path: socket.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket).map_err(io)?,
        Ok(_) => return Err(Error::NotASocket(socket.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let listener = UnixListener::bind(socket).map_err(io)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
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
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    readiness.set(false);
    let _ = std::fs::remove_file(socket);
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_regular_file_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("csi.sock");
        drop(bind(&sock).expect("first bind"));
        let listener = bind(&sock).expect("rebind over stale socket");
        let mode = std::fs::metadata(&sock).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(listener);

        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "data").expect("write");
        let err = bind(&file).expect_err("must refuse");
        assert!(matches!(err, Error::NotASocket(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "data");
    }
}
