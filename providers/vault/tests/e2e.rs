//! End to end with real OpenBao and the real API server: kubelet simulator
//! → CSI driver (ours, and the upstream Go driver v1.6.0) → a Vault
//! provider (ours, and HashiCorp's vault-csi-provider v1.7.4) → OpenBao,
//! whose Kubernetes auth validates the pod's TokenRequest token through the
//! API server's TokenReview. One OpenBao and one control plane for the
//! whole binary.

mod differential;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassSpec,
};
use secrets_store_testkit::driver::{DriverProcess, kubelet_dir_args};
use secrets_store_testkit::process::free_port;
use secrets_store_testkit::vault::{Kind, OpenBao, Peer, start_peer};
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions, tools, wait_for};
use serde_json::{Value, json};

const CANARY: &str = "canary-2c9d1f-vault-secret";
const CANARY_V2: &str = "canary-2c9d1f-rotated";

/// A file's contents and mode.
type Files = BTreeMap<String, (Vec<u8>, u32)>;

fn our_driver() -> anyhow::Result<PathBuf> {
    tools::workspace_binary("secrets-store-csi-driver")
}

fn upstream_driver() -> anyhow::Result<PathBuf> {
    tools::tool("upstream-secrets-store-csi-driver")
}

struct Env {
    cp: &'static ControlPlane,
    bao: &'static OpenBao,
    ns: String,
    provider: Peer,
    driver: DriverProcess,
    kubelet: Kubelet,
    kubelet_root: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        secrets_store_testkit::mounts::unmount_all_under(self.kubelet_root.path());
    }
}

impl Env {
    async fn start(
        driver: &Path,
        provider: Kind,
        provider_args: &[String],
    ) -> anyhow::Result<Self> {
        let (cp, bao) = (ControlPlane::shared().await?, OpenBao::shared().await?);
        let ns = cp.namespace("vault").await?;
        let provider = start_peer(provider, bao, provider_args).await?;
        let kubelet_root = tempfile::Builder::new().prefix("kubelet-").tempdir()?;
        let mut args = vec![
            "--nodeid=node-vault".into(),
            format!("--provider-volume={}", provider.providers_dir().display()),
            format!("--kubeconfig={}", cp.kubeconfig().display()),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            "--enable-secret-rotation=true".into(),
            "--rotation-poll-interval=1ms".into(),
        ];
        args.extend(kubelet_dir_args(driver, kubelet_root.path()));
        let driver = DriverProcess::start(driver, &args).await?;
        let kubelet =
            Kubelet::new(cp.client().await?, driver.socket(), kubelet_root.path()).await?;
        Ok(Self {
            cp,
            bao,
            ns,
            provider,
            driver,
            kubelet,
            kubelet_root,
        })
    }

    async fn spc(
        &self,
        name: &str,
        params: &[(&str, &str)],
        secret_objects: Vec<SecretObject>,
    ) -> anyhow::Result<()> {
        let api: Api<SecretProviderClass> = Api::namespaced(self.cp.client().await?, &self.ns);
        let spc = SecretProviderClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: SecretProviderClassSpec {
                provider: "vault".into(),
                parameters: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                secret_objects,
            },
            status: None,
        };
        api.create(&PostParams::default(), &spc).await?;
        Ok(())
    }

    async fn pod(&self, name: &str, spc: &str) -> anyhow::Result<Pod> {
        self.kubelet
            .create_pod(&TestPod::new(&self.ns, name, spc))
            .await
    }

    /// kubelet's publish request for the pod's volume with a `vault`
    /// token, and that token (kubelet reuses both until the token ages).
    async fn request(
        &self,
        pod: &Pod,
    ) -> anyhow::Result<(
        secrets_store_proto::csi::v1::NodePublishVolumeRequest,
        String,
    )> {
        let tokens = TokenOptions {
            audiences: vec!["vault".into()],
            ..Default::default()
        };
        let req = self
            .kubelet
            .publish_request(pod, "secrets", &tokens)
            .await?;
        let jwt = req
            .volume_context
            .get("csi.storage.k8s.io/serviceAccount.tokens")
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|t| t["vault"]["token"].as_str().map(String::from))
            .context("no vault token")?;
        Ok((req, jwt))
    }

    /// Sends `req`; returns the files or the error.
    async fn send(
        &self,
        req: &secrets_store_proto::csi::v1::NodePublishVolumeRequest,
    ) -> anyhow::Result<Result<Files, tonic::Status>> {
        let target = PathBuf::from(&req.target_path);
        Ok(match self.kubelet.send_publish(req.clone()).await {
            Err(s) => Err(s),
            Ok(_) => Ok(read_tree(&target)?),
        })
    }

    /// Publishes the pod's volume with a fresh token; returns the files or
    /// the error, and the token.
    async fn publish(&self, pod: &Pod) -> anyhow::Result<(Result<Files, tonic::Status>, String)> {
        let (req, jwt) = self.request(pod).await?;
        Ok((self.send(&req).await?, jwt))
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.provider.log(), self.driver.log())
    }
}

