//! CSI Identity service: who the plugin is, what it offers, whether it is ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secrets_store_proto::csi::v1 as csi;
use tonic::{Request, Response, Status};

/// Readiness shared between the server (which sets it once it serves) and
/// Probe (which reports it).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the plugin ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    /// Whether the plugin is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The Identity service.
#[derive(Clone, Debug)]
pub struct IdentityService {
    name: String,
    version: String,
    readiness: Readiness,
}

impl IdentityService {
    /// An Identity service for driver `name` at build `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>, readiness: Readiness) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            readiness,
        }
    }
}

#[tonic::async_trait]
impl csi::identity_server::Identity for IdentityService {
    /// "The name MUST follow domain name notation format" and "MUST be
    /// unique"; an unconfigured name is a server-side fault.
    async fn get_plugin_info(
        &self,
        _request: Request<csi::GetPluginInfoRequest>,
    ) -> Result<Response<csi::GetPluginInfoResponse>, Status> {
        if self.name.is_empty() {
            return Err(Status::unavailable("driver name not configured"));
        }
        if self.version.is_empty() {
            return Err(Status::unavailable("driver version not configured"));
        }
        Ok(Response::new(csi::GetPluginInfoResponse {
            name: self.name.clone(),
            vendor_version: self.version.clone(),
            manifest: Default::default(),
        }))
    }

    /// A node-only plugin: no Controller service and no topology, so no
    /// plugin capability is advertised (upstream advertises
    /// CONTROLLER_SERVICE without serving it; see COMPATIBILITY.md).
    async fn get_plugin_capabilities(
        &self,
        _request: Request<csi::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<csi::GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(csi::GetPluginCapabilitiesResponse {
            capabilities: Vec::new(),
        }))
    }

    /// Reports readiness; it is false until the server accepts calls.
    async fn probe(
        &self,
        _request: Request<csi::ProbeRequest>,
    ) -> Result<Response<csi::ProbeResponse>, Status> {
        Ok(Response::new(csi::ProbeResponse {
            ready: Some(self.readiness.get()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csi::identity_server::Identity;

    #[tokio::test]
    async fn plugin_info_names_the_driver() {
        let svc = IdentityService::new("secrets-store.csi.k8s.io", "1.2.3", Readiness::default());
        let info = svc
            .get_plugin_info(Request::new(Default::default()))
            .await
            .expect("ok")
            .into_inner();
        assert_eq!(info.name, "secrets-store.csi.k8s.io");
        assert_eq!(info.vendor_version, "1.2.3");
    }

    #[tokio::test]
    async fn empty_name_is_unavailable() {
        let svc = IdentityService::new("", "1.2.3", Readiness::default());
        let err = svc
            .get_plugin_info(Request::new(Default::default()))
            .await
            .expect_err("error");
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert_eq!(err.message(), "driver name not configured");
    }

    #[tokio::test]
    async fn probe_follows_readiness() {
        let readiness = Readiness::default();
        let svc = IdentityService::new("d", "1", readiness.clone());
        let probe = |svc: IdentityService| async move {
            svc.probe(Request::new(csi::ProbeRequest {}))
                .await
                .expect("ok")
                .into_inner()
                .ready
        };
        assert_eq!(probe(svc.clone()).await, Some(false));
        readiness.set(true);
        assert_eq!(probe(svc).await, Some(true));
    }
}
