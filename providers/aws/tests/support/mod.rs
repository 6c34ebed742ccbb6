//! What the AWS provider's tests share: moto's server with IAM
//! authentication (every request's SigV4 signature is checked) and its
//! state, a Pod Identity agent, and running a provider binary.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::provider_peer::{bind_random_loopback_443, write_hosts};
use secrets_store_testkit::{tools, wait_for, wait_for_socket};

pub use secrets_store_testkit::provider_peer::{Kind, Peer};

/// The primary region of every test.
pub const REGION: &str = "us-east-1";
/// The failover region.
pub const FAILOVER: &str = "us-west-2";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
/// The role moto_peer.py creates (Secrets Manager, SSM, STS).
pub const ROLE: &str = "arn:aws:iam::123456789012:role/reader";
/// The JSON secret of the jmesPath examples.
pub const DB_JSON: &str =
    r#"{"username":"admin","password":"s3cr3t-canary","port":5432,"nested":{"k":"v"}}"#;
/// A value that must never appear in logs.
pub const CANARY: &str = "canary-5d1e8a-plain-secret";
/// Binary secret bytes.
pub const BLOB: &[u8] = &[0, 1, 2, 254, 255, b'\n'];

/// moto's server (see `moto_peer.py`).
pub struct Moto {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Holds keys.json, calls.log, throttle and the log.
    pub dir: tempfile::TempDir,
    /// The admin user's key id.
    pub key_id: String,
    /// The admin user's secret.
    pub secret: String,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("moto-").tempdir()?;
        let port = free_port()?;
        let python = std::fs::canonicalize(tools::tool("moto_server")?)?.with_file_name("python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_peer.py");
        let process = Process::spawn(
            "moto",
            &python,
            &[
                script.display().to_string(),
                port.to_string(),
                dir.path().display().to_string(),
            ],
            &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
            &dir.path().join("moto.log"),
        )?;
        let keys = dir.path().join("keys.json");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let json = wait_for(
            "moto",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                let keys = keys.clone();
                async move {
                    let up = tokio::net::TcpStream::connect(addr).await.is_ok();
                    Ok(match (up, std::fs::read(&keys)) {
                        (true, Ok(b)) if !b.is_empty() => Some(b),
                        _ => None,
                    })
                }
            },
        )
        .await
        .with_context(|| format!("moto log:\n{}", process.log()))?;
        let v: serde_json::Value = serde_json::from_slice(&json)?;
        Ok(Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            key_id: v["AccessKeyId"].as_str().unwrap_or_default().to_string(),
            secret: v["SecretAccessKey"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            dir,
        })
    }

    fn sdk(&self, region: &str) -> SdkConfig {
        let creds = aws_sdk_secretsmanager::config::Credentials::new(
            &self.key_id,
            &self.secret,
            None,
            None,
            "test",
        );
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(
                aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(creds),
            )
            .http_client(http_client())
            .endpoint_url(&self.url)
            .build()
    }

    /// Secrets Manager as the admin.
    pub fn sm(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk(region))
    }

    /// SSM as the admin.
    pub fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk(region))
    }

    /// A session of the reader role (what the Pod Identity agent hands out):
    /// (key id, secret, token).
    pub async fn role_session(&self) -> anyhow::Result<(String, String, String)> {
        let sts = aws_sdk_sts::Client::new(&self.sdk(REGION));
        let out = sts
            .assume_role()
            .role_arn(ROLE)
            .role_session_name("pod-identity")
            .send()
            .await?;
        let c = out.credentials().context("no credentials")?;
        Ok((
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().to_string(),
        ))
    }

    /// API actions served so far, one `"<Action> <ids>"` line each.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Makes the next `n` Secrets Manager/SSM actions answer
    /// `ThrottlingException`.
    pub fn throttle(&self, n: u32) -> anyhow::Result<()> {
        Ok(std::fs::write(
            self.dir.path().join("throttle"),
            n.to_string(),
        )?)
    }

    /// The demo and test state, in both regions where needed.
    pub async fn seed(&self) -> anyhow::Result<()> {
        let sm = self.sm(REGION);
        sm.create_secret()
            .name("MySecret")
            .secret_string(CANARY)
            .send()
            .await?;
        sm.create_secret()
            .name("db")
            .secret_string(DB_JSON)
            .send()
            .await?;
        sm.create_secret()
            .name("text")
            .secret_string("not json")
            .send()
            .await?;
        sm.create_secret()
            .name("blob")
            .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(BLOB))
            .send()
            .await?;
        sm.create_secret()
            .name("team/app/key")
            .secret_string("nested")
            .send()
            .await?;
        sm.create_secret()
            .name("pinned")
            .secret_string("old")
            .client_request_token("11111111-1111-1111-1111-111111111111")
            .send()
            .await?;
        sm.put_secret_value()
            .secret_id("pinned")
            .secret_string("new")
            .client_request_token("22222222-2222-2222-2222-222222222222")
            .send()
            .await?;
        sm.update_secret_version_stage()
            .secret_id("pinned")
            .version_stage("Blue")
            .move_to_version_id("11111111-1111-1111-1111-111111111111")
            .send()
            .await?;
        let west = self.sm(FAILOVER);
        west.create_secret()
            .name("MySecret")
            .secret_string("from-the-west")
            .send()
            .await?;
        west.create_secret()
            .name("west-only")
            .secret_string("west-value")
            .send()
            .await?;
        let ssm = self.ssm(REGION);
        use aws_sdk_ssm::types::ParameterType;
        ssm.put_parameter()
            .name("/app/param")
            .value("param-v1")
            .r#type(ParameterType::String)
            .send()
            .await?;
        ssm.put_parameter()
            .name("/app/param")
            .value("param-v2")
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await?;
        ssm.label_parameter_version()
            .name("/app/param")
            .parameter_version(1)
            .labels("stable")
            .send()
            .await?;
        ssm.put_parameter()
            .name("/app/secure")
            .value("secure-value")
            .r#type(ParameterType::SecureString)
            .send()
            .await?;
        ssm.put_parameter()
            .name("/app/json")
            .value(DB_JSON)
            .r#type(ParameterType::SecureString)
            .send()
            .await?;
        for i in 0..12 {
            ssm.put_parameter()
                .name(format!("/many/p{i}"))
                .value(format!("v{i}"))
                .r#type(ParameterType::String)
                .send()
                .await?;
        }
        Ok(())
    }
}

