//! A scriptable provider serving the `v1alpha1.CSIDriverProvider` API on a
//! unix socket, for driver tests: it answers Mount with whatever the test
//! sets (files, versions, error codes, gRPC errors), can hang or vanish,
//! and records every request it receives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use secrets_store_proto::provider::v1alpha1 as api;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_server::{
    CsiDriverProvider, CsiDriverProviderServer,
};
use tonic::{Request, Response, Status};

/// What the next Mount calls get.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer with this response.
    Respond(api::MountResponse),
    /// Fail the call with this gRPC status.
    Fail(tonic::Code, String),
    /// Never answer.
    Hang,
}

impl Behavior {
    /// A response with `files` (path, contents, mode) and `versions` (id, version).
    pub fn files(files: &[(&str, &[u8], i32)], versions: &[(&str, &str)]) -> Self {
        Behavior::Respond(api::MountResponse {
            object_version: versions
                .iter()
                .map(|(id, v)| api::ObjectVersion {
                    id: id.to_string(),
                    version: v.to_string(),
                })
                .collect(),
            error: None,
            files: files
                .iter()
                .map(|(p, c, m)| api::File {
                    path: p.to_string(),
                    mode: *m,
                    contents: c.to_vec(),
                })
                .collect(),
        })
    }
}

#[derive(Clone)]
struct Service {
    behavior: Arc<Mutex<Behavior>>,
    requests: Arc<Mutex<Vec<api::MountRequest>>>,
    calls: Arc<AtomicUsize>,
    record: Arc<AtomicBool>,
    name: String,
}

#[tonic::async_trait]
impl CsiDriverProvider for Service {
    async fn version(
        &self,
        _request: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        Ok(Response::new(api::VersionResponse {
            version: "v1alpha1".into(),
            runtime_name: self.name.clone(),
            runtime_version: "0.0.1".into(),
        }))
    }

    async fn mount(
        &self,
        request: Request<api::MountRequest>,
    ) -> Result<Response<api::MountResponse>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.record.load(Ordering::Relaxed) {
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(request.into_inner());
        }
        let behavior = self
            .behavior
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match behavior {
            Behavior::Respond(r) => Ok(Response::new(r)),
            Behavior::Fail(code, message) => Err(Status::new(code, message)),
            Behavior::Hang => std::future::pending().await,
        }
    }
}

/// A running fake provider. It runs on its own thread and tokio runtime,
/// so [`FakeProvider::crash`] can drop every connection at once.
pub struct FakeProvider {
    service: Service,
    socket: PathBuf,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl FakeProvider {
    /// Serves provider `name` at `<dir>/<name>.sock`, answering with an
    /// empty successful response until told otherwise.
    pub async fn start(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let socket = dir.join(format!("{name}.sock"));
        let service = Service {
            behavior: Arc::new(Mutex::new(Behavior::files(&[], &[("none", "0")]))),
            requests: Arc::default(),
            calls: Arc::default(),
            record: Arc::new(AtomicBool::new(true)),
            name: name.to_string(),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (svc, path) = (service.clone(), socket.clone());
        std::thread::Builder::new()
            .name(format!("fake-provider-{name}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let bound = rt.block_on(async { secrets_store_grpc_uds::bind(&path) });
                match bound {
                    Ok(listener) => {
                        rt.spawn(
                            tonic::transport::Server::builder()
                                .add_service(CsiDriverProviderServer::new(svc))
                                .serve_with_incoming(secrets_store_grpc_uds::incoming(listener)),
                        );
                        let _ = ready_tx.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                }
                // Runs until told to stop or the FakeProvider is dropped.
                let _ = stop_rx.recv();
                rt.shutdown_background();
            })?;
        ready_rx.await??;
        Ok(Self {
            service,
            socket,
            stop: Some(stop_tx),
        })
    }

    /// Sets what Mount answers from now on.
    pub fn set(&self, behavior: Behavior) {
        *self
            .service
            .behavior
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = behavior;
    }

    /// How many Mount calls arrived so far (counted even when not recorded).
    pub fn calls(&self) -> usize {
        self.service.calls.load(Ordering::Relaxed)
    }

    /// Whether Mount requests are kept for [`FakeProvider::requests`] (the
    /// default); benchmarks turn it off so a call costs only a counter.
    pub fn set_recording(&self, on: bool) {
        self.service.record.store(on, Ordering::Relaxed);
    }

    /// Every Mount request received so far (while recording).
    pub fn requests(&self) -> Vec<api::MountRequest> {
        self.service
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops at once, as a crashed provider would: every connection drops
    /// and the socket file stays behind.
    pub fn crash(&mut self) {
        self.stop.take();
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
