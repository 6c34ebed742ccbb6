//! OpenBao and the Vault providers, for the tests of our `vault` provider,
//! of the `secrets-store` CLI and for the Kubernetes demo.
//!
//! [`OpenBao`] is a dev server on loopback (KV v2 at `secret/`, KV v1 at
//! `kv1/`, a PKI engine at `pki/` with role `web`) whose Kubernetes auth
//! method validates pod tokens through a real control plane's TokenReview.
//! [`start_peer`] runs a provider against it as the providers' service account:
//! ours, or HashiCorp's vault-csi-provider v1.7.4, which reads only
//! in-cluster configuration and so runs in a private mount namespace
//! (`unshare -m`) with the service-account directory bound at its
//! in-cluster path.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::process::{Process, free_port};
use crate::{ControlPlane, tools, wait_for};

/// The dev server's root token (a dev server's, not a secret).
pub const ROOT_TOKEN: &str = "root";
/// The namespace holding the providers' and OpenBao's service accounts.
pub const SYSTEM_NS: &str = "vault-csi";
/// The providers' service account.
pub const PROVIDER_SA: &str = "vault-csi-provider";
/// Name of the HMAC key Secret.
pub const HMAC_SECRET: &str = "vault-csi-provider-hmac-key";

/// An OpenBao dev server wired to a control plane (see the module doc).
pub struct OpenBao {
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    apiserver: String,
    process: Process,
    /// Holds the OpenBao log, the providers' kubeconfig and the
    /// in-cluster service-account directory.
    dir: tempfile::TempDir,
}

/// Calls OpenBao's HTTP API at `addr` as root: `path` is below `/v1/`; the
/// answer is its JSON (`Null` when empty). Fails on a non-2xx status with
/// OpenBao's error list (never a secret).
pub async fn api(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", ROOT_TOKEN)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let answer = client
        .request(req)
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = answer.status();
    let bytes = answer.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        let errors = serde_json::from_slice::<Value>(&bytes)
            .map(|v| v["errors"].to_string())
            .unwrap_or_default();
        anyhow::bail!("{method} {path}: {status} {errors}");
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&bytes)?)
}

impl OpenBao {
    /// The OpenBao of this test binary, on [`ControlPlane::shared`],
    /// started by the first caller.
    pub async fn shared() -> anyhow::Result<&'static OpenBao> {
        static SHARED: OnceCell<OpenBao> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| async { Self::start(ControlPlane::shared().await?).await })
            .await
    }

    /// Starts a dev server with Kubernetes auth against `cp`, the engines
    /// of the module doc, and the service accounts and RBAC of the
    /// providers (the chart's) and of OpenBao's token reviewer.
    pub async fn start(cp: &ControlPlane) -> anyhow::Result<Self> {
        // Inside the control plane's directory: a shared one is never dropped,
        // and the next run removes it with the control plane's.
        let dir = tempfile::Builder::new()
            .prefix("openbao-")
            .tempdir_in(cp.dir())?;
        let port = free_port()?;
        let home = dir.path().display().to_string();
        let process = Process::spawn(
            "openbao",
            &tools::tool("bao")?,
            &[
                "server".into(),
                "-dev".into(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-no-store-token".into(),
            ],
            &[("HOME", &home), ("BAO_LOG_LEVEL", "warn")],
            &dir.path().join("bao.log"),
        )?;
        let bao = Self {
            addr: format!("http://127.0.0.1:{port}"),
            apiserver: cp.url().to_string(),
            process,
            dir,
        };
        wait_for(
            "openbao",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                let addr = bao.addr.clone();
                async move { Ok(api(&addr, "GET", "sys/health", None).await.ok().map(|_| ())) }
            },
        )
        .await
        .with_context(|| format!("openbao log:\n{}", bao.process.log()))?;
        let client = cp.client().await?;
        let reviewer = system_accounts(&client).await?;
        bao.kubernetes_auth(cp, &reviewer).await?;
        bao.engines().await?;
        bao.write_service_account_dir(cp, &client).await?;
        Ok(bao)
    }

    /// Calls this server's API as root (see [`api`]).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        api(&self.addr, method, path, body).await
    }

    async fn kubernetes_auth(&self, cp: &ControlPlane, reviewer: &str) -> anyhow::Result<()> {
        let ca = std::fs::read_to_string(cp.ca_cert())?;
        let kubernetes = json!({"type": "kubernetes"});
        self.api("POST", "sys/auth/kubernetes", Some(kubernetes))
            .await?;
        let config = json!({
            "kubernetes_host": cp.url(),
            "kubernetes_ca_cert": ca,
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        });
        self.api("POST", "auth/kubernetes/config", Some(config))
            .await?;
        Ok(())
    }

    async fn engines(&self) -> anyhow::Result<()> {
        let kv1 = json!({"type": "kv", "options": {"version": "1"}});
        self.api("POST", "sys/mounts/kv1", Some(kv1)).await?;
        self.api("POST", "sys/mounts/pki", Some(json!({"type": "pki"})))
            .await?;
        let root = json!({"common_name": "example.test", "ttl": "24h"});
        self.api("POST", "pki/root/generate/internal", Some(root))
            .await?;
        let web =
            json!({"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h"});
        self.api("POST", "pki/roles/web", Some(web)).await?;
        Ok(())
    }

    /// The providers' kubeconfig (their service account's token).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("provider-kubeconfig")
    }

    /// The providers' in-cluster service-account directory (`token`,
    /// `ca.crt`, `namespace`).
    pub fn sa_dir(&self) -> PathBuf {
        self.dir.path().join("serviceaccount")
    }

    /// OpenBao's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    async fn write_service_account_dir(
        &self,
        cp: &ControlPlane,
        client: &kube::Client,
    ) -> anyhow::Result<()> {
        let t = token(client, PROVIDER_SA).await?;
        cp.write_kubeconfig(&t, &self.kubeconfig())?;
        let d = self.sa_dir();
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("token"), &t)?;
        std::fs::copy(cp.ca_cert(), d.join("ca.crt"))?;
        std::fs::write(d.join("namespace"), SYSTEM_NS)?;
        Ok(())
    }

    /// A policy `name` with `hcl`, and a Kubernetes auth role `name` bound
    /// to every service account of `ns` with that policy (and `audience`,
    /// if any).
    pub async fn role(
        &self,
        name: &str,
        ns: &str,
        hcl: &str,
        audience: Option<&str>,
    ) -> anyhow::Result<()> {
        let policy = json!({"policy": hcl});
        self.api("PUT", &format!("sys/policies/acl/{name}"), Some(policy))
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
        self.api("POST", &format!("auth/kubernetes/role/{name}"), Some(role))
            .await?;
        Ok(())
    }
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

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn rule(resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(v(resources)),
        verbs: v(verbs),
        ..PolicyRule::default()
    }
}

