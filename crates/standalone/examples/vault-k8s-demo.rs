//! `./hack/demo.sh --kubernetes`: the node's whole path with Kubernetes
//! auth, for real, on this machine (root: the driver mounts a tmpfs).
//!
//! 1. A real control plane (etcd, kube-apiserver with our CRDs).
//! 2. OpenBao in dev mode on loopback, its Kubernetes auth method checking
//!    tokens through the API server's TokenReview; a KV v2 secret, a policy
//!    and a role for the demo's namespace.
//! 3. Our `vault` provider and our CSI driver, as their own processes.
//! 4. A ServiceAccount, a SecretProviderClass (syncing a Secret) and a Pod
//!    in the API server; the volume is published as kubelet does (the
//!    testkit's kubelet simulator: a TokenRequest token for audience
//!    `vault`, then NodePublishVolume on the driver's socket).
//!
//! It prints the files on the volume's tmpfs, the
//! SecretProviderClassPodStatus and the synced Secret, changes the secret
//! in OpenBao, republishes (kubelet's `requiresRepublish`) and prints the
//! refreshed file and Secret, then unpublishes and stops everything; also
//! on error and on Ctrl-C.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassPodStatus,
    SecretProviderClassSpec,
};
use secrets_store_proto::csi::v1::NodePublishVolumeRequest;
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::process::free_port;
use secrets_store_testkit::vault::{Kind, OpenBao, Peer, start_peer};
use secrets_store_testkit::{
    ControlPlane, ControlPlaneOptions, Kubelet, TestPod, TokenOptions, mounts, wait_for,
};
use serde_json::json;

use common::binary;

const OBJECTS: &str = r#"- objectName: db-username
  secretPath: secret/data/demo/db
  secretKey: username
- objectName: db-password
  secretPath: secret/data/demo/db
  secretKey: password
  filePermission: 0400
"#;

const POLICY: &str = "path \"secret/data/demo/*\" { capabilities = [\"read\"] }\n";

/// Unmounts whatever is left under the demo's directory, on any exit path
/// (first field of [`Demo`], so it runs before the processes stop).
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        mounts::unmount_all_under(&self.0);
    }
}

/// Everything the demo runs; dropping it stops it all.
struct Demo {
    _unmount: UnmountOnDrop,
    kubelet: Kubelet,
    driver: DriverProcess,
    provider: Peer,
    bao: OpenBao,
    cp: ControlPlane,
    ns: String,
    _work: tempfile::TempDir,
}

impl Demo {
    async fn start() -> anyhow::Result<Self> {
        let cp = ControlPlane::start(ControlPlaneOptions::default()).await?;
        println!(
            "control plane: etcd + kube-apiserver on {} (Secrets Store CRDs installed)",
            cp.url()
        );
        let bao = OpenBao::start(&cp).await?;
        let ns = cp.namespace("demo").await?;
        bao.role("demo", &ns, POLICY, Some("vault")).await?;
        let db = json!({"data": {"username": "app", "password": "s3cr3t-1"}});
        bao.api("POST", "secret/data/demo/db", Some(db)).await?;
        println!(
            "OpenBao dev server on {}: KV v2 secret demo/db; Kubernetes auth checks tokens with the API server's TokenReview; role \"demo\" for namespace {ns}, audience \"vault\"",
            bao.addr
        );
        let provider = start_peer(Kind::Ours, &bao, &[]).await?;
        println!("our vault provider on {}", provider.socket().display());
        let work = tempfile::Builder::new()
            .prefix("secrets-store-k8s-demo-")
            .tempdir()?;
        let unmount = UnmountOnDrop(work.path().to_path_buf());
        let kubelet_dir = work.path().join("kubelet");
        let driver = DriverProcess::start(
            &binary("secrets-store-csi-driver")?,
            &[
                "--nodeid=demo-node".into(),
                format!("--provider-volume={}", provider.providers_dir().display()),
                format!("--kubeconfig={}", cp.kubeconfig().display()),
                format!("--metrics-addr=127.0.0.1:{}", free_port()?),
                format!("--kubelet-dir={}", kubelet_dir.display()),
                // Every republish refreshes the content (no minimum gap).
                "--enable-secret-rotation=true".into(),
                "--rotation-poll-interval=1ms".into(),
            ],
        )
        .await?;
        println!("our CSI driver on {}", driver.socket().display());
        let kubelet = Kubelet::new(cp.client().await?, driver.socket(), &kubelet_dir).await?;
        Ok(Self {
            _unmount: unmount,
            kubelet,
            driver,
            provider,
            bao,
            cp,
            ns,
            _work: work,
        })
    }

