//! A kubelet simulator for CSI ephemeral inline volumes.
//!
//! It does what kubelet does around a `secrets-store.csi.k8s.io` volume and
//! nothing else: creates the ServiceAccount and the Pod in the real API
//! server, mints service-account tokens with TokenRequest (bound to the pod)
//! for the CSIDriver's `tokenRequests` audiences, reads a
//! `nodePublishSecretRef` Secret, creates the volume's parent directory, and
//! calls NodePublishVolume / NodeUnpublishVolume with kubelet's exact request
//! shape:
//! - target path `<root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`;
//! - volume id `csi-<sha256(pod uid + volume name)>`;
//! - mount capability with the volume's fsType, access mode
//!   SINGLE_NODE_WRITER, `readonly` from the volume source;
//! - volume_context = volumeAttributes + `csi.storage.k8s.io/pod.name`,
//!   `pod.namespace`, `pod.uid`, `serviceAccount.name`, `ephemeral: "true"`,
//!   and `serviceAccount.tokens` (JSON `{aud: {token, expirationTimestamp}}`)
//!   either there or, like kubelet >= 1.35 with `serviceAccountTokenInSecrets`,
//!   in the `secrets` map.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::core::v1::{
    CSIVolumeSource, Container, LocalObjectReference, Pod, PodSecurityContext, PodSpec, Secret,
    ServiceAccount, Volume, VolumeMount,
};
use kube::api::{Api, PostParams};
use secrets_store_proto::csi::v1 as csi;
use secrets_store_proto::csi::v1::node_client::NodeClient;
use tonic::transport::Channel;

use secrets_store_proto::kubelet::inline_volume_capability;
pub use secrets_store_proto::kubelet::volume_handle;

pub use secrets_store_proto::attributes::{
    EPHEMERAL, POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS, SERVICE_ACCOUNT_NAME,
    SERVICE_ACCOUNT_TOKENS, ServiceAccountTokens,
};

/// The driver name the simulator's volumes use by default.
pub const DRIVER_NAME: &str = "secrets-store.csi.k8s.io";

/// A pod to create, with its CSI volumes.
#[derive(Clone, Debug)]
pub struct TestPod {
    /// Namespace (must exist).
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Service account, created if missing.
    pub service_account: String,
    /// `securityContext.fsGroup`, if any.
    pub fs_group: Option<i64>,
    /// CSI inline volumes.
    pub volumes: Vec<TestVolume>,
    /// `spec.nodeName`: the node the pod is bound to (drivers that watch
    /// only their node's pods need it); unset by default.
    pub node_name: Option<String>,
}

/// One CSI inline volume of a [`TestPod`].
#[derive(Clone, Debug)]
pub struct TestVolume {
    /// Volume name in the pod spec.
    pub name: String,
    /// CSI driver name.
    pub driver: String,
    /// `readOnly` of the volume source (the driver requires true).
    pub read_only: bool,
    /// `volumeAttributes`, including `secretProviderClass`.
    pub attributes: BTreeMap<String, String>,
    /// Name of the Secret in `nodePublishSecretRef`.
    pub node_publish_secret_ref: Option<String>,
    /// `fsType` of the volume source.
    pub fs_type: Option<String>,
}

impl TestPod {
    /// A pod with one read-only secrets-store volume named `secrets` using
    /// SecretProviderClass `spc`, running as service account `default`.
    pub fn new(namespace: &str, name: &str, spc: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            service_account: "default".into(),
            fs_group: None,
            volumes: vec![TestVolume::new("secrets", spc)],
            node_name: None,
        }
    }

    /// Creates the pod's service account (if missing) and the pod, with no
    /// kubelet to run it.
    pub async fn create(&self, client: &kube::Client) -> anyhow::Result<Pod> {
        let spec = self;
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &spec.namespace);
        if sas.get_opt(&spec.service_account).await?.is_none() {
            let mut sa = ServiceAccount::default();
            sa.metadata.name = Some(spec.service_account.clone());
            sas.create(&PostParams::default(), &sa).await?;
        }
        let volumes = spec
            .volumes
            .iter()
            .map(|v| Volume {
                name: v.name.clone(),
                csi: Some(CSIVolumeSource {
                    driver: v.driver.clone(),
                    read_only: Some(v.read_only),
                    volume_attributes: Some(v.attributes.clone()),
                    node_publish_secret_ref: v
                        .node_publish_secret_ref
                        .as_ref()
                        .map(|n| LocalObjectReference { name: n.clone() }),
                    fs_type: v.fs_type.clone(),
                }),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let mounts = spec
            .volumes
            .iter()
            .map(|v| VolumeMount {
                name: v.name.clone(),
                mount_path: format!("/mnt/{}", v.name),
                read_only: Some(true),
                ..Default::default()
            })
            .collect();
        let mut pod = Pod::default();
        pod.metadata.name = Some(spec.name.clone());
        pod.spec = Some(PodSpec {
            service_account_name: Some(spec.service_account.clone()),
            automount_service_account_token: Some(false),
            security_context: spec.fs_group.map(|g| PodSecurityContext {
                fs_group: Some(g),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                volume_mounts: Some(mounts),
                ..Default::default()
            }],
            volumes: Some(volumes),
            node_name: spec.node_name.clone(),
            ..Default::default()
        });
        let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
        Ok(pods.create(&PostParams::default(), &pod).await?)
    }
}

