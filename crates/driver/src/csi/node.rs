//! CSI Node service: the RPC edge. Each handler opens the call's span,
//! validates the request, runs the publish pipeline and hands the result
//! to [`Reporter`] (metrics, events, log line, once).

use std::sync::Arc;
use std::time::Instant;

use secrets_store_proto::attributes::{POD_NAME, POD_NAMESPACE, SECRET_PROVIDER_CLASS};
use secrets_store_proto::csi::v1 as csi;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::publish::{Failure, Outcome, PublishRequest, Publisher, UnpublishRequest};
use crate::report::Reporter;
use crate::status::PodRef;

/// The Node service.
#[derive(Clone)]
pub struct NodeService {
    node_id: String,
    publisher: Arc<Publisher>,
    reporter: Arc<Reporter>,
}

impl NodeService {
    /// A Node service for node `node_id`.
    pub fn new(
        node_id: impl Into<String>,
        publisher: Arc<Publisher>,
        reporter: Arc<Reporter>,
    ) -> Self {
        Self {
            node_id: node_id.into(),
            publisher,
            reporter,
        }
    }

    async fn publish(&self, req: csi::NodePublishVolumeRequest) -> Result<(), Status> {
        let started = Instant::now();
        let class = req
            .volume_context
            .get(SECRET_PROVIDER_CLASS)
            .cloned()
            .unwrap_or_default();
        let (pod, result) = match PublishRequest::from_csi(req, self.publisher.rules()) {
            Ok(req) => {
                let pod = PodRef::from(&req.pod);
                (Some(pod), self.publisher.publish(req).await)
            }
            Err(e) => (None, Err(Failure::from(e))),
        };
        self.reporter
            .publish(pod.as_ref(), &class, &result, started.elapsed())
            .await;
        result.map(|_: Outcome| ()).map_err(|f| f.error.into())
    }
}

#[tonic::async_trait]
impl csi::node_server::Node for NodeService {
    /// "The CO SHALL ensure [...] the target path is created by the plugin";
    /// publishing an already published target with the same arguments
    /// "MUST" succeed without doing it twice. A failed refresh of a
    /// published volume keeps its content and reports success
    /// (kubernetes/kubernetes#121271).
    async fn node_publish_volume(
        &self,
        request: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        let req = request.into_inner();
        let ctx = &req.volume_context;
        let get = |k| ctx.get(k).map(String::as_str).unwrap_or("");
        let span = tracing::info_span!(
            "node_publish_volume",
            volume_id = %req.volume_id,
            target = %req.target_path,
            pod = %format!("{}/{}", get(POD_NAMESPACE), get(POD_NAME)),
            spc = get(SECRET_PROVIDER_CLASS),
        );
        self.publish(req).instrument(span).await?;
        Ok(Response::new(csi::NodePublishVolumeResponse {}))
    }

    /// Unmounts and removes the target; "MUST" succeed when it is already gone.
    async fn node_unpublish_volume(
        &self,
        request: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        let span = tracing::info_span!("node_unpublish_volume", volume_id = %req.volume_id, target = %req.target_path);
        async {
            let result = match UnpublishRequest::from_csi(req, self.publisher.rules()) {
                Ok(req) => self.publisher.unpublish(req).await,
                Err(e) => Err(e),
            };
            self.reporter.unpublish(&result);
            result?;
            Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
        }
        .instrument(span)
        .await
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
