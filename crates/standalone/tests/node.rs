//! `secrets-store publish` / `unpublish` against our driver binary (its own
//! process, on the shared real control plane) with the testkit's fake
//! provider: the driver accepts the request as kubelet's, mounts and fills
//! the volume, records the pod status, and unpublishes it; a missing
//! class is refused with the driver's code and message.

use std::path::Path;
use std::process::{Command, Output};

use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::v1::{
    SecretProviderClass, SecretProviderClassPodStatus, SecretProviderClassSpec,
};
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::fake_provider::{Behavior, FakeProvider};
use secrets_store_testkit::tools::workspace_binary;
use secrets_store_testkit::{ControlPlane, TestPod};

fn run(args: &[String]) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_secrets-store"))
        .args(args)
        .output()?)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_unpublish_through_our_driver() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let ns = cp.namespace("cli-node").await?;
    let dir = tempfile::Builder::new().prefix("cli-node-").tempdir()?;
    let _unmount = Unmount(dir.path().to_path_buf());
    let (providers, kubelet) = (dir.path().join("providers"), dir.path().join("kubelet"));
    std::fs::create_dir_all(&providers)?;
    let fake = FakeProvider::start(&providers, "fake").await?;
    fake.set(Behavior::files(
        &[("token.txt", b"s3cr3t", 0o640)],
        &[("token.txt", "7")],
    ));
    let mut driver = DriverProcess::start(
        &workspace_binary("secrets-store-csi-driver")?,
        &[
            "--nodeid=cli-node".into(),
            format!("--provider-volume={}", providers.display()),
            "--additional-provider-volume-paths=".into(),
            "--metrics-addr=127.0.0.1:0".into(),
            format!("--kubelet-dir={}", kubelet.display()),
            format!("--kubeconfig={}", cp.kubeconfig().display()),
        ],
    )
    .await?;
    let spec = SecretProviderClassSpec {
        provider: "fake".into(),
        parameters: [("objects".to_string(), "x".to_string())].into(),
        secret_objects: vec![],
    };
    Api::<SecretProviderClass>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &SecretProviderClass::new("cls", spec),
        )
        .await?;
    let pod = TestPod::new(&ns, "web", "cls").create(&client).await?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = |cmd: &str| {
        vec![
            cmd.to_string(),
            "--endpoint".into(),
            format!("unix://{}", driver.socket().display()),
            "--kubelet-dir".into(),
            kubelet.display().to_string(),
            "--volume".into(),
            "secrets".into(),
            "--pod-uid".into(),
            uid.clone(),
        ]
    };
    let mut publish = node("publish");
    publish.extend(
        [
            "--class",
            "cls",
            "--pod-name",
            "web",
            "--pod-namespace",
            &ns,
        ]
        .map(String::from),
    );

    let out = run(&publish)?;
    let target = kubelet.join(format!(
        "pods/{uid}/volumes/kubernetes.io~csi/secrets/mount"
    ));
    assert!(out.status.success(), "{}\n{}", text(&out), driver.log());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("published {}\n", target.display())
    );
    assert_eq!(std::fs::read_to_string(target.join("token.txt"))?, "s3cr3t");
    let sent = fake.requests().pop().expect("a mount request");
    assert!(
        sent.attributes
            .contains(&format!(r#""csi.storage.k8s.io/pod.uid":"{uid}""#))
    );
    assert!(
        sent.attributes
            .contains(r#""csi.storage.k8s.io/ephemeral":"true""#)
    );
    // The driver writes the status just after the publish returns.
    let statuses = Api::<SecretProviderClassPodStatus>::namespaced(client.clone(), &ns);
    let name = format!("web-{ns}-cls");
    secrets_store_testkit::wait_for(
        "the SecretProviderClassPodStatus",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(20),
        || {
            let (statuses, name) = (&statuses, &name);
            async move {
                let status = statuses.get_opt(name).await?;
                Ok(status.filter(|s| s.status.as_ref().is_some_and(|s| s.mounted)))
            }
        },
    )
    .await?;

    // A class that does not exist: the driver's refusal, code and message.
    let mut wrong = publish.clone();
    let at = wrong.iter().position(|a| a == "cls").expect("class");
    wrong[at] = "missing".into();
    wrong[8] = "00000000-0000-4000-a000-000000000000".into();
    let out = run(&wrong)?;
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "error: NodePublishVolume failed: NotFound: failed to get secretproviderclass {ns}/missing"
    );
    assert!(text(&out).contains(&want), "{}", text(&out));

    let out = run(&node("unpublish"))?;
    assert!(out.status.success(), "{}\n{}", text(&out), driver.log());
    assert!(!target.exists(), "the driver removed the target");
    driver.stop()?;
    Ok(())
}

/// Unmounts what the test left under its directory, on any exit.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        secrets_store_testkit::mounts::unmount_all_under(Path::new(&self.0));
    }
}