impl TestVolume {
    /// A read-only secrets-store volume using SecretProviderClass `spc`.
    pub fn new(name: &str, spc: &str) -> Self {
        Self {
            name: name.into(),
            driver: DRIVER_NAME.into(),
            read_only: true,
            attributes: BTreeMap::from([(SECRET_PROVIDER_CLASS.to_string(), spc.to_string())]),
            node_publish_secret_ref: None,
            fs_type: None,
        }
    }
}

/// How kubelet hands service-account tokens to the driver.
#[derive(Clone, Debug, Default)]
pub struct TokenOptions {
    /// CSIDriver `tokenRequests` audiences; empty means no tokens.
    pub audiences: Vec<String>,
    /// Token lifetime in seconds (kubelet's default is one hour).
    pub expiration_seconds: Option<i64>,
    /// Put tokens in the `secrets` map (CSIDriver `serviceAccountTokenInSecrets`)
    /// rather than in `volume_context`.
    pub in_secrets: bool,
}

/// Plays kubelet for one node against one CSI socket.
#[derive(Clone)]
pub struct Kubelet {
    client: kube::Client,
    node: NodeClient<Channel>,
    root: PathBuf,
}

impl Kubelet {
    /// A kubelet whose root dir (`/var/lib/kubelet` on a node) is `root`,
    /// talking to the driver at `csi_socket`.
    pub async fn new(client: kube::Client, csi_socket: &Path, root: &Path) -> anyhow::Result<Self> {
        let channel = crate::csi::connect(csi_socket).await?;
        Ok(Self {
            client,
            node: NodeClient::new(channel),
            root: root.to_path_buf(),
        })
    }

    /// Creates the pod's service account (if missing) and the pod.
    pub async fn create_pod(&self, spec: &TestPod) -> anyhow::Result<Pod> {
        spec.create(&self.client).await
    }

    /// kubelet's target path for a pod's volume.
    pub fn target_path(&self, pod_uid: &str, volume: &str) -> PathBuf {
        secrets_store_proto::kubelet::target_path(&self.root, pod_uid, volume)
    }

    /// Builds the NodePublishVolume request kubelet would send for `volume`
    /// of `pod`, minting tokens per `tokens`.
    pub async fn publish_request(
        &self,
        pod: &Pod,
        volume: &str,
        tokens: &TokenOptions,
    ) -> anyhow::Result<csi::NodePublishVolumeRequest> {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .context("pod has no namespace")?;
        let name = pod.metadata.name.clone().context("pod has no name")?;
        let uid = pod.metadata.uid.clone().context("pod has no uid")?;
        let spec = pod.spec.as_ref().context("pod has no spec")?;
        let sa = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let source = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == volume)
            .and_then(|v| v.csi.clone())
            .with_context(|| format!("pod {ns}/{name} has no CSI volume {volume:?}"))?;

        let mut context: HashMap<String, String> = source
            .volume_attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        context.insert(POD_NAME.into(), name.clone());
        context.insert(POD_NAMESPACE.into(), ns.clone());
        context.insert(POD_UID.into(), uid.clone());
        context.insert(SERVICE_ACCOUNT_NAME.into(), sa.clone());
        context.insert(EPHEMERAL.into(), "true".into());

