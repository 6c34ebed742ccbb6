//! A real single-node cluster on this machine: the control plane of
//! [`crate::control_plane`] with kube-controller-manager and kube-scheduler,
//! plus containerd (runc, overlayfs or native snapshotter) and kubelet, and a
//! bridge CNI network (host-local IPAM) so pods get IPs.
//!
//! kubelet's root directory is the default `/var/lib/kubelet` (as on an
//! operator's node), so charts and manifests run with their defaults
//! (upstream's chart passes the driver no kubelet directory). The node
//! refuses to start while anything is mounted under it, and clears it
//! before and after.
//!
//! The node's bridge gateway is the node IP; the API server listens there
//! too and the `kubernetes` Service IP is forwarded to it (an iptables DNAT
//! rule in a chain of the node's own), so in-cluster clients work without
//! kube-proxy. The images the node runs are OCI archives imported into
//! containerd ([`Node::import`]); nothing is pulled.
//!
//! One node runs on a machine at a time (a lock file serializes test
//! binaries). Teardown is done by a detached reaper script that waits for
//! the test process to go away (or for [`Node`] to be dropped): it kills
//! every process of the node's cgroups and containerd's shims, unmounts
//! everything under the node's directory and kubelet's, removes the iptables
//! chain, the bridge and the cgroups, and deletes kubelet's directory and the
//! node's directory with containerd's state.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node as NodeObject, ServiceAccount};
use kube::api::Api;

use crate::control_plane::KUBERNETES_SERVICE_IP;
use crate::process::{Process, free_port};
use crate::{ControlPlane, ControlPlaneOptions, tools, wait_for};

/// The node's name.
pub const NODE_NAME: &str = "sscsi-node";
/// The bridge gateway: the node IP, where pods reach the API server.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
const POD_SUBNET: &str = "10.88.0.0/24";
const BRIDGE: &str = "sscsi0";
const CHAIN: &str = "SSCSI-NODE";
/// kubelet's root directory: the default, as on an operator's node.
const KUBELET_ROOT: &str = "/var/lib/kubelet";
/// The sandbox (pause) image, built by `hack/node-images.sh`.
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10.1";

/// A running node with its control plane. Dropping it tears everything
/// down (and so does the reaper if the test process dies first).
pub struct Node {
    kubelet: Option<Process>,
    containerd: Option<Process>,
    cp: Option<ControlPlane>,
    reaper: Reaper,
    dir: PathBuf,
    kubelet_dir: PathBuf,
    snapshotter: &'static str,
    _lock: std::fs::File,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("dir", &self.dir).finish()
    }
}

