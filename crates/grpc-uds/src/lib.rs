//! gRPC over unix domain sockets, the transport of both APIs we speak:
//! kubelet → driver (CSI) and driver → provider (`v1alpha1`).
//!
//! - [`bind`] replaces a stale socket left by a previous process (and
//!   refuses to delete anything that is not a socket), creates the parent
//!   directory, and restricts the socket to its owner (`0600`).
//! - [`incoming`] turns the listener into the stream tonic serves.
//! - [`connect`] dials a socket with `:authority` `localhost`, which the
//!   upstream providers require, connecting lazily so a provider that starts
//!   later is still reached.
//!
//! Timeouts, retries and message size limits are the caller's choice.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::{Channel, Endpoint};

/// Socket errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something that is not a socket sits at the socket path.
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    /// Preparing or binding the socket failed.
    #[error("socket {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Binds `socket` with mode `0600`, replacing a stale socket.
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

/// The stream of connections tonic's `serve_with_incoming*` takes.
pub fn incoming(listener: UnixListener) -> tokio_stream::wrappers::UnixListenerStream {
    tokio_stream::wrappers::UnixListenerStream::new(listener)
}

/// An endpoint whose connections go to the unix socket at `path`, sent
/// with `:authority` `localhost`. Configure it (timeouts) before
/// [`connect_lazy`].
pub fn endpoint() -> Endpoint {
    // The URI only sets the authority; the connector below picks the socket.
    Endpoint::from_static("http://localhost")
}

/// A channel to `path` that connects on first use and reconnects after
/// failures.
pub fn connect_lazy(endpoint: Endpoint, path: &Path) -> Channel {
    endpoint.connect_with_connector_lazy(connector(path))
}

/// A channel to `path`, connected now (fails if nothing listens).
pub async fn connect(path: &Path) -> Result<Channel, tonic::transport::Error> {
    endpoint().connect_with_connector(connector(path)).await
}

/// Dials the socket at `path` for every connection the channel makes.
fn connector(
    path: &Path,
) -> impl tower::Service<
    tonic::transport::Uri,
    Response = TokioIo<UnixStream>,
    Error = std::io::Error,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let path = path.to_path_buf();
    tower::service_fn(move |_| {
        let path = path.clone();
        async move { Ok(TokioIo::new(UnixStream::connect(path).await?)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_regular_file_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("sub/csi.sock");
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

    #[tokio::test]
    async fn connect_fails_fast_when_nothing_listens() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(connect(&dir.path().join("none.sock")).await.is_err());
    }
}
