//! The kubelet simulator sends exactly kubelet's request shape. A recording
//! CSI Node server (the driver's side, not the API server's) captures what it
//! receives; tokens are checked with the real API server's TokenReview.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use secrets_store_proto::csi::v1 as csi;
use secrets_store_proto::csi::v1::node_server::{Node, NodeServer};
use secrets_store_testkit::kubelet::{self, volume_handle};
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions};
use tonic::{Request, Response, Status};

#[derive(Default, Clone)]
struct Recorder {
    publishes: Arc<Mutex<Vec<csi::NodePublishVolumeRequest>>>,
    unpublishes: Arc<Mutex<Vec<csi::NodeUnpublishVolumeRequest>>>,
}

impl Recorder {
    fn last_publish(&self) -> csi::NodePublishVolumeRequest {
        self.publishes
            .lock()
            .expect("lock")
            .pop()
            .expect("one publish")
    }

    fn last_unpublish(&self) -> csi::NodeUnpublishVolumeRequest {
        self.unpublishes
            .lock()
            .expect("lock")
            .pop()
            .expect("one unpublish")
    }
}

/// `impl Node for Recorder`: the RPCs named first answer `Unimplemented`
/// (kubelet's publish path never sends them); the rest are written out.
macro_rules! node_impl {
    ($($name:ident($req:ident) -> $resp:ident),*; $($rest:tt)*) => {
        #[tonic::async_trait]
        impl Node for Recorder {
            $(
                async fn $name(
                    &self,
                    _: Request<csi::$req>,
                ) -> Result<Response<csi::$resp>, Status> {
                    Err(Status::unimplemented("not recorded"))
                }
            )*
            $($rest)*
        }
    };
}