impl Node {
    /// The node shared by the tests of this test binary, started on first
    /// use and torn down by the reaper when the binary exits.
    pub async fn shared() -> anyhow::Result<&'static Node> {
        static SHARED: tokio::sync::OnceCell<Node> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_try_init(Self::start).await
    }

    /// Starts the control plane, containerd and kubelet, imports the node
    /// images (`hack/node-images.sh`) and waits until the node is Ready and
    /// the `default` service account exists.
    pub async fn start() -> anyhow::Result<Self> {
        let base = PathBuf::from("/tmp/sscsi-node");
        std::fs::create_dir_all(&base)?;
        let lock = std::fs::File::create(base.join("lock"))?;
        lock.lock().context("locking /tmp/sscsi-node/lock")?;
        let dir = base.join(format!("n{}", std::process::id()));
        kubelet_root_free()?;
        let reaper = Reaper::spawn(&dir, &lock)?;
        std::fs::create_dir_all(&dir)?;
        let started = std::time::Instant::now();
        network_up()?;
        cgroups_up()?;
        let mut cp = ControlPlane::start(ControlPlaneOptions {
            serve_pods_at: Some(GATEWAY),
            ..Default::default()
        })
        .await?;
        forward_service(&cp)?;
        let snapshotter = snapshotter(&dir);
        let containerd = start_containerd(&dir, snapshotter).await?;
        let mut node = Node {
            kubelet: None,
            containerd: Some(containerd),
            cp: None,
            reaper,
            kubelet_dir: PathBuf::from(KUBELET_ROOT),
            snapshotter,
            dir,
            _lock: lock,
        };
        for archive in node_images()? {
            node.import(&archive)?;
        }
        node.kubelet = Some(start_kubelet(&node.dir, &cp)?);
        node.wait_ready(&mut cp).await?;
        node.cp = Some(cp);
        tracing::info!(elapsed = ?started.elapsed(), "real node ready");
        Ok(node)
    }

    async fn wait_ready(&mut self, cp: &mut ControlPlane) -> anyhow::Result<()> {
        let client = cp.client().await?;
        let nodes: Api<NodeObject> = Api::all(client.clone());
        let sas: Api<ServiceAccount> = Api::namespaced(client, "default");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            cp.check_running()?;
            for p in [&mut self.kubelet, &mut self.containerd]
                .into_iter()
                .flatten()
            {
                p.check_running()?;
            }
            let ready = nodes.get_opt(NODE_NAME).await?.is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready && sas.get_opt("default").await?.is_some() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "node {NODE_NAME} not Ready after 120s; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Imports an OCI archive into containerd's `k8s.io` namespace (the
    /// image is named by its `io.containerd.image.name` annotation).
    pub fn import(&self, archive: &Path) -> anyhow::Result<()> {
        let out = Command::new(tools::tool("ctr")?)
            .arg(format!("--address={}", socket(&self.dir).display()))
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                self.snapshotter,
            ])
            .arg(archive)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "ctr images import {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Runs `kubectl args...` against the node's cluster (stdin from
    /// `stdin`); its stdout, or an error with its stderr.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        self.cli(&tools::tool("kubectl")?, args, stdin)
    }

    /// Runs `helm args...` against the node's cluster.
    pub fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli(&tools::tool("helm")?, args, None)
    }

    /// Environment for a CLI against this cluster: `KUBECONFIG`, and `PATH`
    /// with the tools first.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            tools::tools_dir().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            (
                "KUBECONFIG".into(),
                self.control_plane().kubeconfig().display().to_string(),
            ),
            ("PATH".into(), path),
        ]
    }

    fn cli(&self, program: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut child = Command::new(program)
            .args(args)
            .envs(self.cli_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "{} {}: {}",
            program.file_name().unwrap_or_default().to_string_lossy(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The control plane (kubeconfig, clients, namespaces).
    pub fn control_plane(&self) -> &ControlPlane {
        self.cp.as_ref().expect("control plane set once started")
    }

    /// kubelet's root directory (the charts' `kubeletRootDir`).
    pub fn kubelet_dir(&self) -> &Path {
        &self.kubelet_dir
    }

    /// The node's directory (logs of kubelet and containerd are here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// containerd's socket (for `ctr` or `crictl`).
    pub fn containerd_socket(&self) -> PathBuf {
        socket(&self.dir)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // kubelet first, so it restarts nothing while the reaper works.
        self.kubelet.take();
        self.reaper.run_now();
        self.containerd.take();
        self.cp.take();
    }
}

/// The detached teardown script: it blocks on a pipe whose only writer is
/// this process, so it runs when [`Reaper::run_now`] closes the pipe or when
/// the process exits in any way (panic, abort, SIGKILL). It holds the node
/// lock (a duplicate of its descriptor) until it is done, so the next node
/// on the machine waits for this one's mounts to be gone.
struct Reaper {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Reaper {
    fn spawn(dir: &Path, lock: &std::fs::File) -> anyhow::Result<Self> {
        let script = dir.with_extension("teardown.sh");
        std::fs::write(&script, teardown_script(dir))?;
        let mut child = Command::new("setsid")
            .args(["-w", "bash"])
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(lock.try_clone()?))
            .stderr(
                std::fs::File::create(dir.with_extension("teardown.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .context("starting the node's teardown script")?;
        let stdin = child.stdin.take();
        Ok(Self { stdin, child })
    }

    fn run_now(&mut self) {
        if let Some(mut pipe) = self.stdin.take() {
            let _ = pipe.flush();
        }
        let _ = self.child.wait();
    }
}

/// The teardown, in bash so it outlives the test process.
fn teardown_script(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# Tears down the test node in {d} once stdin closes. Standard
# output is the node lock: kept open (fd 9) until the end.
exec 9>&1 >/dev/null
cat >/dev/null
set +e
kill_all() {{
  for i in 1 2 3 4 5; do
    pids=$(cat $(find /sys/fs/cgroup/*/{CHAIN_CG} -name cgroup.procs 2>/dev/null) 2>/dev/null)
    for p in /proc/[0-9]*; do
      p=${{p#/proc/}}
      [ "$p" = $$ ] && continue
      tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -qF '{d}/' && pids="$pids $p"
    done
    [ -z "${{pids// }}" ] && return
    kill -9 $pids 2>/dev/null
    sleep 0.2
  done
}}
kill_all
# Mount points under the node's directory, kubelet's root and below (kubelet
# bind-mounts its root onto itself to make it shared).
ours() {{
  awk -v d='{d}/' -v k='{KUBELET_ROOT}' \
    'index($5, d) == 1 || $5 == k || index($5, k "/") == 1 {{ print $5 }}' /proc/self/mountinfo
}}
for i in 1 2 3; do
  ours | sort -r | xargs -r -n1 umount -l 2>/dev/null
done
iptables -t nat -D PREROUTING -j {CHAIN} 2>/dev/null
iptables -t nat -D OUTPUT -j {CHAIN} 2>/dev/null
iptables -t nat -F {CHAIN} 2>/dev/null
iptables -t nat -X {CHAIN} 2>/dev/null
ip link del {BRIDGE} 2>/dev/null
find /sys/fs/cgroup/*/{CHAIN_CG} -depth -type d -exec rmdir {{}} \; 2>/dev/null
ours | grep -q . || rm -rf '{KUBELET_ROOT}'
rm -rf '{d}' '{d}.teardown.sh' '{d}.teardown.log'
"#,
        CHAIN_CG = CGROUP_ROOT.trim_start_matches('/'),
    )
}

/// Checks that nothing is mounted under [`KUBELET_ROOT`] (another kubelet
/// or driver would be using it), then removes what a previous node left.
fn kubelet_root_free() -> anyhow::Result<()> {
    let root = Path::new(KUBELET_ROOT);
    let used: Vec<PathBuf> = crate::mounts::read()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(root))
        .collect();
    anyhow::ensure!(
        used.is_empty(),
        "{KUBELET_ROOT} is in use (mounted: {used:?}); the test node needs it for its kubelet"
    );
    match std::fs::remove_dir_all(root) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("clearing {KUBELET_ROOT}"))
        }
        _ => Ok(()),
    }
}

/// kubelet's cgroup root (cgroupfs driver): every pod's cgroups are under it.
const CGROUP_ROOT: &str = "/sscsi-node";

/// Creates [`CGROUP_ROOT`] in every mounted cgroup v1 hierarchy (kubelet
/// wants it to exist), cpuset initialised from the root.
fn cgroups_up() -> anyhow::Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        // cgroup v2: one hierarchy.
        std::fs::create_dir_all(root.join(CGROUP_ROOT.trim_start_matches('/')))?;
        return Ok(());
    }
    for entry in std::fs::read_dir(root)?.flatten() {
        let sub = entry.path();
        if sub.join("cgroup.procs").exists() {
            let dir = sub.join(CGROUP_ROOT.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let cpuset = root.join("cpuset");
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if let Ok(v) = std::fs::read_to_string(cpuset.join(file)) {
            std::fs::write(
                cpuset.join(CGROUP_ROOT.trim_start_matches('/')).join(file),
                v.trim(),
            )?;
        }
    }
    Ok(())
}

/// Creates the bridge (the CNI bridge plugin reuses it) with the gateway
/// address, and routes the service range to it.
fn network_up() -> anyhow::Result<()> {
    let _ = run("ip", &["link", "del", BRIDGE]);
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE],
    )?;
    run("ip", &["link", "set", BRIDGE, "up"])?;
    run("ip", &["route", "replace", "10.0.0.0/24", "dev", BRIDGE])?;
    Ok(())
}

/// DNATs the `kubernetes` Service (`10.0.0.1:443`) to the API server, for
/// pods (PREROUTING) and host-network pods (OUTPUT).
fn forward_service(cp: &ControlPlane) -> anyhow::Result<()> {
    let port = cp
        .url()
        .rsplit(':')
        .next()
        .context("API server URL has no port")?;
    for chain in ["PREROUTING", "OUTPUT"] {
        let _ = run("iptables", &["-t", "nat", "-D", chain, "-j", CHAIN]);
    }
    let _ = run("iptables", &["-t", "nat", "-F", CHAIN]);
    let _ = run("iptables", &["-t", "nat", "-N", CHAIN]);
    let to = format!("{GATEWAY}:{port}");
    run(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            CHAIN,
            "-d",
            KUBERNETES_SERVICE_IP,
            "-p",
            "tcp",
            "--dport",
            "443",
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ],
    )?;
    for chain in ["PREROUTING", "OUTPUT"] {
        run("iptables", &["-t", "nat", "-I", chain, "-j", CHAIN])?;
    }
    Ok(())
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("containerd/containerd.sock")
}

async fn start_containerd(dir: &Path, snapshotter: &str) -> anyhow::Result<Process> {
    let cni = dir.join("cni");
    std::fs::create_dir_all(cni.join("net.d"))?;
    std::fs::write(cni.join("net.d/10-sscsi.conflist"), cni_config(&cni))?;
    let config = dir.join("containerd.toml");
    std::fs::write(&config, containerd_config(dir, snapshotter))?;
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        tools::tools_dir().join("bin").display()
    );
    let mut p = Process::spawn(
        "containerd",
        &tools::tool("containerd")?,
        &[format!("--config={}", config.display())],
        &[("PATH", &path)],
        &dir.join("containerd.log"),
    )?;
    let ctr = tools::tool("ctr")?;
    let addr = format!("--address={}", socket(dir).display());
    wait_for(
        "containerd to answer",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let ok = p.check_running().map(|()| {
                Command::new(&ctr)
                    .args([addr.as_str(), "version"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            async move { ok.map(|ok| ok.then_some(())) }
        },
    )
    .await?;
    Ok(p)
}

/// overlayfs when the kernel lets us mount it on the node's directory,
/// else the native (copying) snapshotter.
fn snapshotter(dir: &Path) -> &'static str {
    let t = dir.join("overlay-probe");
    let parts = ["lower", "upper", "work", "merged"].map(|p| t.join(p));
    let ok = parts.iter().all(|p| std::fs::create_dir_all(p).is_ok())
        && run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    parts[0].display(),
                    parts[1].display(),
                    parts[2].display()
                ),
                &parts[3].display().to_string(),
            ],
        )
        .is_ok();
    if ok {
        let _ = run("umount", &[&parts[3].display().to_string()]);
    }
    let _ = std::fs::remove_dir_all(&t);
    if ok { "overlayfs" } else { "native" }
}

