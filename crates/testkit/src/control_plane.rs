//! A real Kubernetes control plane on loopback: etcd and kube-apiserver,
//! optionally kube-controller-manager.
//!
//! The API server runs with RBAC, a service-account issuer and signing key
//! (TokenRequest and TokenReview work), a bootstrap admin bearer token in
//! `system:masters`, and our CRDs applied and established. Ports are free
//! ports picked at start, data lives in a temporary directory removed on
//! drop, and every process dies with the test binary.
//!
//! Tests of one binary share one control plane through [`ControlPlane::shared`]
//! (each test works in its own namespace); a [`kube::Client`] is built per
//! call with [`ControlPlane::client`] because a client is bound to the tokio
//! runtime that created it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;

use crate::process::{Process, free_port};
use crate::{pki, tools, wait_for};

/// The bearer token of the bootstrap admin (`system:masters`).
const ADMIN_TOKEN: &str = "testkit-admin-token";

/// What to run besides etcd and kube-apiserver.
#[derive(Clone, Debug, Default)]
pub struct ControlPlaneOptions {
    /// Also run kube-controller-manager with the garbage-collector,
    /// service-account, service-account-token and namespace controllers.
    pub controller_manager: bool,
    /// Write the API server's audit log (every request at `Metadata` level:
    /// user, verb, resource, response code; JSON lines) to
    /// [`ControlPlane::audit_log`].
    pub audit_log: bool,
    /// Serve the pods of a real node (see [`crate::node`]): kube-apiserver
    /// listens on every address and advertises this IP (the node's
    /// bridge gateway, where the node forwards the `kubernetes` Service),
    /// its certificate also names the Service's IP and DNS names, and
    /// kube-controller-manager (all controllers) and kube-scheduler run.
    pub serve_pods_at: Option<std::net::Ipv4Addr>,
}

/// The ClusterIP of the `kubernetes` Service (first of the service range).
pub const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";

