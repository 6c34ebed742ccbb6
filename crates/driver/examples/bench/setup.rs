//! The shared bench environment: one control plane with its audit log, one
//! namespace, both providers, one identity per driver, the pods.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use secrets_store_crds::v1::{
    SecretProviderClass, SecretProviderClassPodStatus, SecretProviderClassSpec,
};
use secrets_store_testkit::driver::{DriverProcess, kubelet_dir_args};
use secrets_store_testkit::fake_provider::{Behavior, FakeProvider};
use secrets_store_testkit::process::Process;
use secrets_store_testkit::{ControlPlane, ControlPlaneOptions, TestPod, wait_for};

use crate::audit::{Audit, Counts};

/// Which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// This repository's driver.
    Ours,
    /// The upstream Go driver v1.6.0.
    Upstream,
}

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// testkit's fake provider in this process, counting calls only.
    Zero,
    /// The upstream e2e provider (`upstream-e2e-provider`, Go).
    E2e,
}

impl ProviderKind {
    /// Provider name, also the SecretProviderClass name and pod prefix.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Zero => "zero",
            ProviderKind::E2e => "e2e",
        }
    }

    /// The class's `objects` parameter: two files either way.
    fn objects(self) -> &'static str {
        match self {
            ProviderKind::Zero => "- username\n- password\n",
            ProviderKind::E2e => {
                "array:\n  - |\n    objectName: foo\n  - |\n    objectName: fookey\n"
            }
        }
    }
}

/// How a driver is run.
struct DriverSpec {
    binary: PathBuf,
    kubeconfig: PathBuf,
    user: String,
}

/// Everything the runs share.
pub struct Env {
    /// The control plane (audit log on), kept running.
    _cp: ControlPlane,
    /// Admin client.
    pub client: kube::Client,
    /// The namespace of every object.
    pub ns: String,
    /// Scratch directory.
    pub dir: tempfile::TempDir,
    /// The provider socket directory.
    pub providers: PathBuf,
    /// The zero-latency provider.
    pub zero: FakeProvider,
    _e2e: Process,
    audit: Mutex<Audit>,
    drivers: HashMap<Kind, DriverSpec>,
}

const FILES: &[(&str, &[u8], i32)] = &[
    ("username", b"admin", 0o644),
    ("password", &[b'x'; 64], 0o640),
];