/// The SDK's HTTP client (rustls on ring, as the provider's).
pub fn http_client() -> aws_sdk_secretsmanager::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// A Pod Identity agent as EKS documents it: `GET /v1/credentials` with the
/// pod's `pods.eks.amazonaws.com` token in `Authorization`, checked with a
/// TokenReview against the API server; answers the role's session.
/// Pods of the service account `mallory` get a wrong secret key.
pub struct Agent {
    /// `http://127.0.0.1:<port>/v1/credentials`.
    pub url: String,
    /// Calls served.
    pub calls: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AgentState {
    client: kube::Client,
    session: (String, String, String),
    calls: Arc<AtomicUsize>,
}

impl Agent {
    /// Starts the agent handing out `session`.
    pub async fn start(
        client: kube::Client,
        session: (String, String, String),
    ) -> anyhow::Result<Self> {
        let calls = Arc::new(AtomicUsize::new(0));
        let state = AgentState {
            client,
            session,
            calls: calls.clone(),
        };
        let app = axum::Router::new()
            .route("/v1/credentials", axum::routing::get(agent_credentials))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1/credentials", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            calls,
            _task: task,
        })
    }
}

async fn agent_credentials(
    axum::extract::State(s): axum::extract::State<AgentState>,
    headers: axum::http::HeaderMap,
) -> (axum::http::StatusCode, String) {
    s.calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let review = TokenReview {
        spec: TokenReviewSpec {
            token,
            audiences: Some(vec!["pods.eks.amazonaws.com".into()]),
        },
        ..Default::default()
    };
    let api: kube::Api<TokenReview> = kube::Api::all(s.client.clone());
    let status = match api.create(&PostParams::default(), &review).await {
        Ok(r) => r.status.unwrap_or_default(),
        Err(e) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if status.authenticated != Some(true) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            r#"{"code":"InvalidTokenException","message":"token rejected"}"#.into(),
        );
    }
    let user = status.user.and_then(|u| u.username).unwrap_or_default();
    let (id, mut secret, token) = s.session.clone();
    if user.ends_with(":mallory") {
        secret = "wrong-secret-key".into();
    }
    let body = serde_json::json!({
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "Token": token,
        "AccountId": ACCOUNT,
        "Expiration": "2099-01-01T00:00:00Z",
    });
    (axum::http::StatusCode::OK, body.to_string())
}

/// Our provider binary.
pub fn our_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_secrets-store-csi-driver-provider-aws"))
}

/// Starts our provider against moto; `agent` is the Pod Identity agent URL.
pub async fn start_ours(
    moto: &Moto,
    kubeconfig: &Path,
    agent: Option<&str>,
) -> anyhow::Result<(Process, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("aws-provider-").tempdir()?;
    let mut args = vec![
        format!("--provider-volume={}", dir.path().display()),
        "-v=5".into(),
    ];
    if let Some(a) = agent {
        args.push(format!("--pod-identity-endpoint={a}"));
    }
    let kc = kubeconfig.display().to_string();
    let process = Process::spawn(
        "aws provider",
        &our_binary(),
        &args,
        &[("KUBECONFIG", &kc), ("AWS_ENDPOINT_URL", &moto.url)],
        &dir.path().join("provider.log"),
    )?;
    wait_for_socket(&dir.path().join("aws.sock"))
        .await
        .with_context(|| format!("provider log:\n{}", process.log()))?;
    Ok((process, dir))
}