/// A running control plane. Dropping it stops every process and removes its
/// data directory.
#[derive(Debug)]
pub struct ControlPlane {
    // Field order is drop order: processes stop before the directory goes.
    scheduler: Option<Process>,
    controller_manager: Option<Process>,
    apiserver: Process,
    etcd: Process,
    url: String,
    kubeconfig: PathBuf,
    ca_cert: PathBuf,
    sa_key: PathBuf,
    audit_log: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// The control plane shared by all tests of this test binary (no
    /// controller-manager), started on first use.
    pub async fn shared() -> anyhow::Result<&'static ControlPlane> {
        static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| Self::start(ControlPlaneOptions::default()))
            .await
    }

    /// Like [`ControlPlane::shared`] but with kube-controller-manager running.
    pub async fn shared_with_controllers() -> anyhow::Result<&'static ControlPlane> {
        static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| {
                Self::start(ControlPlaneOptions {
                    controller_manager: true,
                    ..Default::default()
                })
            })
            .await
    }

    /// Starts a new control plane and waits until it is ready with our CRDs
    /// established.
    pub async fn start(opts: ControlPlaneOptions) -> anyhow::Result<Self> {
        let base = std::env::temp_dir().join("secrets-store-testkit");
        std::fs::create_dir_all(&base)?;
        remove_stale_dirs(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("control-plane-{}-", std::process::id()))
            .tempdir_in(&base)?;
        let d = dir.path();
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Some(ip) = opts.serve_pods_at {
            sans.extend([ip.to_string(), KUBERNETES_SERVICE_IP.to_string()]);
            sans.extend(
                ["", ".default", ".default.svc", ".default.svc.cluster.local"]
                    .map(|s| format!("kubernetes{s}")),
            );
        }
        let pki = pki::write(&d.join("pki"), sans)?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Process::spawn(
            "etcd",
            &tools::tool("etcd")?,
            &strings(&[
                "--name=testkit",
                &format!("--data-dir={}", d.join("etcd").display()),
                &format!("--listen-client-urls={etcd_url}"),
                &format!("--advertise-client-urls={etcd_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=testkit={peer_url}"),
                "--unsafe-no-fsync",
                "--log-level=warn",
            ]),
            &[],
            &d.join("etcd.log"),
        )?;

        std::fs::write(
            d.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin-uid,\"system:masters\"\n"),
        )?;
        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let issuer = "https://kubernetes.default.svc.cluster.local";
        let audit_log = opts.audit_log.then(|| d.join("audit.log"));
        let mut extra_args = match &audit_log {
            Some(log) => audit_flags(d, log)?,
            None => Vec::new(),
        };
        let (bind, advertise) = match opts.serve_pods_at {
            Some(ip) => ("0.0.0.0".to_string(), ip.to_string()),
            None => ("127.0.0.1".to_string(), "127.0.0.1".to_string()),
        };
        extra_args.extend([
            format!("--bind-address={bind}"),
            format!("--advertise-address={advertise}"),
            // A real node's kubelet is reached at its IP (no node DNS).
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
        ]);
        let apiserver = Process::spawn(
            "kube-apiserver",
            &tools::tool("kube-apiserver")?,
            &[
                strings(&[
                    &format!("--etcd-servers={etcd_url}"),
                    &format!("--secure-port={port}"),
                    &format!("--tls-cert-file={}", pki.serving_cert.display()),
                    &format!("--tls-private-key-file={}", pki.serving_key.display()),
                    &format!("--client-ca-file={}", pki.ca_cert.display()),
                    &format!("--service-account-issuer={issuer}"),
                    &format!("--api-audiences={issuer}"),
                    &format!("--service-account-key-file={}", pki.sa_pub.display()),
                    &format!(
                        "--service-account-signing-key-file={}",
                        pki.sa_key.display()
                    ),
                    &format!("--token-auth-file={}", d.join("tokens.csv").display()),
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--endpoint-reconciler-type=none",
                    "--enable-priority-and-fairness=false",
                    "--profiling=false",
                    "--v=1",
                ]),
                extra_args,
            ]
            .concat(),
            &[],
            &d.join("kube-apiserver.log"),
        )?;

        let kubeconfig = d.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&url, &pki.ca_cert, ADMIN_TOKEN),
        )?;

        let mut cp = ControlPlane {
            scheduler: None,
            controller_manager: None,
            apiserver,
            etcd,
            url,
            kubeconfig,
            ca_cert: pki.ca_cert.clone(),
            sa_key: pki.sa_key.clone(),
            audit_log,
            dir,
        };
        cp.wait_ready().await?;
        cp.install_crds().await?;
        let full = opts.serve_pods_at.is_some();
        if opts.controller_manager || full {
            cp.start_controller_manager(full).await?;
        }
        if full {
            cp.start_scheduler()?;
        }
        Ok(cp)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            self.etcd.check_running()?;
            self.apiserver.check_running()?;
            let ready = match self.client().await {
                Ok(c) => c
                    .request_text(http_get("/readyz")?)
                    .await
                    .map(|body| body.trim() == "ok")
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "kube-apiserver not ready after 120s; see {}",
                self.apiserver.log_path().display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn install_crds(&self) -> anyhow::Result<()> {
        let client = self.client().await?;
        let api: Api<CustomResourceDefinition> = Api::all(client);
        for crd in secrets_store_crds::crd::all()? {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &crd)
                .await
                .with_context(|| format!("creating CRD {name}"))?;
            wait_for(
                &format!("CRD {name} to be established"),
                Duration::from_secs(30),
                Duration::from_millis(100),
                || async {
                    let crd = api.get(&name).await?;
                    let established = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    Ok(established.then_some(()))
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn start_controller_manager(&mut self, all: bool) -> anyhow::Result<()> {
        let kc = self.kubeconfig.display().to_string();
        let port = free_port()?;
        let controllers = if all {
            "*"
        } else {
            "garbagecollector,serviceaccount,serviceaccount-token,namespace"
        };
        let cm = Process::spawn(
            "kube-controller-manager",
            &tools::tool("kube-controller-manager")?,
            &strings(&[
                &format!("--kubeconfig={kc}"),
                &format!("--authentication-kubeconfig={kc}"),
                &format!("--authorization-kubeconfig={kc}"),
                "--leader-elect=false",
                &format!("--controllers={controllers}"),
                &format!(
                    "--service-account-private-key-file={}",
                    self.sa_key.display()
                ),
                &format!("--root-ca-file={}", self.ca_cert.display()),
                "--use-service-account-credentials=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={port}"),
                "--v=1",
            ]),
            &[],
            &self.dir.path().join("kube-controller-manager.log"),
        )?;
        self.controller_manager = Some(cm);
        // The service-account controller creating `default` in a fresh
        // namespace shows the controllers are running.
        let client = self.client().await?;
        let ns = "testkit-controller-check";
        let nss: Api<Namespace> = Api::all(client.clone());
        let mut obj = Namespace::default();
        obj.metadata.name = Some(ns.into());
        nss.create(&PostParams::default(), &obj).await?;
        let sas: Api<ServiceAccount> = Api::namespaced(client, ns);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(cm) = self.controller_manager.as_mut() {
                cm.check_running()?;
            }
            if sas.get_opt("default").await?.is_some() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "kube-controller-manager did not create ServiceAccount {ns}/default in 60s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// kube-scheduler, for a real node's pods.
    fn start_scheduler(&mut self) -> anyhow::Result<()> {
        let kc = self.kubeconfig.display().to_string();
        let port = free_port()?;
        self.scheduler = Some(Process::spawn(
            "kube-scheduler",
            &tools::tool("kube-scheduler")?,
            &strings(&[
                &format!("--kubeconfig={kc}"),
                &format!("--authentication-kubeconfig={kc}"),
                &format!("--authorization-kubeconfig={kc}"),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={port}"),
                "--v=1",
            ]),
            &[],
            &self.dir.path().join("kube-scheduler.log"),
        )?);
        Ok(())
    }

    /// Fails with the log tail of any control-plane process that exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.etcd.check_running()?;
        self.apiserver.check_running()?;
        for p in [&mut self.controller_manager, &mut self.scheduler]
            .into_iter()
            .flatten()
        {
            p.check_running()?;
        }
        Ok(())
    }

    /// A new admin client (bound to the calling tokio runtime).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A client authenticating with `token` (e.g. a service-account token),
    /// to exercise RBAC as a workload would.
    pub async fn client_with_token(&self, token: &str) -> anyhow::Result<kube::Client> {
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{}", rand_suffix()));
        std::fs::write(&path, kubeconfig_yaml(&self.url, &self.ca_cert, token))?;
        let kc = Kubeconfig::read_from(&path)?;
        std::fs::remove_file(&path)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Writes a kubeconfig for this API server that authenticates with
    /// `token` (e.g. a service-account token from a TokenRequest), for a
    /// process that must run as that identity (`--kubeconfig=<path>`).
    pub fn write_kubeconfig(&self, token: &str, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, kubeconfig_yaml(&self.url, &self.ca_cert, token))?;
        Ok(())
    }

    /// The audit log (JSON lines, one `audit.k8s.io/v1` Event each) when
    /// started with [`ControlPlaneOptions::audit_log`].
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_log.as_deref()
    }

    /// Creates a namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<String> {
        let api: Api<Namespace> = Api::all(self.client().await?);
        let mut ns = Namespace::default();
        ns.metadata.generate_name = Some(format!("{prefix}-"));
        let created = api.create(&PostParams::default(), &ns).await?;
        created
            .metadata
            .name
            .context("created namespace has no name")
    }

    /// Admin kubeconfig file (for kubectl, the driver, controller-manager).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// API server URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// CA certificate (PEM) of the API server's serving certificate.
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// Data directory (logs of every process are here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The API server's log so far.
    pub fn apiserver_log(&self) -> String {
        self.apiserver.log()
    }
}

/// Removes data directories left by test binaries that have exited (a shared
/// control plane lives in a static and is never dropped).
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("control-plane-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        match pid {
            Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {}
            _ => {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// kube-apiserver flags for a JSON audit log of every request (metadata only:
/// no request or response bodies, so no secret material), written before the
/// response is sent (`blocking` mode) so a test reads it right after a call.
fn audit_flags(dir: &Path, log: &Path) -> anyhow::Result<Vec<String>> {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n",
    )?;
    Ok(vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
        "--audit-log-format=json".into(),
        "--audit-log-mode=blocking".into(),
        "--audit-log-maxsize=0".into(),
    ])
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn http_get(path: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    Ok(http::Request::get(path).body(Vec::new())?)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn kubeconfig_yaml(url: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testkit
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: testkit
  user:
    token: {token}
contexts:
- name: testkit
  context:
    cluster: testkit
    user: testkit
    namespace: default
current-context: testkit
",
        ca = ca.display()
    )
}
