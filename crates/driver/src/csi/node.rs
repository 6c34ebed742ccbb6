//! CSI Node service: thin handlers over [`crate::publish::Publisher`].

use std::sync::Arc;

use secrets_store_proto::csi::v1 as csi;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::publish::{self, PublishRequest, Publisher};

/// The Node service.
#[derive(Clone)]
pub struct NodeService {
    node_id: String,
    publisher: Arc<Publisher>,
}

impl NodeService {
    /// A Node service for node `node_id`.
    pub fn new(node_id: impl Into<String>, publisher: Arc<Publisher>) -> Self {
        Self {
            node_id: node_id.into(),
            publisher,
        }
    }
}

/// Logs a failure once, at a level chosen by who is at fault.
fn log_failure(e: &publish::Error, what: &str) {
    use tonic::Code::*;
    match e.code() {
        InvalidArgument | NotFound | FailedPrecondition | Aborted => {
            tracing::info!(error = %e, reason = e.reason(), "{what} failed")
        }
        _ => tracing::error!(error = %e, reason = e.reason(), "{what} failed"),
    }
}

#[tonic::async_trait]
impl csi::node_server::Node for NodeService {
    /// "The CO SHALL ensure [...] the target path is created by the plugin";
    /// publishing an already published target with the same arguments
    /// "MUST" succeed without doing it twice.
    async fn node_publish_volume(
        &self,
        request: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        let req = request.into_inner();
        let ctx = &req.volume_context;
        let span = tracing::info_span!(
            "node_publish_volume",
            volume_id = %req.volume_id,
            target = %req.target_path,
            pod = %format!(
                "{}/{}",
                ctx.get(publish::POD_NAMESPACE).map(String::as_str).unwrap_or(""),
                ctx.get(publish::POD_NAME).map(String::as_str).unwrap_or("")
            ),
            spc = ctx.get(publish::SECRET_PROVIDER_CLASS).map(String::as_str).unwrap_or(""),
            provider = tracing::field::Empty,
        );
        async {
            let req = PublishRequest::from_csi(req)?;
            self.publisher.publish(req).await?;
            tracing::info!("volume published");
            Ok(Response::new(csi::NodePublishVolumeResponse {}))
        }
        .instrument(span.clone())
        .await
        .map_err(|e: publish::Error| {
            span.in_scope(|| log_failure(&e, "publish"));
            e.into()
        })
    }

    /// Unmounts and removes the target; "MUST" succeed when it is already gone.
    async fn node_unpublish_volume(
        &self,
        request: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        let span = tracing::info_span!("node_unpublish_volume", volume_id = %req.volume_id, target = %req.target_path);
        async {
            self.publisher
                .unpublish(&req.volume_id, &req.target_path)
                .await?;
            tracing::info!("volume unpublished");
            Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
        }
        .instrument(span.clone())
        .await
        .map_err(|e: publish::Error| {
            span.in_scope(|| log_failure(&e, "unpublish"));
            e.into()
        })
    }

    async fn node_stage_volume(
        &self,
        _request: Request<csi::NodeStageVolumeRequest>,
    ) -> Result<Response<csi::NodeStageVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "NodeStageVolume is not supported: ephemeral volumes are not staged",
        ))
    }

    async fn node_unstage_volume(
        &self,
        _request: Request<csi::NodeUnstageVolumeRequest>,
    ) -> Result<Response<csi::NodeUnstageVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "NodeUnstageVolume is not supported: ephemeral volumes are not staged",
        ))
    }

    async fn node_get_volume_stats(
        &self,
        _request: Request<csi::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<csi::NodeGetVolumeStatsResponse>, Status> {
        Err(Status::unimplemented("NodeGetVolumeStats is not supported"))
    }

    async fn node_expand_volume(
        &self,
        _request: Request<csi::NodeExpandVolumeRequest>,
    ) -> Result<Response<csi::NodeExpandVolumeResponse>, Status> {
        Err(Status::unimplemented("NodeExpandVolume is not supported"))
    }

    /// VOLUME_MOUNT_GROUP only: kubelet passes the pod's fsGroup and the
    /// driver makes the files group-readable itself (also after rotation).
    async fn node_get_capabilities(
        &self,
        _request: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<csi::NodeGetCapabilitiesResponse>, Status> {
        use csi::node_service_capability::{Rpc, Type, rpc::Type as RpcType};
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities: vec![csi::NodeServiceCapability {
                r#type: Some(Type::Rpc(Rpc {
                    r#type: RpcType::VolumeMountGroup as i32,
                })),
            }],
        }))
    }

    async fn node_get_info(
        &self,
        _request: Request<csi::NodeGetInfoRequest>,
    ) -> Result<Response<csi::NodeGetInfoResponse>, Status> {
        if self.node_id.is_empty() {
            return Err(Status::failed_precondition("--nodeid is not set"));
        }
        Ok(Response::new(csi::NodeGetInfoResponse {
            node_id: self.node_id.clone(),
            ..Default::default()
        }))
    }
}
