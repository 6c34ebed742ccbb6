//! One OpenBao dev server per test binary, on loopback, whose Kubernetes
//! auth method validates pod tokens through the shared control plane's
//! TokenReview; and the provider processes (ours, and HashiCorp's
//! vault-csi-provider v1.7.4 in a private mount namespace, since it reads
//! only in-cluster configuration).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_vault::client::{Call, VaultClient};
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::{ControlPlane, tools, wait_for};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The dev server's root token.
pub const ROOT_TOKEN: &str = "root";
/// The namespace holding the providers' and OpenBao's service accounts.
pub const SYSTEM_NS: &str = "vault-csi";
/// The providers' service account.
pub const PROVIDER_SA: &str = "vault-csi-provider";
/// Name of the HMAC key Secret.
pub const HMAC_SECRET: &str = "vault-csi-provider-hmac-key";

/// The shared OpenBao and control plane.
pub struct Shared {
    /// The control plane.
    pub cp: &'static ControlPlane,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    _bao: Process,
    /// Holds the OpenBao log, the providers' kubeconfig and the
    /// in-cluster service-account directory.
    pub dir: tempfile::TempDir,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// The shared set-up, started by the first test that asks.
pub async fn shared() -> anyhow::Result<&'static Shared> {
    SHARED.get_or_try_init(start).await
}

/// A client of the shared OpenBao (bound to the calling runtime).
pub fn client(addr: &str) -> VaultClient {
    let http = secrets_store_provider_vault::tls::client(&Default::default()).expect("http client");
    VaultClient::new(http, addr, None, Duration::from_secs(10), 0)
}

/// Calls OpenBao's API as root.
pub async fn api(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let token = Redacted::new(ROOT_TOKEN.to_string());
    let answer = client(addr)
        .send(&Call {
            method,
            path,
            token: Some(&token),
            body: body.map(|b| Redacted::new(b.to_string().into_bytes())),
        })
        .await
        .with_context(|| format!("{method} {path}"))?;
    if answer.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&answer)?)
}

async fn start() -> anyhow::Result<Shared> {
    let cp = ControlPlane::shared().await?;
    let dir = tempfile::Builder::new().prefix("openbao-").tempdir()?;
    let port = free_port()?;
    let home = dir.path().display().to_string();
    let bao = Process::spawn(
        "openbao",
        &tools::tool("bao")?,
        &[
            "server".into(),
            "-dev".into(),
            format!("-dev-root-token-id={ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ],
        &[("HOME", &home), ("BAO_LOG_LEVEL", "warn")],
        &dir.path().join("bao.log"),
    )?;
    let addr = format!("http://127.0.0.1:{port}");
    wait_for(
        "openbao",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let addr = addr.clone();
            async move { Ok(api(&addr, "GET", "sys/health", None).await.ok().map(|_| ())) }
        },
    )
    .await?;
    let client = cp.client().await?;
    let reviewer = system_accounts(&client).await?;
    let ca = std::fs::read_to_string(cp.ca_cert())?;
    api(
        &addr,
        "POST",
        "sys/auth/kubernetes",
        Some(json!({"type": "kubernetes"})),
    )
    .await?;
    api(
        &addr,
        "POST",
        "auth/kubernetes/config",
        Some(json!({
            "kubernetes_host": cp.url(),
            "kubernetes_ca_cert": ca,
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        })),
    )
    .await?;
    api(
        &addr,
        "POST",
        "sys/mounts/kv1",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await?;
    api(
        &addr,
        "POST",
        "sys/mounts/pki",
        Some(json!({"type": "pki"})),
    )
    .await?;
    api(
        &addr,
        "POST",
        "pki/root/generate/internal",
        Some(json!({"common_name": "example.test", "ttl": "24h"})),
    )
    .await?;
    api(
        &addr,
        "POST",
        "pki/roles/web",
        Some(json!({"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h"})),
    )
    .await?;
    let shared = Shared {
        cp,
        addr,
        _bao: bao,
        dir,
    };
    shared.write_service_account_dir(&client).await?;
    Ok(shared)
}

async fn create<K>(api: &Api<K>, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(String::from),
        ..ObjectMeta::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(v(groups)),
        resources: Some(v(resources)),
        verbs: v(verbs),
        ..PolicyRule::default()
    }
}

fn subject(name: &str) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(SYSTEM_NS.into()),
        ..Subject::default()
    }]
}

/// OpenBao's reviewer (`system:auth-delegator`) and the providers' service
/// account with the chart's RBAC (create tokens; get and create Secrets in
/// its namespace). Returns a reviewer token.
async fn system_accounts(client: &kube::Client) -> anyhow::Result<String> {
    let mut ns = k8s_openapi::api::core::v1::Namespace::default();
    ns.metadata.name = Some(SYSTEM_NS.into());
    create(&Api::all(client.clone()), &ns).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), SYSTEM_NS);
    for name in ["openbao", PROVIDER_SA] {
        create(
            &sas,
            &ServiceAccount {
                metadata: meta(name, None),
                ..Default::default()
            },
        )
        .await?;
    }
    let role_ref = |kind: &str, name: &str| RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
    };
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    create(
        &crbs,
        &ClusterRoleBinding {
            metadata: meta("openbao-auth-delegator", None),
            role_ref: role_ref("ClusterRole", "system:auth-delegator"),
            subjects: Some(subject("openbao")),
        },
    )
    .await?;
    create(
        &Api::<ClusterRole>::all(client.clone()),
        &ClusterRole {
            metadata: meta("vault-csi-provider", None),
            rules: Some(vec![rule(&[""], &["serviceaccounts/token"], &["create"])]),
            ..Default::default()
        },
    )
    .await?;
    create(
        &crbs,
        &ClusterRoleBinding {
            metadata: meta("vault-csi-provider", None),
            role_ref: role_ref("ClusterRole", "vault-csi-provider"),
            subjects: Some(subject(PROVIDER_SA)),
        },
    )
    .await?;
    create(
        &Api::<Role>::namespaced(client.clone(), SYSTEM_NS),
        &Role {
            metadata: meta("vault-csi-provider", None),
            rules: Some(vec![rule(&[""], &["secrets"], &["get", "create"])]),
        },
    )
    .await?;
    create(
        &Api::<RoleBinding>::namespaced(client.clone(), SYSTEM_NS),
        &RoleBinding {
            metadata: meta("vault-csi-provider", None),
            role_ref: role_ref("Role", "vault-csi-provider"),
            subjects: Some(subject(PROVIDER_SA)),
        },
    )
    .await?;
    token(client, "openbao").await
}

