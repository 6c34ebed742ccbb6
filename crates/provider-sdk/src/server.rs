//! The provider process's servers: `CSIDriverProvider` and gRPC health on
//! `<providers-dir>/<name>.sock`, and an HTTP health endpoint that checks
//! the gRPC server through its own socket, as kubelet's liveness probe does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_server::{
    CsiDriverProvider, CsiDriverProviderServer,
};
use tokio::net::{TcpListener, UnixListener};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::{MountRequest, Provider};

/// The provider API version served.
pub const API_VERSION: &str = "v1alpha1";

/// Server errors.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the provider socket failed.
    #[error(transparent)]
    Socket(#[from] secrets_store_grpc_uds::Error),
    /// Binding the health port failed.
    #[error("healthz listener {addr}: {source}")]
    Healthz {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// The HTTP health endpoint.
#[derive(Debug, Clone)]
pub struct HealthzConfig {
    /// Listen address (port 0 picks one).
    pub addr: SocketAddr,
    /// URL path, e.g. `/healthz`.
    pub path: String,
    /// Timeout of the gRPC health check behind each request.
    pub timeout: Duration,
}

/// What the server needs to know.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory holding provider sockets (`--provider-volume`).
    pub providers_dir: PathBuf,
    /// Provider name: `spec.provider` and the socket's stem.
    pub name: String,
    /// `runtime_name` of the Version RPC.
    pub runtime_name: String,
    /// `runtime_version` of the Version RPC.
    pub runtime_version: String,
    /// The HTTP health endpoint, if any.
    pub healthz: Option<HealthzConfig>,
}

/// A bound provider server, ready to serve.
pub struct Server<P> {
    config: ServerConfig,
    socket: PathBuf,
    listener: UnixListener,
    healthz: Option<(TcpListener, HealthzConfig)>,
    provider: Arc<P>,
}

impl<P: Provider> Server<P> {
    /// Binds the socket (replacing a stale one, mode `0600`) and the health
    /// port.
    pub async fn bind(config: ServerConfig, provider: Arc<P>) -> Result<Self, ServerError> {
        let socket = config.providers_dir.join(format!("{}.sock", config.name));
        let listener = secrets_store_grpc_uds::bind(&socket)?;
        let healthz = match &config.healthz {
            None => None,
            Some(h) => {
                let l = TcpListener::bind(h.addr)
                    .await
                    .map_err(|source| ServerError::Healthz {
                        addr: h.addr,
                        source,
                    })?;
                let mut h = h.clone();
                h.addr = l.local_addr().map_err(|source| ServerError::Healthz {
                    addr: h.addr,
                    source,
                })?;
                Some((l, h))
            }
        };
        Ok(Self {
            config,
            socket,
            listener,
            healthz,
            provider,
        })
    }

    /// The provider socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bound health address.
    pub fn healthz_addr(&self) -> Option<SocketAddr> {
        self.healthz.as_ref().map(|(_, h)| h.addr)
    }

    /// Serves until `shutdown` resolves, then stops taking calls, lets
    /// running ones finish and removes the socket.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let healthz_task = self.healthz.map(|(listener, cfg)| {
            let socket = self.socket.clone();
            let mut rx = stop_rx.clone();
            tracing::info!(addr = %cfg.addr, path = %cfg.path, "serving healthz");
            tokio::spawn(async move {
                let path = cfg.path.clone();
                let app = axum::Router::new().route(
                    &path,
                    axum::routing::get(move || healthz(socket.clone(), cfg.timeout)),
                );
                let res = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = res {
                    tracing::error!(error = %e, "healthz server failed");
                }
            })
        });
        let service = ProviderService {
            provider: self.provider,
            runtime_name: self.config.runtime_name.clone(),
            runtime_version: self.config.runtime_version.clone(),
        };
        tracing::info!(socket = %self.socket.display(), provider = %self.config.name, "serving provider API");
        let socket = self.socket.clone();
        let res = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(CsiDriverProviderServer::new(service))
            .serve_with_incoming_shutdown(secrets_store_grpc_uds::incoming(self.listener), async {
                shutdown.await;
                tracing::info!("shutting down; draining calls");
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            })
            .await;
        let _ = stop_tx.send(true);
        if let Some(t) = healthz_task {
            let _ = t.await;
        }
        if let Err(e) = std::fs::remove_file(&socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %socket.display(), error = %e, "could not remove socket");
        }
        res.map_err(ServerError::from)
    }
}

async fn healthz(socket: PathBuf, timeout: Duration) -> (axum::http::StatusCode, String) {
    let check = async {
        let channel = secrets_store_grpc_uds::connect(&socket)
            .await
            .map_err(|e| e.to_string())?;
        let resp = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| s.message().to_string())?;
        match resp.into_inner().status {
            s if s == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 => {
                Ok(())
            }
            s => Err(format!("health status {s}")),
        }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(())) => (axum::http::StatusCode::OK, "ok".into()),
        Ok(Err(e)) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("health check timed out after {timeout:?}"),
        ),
    }
}