node_impl! {
    node_stage_volume(NodeStageVolumeRequest) -> NodeStageVolumeResponse,
    node_unstage_volume(NodeUnstageVolumeRequest) -> NodeUnstageVolumeResponse,
    node_get_volume_stats(NodeGetVolumeStatsRequest) -> NodeGetVolumeStatsResponse,
    node_expand_volume(NodeExpandVolumeRequest) -> NodeExpandVolumeResponse;

    async fn node_publish_volume(
        &self,
        r: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        self.publishes.lock().expect("lock").push(r.into_inner());
        Ok(Response::new(csi::NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        self.unpublishes.lock().expect("lock").push(r.into_inner());
        Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<csi::NodeGetCapabilitiesResponse>, Status> {
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities: vec![],
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<csi::NodeGetInfoRequest>,
    ) -> Result<Response<csi::NodeGetInfoResponse>, Status> {
        Ok(Response::new(csi::NodeGetInfoResponse {
            node_id: "n".into(),
            ..Default::default()
        }))
    }
}

async fn serve_recorder(dir: &std::path::Path) -> anyhow::Result<(Recorder, std::path::PathBuf)> {
    let socket = dir.join("csi.sock");
    let listener = tokio::net::UnixListener::bind(&socket)?;
    let recorder = Recorder::default();
    let svc = NodeServer::new(recorder.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    Ok((recorder, socket))
}

/// Asks the API server who a token belongs to, for `audience`.
async fn review(
    client: &kube::Client,
    token: &str,
    audience: &str,
) -> anyhow::Result<(bool, BTreeMap<String, Vec<String>>, Option<String>)> {
    let api: Api<TokenReview> = Api::all(client.clone());
    let r = api
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: token.into(),
                    audiences: Some(vec![audience.into()]),
                },
                ..Default::default()
            },
        )
        .await?;
    let status = r.status.unwrap_or_default();
    let user = status.user.unwrap_or_default();
    Ok((
        status.authenticated == Some(true),
        user.extra.unwrap_or_default(),
        user.username,
    ))
}

#[tokio::test]
async fn publish_and_unpublish_have_kubelets_shape() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let ns = cp.namespace("kubelet").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut creds = Secret::default();
    creds.metadata.name = Some("creds".into());
    creds.data = Some(BTreeMap::from([(
        "access_key".to_string(),
        ByteString(b"AK-canary".to_vec()),
    )]));
    secrets.create(&PostParams::default(), &creds).await?;

    let dir = tempfile::tempdir()?;
    let (recorder, socket) = serve_recorder(dir.path()).await?;
    let root = dir.path().join("kubelet");
    let sim = Kubelet::new(client.clone(), &socket, &root).await?;

    let mut spec = TestPod::new(&ns, "web", "my-spc");
    spec.service_account = "web-sa".into();
    spec.volumes[0].node_publish_secret_ref = Some("creds".into());
    spec.volumes[0]
        .attributes
        .insert("providerName".into(), "e2e".into());
    let pod = sim.create_pod(&spec).await?;
    let uid = pod.metadata.uid.clone().expect("uid");

    let tokens = TokenOptions {
        audiences: vec!["aud1".into(), "aud2".into()],
        ..Default::default()
    };
    sim.publish(&pod, "secrets", &tokens)
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;

    let req = recorder.last_publish();
    let target = root.join(format!(
        "pods/{uid}/volumes/kubernetes.io~csi/secrets/mount"
    ));
    assert_eq!(req.target_path, target.display().to_string());
    assert!(
        target
            .parent()
            .expect("parent")
            .join("vol_data.json")
            .exists(),
        "kubelet writes vol_data.json"
    );
    assert!(
        !target.exists(),
        "kubelet leaves creating `mount` to the driver"
    );
    assert_eq!(req.volume_id, volume_handle(&uid, "secrets"));
    assert!(req.volume_id.starts_with("csi-") && req.volume_id.len() == 4 + 64);
    assert!(req.readonly);
    let cap = req.volume_capability.expect("capability");
    assert_eq!(
        cap.access_mode.map(|m| m.mode),
        Some(csi::volume_capability::access_mode::Mode::SingleNodeWriter as i32)
    );
    assert!(matches!(
        cap.access_type,
        Some(csi::volume_capability::AccessType::Mount(_))
    ));
    assert_eq!(
        req.secrets.get("access_key").map(String::as_str),
        Some("AK-canary")
    );

    let ctx = &req.volume_context;
    assert_eq!(ctx[kubelet::POD_NAME], "web");
    assert_eq!(ctx[kubelet::POD_NAMESPACE], ns);
    assert_eq!(ctx[kubelet::POD_UID], uid);
    assert_eq!(ctx[kubelet::SERVICE_ACCOUNT_NAME], "web-sa");
    assert_eq!(ctx[kubelet::EPHEMERAL], "true");
    assert_eq!(ctx[kubelet::SECRET_PROVIDER_CLASS], "my-spc");
    assert_eq!(ctx["providerName"], "e2e");

    let tokens_json: serde_json::Value =
        serde_json::from_str(&ctx[kubelet::SERVICE_ACCOUNT_TOKENS])?;
    for aud in ["aud1", "aud2"] {
        let entry = &tokens_json[aud];
        let token = entry["token"].as_str().expect("token");
        assert!(
            entry["expirationTimestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{entry}"
        );
        let (ok, extra, user) = review(&client, token, aud).await?;
        assert!(ok, "token for {aud} not accepted by the API server");
        assert_eq!(
            user.as_deref(),
            Some(format!("system:serviceaccount:{ns}:web-sa").as_str())
        );
        assert_eq!(
            extra.get("authentication.kubernetes.io/pod-uid"),
            Some(&vec![uid.clone()]),
            "token is bound to the pod"
        );
        let (wrong, _, _) = review(&client, token, "someone-else").await?;
        assert!(!wrong, "token for {aud} accepted for another audience");
    }

    sim.unpublish(&pod, "secrets")
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    let un = recorder.last_unpublish();
    assert_eq!(un.volume_id, volume_handle(&uid, "secrets"));
    assert_eq!(un.target_path, target.display().to_string());
    Ok(())
}

#[tokio::test]
async fn tokens_go_in_secrets_when_the_csidriver_says_so() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let ns = cp.namespace("kubelet-secrets").await?;
    let dir = tempfile::tempdir()?;
    let (recorder, socket) = serve_recorder(dir.path()).await?;
    let sim = Kubelet::new(client.clone(), &socket, &dir.path().join("kubelet")).await?;
    let pod = sim.create_pod(&TestPod::new(&ns, "app", "spc")).await?;
    let tokens = TokenOptions {
        audiences: vec!["vault".into()],
        in_secrets: true,
        expiration_seconds: Some(600),
    };
    sim.publish(&pod, "secrets", &tokens)
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    let req = recorder.last_publish();
    assert!(
        !req.volume_context
            .contains_key(kubelet::SERVICE_ACCOUNT_TOKENS)
    );
    let json: serde_json::Value =
        serde_json::from_str(&req.secrets[kubelet::SERVICE_ACCOUNT_TOKENS])?;
    let token = json["vault"]["token"].as_str().expect("token");
    assert!(review(&client, token, "vault").await?.0);
    Ok(())
}