        let mut secrets = HashMap::new();
        if let Some(r) = &source.node_publish_secret_ref {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
            let secret = api
                .get(&r.name)
                .await
                .with_context(|| format!("reading nodePublishSecretRef {ns}/{}", r.name))?;
            for (k, v) in secret.data.unwrap_or_default() {
                secrets.insert(k, String::from_utf8_lossy(&v.0).into_owned());
            }
        }
        if !tokens.audiences.is_empty() {
            let json = self.mint_tokens(&ns, &sa, &name, &uid, tokens).await?;
            if tokens.in_secrets {
                secrets.insert(SERVICE_ACCOUNT_TOKENS.into(), json);
            } else {
                context.insert(SERVICE_ACCOUNT_TOKENS.into(), json);
            }
        }

        let target = self.target_path(&uid, volume);
        // kubelet creates the volume directory and its vol_data.json; the
        // driver creates `mount` itself.
        let vol_dir = target.parent().context("target path has no parent")?;
        std::fs::create_dir_all(vol_dir)?;
        let vol_data = serde_json::json!({
            "driverName": source.driver,
            "volumeHandle": volume_handle(&uid, volume),
            "specVolID": volume,
            "podUID": uid,
            "volumeLifecycleMode": "Ephemeral",
        });
        std::fs::write(vol_dir.join("vol_data.json"), vol_data.to_string())?;

        let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
        Ok(csi::NodePublishVolumeRequest {
            volume_id: volume_handle(&uid, volume),
            publish_context: HashMap::new(),
            staging_target_path: String::new(),
            target_path: target.display().to_string(),
            volume_capability: Some(inline_volume_capability(
                source.fs_type.clone().unwrap_or_default(),
                fs_group.map(|g| g.to_string()).unwrap_or_default(),
            )),
            readonly: source.read_only.unwrap_or(false),
            secrets,
            volume_context: context,
        })
    }

    /// Sends NodePublishVolume for `volume` of `pod`.
    pub async fn publish(
        &self,
        pod: &Pod,
        volume: &str,
        tokens: &TokenOptions,
    ) -> anyhow::Result<Result<csi::NodePublishVolumeResponse, tonic::Status>> {
        let req = self.publish_request(pod, volume, tokens).await?;
        Ok(self.send_publish(req).await)
    }

    /// Sends a prepared NodePublishVolume request.
    pub async fn send_publish(
        &self,
        req: csi::NodePublishVolumeRequest,
    ) -> Result<csi::NodePublishVolumeResponse, tonic::Status> {
        self.node
            .clone()
            .node_publish_volume(req)
            .await
            .map(|r| r.into_inner())
    }

    /// Sends NodeUnpublishVolume for `volume` of `pod`, as kubelet does when
    /// the pod goes away.
    pub async fn unpublish(
        &self,
        pod: &Pod,
        volume: &str,
    ) -> anyhow::Result<Result<csi::NodeUnpublishVolumeResponse, tonic::Status>> {
        let uid = pod.metadata.uid.clone().context("pod has no uid")?;
        let req = csi::NodeUnpublishVolumeRequest {
            volume_id: volume_handle(&uid, volume),
            target_path: self.target_path(&uid, volume).display().to_string(),
        };
        Ok(self
            .node
            .clone()
            .node_unpublish_volume(req)
            .await
            .map(|r| r.into_inner()))
    }

    /// Mints one token per audience for the pod's service account, bound to
    /// the pod, and encodes them as kubelet does.
    async fn mint_tokens(
        &self,
        ns: &str,
        sa: &str,
        pod: &str,
        uid: &str,
        opts: &TokenOptions,
    ) -> anyhow::Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        let mut out = ServiceAccountTokens::default();
        for aud in &opts.audiences {
            let req = secrets_store_crds::pod_token_request(
                aud.clone(),
                opts.expiration_seconds.unwrap_or(3600),
                pod,
                uid,
            );
            let tr = api
                .create_token_request(sa, &PostParams::default(), &req)
                .await
                .with_context(|| format!("TokenRequest for {ns}/{sa} audience {aud:?}"))?;
            let status = tr.status.context("TokenRequest returned no status")?;
            let token = status.token.context("TokenRequest returned no token")?;
            let expiry = status.expiration_timestamp.map(|t| t.0.to_string());
            out.insert(aud.clone(), token, expiry.unwrap_or_default());
        }
        Ok(out.to_json())
    }
}