impl Env {
    /// Starts the control plane and providers, creates the classes and the
    /// drivers' identities.
    pub async fn start(binaries: &[(Kind, PathBuf)]) -> anyhow::Result<Self> {
        let cp = ControlPlane::start(ControlPlaneOptions {
            audit_log: true,
            ..Default::default()
        })
        .await?;
        let client = cp.client().await?;
        let ns = cp.namespace("bench").await?;
        let dir = tempfile::Builder::new().prefix("sscsi-bench-").tempdir()?;
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers)?;
        let zero = FakeProvider::start(&providers, ProviderKind::Zero.name()).await?;
        zero.set_recording(false);
        zero.set(Behavior::files(
            FILES,
            &[("secret/username", "1"), ("secret/password", "1")],
        ));
        let e2e = start_e2e_provider(&providers).await?;
        let mut drivers = HashMap::new();
        for (kind, binary) in binaries {
            let (kubeconfig, user) = identity(&cp, &client, &ns, *kind, dir.path()).await?;
            let binary = binary.clone();
            drivers.insert(
                *kind,
                DriverSpec {
                    binary,
                    kubeconfig,
                    user,
                },
            );
        }
        let audit = Audit::new(cp.audit_log().expect("audit log on").to_path_buf());
        let env = Self {
            _cp: cp,
            client,
            ns,
            dir,
            providers,
            zero,
            _e2e: e2e,
            audit: Mutex::new(audit),
            drivers,
        };
        for p in [ProviderKind::Zero, ProviderKind::E2e] {
            env.create_class(p).await?;
        }
        Ok(env)
    }

    async fn create_class(&self, p: ProviderKind) -> anyhow::Result<()> {
        let api: Api<SecretProviderClass> = Api::namespaced(self.client.clone(), &self.ns);
        let spec = SecretProviderClassSpec {
            provider: p.name().into(),
            parameters: [("objects".to_string(), p.objects().to_string())].into(),
            secret_objects: vec![],
        };
        let spc = SecretProviderClass::new(p.name(), spec);
        api.create(&PostParams::default(), &spc).await?;
        Ok(())
    }

    /// The API user a driver runs as.
    pub fn user(&self, kind: Kind) -> &str {
        &self.drivers[&kind].user
    }

    /// Starts a driver for node `node` with kubelet root `root`.
    pub async fn start_driver(
        &self,
        kind: Kind,
        node: &str,
        root: &Path,
        extra: &[&str],
    ) -> anyhow::Result<DriverProcess> {
        let spec = &self.drivers[&kind];
        let mut args = vec![
            format!("--nodeid={node}"),
            format!("--provider-volume={}", self.providers.display()),
            "--additional-provider-volume-paths=".to_string(),
            "--metrics-addr=127.0.0.1:0".to_string(),
            format!("--kubeconfig={}", spec.kubeconfig.display()),
        ];
        args.extend(kubelet_dir_args(&spec.binary, root));
        if kind == Kind::Ours {
            // As deployed: records on the driver's private tmpfs (released
            // at the SIGTERM that ends each run).
            args.push("--state-dir-tmpfs=true".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        std::fs::create_dir_all(root)?;
        DriverProcess::start(&spec.binary, &args).await
    }

    /// Requests `user` sent so far (reads the audit log up to now).
    pub fn counts(&self, user: &str) -> anyhow::Result<Counts> {
        let mut audit = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        audit.poll()?;
        Ok(audit.counts(user))
    }

    /// Watches `user` holds now.
    pub fn watches(&self, user: &str) -> anyhow::Result<usize> {
        let mut audit = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        audit.poll()?;
        Ok(audit.watches(user))
    }

    /// Creates pods `<prefix>-0..n` using class `p`, bound to `node`.
    pub async fn create_pods(
        &self,
        p: ProviderKind,
        prefix: &str,
        node: &str,
        n: usize,
    ) -> anyhow::Result<Vec<Pod>> {
        let spec = |i: usize| {
            let mut pod = TestPod::new(&self.ns, &format!("{prefix}-{i}"), p.name());
            pod.node_name = Some(node.to_string());
            pod
        };
        // The first creates the service account; the rest run 16 at a time.
        let mut pods = vec![spec(0).create(&self.client).await?];
        let rest: Vec<Pod> = futures::stream::iter(1..n)
            .map(|i| {
                let (spec, client) = (spec(i), self.client.clone());
                async move { spec.create(&client).await }
            })
            .buffered(16)
            .try_collect()
            .await?;
        pods.extend(rest);
        Ok(pods)
    }

    /// Deletes every SecretProviderClassPodStatus, so the next run starts
    /// from the same API state.
    pub async fn reset_status(&self) -> anyhow::Result<()> {
        let api: Api<SecretProviderClassPodStatus> = Api::namespaced(self.client.clone(), &self.ns);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
        wait_for(
            "every SecretProviderClassPodStatus to be deleted",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                let api = api.clone();
                async move {
                    Ok(api
                        .list(&ListParams::default())
                        .await?
                        .items
                        .is_empty()
                        .then_some(()))
                }
            },
        )
        .await
    }
}

/// The upstream e2e provider as provider `e2e`, in its own network
/// namespace (it also serves HTTP on a fixed port, `:8080`, which other
/// programs on a shared machine may hold; its gRPC socket is a file).
async fn start_e2e_provider(dir: &Path) -> anyhow::Result<Process> {
    let socket = dir.join(format!("{}.sock", ProviderKind::E2e.name()));
    let binary = secrets_store_testkit::tools::tool("upstream-e2e-provider")?;
    let process = Process::spawn(
        "upstream-e2e-provider",
        Path::new("unshare"),
        &[
            "--net".to_string(),
            binary.display().to_string(),
            format!("--endpoint=unix://{}", socket.display()),
        ],
        &[],
        &dir.join("e2e-provider.log"),
    )?;
    wait_for(
        "the e2e provider's socket",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let ready = socket.exists();
            async move { Ok(ready.then_some(())) }
        },
    )
    .await?;
    Ok(process)
}

/// A service account bound to `cluster-admin` for one driver, and a
/// kubeconfig with its token; returns the kubeconfig and the user name.
async fn identity(
    cp: &ControlPlane,
    client: &kube::Client,
    ns: &str,
    kind: Kind,
    dir: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let name = format!(
        "driver-{}",
        if kind == Kind::Ours {
            "ours"
        } else {
            "upstream"
        }
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(name.clone());
    accounts.create(&PostParams::default(), &sa).await?;
    let mut binding = ClusterRoleBinding {
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    binding.metadata.name = Some(format!("{ns}-{name}"));
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(86_400),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request(&name, &PostParams::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| anyhow::anyhow!("TokenRequest for {name} returned no token"))?;
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    cp.write_kubeconfig(&token, &kubeconfig)?;
    Ok((kubeconfig, format!("system:serviceaccount:{ns}:{name}")))
}
