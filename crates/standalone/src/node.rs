//! `secrets-store publish` and `unpublish`: NodePublishVolume and
//! NodeUnpublishVolume sent to a CSI driver's socket, shaped as kubelet
//! shapes them for an inline (ephemeral) volume: kubelet's target path and
//! volume handle, the pod in the volume context, `readonly`, the pod's
//! fsGroup as the mount group, tokens in the context or the CSI secrets.

use std::collections::HashMap;
use std::path::PathBuf;

use secrets_store_proto::attributes::SERVICE_ACCOUNT_TOKENS;
use secrets_store_proto::csi::v1 as csi;
use secrets_store_proto::csi::v1::node_client::NodeClient;
use secrets_store_proto::kubelet::inline_volume_capability;
pub use secrets_store_proto::kubelet::{target_path, volume_handle};

use crate::cli::{NodeArgs, PublishArgs, UnpublishArgs};
use crate::fill::{self, Pod};

/// Why a call was not made or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pod field kubelet always sends is missing.
    #[error("publish needs --{0}: the driver checks the pod against the API server")]
    MissingPod(&'static str),
    /// The endpoint is not a socket path.
    #[error(transparent)]
    Endpoint(#[from] secrets_store_csi_driver::config::Error),
    /// A file could not be read.
    #[error(transparent)]
    Input(#[from] fill::Error),
    /// kubelet's volume directory could not be created.
    #[error("creating kubelet's volume directory {path}: {source}")]
    VolumeDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The socket could not be dialled.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// The driver refused the call.
    #[error("{call} failed: {code:?}: {message}")]
    Status {
        /// `NodePublishVolume` or `NodeUnpublishVolume`.
        call: &'static str,
        /// gRPC code.
        code: tonic::Code,
        /// The driver's message.
        message: String,
    },
}

async fn client(node: &NodeArgs) -> Result<NodeClient<tonic::transport::Channel>, Error> {
    let path = if node.endpoint.contains("://") {
        secrets_store_csi_driver::config::parse_endpoint(&node.endpoint)?
    } else {
        PathBuf::from(&node.endpoint)
    };
    let channel = secrets_store_grpc_uds::connect(&path)
        .await
        .map_err(|source| Error::Connect { path, source })?;
    Ok(NodeClient::new(channel))
}

fn status(call: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |s| Error::Status {
        call,
        code: s.code(),
        message: s.message().to_string(),
    }
}

/// The NodePublishVolume request kubelet would send.
pub fn publish_request(args: &PublishArgs) -> Result<csi::NodePublishVolumeRequest, Error> {
    let p = &args.pod;
    p.pod_name.as_ref().ok_or(Error::MissingPod("pod-name"))?;
    p.pod_namespace
        .as_ref()
        .ok_or(Error::MissingPod("pod-namespace"))?;
    let uid = p.pod_uid.as_ref().ok_or(Error::MissingPod("pod-uid"))?;
    let pod = Pod::from_args(p);
    let mut context: HashMap<String, String> =
        fill::context(&pod, &args.class, p).into_iter().collect();
    let mut secrets: HashMap<String, String> =
        fill::secrets(p)?.expose().clone().into_iter().collect();
    if let Some(path) = &args.tokens {
        let json = std::fs::read_to_string(path).map_err(|source| fill::Error::Input {
            what: "tokens",
            path: path.clone(),
            source,
        })?;
        let into = if args.tokens_in_secrets {
            &mut secrets
        } else {
            &mut context
        };
        into.insert(SERVICE_ACCOUNT_TOKENS.into(), json.trim_end().to_string());
    }
    let node = &args.node;
    let target = target_path(&node.kubelet_dir, uid, &node.volume);
    Ok(csi::NodePublishVolumeRequest {
        volume_id: node
            .volume_id
            .clone()
            .unwrap_or_else(|| volume_handle(uid, &node.volume)),
        target_path: target.display().to_string(),
        volume_capability: Some(inline_volume_capability(
            String::new(),
            args.fs_group.map(|g| g.to_string()).unwrap_or_default(),
        )),
        readonly: true,
        secrets,
        volume_context: context,
        ..Default::default()
    })
}

/// `publish`: creates kubelet's volume directory (as kubelet does) and
/// sends NodePublishVolume; prints the target on success.
pub async fn publish(args: PublishArgs) -> Result<PathBuf, Error> {
    let req = publish_request(&args)?;
    let target = PathBuf::from(&req.target_path);
    if let Some(volume_dir) = target.parent() {
        std::fs::create_dir_all(volume_dir).map_err(|source| Error::VolumeDir {
            path: volume_dir.to_path_buf(),
            source,
        })?;
    }
    client(&args.node)
        .await?
        .node_publish_volume(req)
        .await
        .map_err(status("NodePublishVolume"))?;
    Ok(target)
}

/// `unpublish`: sends NodeUnpublishVolume for the pod's volume.
pub async fn unpublish(args: UnpublishArgs) -> Result<PathBuf, Error> {
    let node = &args.node;
    let target = target_path(&node.kubelet_dir, &args.pod_uid, &node.volume);
    let req = csi::NodeUnpublishVolumeRequest {
        volume_id: node
            .volume_id
            .clone()
            .unwrap_or_else(|| volume_handle(&args.pod_uid, &node.volume)),
        target_path: target.display().to_string(),
    };
    client(node)
        .await?
        .node_unpublish_volume(req)
        .await
        .map_err(status("NodeUnpublishVolume"))?;
    Ok(target)
}