fn subject(name: &str) -> Option<Vec<Subject>> {
    Some(vec![Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(SYSTEM_NS.into()),
        ..Subject::default()
    }])
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
    }
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
        let sa = ServiceAccount {
            metadata: meta(name),
            ..Default::default()
        };
        create(&sas, &sa).await?;
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let delegator = ClusterRoleBinding {
        metadata: meta("openbao-auth-delegator"),
        role_ref: role_ref("ClusterRole", "system:auth-delegator"),
        subjects: subject("openbao"),
    };
    create(&crbs, &delegator).await?;
    let tokens = ClusterRole {
        metadata: meta(PROVIDER_SA),
        rules: Some(vec![rule(&["serviceaccounts/token"], &["create"])]),
        ..Default::default()
    };
    create(&Api::all(client.clone()), &tokens).await?;
    let binding = ClusterRoleBinding {
        metadata: meta(PROVIDER_SA),
        role_ref: role_ref("ClusterRole", PROVIDER_SA),
        subjects: subject(PROVIDER_SA),
    };
    create(&crbs, &binding).await?;
    let secrets = Role {
        metadata: meta(PROVIDER_SA),
        rules: Some(vec![rule(&["secrets"], &["get", "create"])]),
    };
    create(&Api::namespaced(client.clone(), SYSTEM_NS), &secrets).await?;
    let binding = RoleBinding {
        metadata: meta(PROVIDER_SA),
        role_ref: role_ref("Role", PROVIDER_SA),
        subjects: subject(PROVIDER_SA),
    };
    create(&Api::namespaced(client.clone(), SYSTEM_NS), &binding).await?;
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

pub use crate::provider_peer::{Kind, Peer};

/// Starts `kind` (a [`Peer`] named `vault`) against `bao` as the providers'
/// service account, with `extra` flags, and waits for its socket.
pub async fn start_peer(kind: Kind, bao: &OpenBao, extra: &[String]) -> anyhow::Result<Peer> {
    let kubeconfig = bao.kubeconfig().display().to_string();
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("POD_NAMESPACE", SYSTEM_NS),
    ];
    start_peer_with_env(kind, bao, extra, &env).await
}

/// [`start_peer`] with `env` for our provider. Upstream's runs in its
/// in-cluster set-up: a tmpfs on `/run` with the providers'
/// service-account directory bound at the in-cluster path, the API
/// server's address in `KUBERNETES_SERVICE_HOST`/`_PORT`.
pub async fn start_peer_with_env(
    kind: Kind,
    bao: &OpenBao,
    extra: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<Peer> {
    let mut args = vec![
        format!("-vault-addr={}", bao.addr),
        format!("-health-addr=127.0.0.1:{}", free_port()?),
        "-log-level=debug".into(),
    ];
    args.extend_from_slice(extra);
    let builder = match kind {
        Kind::Ours => {
            args.push("-v=5".into());
            let ours = tools::workspace_binary("secrets-store-csi-driver-provider-vault")?;
            Peer::builder(kind, "vault", &ours)?.envs(env.iter().copied())
        }
        Kind::Upstream => {
            let port = bao.apiserver.rsplit(':').next().unwrap_or_default();
            let upstream = tools::tool("upstream-vault-provider")?;
            Peer::builder(kind, "vault", &upstream)?
                .socket_flag("-endpoint")
                .tmpfs("/run")
                .bind(&bao.sa_dir(), "/run/secrets/kubernetes.io/serviceaccount")
                .envs([
                    ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
                    ("KUBERNETES_SERVICE_PORT", port),
                ])
        }
    };
    builder.args(args).start().await
}