struct ProviderService<P> {
    provider: Arc<P>,
    runtime_name: String,
    runtime_version: String,
}

#[tonic::async_trait]
impl<P: Provider> CsiDriverProvider for ProviderService<P> {
    async fn version(
        &self,
        _req: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: API_VERSION.into(),
            runtime_name: self.runtime_name.clone(),
            runtime_version: self.runtime_version.clone(),
        }))
    }

    async fn mount(
        &self,
        req: Request<pb::MountRequest>,
    ) -> Result<Response<pb::MountResponse>, Status> {
        let started = Instant::now();
        let req = MountRequest::decode(req.into_inner())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let pod = req.pod();
        let span = tracing::info_span!("mount", pod = %format!("{}/{}", pod.namespace, pod.name), spc = req.attribute("secretProviderClass").unwrap_or_default());
        let _enter = span.enter();
        drop(_enter);
        let result = tracing::Instrument::instrument(self.provider.mount(req), span.clone()).await;
        let _enter = span.enter();
        match result {
            Ok(mounted) => {
                let resp = mounted.into_response();
                tracing::info!(
                    files = resp.files.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "mounted"
                );
                Ok(Response::new(resp))
            }
            Err(e) => {
                if matches!(
                    e.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::PermissionDenied
                        | tonic::Code::Unauthenticated
                ) {
                    tracing::info!(code = ?e.code(), error = %e, "mount failed");
                } else {
                    tracing::error!(code = ?e.code(), error = %e, "mount failed");
                }
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MountError, Mounted};
    use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
    use std::os::unix::fs::PermissionsExt;

    struct Echo;
    impl Provider for Echo {
        async fn mount(&self, req: MountRequest) -> Result<Mounted, MountError> {
            let name = req
                .attribute("file")
                .ok_or_else(|| MountError::invalid("no file"))?;
            let mut m = Mounted::new();
            m.file(name, req.permission, b"data".to_vec())
                .map_err(|e| MountError::invalid(e.to_string()))?;
            m.version(name, "1");
            Ok(m)
        }
    }

    #[tokio::test]
    async fn serves_version_mount_health_and_removes_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path()).expect("dir");
        // A stale socket from a previous run is replaced.
        drop(std::os::unix::net::UnixListener::bind(dir.path().join("echo.sock")).expect("stale"));
        let config = ServerConfig {
            providers_dir: dir.path().to_path_buf(),
            name: "echo".into(),
            runtime_name: "echo-provider".into(),
            runtime_version: "0.0.1".into(),
            healthz: Some(HealthzConfig {
                addr: "127.0.0.1:0".parse().expect("addr"),
                path: "/healthz".into(),
                timeout: Duration::from_secs(5),
            }),
        };
        let server = Server::bind(config, Arc::new(Echo)).await.expect("bind");
        let socket = server.socket().to_path_buf();
        let addr = server.healthz_addr().expect("healthz");
        let mode = std::fs::metadata(&socket)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));

        let mut client = CsiDriverProviderClient::new(
            secrets_store_grpc_uds::connect(&socket)
                .await
                .expect("connect"),
        );
        let v = client
            .version(pb::VersionRequest {
                version: "v1alpha1".into(),
            })
            .await
            .expect("version")
            .into_inner();
        assert_eq!(
            (v.version.as_str(), v.runtime_name.as_str()),
            ("v1alpha1", "echo-provider")
        );
        let mount = |attrs: &str, perm: &str| pb::MountRequest {
            attributes: attrs.into(),
            secrets: "null".into(),
            target_path: "/t".into(),
            permission: perm.into(),
            current_object_version: vec![],
        };
        let r = client
            .mount(mount(r#"{"file":"a"}"#, "420"))
            .await
            .expect("mount")
            .into_inner();
        assert_eq!(r.files[0].path, "a");
        assert_eq!(r.files[0].mode, 420);
        assert_eq!(r.object_version[0].version, "1");
        let e = client.mount(mount("{}", "420")).await.expect_err("no file");
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::InvalidArgument, "no file")
        );
        let e = client
            .mount(mount(r#"{"file":"../x"}"#, "420"))
            .await
            .expect_err("traversal");
        assert_eq!(e.message(), "path can not contain ../: ../x");
        let e = client.mount(mount("{", "420")).await.expect_err("bad json");
        assert!(
            e.message().starts_with("failed to unmarshal attributes"),
            "{}",
            e.message()
        );

        let body = http_get(addr, "/healthz").await;
        assert!(
            body.starts_with("HTTP/1.1 200") && body.ends_with("ok"),
            "{body}"
        );
        assert!(http_get(addr, "/other").await.starts_with("HTTP/1.1 404"));

        stop.send(()).expect("stop");
        task.await.expect("join").expect("serve");
        assert!(!socket.exists(), "socket removed at exit");
    }

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }
}