    /// The SecretProviderClass (syncing Secret `db-credentials`) and the
    /// pod with its ServiceAccount.
    async fn create_objects(&self) -> anyhow::Result<Pod> {
        let synced = SecretObject {
            secret_name: "db-credentials".into(),
            type_: "kubernetes.io/basic-auth".into(),
            data: vec![
                SecretObjectData {
                    object_name: "db-username".into(),
                    key: "username".into(),
                },
                SecretObjectData {
                    object_name: "db-password".into(),
                    key: "password".into(),
                },
            ],
            ..Default::default()
        };
        let spec = SecretProviderClassSpec {
            provider: "vault".into(),
            parameters: [
                ("roleName".to_string(), "demo".to_string()),
                ("objects".to_string(), OBJECTS.to_string()),
            ]
            .into(),
            secret_objects: vec![synced],
        };
        Api::<SecretProviderClass>::namespaced(self.cp.client().await?, &self.ns)
            .create(
                &PostParams::default(),
                &SecretProviderClass::new("demo", spec),
            )
            .await?;
        let mut pod = TestPod::new(&self.ns, "app", "demo");
        pod.service_account = "app".into();
        let pod = self.kubelet.create_pod(&pod).await?;
        println!(
            "created SecretProviderClass {ns}/demo (objects db-username, db-password; syncs Secret db-credentials), ServiceAccount {ns}/app, Pod {ns}/app",
            ns = self.ns
        );
        Ok(pod)
    }

    /// Sends `req` (kubelet's NodePublishVolume); fails with the driver's
    /// message and the logs.
    async fn publish(&self, req: &NodePublishVolumeRequest) -> anyhow::Result<()> {
        self.kubelet.send_publish(req.clone()).await.map_err(|s| {
            anyhow::anyhow!(
                "NodePublishVolume failed: {}\n--- driver\n{}\n--- provider\n{}",
                s.message(),
                self.driver.log(),
                self.provider.log()
            )
        })?;
        Ok(())
    }

    async fn show_status(&self, pod: &Pod) -> anyhow::Result<()> {
        let name = format!(
            "{}-{}-demo",
            pod.metadata.name.as_deref().unwrap_or_default(),
            self.ns
        );
        // The driver writes it just after the publish returns.
        let api =
            Api::<SecretProviderClassPodStatus>::namespaced(self.cp.client().await?, &self.ns);
        let spcps = wait_for(
            "the SecretProviderClassPodStatus",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                let (api, name) = (api.clone(), name.clone());
                async move { Ok(api.get_opt(&name).await?) }
            },
        )
        .await?;
        let status = spcps.status.unwrap_or_default();
        let objects: Vec<String> = status
            .objects
            .iter()
            .map(|o| format!("{}@{}", o.id, o.version))
            .collect();
        println!(
            "SecretProviderClassPodStatus {}/{name}: mounted={} targetPath={} objects=[{}]",
            self.ns,
            status.mounted,
            status.target_path,
            objects.join(", ")
        );
        Ok(())
    }

    /// Waits until the synced Secret holds `password`, and prints it.
    async fn show_secret(&self, password: &str) -> anyhow::Result<()> {
        let secrets = Api::<Secret>::namespaced(self.cp.client().await?, &self.ns);
        let secret = wait_for(
            "the synced Secret db-credentials",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                let secrets = secrets.clone();
                async move {
                    let s = secrets.get_opt("db-credentials").await?;
                    Ok(s.filter(|s| {
                        let data = s.data.as_ref();
                        data.and_then(|d| d.get("password"))
                            .is_some_and(|p| p.0 == password.as_bytes())
                    }))
                }
            },
        )
        .await?;
        let data = secret.data.unwrap_or_default();
        let value = |k: &str| String::from_utf8_lossy(&data[k].0).into_owned();
        println!(
            "synced Secret {}/db-credentials ({}): username={} password={}",
            self.ns,
            secret.type_.unwrap_or_default(),
            value("username"),
            value("password")
        );
        Ok(())
    }
}

/// Prints the volume's files (mode, name, content).
fn show_files(target: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(target)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    names.sort();
    println!("volume {} (tmpfs):", target.display());
    for name in names {
        let path = target.join(&name);
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        let text = std::fs::read_to_string(&path)?;
        println!("  {mode:04o} {name:<12} {text}");
    }
    Ok(())
}

async fn demo() -> anyhow::Result<()> {
    let started = Instant::now();
    let demo = Demo::start().await?;
    let pod = demo.create_objects().await?;
    let tokens = TokenOptions {
        audiences: vec!["vault".into()],
        ..Default::default()
    };
    let req = demo
        .kubelet
        .publish_request(&pod, "secrets", &tokens)
        .await?;
    println!(
        "kubelet (simulated): NodePublishVolume for pod {}/app, volume \"secrets\", with the pod's TokenRequest token for audience \"vault\"",
        demo.ns
    );
    demo.publish(&req).await?;
    let target = PathBuf::from(&req.target_path);
    println!();
    show_files(&target)?;
    demo.show_status(&pod).await?;
    demo.show_secret("s3cr3t-1").await?;

    println!("\n$ bao kv put -mount=secret demo/db username=app password=s3cr3t-2");
    let db = json!({"data": {"username": "app", "password": "s3cr3t-2"}});
    demo.bao
        .api("POST", "secret/data/demo/db", Some(db))
        .await?;
    println!("kubelet (simulated) republishes the volume (CSIDriver requiresRepublish)");
    demo.publish(&req).await?;
    show_files(&target)?;
    demo.show_secret("s3cr3t-2").await?;

    demo.kubelet.unpublish(&pod, "secrets").await??;
    drop(demo);
    println!(
        "\nunpublished the volume; stopped the driver, the provider, OpenBao and the control plane ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::args().len() == 1,
        "usage: vault-k8s-demo (no arguments)"
    );
    common::until_ctrl_c(demo()).await
}
