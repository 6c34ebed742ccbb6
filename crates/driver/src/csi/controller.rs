//! The one Controller RPC this node-only driver answers:
//! ControllerGetCapabilities. Like upstream it lists a single `UNKNOWN`
//! RPC capability, which means none: csi-sanity rejects an empty list.
//! Every other Controller RPC is UNIMPLEMENTED (the service does not define
//! them).

use secrets_store_proto::csi::v1 as csi;
use tonic::{Request, Response, Status};

/// Reports that there is no controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControllerService;

#[tonic::async_trait]
impl csi::controller_server::Controller for ControllerService {
    async fn controller_get_capabilities(
        &self,
        _request: Request<csi::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<csi::ControllerGetCapabilitiesResponse>, Status> {
        use csi::controller_service_capability::{Rpc, Type, rpc::Type as RpcType};
        Ok(Response::new(csi::ControllerGetCapabilitiesResponse {
            capabilities: vec![csi::ControllerServiceCapability {
                r#type: Some(Type::Rpc(Rpc {
                    r#type: RpcType::Unknown as i32,
                })),
            }],
        }))
    }
}