/// A day-long token of a service account in [`SYSTEM_NS`].
async fn token(client: &kube::Client, sa: &str) -> anyhow::Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), SYSTEM_NS);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(86400),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tr = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await?;
    tr.status.and_then(|s| s.token).context("no token")
}

impl Shared {
    /// The providers' kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("provider-kubeconfig")
    }

    /// The in-cluster service-account directory (`token`, `ca.crt`,
    /// `namespace`).
    pub fn sa_dir(&self) -> PathBuf {
        self.dir.path().join("serviceaccount")
    }

    async fn write_service_account_dir(&self, client: &kube::Client) -> anyhow::Result<()> {
        let t = token(client, PROVIDER_SA).await?;
        self.cp.write_kubeconfig(&t, &self.kubeconfig())?;
        let d = self.sa_dir();
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("token"), &t)?;
        std::fs::copy(self.cp.ca_cert(), d.join("ca.crt"))?;
        std::fs::write(d.join("namespace"), SYSTEM_NS)?;
        Ok(())
    }

    /// A policy `name` with `hcl`, and a Kubernetes auth role `name` bound
    /// to every service account of `ns` with that policy.
    pub async fn role(
        &self,
        name: &str,
        ns: &str,
        hcl: &str,
        audience: Option<&str>,
    ) -> anyhow::Result<()> {
        api(
            &self.addr,
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({"policy": hcl})),
        )
        .await?;
        let mut role = json!({
            "bound_service_account_names": ["*"],
            "bound_service_account_namespaces": [ns],
            "policies": [name],
            "ttl": "20m",
        });
        if let Some(a) = audience {
            role["audience"] = json!(a);
        }
        api(
            &self.addr,
            "POST",
            &format!("auth/kubernetes/role/{name}"),
            Some(role),
        )
        .await?;
        Ok(())
    }
}

/// Which provider binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ours.
    Ours,
    /// HashiCorp's vault-csi-provider v1.7.4.
    Upstream,
}

/// A running provider and its socket directory.
pub struct Peer {
    /// Which one.
    pub kind: Kind,
    /// The process.
    pub process: Process,
    /// Holds `vault.sock` and the log.
    pub dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `kind` against the shared OpenBao, as the providers' service
    /// account, and waits for its socket.
    pub async fn start(kind: Kind, shared: &Shared, extra: &[String]) -> anyhow::Result<Self> {
        let kubeconfig = shared.kubeconfig().display().to_string();
        let env = [
            ("KUBECONFIG", kubeconfig.as_str()),
            ("POD_NAMESPACE", SYSTEM_NS),
        ];
        Self::start_with_env(kind, shared, extra, &env).await
    }

    /// [`Peer::start`] with `env` for our provider.
    pub async fn start_with_env(
        kind: Kind,
        shared: &Shared,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vault-provider-")
            .tempdir()?;
        let socket = dir.path().join("vault.sock");
        let mut provider_args = vec![
            format!("-endpoint={}", socket.display()),
            format!("-vault-addr={}", shared.addr),
            format!("-health-addr=127.0.0.1:{}", free_port()?),
            "-log-level=debug".into(),
        ];
        provider_args.extend_from_slice(extra);
        let port = shared
            .cp
            .url()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let process = match kind {
            Kind::Ours => {
                provider_args.push("-v=5".into());
                Process::spawn(
                    "our vault provider",
                    Path::new(env!(
                        "CARGO_BIN_EXE_secrets-store-csi-driver-provider-vault"
                    )),
                    &provider_args,
                    env,
                    &dir.path().join("provider.log"),
                )?
            }
            Kind::Upstream => {
                let sa = "/run/secrets/kubernetes.io/serviceaccount";
                let mut args = vec![
                    "-m".to_string(),
                    "sh".into(),
                    "-c".into(),
                    format!(
                        r#"mount -t tmpfs tmpfs /run && mkdir -p {sa} && mount --bind "$0" {sa} && exec "$@""#
                    ),
                    shared.sa_dir().display().to_string(),
                    tools::tool("upstream-vault-provider")?
                        .display()
                        .to_string(),
                ];
                args.extend(provider_args);
                Process::spawn(
                    "upstream vault-csi-provider",
                    Path::new("unshare"),
                    &args,
                    &[
                        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
                        ("KUBERNETES_SERVICE_PORT", &port),
                    ],
                    &dir.path().join("provider.log"),
                )?
            }
        };
        secrets_store_testkit::wait_for_socket(&socket)
            .await
            .with_context(|| format!("{kind:?} provider log:\n{}", process.log()))?;
        Ok(Self { kind, process, dir })
    }

    /// The provider's socket directory.
    pub fn providers_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The provider's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("vault.sock")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
