//! Starts a real control plane (etcd, kube-apiserver with our CRDs,
//! kube-controller-manager) on loopback and prints how to use it.
//!
//! `control-plane` keeps it running until Ctrl-C; `control-plane --once`
//! checks it end to end with kubectl and exits (used by the test suite to
//! keep the demo working).

use std::process::Command;

use secrets_store_testkit::tools::tool;
use secrets_store_testkit::{ControlPlane, ControlPlaneOptions};

const EXAMPLE_SPC: &str = "apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: example
  namespace: default
spec:
  provider: alibabacloud
  parameters:
    objects: |
      - objectName: \"db-password\"
  secretObjects:
  - secretName: db
    type: Opaque
    data:
    - objectName: db-password
      key: password
";

fn kubectl(cp: &ControlPlane, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(tool("kubectl")?)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    eprintln!("starting etcd, kube-apiserver and kube-controller-manager ...");
    let started = std::time::Instant::now();
    let cp = ControlPlane::start(ControlPlaneOptions {
        controller_manager: true,
        ..Default::default()
    })
    .await?;
    eprintln!(
        "control plane ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    print!("{}", kubectl(&cp, &["get", "crd", "-o", "name"], None)?);
    print!(
        "{}",
        kubectl(&cp, &["apply", "-f", "-"], Some(EXAMPLE_SPC))?
    );
    print!(
        "{}",
        kubectl(
            &cp,
            &[
                "get",
                "secretproviderclasses.secrets-store.csi.x-k8s.io",
                "-A"
            ],
            None
        )?
    );
    let v1alpha1 = kubectl(
        &cp,
        &[
            "get",
            "secretproviderclasses.v1alpha1.secrets-store.csi.x-k8s.io",
            "example",
            "-o",
            "jsonpath={.spec.provider}",
        ],
        None,
    )?;
    anyhow::ensure!(
        v1alpha1 == "alibabacloud",
        "v1alpha1 view returned {v1alpha1:?}"
    );

    println!(
        "\nA real Kubernetes control plane is running with the Secrets Store CRDs.\n\
         \n  export KUBECONFIG={kc}\n  {kubectl} get secretproviderclasses -A\n\
         \nAPI server: {url}   logs: {dir}\n",
        kc = cp.kubeconfig().display(),
        kubectl = tool("kubectl")?.display(),
        url = cp.url(),
        dir = cp.dir().display(),
    );
    if once {
        println!("--once: checks passed, stopping");
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