fn containerd_config(dir: &Path, snapshotter: &str) -> String {
    let d = dir.display();
    format!(
        r#"version = 3
root = "{d}/containerd/root"
state = "{d}/containerd/state"
[grpc]
  address = "{d}/containerd/containerd.sock"
[ttrpc]
  address = "{d}/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "{snapshotter}"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # Inside a container a negative oom_score_adj is refused.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{d}/cni/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#
    )
}

fn cni_config(cni: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "sscsi",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY.to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": cni.join("ipam").display().to_string(),
            },
        }, {"type": "portmap", "capabilities": {"portMappings": true}}],
    })
    .to_string()
}

fn start_kubelet(dir: &Path, cp: &ControlPlane) -> anyhow::Result<Process> {
    let root = Path::new(KUBELET_ROOT);
    std::fs::create_dir_all(root)?;
    let config = dir.join("kubelet.yaml");
    std::fs::write(&config, kubelet_config(dir)?)?;
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        tools::tools_dir().join("bin").display()
    );
    Process::spawn(
        "kubelet",
        &tools::tool("kubelet")?,
        &[
            format!("--config={}", config.display()),
            format!("--kubeconfig={}", cp.kubeconfig().display()),
            format!("--root-dir={}", root.display()),
            format!("--cert-dir={}", dir.join("kubelet-pki").display()),
            format!("--node-ip={GATEWAY}"),
            format!("--hostname-override={NODE_NAME}"),
            "--v=2".into(),
        ],
        &[("PATH", &path)],
        &dir.join("kubelet.log"),
    )
}

fn kubelet_config(dir: &Path) -> anyhow::Result<String> {
    let sock = socket(dir).display().to_string();
    Ok(format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {CGROUP_ROOT}
containerRuntimeEndpoint: unix://{sock}
imageServiceEndpoint: unix://{sock}
address: {GATEWAY}
port: {port}
healthzPort: 0
readOnlyPort: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
failSwapOn: false
syncFrequency: 10s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "0%"
  imagefs.available: "0%"
localStorageCapacityIsolation: false
protectKernelDefaults: false
resolvConf: ""
clusterDomain: cluster.local
staticPodPath: ""
"#,
        port = free_port()?,
    ))
}

/// Archives of the images every node runs (pause, busybox, curl, the
/// sidecars, the upstream driver and its e2e provider), built and cached by
/// `hack/node-images.sh`.
pub fn node_images() -> anyhow::Result<Vec<PathBuf>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/node-images.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .context("running hack/node-images.sh")?;
    anyhow::ensure!(out.status.success(), "hack/node-images.sh failed");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut archives: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".oci.tar"))
        .collect();
    archives.sort();
    Ok(archives)
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