/// Files under `dir` with their modes (skipping the atomic writer's `..`
/// entries).
fn read_tree(dir: &Path) -> anyhow::Result<Files> {
    let mut out = Files::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.starts_with("..") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir)?.display().to_string();
                let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
                out.insert(rel, (std::fs::read(&path)?, mode));
            }
        }
    }
    Ok(out)
}

fn text(files: &Files, name: &str) -> String {
    String::from_utf8_lossy(files.get(name).map(|f| f.0.as_slice()).unwrap_or_default())
        .into_owned()
}

/// The policy of the test roles.
const POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["read"] }
path "kv1/app/*" { capabilities = ["read"] }
path "pki/issue/web" { capabilities = ["update"] }
"#;

/// Writes the secrets the mounts read; returns the role name (the
/// namespace).
async fn seed(env: &Env) -> anyhow::Result<String> {
    seed_namespace(env.bao, &env.ns).await
}

/// The role and secrets of namespace `ns`.
async fn seed_namespace(bao: &OpenBao, ns: &str) -> anyhow::Result<String> {
    bao.role(ns, ns, POLICY, Some("vault")).await?;
    let app = format!("secret/data/app/{ns}");
    let data = json!({"data": {"username": "app", "password": CANARY, "config": {"b": 2, "a": [1, "x"]}, "html": {"t": "<a&b>"}}});
    bao.api("POST", &app, Some(data)).await?;
    let kv1 = format!("kv1/app/{ns}");
    bao.api("POST", &kv1, Some(json!({"api": "v1-value"})))
        .await?;
    let bin = json!({"data": {"b64": "AAH+/w==", "hex": "00ff10"}});
    bao.api("POST", &format!("{app}-bin"), Some(bin)).await?;
    let denied = format!("secret/data/denied/{ns}");
    bao.api("POST", &denied, Some(json!({"data": {"x": "no"}})))
        .await?;
    Ok(ns.to_string())
}

fn objects(ns: &str) -> String {
    format!(
        r#"
- objectName: password
  secretPath: secret/data/app/{ns}
  secretKey: password
  filePermission: 0600
- objectName: app.json
  secretPath: secret/data/app/{ns}
- objectName: nested/config
  secretPath: /v1/secret/data/app/{ns}
  secretKey: config
- objectName: kv1-api
  secretPath: kv1/app/{ns}
  secretKey: api
  filePermission: 0440
- objectName: bin-b64
  secretPath: secret/data/app/{ns}-bin
  secretKey: b64
  encoding: base64
- objectName: bin-hex
  secretPath: secret/data/app/{ns}-bin
  secretKey: hex
  encoding: HEX
- objectName: cert.pem
  secretPath: pki/issue/web
  method: PUT
  secretKey: certificate
  secretArgs:
    common_name: a.example.test
    ttl: 10m
"#
    )
}

