//! The project's demo (`./hack/demo.sh`): one node's whole path, for real,
//! on this machine.
//!
//! 1. A real control plane (etcd, kube-apiserver with our CRDs,
//!    kube-controller-manager).
//! 2. The local Alibaba Cloud protocol server, holding two demo secrets and
//!    an access key (embedded defaults; nothing leaves the machine).
//! 3. Our `alibabacloud` provider and our CSI driver, as their own
//!    processes.
//! 4. A SecretProviderClass (the seed's example, plus a synced Secret) and
//!    a pod, published through the kubelet simulator.
//!
//! It prints the files on the volume's tmpfs, the synced Secret and the
//! SecretProviderClassPodStatus, then keeps everything running until
//! Ctrl-C (`--once`: check and exit; the test suite runs that).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassPodStatus,
    SecretProviderClassSpec,
};
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::{
    ControlPlane, ControlPlaneOptions, Kubelet, TestPod, TokenOptions, wait_for,
};

const OBJECTS: &str = r#"- objectName: "test"
- objectName: "db"
  jmesPath:
    - path: "username"
      objectAlias: "MySecretUsername"
    - path: "password"
      objectAlias: "MySecretPassword"
"#;

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    // target/<profile>/examples/demo -> target/<profile>/<name>
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("no target dir"))?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} not built; run ./hack/demo.sh",
        path.display()
    );
    Ok(path)
}

/// Unmounts whatever is left under the demo's directory, on any exit path.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        secrets_store_testkit::mounts::unmount_all_under(&self.0);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    eprintln!("starting etcd, kube-apiserver and kube-controller-manager ...");
    let cp = ControlPlane::start(ControlPlaneOptions {
        controller_manager: true,
        ..Default::default()
    })
    .await?;
    let client = cp.client().await?;
    let ns = cp.namespace("demo").await?;

    let emu = Emulator::start().await?;
    emu.add_access_key("AKID-DEMO", "demo-secret-key", "acs:ram::100:user/demo");
    emu.add_secret("test", "v1", "hello from Alibaba Cloud KMS (emulated)");
    emu.add_secret("db", "v1", r#"{"username":"app","password":"s3cr3t-demo"}"#);

    let work = tempfile::Builder::new()
        .prefix("secrets-store-demo-")
        .tempdir()?;
    let _cleanup = UnmountOnDrop(work.path().to_path_buf());
    let providers = work.path().join("providers");
    std::fs::create_dir_all(&providers)?;
    let url = emu.url();
    let kubeconfig = cp.kubeconfig().display().to_string();
    let _provider = Process::spawn(
        "alibabacloud provider",
        &binary("secrets-store-csi-driver-provider-alibabacloud")?,
        &[
            format!("--provider-volume={}", providers.display()),
            format!("--healthz-port={}", free_port()?),
            format!("--kms-endpoint={url}"),
            format!("--oos-endpoint={url}"),
            format!("--sts-endpoint={url}"),
            format!("--ecs-metadata-endpoint={url}"),
            "--region=cn-hangzhou".into(),
        ],
        &[
            ("KUBECONFIG", &kubeconfig),
            ("ACCESS_KEY_ID", "AKID-DEMO"),
            ("SECRET_ACCESS_KEY", "demo-secret-key"),
        ],
        &work.path().join("provider.log"),
    )?;
    let socket = providers.join("alibabacloud.sock");
    wait_for(
        "the provider socket",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            let ready = socket.exists();
            async move { Ok(ready.then_some(())) }
        },
    )
    .await?;
    let driver = DriverProcess::start(
        &binary("secrets-store-csi-driver")?,
        &[
            "--nodeid=demo-node".into(),
            format!("--provider-volume={}", providers.display()),
            format!("--kubeconfig={kubeconfig}"),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            format!("--kubelet-dir={}", work.path().join("kubelet").display()),
        ],
    )
    .await?;

    let spc = SecretProviderClass::new(
        "demo",
        SecretProviderClassSpec {
            provider: "alibabacloud".into(),
            parameters: [("objects".to_string(), OBJECTS.to_string())].into(),
            secret_objects: vec![SecretObject {
                secret_name: "db-credentials".into(),
                type_: "kubernetes.io/basic-auth".into(),
                data: vec![
                    SecretObjectData {
                        object_name: "MySecretUsername".into(),
                        key: "username".into(),
                    },
                    SecretObjectData {
                        object_name: "MySecretPassword".into(),
                        key: "password".into(),
                    },
                ],
                ..Default::default()
            }],
        },
    );
    Api::<SecretProviderClass>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &spc)
        .await?;
    let kubelet = Kubelet::new(
        client.clone(),
        driver.socket(),
        &work.path().join("kubelet"),
    )
    .await?;
    let pod = kubelet
        .create_pod(&TestPod::new(&ns, "app", "demo"))
        .await?;
    kubelet
        .publish(&pod, "secrets", &TokenOptions::default())
        .await?
        .map_err(|s| anyhow::anyhow!("publish failed: {}\n{}", s.message(), driver.log()))?;

    let target = kubelet.target_path(pod.metadata.uid.as_deref().unwrap_or_default(), "secrets");
    println!("\nvolume {} (tmpfs):", target.display());
    for name in ["test", "db", "MySecretUsername", "MySecretPassword"] {
        println!(
            "  {name:<18} {}",
            std::fs::read_to_string(target.join(name))?
        );
    }
    // The sync controller writes the Secret right after the publish.
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let secret = wait_for(
        "the synced Secret db-credentials",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let secrets = secrets.clone();
            async move { Ok(secrets.get_opt("db-credentials").await?) }
        },
    )
    .await?;
    let data = secret.data.unwrap_or_default();
    println!(
        "synced Secret {ns}/db-credentials ({}): username={} password={}",
        secret.type_.unwrap_or_default(),
        String::from_utf8_lossy(&data["username"].0),
        String::from_utf8_lossy(&data["password"].0)
    );
    let status = Api::<SecretProviderClassPodStatus>::namespaced(client, &ns)
        .get(&format!("app-{ns}-demo"))
        .await?
        .status
        .unwrap_or_default();
    let versions: Vec<String> = status
        .objects
        .iter()
        .map(|o| format!("{}@{}", o.id, o.version))
        .collect();
    println!(
        "SecretProviderClassPodStatus app-{ns}-demo: mounted={} objects={versions:?}",
        status.mounted
    );
    anyhow::ensure!(
        data["password"].0 == b"s3cr3t-demo",
        "synced Secret has the wrong password"
    );

    if once {
        kubelet.unpublish(&pod, "secrets").await??;
        println!("\n--once: demo checks passed, volume unpublished, stopping");
        return Ok(());
    }
    println!(
        "\nEverything keeps running. Try:\n  export KUBECONFIG={kubeconfig}\n  {} get secretproviderclasses,secretproviderclasspodstatuses,secrets -n {ns}\n  ls -la {}\nPress Ctrl-C to stop (the volume is unmounted).",
        secrets_store_testkit::tools::tool("kubectl")?.display(),
        target.display()
    );
    tokio::signal::ctrl_c().await?;
    kubelet.unpublish(&pod, "secrets").await??;
    Ok(())
}