/// Endpoint names the TLS front answers for.
pub fn aws_names() -> Vec<String> {
    let mut names = Vec::new();
    for svc in ["sts", "secretsmanager", "ssm"] {
        for r in [REGION, FAILOVER] {
            names.push(format!("{svc}.{r}.amazonaws.com"));
        }
    }
    names
}

/// HTTPS under AWS's regional endpoint names, in front of moto: a fresh
/// CA's leaf for [`aws_names`] on port 443 of a random loopback address,
/// and a hosts file mapping the names there. The upstream provider's STS
/// client ignores endpoint variables, so names must lead to moto.
pub struct TlsFront {
    /// Holds `ca.pem` and `hosts`.
    pub dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Starts the front forwarding to `moto`.
    pub async fn start(moto: &Moto) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let id = secrets_store_testkit::pki::tls_identity(&aws_names())?;
        let certs = vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener =
            bind_random_loopback_443("the TLS front", tokio::net::TcpListener::bind).await?;
        let ip = listener.local_addr()?.ip();
        let target = moto.url.trim_start_matches("http://").to_string();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, target) = (acceptor.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        let dir = tempfile::Builder::new().prefix("aws-front-").tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), &id.ca_pem)?;
        write_hosts(&dir.path().join("hosts"), ip, aws_names().as_slice())?;
        Ok(Self { dir, _task: task })
    }

    /// `SSL_CERT_FILE` for the providers.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The hosts file.
    pub fn hosts(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }
}

/// A provider running as in a cluster: AWS names resolve to the TLS front
/// (a private `/etc/hosts` in its own mount namespace), its CA trusted via
/// `SSL_CERT_FILE`. The upstream provider (3.1.1, built by
/// `hack/install-tools.sh`) reads in-cluster configuration only: a
/// service-account directory (the admin token, the API server CA) is
/// bind-mounted where client-go looks, and it writes no files itself
/// (`--driver-writes-secrets`).
pub async fn start_peer(
    kind: Kind,
    front: &TlsFront,
    cp: &secrets_store_testkit::ControlPlane,
) -> anyhow::Result<Peer> {
    let binary = match kind {
        Kind::Ours => our_binary(),
        Kind::Upstream => tools::tool("upstream-aws-provider")?,
    };
    let peer = Peer::builder(kind, "aws", &binary)?;
    let sa = peer.dir().join("sa");
    std::fs::create_dir_all(&sa)?;
    let kubeconfig = std::fs::read_to_string(cp.kubeconfig())?;
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .context("no token in the kubeconfig")?;
    std::fs::write(sa.join("token"), token)?;
    std::fs::copy(cp.ca_cert(), sa.join("ca.crt"))?;
    std::fs::write(sa.join("namespace"), "default")?;
    let mut peer = peer
        .bind(&front.hosts(), "/etc/hosts")
        .tmpfs("/run")
        .bind(&sa, "/run/secrets/kubernetes.io/serviceaccount");
    peer = match kind {
        Kind::Ours => peer
            .args(["-v=5"])
            .envs([("KUBECONFIG", cp.kubeconfig().display().to_string())]),
        Kind::Upstream => peer.args(["--driver-writes-secrets"]),
    };
    let port = cp.url().rsplit(':').next().unwrap_or_default().to_string();
    let ca = front.ca_file().display().to_string();
    peer.envs([
        ("SSL_CERT_FILE", ca.as_str()),
        // The Go SDK replaces its roots with this bundle when set (as it
        // may be in the environment).
        ("AWS_CA_BUNDLE", ca.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
    ])
    .start()
    .await
}

/// The `serviceAccount.tokens` attribute kubelet would send for `sa`: one
/// TokenRequest token for both audiences (IRSA and Pod Identity).
pub async fn pod_tokens(client: &kube::Client, ns: &str, sa: &str) -> anyhow::Result<String> {
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), ns);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![
                "sts.amazonaws.com".into(),
                "pods.eks.amazonaws.com".into(),
            ]),
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tr = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await?;
    let token = tr.status.and_then(|s| s.token).context("no token")?;
    let one = serde_json::json!({"token": token, "expirationTimestamp": ""});
    Ok(serde_json::json!({"sts.amazonaws.com": one, "pods.eks.amazonaws.com": one}).to_string())
}