fn assert_seeded_files(files: &Files) {
    assert_eq!(text(files, "password"), CANARY);
    assert_eq!(files["password"].1, 0o600);
    assert_eq!(files["kv1-api"], (b"v1-value".to_vec(), 0o440));
    assert_eq!(files["app.json"].1, 0o644, "the request's mode");
    let whole: Value = serde_json::from_slice(&files["app.json"].0).expect("whole response JSON");
    assert_eq!(whole["data"]["data"]["password"], CANARY);
    assert!(whole["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(text(files, "nested/config"), r#"{"a":[1,"x"],"b":2}"#);
    assert_eq!(files["bin-b64"].0, [0, 1, 0xfe, 0xff]);
    assert_eq!(files["bin-hex"].0, [0, 0xff, 0x10]);
    assert!(
        text(files, "cert.pem").starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        text(files, "cert.pem")
    );
}

/// No token, JWT or secret value in `logs`.
fn assert_clean(logs: &str, jwts: &[String]) {
    for jwt in jwts {
        assert!(!logs.contains(jwt.as_str()), "a pod JWT is in the logs");
    }
    assert!(!logs.contains("eyJ"), "something JWT-like is in the logs");
    for secret in [CANARY, CANARY_V2, "v1-value", "AAH+/w=="] {
        assert!(!logs.contains(secret), "{secret} is in the logs");
    }
    // OpenBao service tokens look like `s.<24+ chars>`.
    let token_like = logs
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .any(|w| (w.starts_with("s.") || w.starts_with("hvs.")) && w.len() >= 26);
    assert!(!token_like, "something token-like is in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_through_our_driver_and_the_upstream_driver() -> anyhow::Result<()> {
    for driver in [our_driver()?, upstream_driver()?] {
        let env = Env::start(&driver, Kind::Ours, &[]).await?;
        let role = seed(&env).await?;
        let objects = objects(&env.ns);
        env.spc(
            "all",
            &[("roleName", &role), ("objects", &objects)],
            Vec::new(),
        )
        .await?;
        let pod = env.pod("all", "all").await?;
        let (files, jwt) = env.publish(&pod).await?;
        let files =
            files.map_err(|s| anyhow::anyhow!("{}: {s:?}\n{}", driver.display(), env.logs()))?;
        assert_seeded_files(&files);
        assert_eq!(files.len(), 7);

        // A wrong role and a denied path: clear errors naming the object.
        env.spc(
            "wrong-role",
            &[("roleName", "nope"), ("objects", &objects)],
            Vec::new(),
        )
        .await?;
        let (err, jwt2) = env
            .publish(&env.pod("wrong-role", "wrong-role").await?)
            .await?;
        let err = err.expect_err("wrong role");
        assert!(
            err.message()
                .contains(r#"couldn't read secret "password": failed to login: POST "#)
                && err.message().contains("/v1/auth/kubernetes/login"),
            "{err:?}"
        );
        let denied = format!(
            "- objectName: denied\n  secretPath: secret/data/denied/{}\n",
            env.ns
        );
        env.spc(
            "denied",
            &[("roleName", &role), ("objects", &denied)],
            Vec::new(),
        )
        .await?;
        let (err, jwt3) = env.publish(&env.pod("denied", "denied").await?).await?;
        let err = err.expect_err("denied path");
        assert!(
            err.message()
                .contains(r#"couldn't read secret "denied": error requesting secret: GET "#)
                && err.message().contains("Code: 403. Errors: ")
                && err.message().contains("permission denied"),
            "{err:?}"
        );
        assert_clean(&env.logs(), &[jwt, jwt2, jwt3]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_updates_files_and_synced_secret_and_survives_a_revoked_token()
-> anyhow::Result<()> {
    let env = Env::start(&our_driver()?, Kind::Ours, &[]).await?;
    let role = seed(&env).await?;
    let objects = format!(
        "- objectName: password\n  secretPath: secret/data/app/{}\n  secretKey: password\n",
        env.ns
    );
    let synced = SecretObject {
        secret_name: "synced".into(),
        type_: "Opaque".into(),
        data: vec![SecretObjectData {
            key: "pw".into(),
            object_name: "password".into(),
        }],
        ..Default::default()
    };
    env.spc(
        "rot",
        &[("roleName", &role), ("objects", &objects)],
        vec![synced],
    )
    .await?;
    let pod = env.pod("rot", "rot").await?;
    let (req, jwt) = env.request(&pod).await?;
    let files = env.send(&req).await?;
    assert_eq!(
        text(
            &files.map_err(|s| anyhow::anyhow!("{s:?}\n{}", env.logs()))?,
            "password"
        ),
        CANARY
    );
    let secrets: Api<Secret> = Api::namespaced(env.cp.client().await?, &env.ns);
    let synced_value = |want: &'static str| {
        let secrets = secrets.clone();
        async move {
            wait_for(
                "the synced Secret",
                Duration::from_secs(30),
                Duration::from_millis(100),
                || {
                    let secrets = secrets.clone();
                    async move {
                        let s = secrets.get_opt("synced").await?;
                        let pw = s.and_then(|s| s.data).and_then(|d| d.get("pw").cloned());
                        Ok(pw.filter(|v| v.0 == want.as_bytes()).map(|_| ()))
                    }
                },
            )
            .await
        }
    };
    synced_value(CANARY).await?;

    // The secret changes in OpenBao: the next refresh shows it.
    let path = format!("secret/data/app/{}", env.ns);
    env.bao
        .api(
            "POST",
            &path,
            Some(json!({"data": {"password": CANARY_V2}})),
        )
        .await?;
    let files = env.send(&req).await?;
    assert_eq!(
        text(&files.map_err(|s| anyhow::anyhow!("{s:?}"))?, "password"),
        CANARY_V2
    );
    synced_value(CANARY_V2).await?;
    let logins = || env.provider.log().matches("vault login successful").count();
    assert_eq!(logins(), 1, "the pod's token is cached");

    // Every token from Kubernetes logins is revoked: the cached one gets a
    // 403 and the provider logs in again.
    env.bao
        .api(
            "PUT",
            "sys/leases/revoke-prefix/auth/kubernetes/login",
            None,
        )
        .await?;
    env.bao
        .api("POST", &path, Some(json!({"data": {"password": CANARY}})))
        .await?;
    let files = env.send(&req).await?;
    assert_eq!(
        text(
            &files.map_err(|s| anyhow::anyhow!("{s:?}\n{}", env.logs()))?,
            "password"
        ),
        CANARY
    );
    assert_eq!(logins(), 2, "one new login");
    let log = env.provider.log();
    assert_eq!(
        log.matches("vault rejected the token; logging in again")
            .count(),
        1,
        "{log}"
    );
    assert_clean(&env.logs(), &[jwt]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_driver_mounts_through_the_upstream_provider() -> anyhow::Result<()> {
    let env = Env::start(&our_driver()?, Kind::Upstream, &[]).await?;
    let role = seed(&env).await?;
    env.spc(
        "up",
        &[("roleName", &role), ("objects", &objects(&env.ns))],
        Vec::new(),
    )
    .await?;
    let (files, _) = env.publish(&env.pod("up", "up").await?).await?;
    let files = files.map_err(|s| anyhow::anyhow!("{s:?}\n{}", env.logs()))?;
    assert_seeded_files(&files);
    Ok(())
}
