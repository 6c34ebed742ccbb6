//! Starts a real control plane (etcd, kube-apiserver with our CRDs,
//! kube-controller-manager) on loopback, or with `--node` a real
//! single-node cluster (plus kube-scheduler, containerd and kubelet), and
//! prints how to use it.
//!
//! It keeps running until Ctrl-C; `--once` checks it end to end with
//! kubectl and exits (used by the test suite to keep the demo working).

use std::process::Command;

use clap::Parser;
use secrets_store_testkit::tools::tool;
use secrets_store_testkit::{ControlPlane, ControlPlaneOptions, Node};

/// Starts a real Kubernetes control plane with the Secrets Store CRDs on
/// this machine, and optionally a real node, for manual work.
#[derive(Parser, Debug)]
#[command(name = "control-plane", version)]
struct Args {
    /// Check the cluster end to end with kubectl, then stop instead of
    /// waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
    /// Also start a real node: kube-scheduler, containerd with runc,
    /// kubelet and a bridge CNI network, with the test images imported
    /// (needs root; one node per machine).
    #[arg(long)]
    node: bool,
}

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
    let args = Args::parse();
    if args.node {
        return run_node(args.once).await;
    }
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
    check_crds(&cp)?;
    println!(
        "\nA real Kubernetes control plane is running with the Secrets Store CRDs.\n\
         \n  export KUBECONFIG={kc}\n  {kubectl} get secretproviderclasses -A\n\
         \nAPI server: {url}   logs: {dir}\n",
        kc = cp.kubeconfig().display(),
        kubectl = tool("kubectl")?.display(),
        url = cp.url(),
        dir = cp.dir().display(),
    );
    wait_or_stop(args.once).await
}

async fn wait_or_stop(once: bool) -> anyhow::Result<()> {
    if once {
        println!("--once: checks passed, stopping");
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// A real node: a busybox pod gets an IP, and `kubectl exec` and `logs` work.
async fn run_node(once: bool) -> anyhow::Result<()> {
    eprintln!("starting a real node (control plane, containerd, kubelet) ...");
    let started = std::time::Instant::now();
    let node = Node::start().await?;
    let cp = node.control_plane();
    eprintln!("node Ready in {:.1}s", started.elapsed().as_secs_f64());
    check_crds(cp)?;
    print!("{}", kubectl(cp, &["get", "nodes", "-o", "wide"], None)?);
    kubectl(
        cp,
        &[
            "run",
            "hello",
            "--image=registry.k8s.io/e2e-test-images/busybox:1.29-4",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "echo hello from the node; sleep 3600",
        ],
        None,
    )?;
    kubectl(
        cp,
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "pod/hello",
        ],
        None,
    )?;
    let out = kubectl(
        cp,
        &["exec", "hello", "--", "cat", "/proc/self/cgroup"],
        None,
    )?;
    anyhow::ensure!(out.contains("kubepods"), "exec output: {out}");
    let logs = kubectl(cp, &["logs", "hello"], None)?;
    anyhow::ensure!(logs.trim() == "hello from the node", "logs: {logs:?}");
    print!(
        "{}",
        kubectl(cp, &["get", "pod", "hello", "-o", "wide"], None)?
    );
    kubectl(
        cp,
        &["delete", "pod", "hello", "--grace-period=1", "--wait=true"],
        None,
    )?;
    println!(
        "\nA real single-node cluster is running.\n\
         \n  export KUBECONFIG={kc}\n  {kubectl} get pods -A\n\
         \nkubelet root dir (the charts' linux.kubeletRootDir): {kubelet}\n\
         import an image: {ctr} --address {sock} -n k8s.io images import <archive.oci.tar>\n\
         logs: {dir} and {cpdir}\n",
        kc = cp.kubeconfig().display(),
        kubectl = tool("kubectl")?.display(),
        kubelet = node.kubelet_dir().display(),
        ctr = tool("ctr")?.display(),
        sock = node.containerd_socket().display(),
        dir = node.dir().display(),
        cpdir = cp.dir().display(),
    );
    wait_or_stop(once).await
}

/// The CRDs are served, an example SecretProviderClass applies, and the
/// v1alpha1 view of it reads back.
fn check_crds(cp: &ControlPlane) -> anyhow::Result<()> {
    print!("{}", kubectl(cp, &["get", "crd", "-o", "name"], None)?);
    print!("{}", kubectl(cp, &["apply", "-f", "-"], Some(EXAMPLE_SPC))?);
    print!(
        "{}",
        kubectl(
            cp,
            &[
                "get",
                "secretproviderclasses.secrets-store.csi.x-k8s.io",
                "-A"
            ],
            None
        )?
    );
    let v1alpha1 = kubectl(
        cp,
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
    Ok(())
}
