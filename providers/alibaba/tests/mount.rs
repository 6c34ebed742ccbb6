//! The provider's Mount over its socket, in process, against the local
//! Alibaba protocol server (over TLS, its CA trusted): objects, versions,
//! backends, auth paths, throttling, coalescing, rotation, hostile input
//! and the hardening findings (credential-keyed caches, endpoint policy,
//! bounded answers, no secret bytes in errors or logs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use secrets_store_provider_alibabacloud::auth::AuthEnv;
use secrets_store_provider_alibabacloud::endpoint::{Endpoint, EndpointPolicy};
use secrets_store_provider_alibabacloud::{AlibabaProvider, ProviderConfig};
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::{Server, ServerConfig};
use tonic::transport::Channel;

const USER: &str = "acs:ram::111:user/alice";

struct Harness {
    emu: Emulator,
    client: CsiDriverProviderClient<Channel>,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn harness(env: &[(&str, &str)], setup: impl FnOnce(&Emulator)) -> Harness {
    let emu = Emulator::start_tls(([127, 0, 0, 1], 0).into(), &[])
        .await
        .expect("emulator");
    setup(&emu);
    let ca = emu.ca_pem().expect("tls").as_bytes();
    let extra_roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca)
        .collect::<Result<_, _>>()
        .expect("ca");
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let url = emu.url();
    let config = ProviderConfig {
        region: Some("cn-test".into()),
        kms_endpoint: Some(Endpoint::parse(&url).expect("kms")),
        oos_endpoint: Some(Endpoint::parse(&url).expect("oos")),
        sts_endpoint: Endpoint::parse(&url).expect("sts"),
        ecs_metadata_endpoint: Endpoint::parse(&url).expect("ecs"),
        endpoint_policy: EndpointPolicy {
            allowed_suffixes: vec!["localhost".into()],
        },
        extra_roots,
        kms_qps: 1000,
        oos_qps: 1000,
        backoff: Backoff {
            attempts: 4,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        auth: AuthEnv::from_lookup(|k| env.get(k).cloned()),
        node_name: None,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::bind(
        ServerConfig {
            providers_dir: dir.path().into(),
            name: "alibabacloud".into(),
            runtime_name: "t".into(),
            runtime_version: "0".into(),
            healthz: None,
        },
        Arc::new(AlibabaProvider::new(config, None)),
    )
    .await
    .expect("bind");
    let socket = server.socket().to_path_buf();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let client = CsiDriverProviderClient::new(
        secrets_store_grpc_uds::connect(&socket)
            .await
            .expect("connect"),
    );
    Harness {
        emu,
        client,
        _dir: dir,
        stop: Some(stop),
    }
}

fn env_ak() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ACCESS_KEY_ID", "AKID-ALICE"),
        ("SECRET_ACCESS_KEY", "alice-secret"),
    ]
}

const PROVIDER_ROLE: &str = "acs:ram::111:role/provider";

/// Env AK of alice plus `ALICLOUD_ROLE_ARN` (the RAM-role method).
fn ram_role_env() -> Vec<(&'static str, &'static str)> {
    let mut env = env_ak();
    env.push(("ALICLOUD_ROLE_ARN", PROVIDER_ROLE));
    env
}

fn alice_assumes_the_provider_role(emu: &Emulator) {
    alice(emu);
    emu.add_role(PROVIDER_ROLE, &[USER]);
}

fn alice(emu: &Emulator) {
    emu.add_access_key("AKID-ALICE", "alice-secret", USER);
}

fn request(params: &[(&str, &str)], secrets: &[(&str, &str)]) -> pb::MountRequest {
    let mut attrs: BTreeMap<&str, &str> = params.iter().copied().collect();
    attrs.insert("csi.storage.k8s.io/pod.name", "pod");
    attrs.insert("csi.storage.k8s.io/pod.namespace", "ns");
    attrs.insert("csi.storage.k8s.io/serviceAccount.name", "sa");
    let secrets: BTreeMap<&str, &str> = secrets.iter().copied().collect();
    pb::MountRequest {
        attributes: serde_json::to_string(&attrs).expect("json"),
        secrets: serde_json::to_string(&secrets).expect("json"),
        target_path: "/tmp/target".into(),
        permission: "420".into(),
        current_object_version: vec![],
    }
}

async fn mount(
    h: &mut Harness,
    req: pb::MountRequest,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), tonic::Status> {
    let r = h.client.mount(req).await?.into_inner();
    let files = r.files.iter().map(|f| {
        assert_eq!(f.mode, 0o644);
        (
            f.path.clone(),
            String::from_utf8_lossy(&f.contents).into_owned(),
        )
    });
    let versions = r
        .object_version
        .into_iter()
        .map(|v| (v.id, v.version))
        .collect();
    Ok((files.collect(), versions))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn objects_aliases_versions_stages_binary_jmes_and_oos() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("plain", "v1", "plain-value");
        e.add_secret("db", "d1", r#"{"username":"admin","password":"hunter2"}"#);
        e.add_secret("pinned", "p1", "old");
        e.put_secret_version("pinned", "p2", "new");
        e.add_stage("pinned", "p1", "Blue");
        e.add_binary_secret("cert", "c1", &[0, 159, 146, 150, 255]);
        e.put_parameter("app/param", "param-value");
        e.put_parameter("app/param", "param-value-2");
    })
    .await;
    let objects = r#"
- objectName: plain
- objectName: "acs:kms:cn-test:111:secret/db"
  objectAlias: db.json
  jmesPath:
    - {path: username, objectAlias: user}
    - {path: password, objectAlias: pass}
- objectName: pinned
  objectAlias: pinned-v1
  objectVersion: p1
- objectName: pinned
  objectAlias: pinned-blue
  objectVersionLabel: Blue
- objectName: pinned
  objectAlias: pinned-previous
  objectVersionLabel: ACSPrevious
- objectName: cert
- objectName: app/param
  objectType: oos
"#;
    let (files, versions) = mount(&mut h, request(&[("objects", objects)], &[]))
        .await
        .expect("mount");
    assert_eq!(files["plain"], "plain-value");
    assert_eq!(files["user"], "admin");
    assert_eq!(files["pass"], "hunter2");
    assert!(files["db.json"].contains("hunter2"));
    assert_eq!(files["pinned-v1"], "old");
    assert_eq!(files["pinned-blue"], "old");
    assert_eq!(files["pinned-previous"], "old");
    assert_eq!(files["app_param"], "param-value-2");
    assert_eq!(files.len(), 9);
    assert_eq!(
        versions,
        map(&[
            ("plain", "v1"),
            ("db.json", "d1"),
            ("user", "d1"),
            ("pass", "d1"),
            ("pinned-v1", "p1"),
            ("pinned-blue", "p1"),
            ("pinned-previous", "p1"),
            ("cert", "c1"),
            ("app_param", "2")
        ])
    );
    // Binary data is base64-decoded.
    let raw = h
        .client
        .mount(request(&[("objects", "- objectName: cert\n")], &[]))
        .await
        .expect("cert")
        .into_inner();
    assert_eq!(raw.files[0].contents, vec![0, 159, 146, 150, 255]);
    assert!(
        h.emu
            .calls()
            .iter()
            .all(|c| c.principal == USER && c.status == 200),
        "{:?}",
        h.emu.calls()
    );
}

#[tokio::test]
async fn path_translation_on_off_and_custom() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("team/app/key", "1", "k");
    })
    .await;
    let objects = ("objects", "- objectName: team/app/key\n");
    let (f, _) = mount(&mut h, request(&[objects], &[]))
        .await
        .expect("default");
    assert_eq!(f.keys().collect::<Vec<_>>(), ["team_app_key"]);
    let (f, _) = mount(&mut h, request(&[objects, ("pathTranslation", "-")], &[]))
        .await
        .expect("dash");
    assert_eq!(f.keys().collect::<Vec<_>>(), ["team-app-key"]);
    let (f, v) = mount(
        &mut h,
        request(&[objects, ("pathTranslation", "False")], &[]),
    )
    .await
    .expect("off");
    assert_eq!(f.keys().collect::<Vec<_>>(), ["team/app/key"]);
    assert_eq!(v, map(&[("team/app/key", "1")]));
    let e = mount(&mut h, request(&[objects, ("pathTranslation", "ab")], &[]))
        .await
        .expect_err("bad");
    assert_eq!(
        e.message(),
        "pathTranslation must be either 'False' or a single character string"
    );
}

#[tokio::test]
async fn rotation_changes_content_and_version() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("rotating", "v1", "first");
        e.put_parameter("p", "one");
    })
    .await;
    let req = || {
        request(
            &[(
                "objects",
                "- objectName: rotating\n- objectName: p\n  objectType: oos\n",
            )],
            &[],
        )
    };
    let (f, v) = mount(&mut h, req()).await.expect("first");
    assert_eq!(
        (
            f["rotating"].as_str(),
            v["rotating"].as_str(),
            f["p"].as_str(),
            v["p"].as_str()
        ),
        ("first", "v1", "one", "1")
    );
    h.emu.put_secret_version("rotating", "v2", "second");
    h.emu.put_parameter("p", "two");
    let (f, v) = mount(&mut h, req()).await.expect("second");
    assert_eq!(
        (
            f["rotating"].as_str(),
            v["rotating"].as_str(),
            f["p"].as_str(),
            v["p"].as_str()
        ),
        ("second", "v2", "two", "2")
    );
}

#[tokio::test]
async fn throttling_is_retried_within_bounds() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("s", "1", "v");
    })
    .await;
    let req = || request(&[("objects", "- objectName: s\n")], &[]);
    h.emu.throttle_next(2);
    let (f, _) = mount(&mut h, req()).await.expect("succeeds after retries");
    assert_eq!(f["s"], "v");
    assert_eq!(h.emu.count("GetSecretValue", "s"), 3);
    h.emu.clear_calls();
    h.emu.throttle_next(100);
    let e = mount(&mut h, req()).await.expect_err("gives up");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(
        e.message()
            .starts_with("failed fetching secret s: Rejected.Throttling"),
        "{}",
        e.message()
    );
    assert_eq!(h.emu.count("GetSecretValue", "s"), 4, "bounded attempts");
}

#[tokio::test]
async fn a_burst_of_identical_mounts_makes_one_backend_call() {
    let h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("hot", "1", "v");
        e.set_latency(Duration::from_millis(300));
    })
    .await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut c = h.client.clone();
            tokio::spawn(async move {
                c.mount(request(&[("objects", "- objectName: hot\n")], &[]))
                    .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.expect("join").expect("mount").into_inner();
        assert_eq!(r.files[0].contents, b"v");
    }
    assert_eq!(
        h.emu.count("GetSecretValue", "hot"),
        1,
        "{:?}",
        h.emu.calls()
    );
}

#[tokio::test]
async fn backend_errors_are_clear() {
    let mut h = harness(
        &[
            ("ACCESS_KEY_ID", "AKID-ALICE"),
            ("SECRET_ACCESS_KEY", "wrong"),
        ],
        |e| {
            alice(e);
            e.add_secret("s", "1", "v");
        },
    )
    .await;
    let e = mount(&mut h, request(&[("objects", "- objectName: s\n")], &[]))
        .await
        .expect_err("bad sk");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("SignatureDoesNotMatch"),
        "{}",
        e.message()
    );

    let nps = [
        ("access_key", "AKID-ALICE"),
        ("access_secret", "alice-secret"),
    ];
    let cases = [
        (
            "- objectName: missing\n",
            tonic::Code::NotFound,
            "failed fetching secret missing: Forbidden.ResourceNotFound",
        ),
        (
            "- objectName: s\n  objectVersion: nope\n",
            tonic::Code::NotFound,
            "failed fetching secret s: Forbidden.ResourceNotFound",
        ),
        (
            "- objectName: s\n  objectType: oos\n",
            tonic::Code::NotFound,
            "failed fetching secret s: EntityNotExists.Parameter",
        ),
    ];
    for (objects, code, msg) in cases {
        let e = mount(&mut h, request(&[("objects", objects)], &nps))
            .await
            .expect_err(objects);
        assert_eq!(e.code(), code, "{objects}: {}", e.message());
        assert!(e.message().starts_with(msg), "{objects}: {}", e.message());
    }
    let e = mount(
        &mut h,
        request(
            &[("objects", "- objectName: s\n")],
            &[("access_key", "AKID-NOBODY"), ("access_secret", "x")],
        ),
    )
    .await
    .expect_err("unknown ak");
    assert!(
        e.message().contains("InvalidAccessKeyId.NotFound"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn hostile_input_fails_before_any_backend_call() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("json", "1", r#"{"a":"b","n":1}"#);
        e.add_secret("text", "1", "not json");
    })
    .await;
    let cases = [
        (
            "- objectName: [unclosed\n",
            "failed to load SecretProviderClass: objects is not a valid YAML list",
        ),
        (
            "- objectName: a\n  objectVersion: [1]\n",
            "failed to load SecretProviderClass: object 0 (\"a\"): line 2 column 18: expected string scalar",
        ),
        (
            "- objectName: a\n  objectType: s3\n",
            "unsupported object type \"s3\", only support \"kms\" and \"oos\"",
        ),
        (
            "- objectName: \"acs:oss:r:1:b\"\n",
            "invalid service in ARN: acs:oss:r:1:b",
        ),
    ];
    for (objects, want) in cases {
        let e = mount(&mut h, request(&[("objects", objects)], &[]))
            .await
            .expect_err(objects);
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().starts_with(want), "{objects}: {}", e.message());
    }
    // With translation on, `/` is replaced, so traversal needs it off.
    let off = ("pathTranslation", "false");
    let e = mount(
        &mut h,
        request(
            &[
                (
                    "objects",
                    "- objectName: a\n  objectAlias: ../../etc/passwd\n",
                ),
                off,
            ],
            &[],
        ),
    )
    .await
    .expect_err("traversal");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::InvalidArgument,
            "path can not contain ../: ../../etc/passwd"
        )
    );
    let e = mount(
        &mut h,
        request(
            &[
                (
                    "objects",
                    "- objectName: a\n  jmesPath:\n    - {path: a, objectAlias: x/../../y}\n",
                ),
                off,
            ],
            &[],
        ),
    )
    .await
    .expect_err("jmes traversal");
    assert_eq!(e.message(), "path can not contain ../: x/../../y");
    assert!(
        h.emu.calls().is_empty(),
        "no backend call for invalid input: {:?}",
        h.emu.calls()
    );

    let jmes = [
        (
            "- objectName: json\n  jmesPath:\n    - {path: '[[', objectAlias: x}\n",
            "invalid JMES Path: [[",
        ),
        (
            "- objectName: json\n  jmesPath:\n    - {path: missing, objectAlias: x}\n",
            "jmes path - missing for object alias - x does not point to a valid object",
        ),
        (
            "- objectName: json\n  jmesPath:\n    - {path: n, objectAlias: x}\n",
            "invalid JMES search result type for path n; only string is allowed",
        ),
        (
            "- objectName: text\n  jmesPath:\n    - {path: a, objectAlias: x}\n",
            "invalid JSON used with jmesPath in secret: text",
        ),
    ];
    for (objects, want) in jmes {
        let e = mount(&mut h, request(&[("objects", objects)], &[]))
            .await
            .expect_err(objects);
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::InvalidArgument, want)
        );
    }
}

#[tokio::test]
async fn ecs_metadata_credentials_are_cached_until_near_expiry() {
    let role = "acs:ram::111:role/node";
    let mut h = harness(&[], |e| {
        e.set_ecs_role(role);
        e.add_secret("s", "1", "v");
        e.restrict("s", &[role]);
    })
    .await;
    let req = || request(&[("objects", "- objectName: s\n")], &[]);
    for _ in 0..3 {
        let (f, _) = mount(&mut h, req()).await.expect("ecs");
        assert_eq!(f["s"], "v");
    }
    assert_eq!(h.emu.count("EcsCredentials", role), 1, "session reused");
    assert!(
        h.emu
            .calls()
            .iter()
            .filter(|c| c.action == "GetSecretValue")
            .all(|c| c.principal == role)
    );
    // A session within the refresh margin (180 s) is renewed on next use.
    let ttl_h = harness(&[], |e| {
        e.set_ecs_role(role);
        e.set_session_ttl(Duration::from_secs(120));
        e.add_secret("s", "1", "v");
    })
    .await;
    let mut ttl_h = ttl_h;
    for _ in 0..2 {
        mount(&mut ttl_h, req()).await.expect("short session");
    }
    assert_eq!(
        ttl_h.emu.count("EcsCredentials", role),
        2,
        "refreshed before expiry"
    );
}

#[tokio::test]
async fn node_publish_secret_beats_env_and_cross_account_assumes_a_role() {
    let bob = "acs:ram::111:user/bob";
    let other = "acs:ram::222:role/reader";
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_access_key("AKID-BOB", "bob-secret", bob);
        e.add_secret("bobs", "1", "for bob");
        e.restrict("bobs", &[bob]);
        e.add_secret("remote", "r1", "cross");
        e.restrict("remote", &[other]);
        e.add_role(other, &[bob]);
    })
    .await;
    let nps = [("ACCESS_KEY", "AKID-BOB"), ("access_secret", "bob-secret")];
    let (f, _) = mount(
        &mut h,
        request(&[("objects", "- objectName: bobs\n")], &nps),
    )
    .await
    .expect("nps");
    assert_eq!(f["bobs"], "for bob");
    let e = mount(&mut h, request(&[("objects", "- objectName: bobs\n")], &[]))
        .await
        .expect_err("env alice denied");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("Forbidden.NoPermission"),
        "{}",
        e.message()
    );

    let cross =
        format!("- objectName: remote\n  crossAccountRoleArn: {other}\n- objectName: bobs\n");
    for _ in 0..2 {
        let (f, v) = mount(&mut h, request(&[("objects", &cross)], &nps))
            .await
            .expect("cross");
        assert_eq!(
            (
                f["remote"].as_str(),
                v["remote"].as_str(),
                f["bobs"].as_str()
            ),
            ("cross", "r1", "for bob")
        );
    }
    assert_eq!(
        h.emu.count("AssumeRole", other),
        1,
        "cross-account session cached"
    );
    let e = mount(&mut h, request(&[("objects", &cross)], &[]))
        .await
        .expect_err("alice may not assume");
    assert!(e.message().contains("NoPermission"), "{}", e.message());
}

#[tokio::test]
async fn ram_role_and_provider_rrsa() {
    let role = PROVIDER_ROLE;
    let mut h = harness(&ram_role_env(), |e| {
        alice_assumes_the_provider_role(e);
        e.add_secret("s", "1", "v");
        e.restrict("s", &[role]);
    })
    .await;
    for _ in 0..2 {
        mount(&mut h, request(&[("objects", "- objectName: s\n")], &[]))
            .await
            .expect("ram role");
    }
    assert_eq!(h.emu.count("AssumeRole", role), 1);

    // Provider RRSA reads a token file; the emulator checks iss/aud/exp/sub.
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs()
        + 600;
    let jwt = format!(
        "{}.{}.sig",
        b64(serde_json::json!({"alg":"RS256"})),
        b64(
            serde_json::json!({"iss":"https://issuer","aud":["sts.aliyuncs.com"],"sub":"system:serviceaccount:kube-system:provider","exp":exp})
        )
    );
    std::fs::write(&token_file, &jwt).expect("write");
    let tf = token_file.display().to_string();
    let provider_arn = "acs:ram::111:oidc-provider/ack-rrsa-c1";
    let mut h = harness(
        &[
            ("ALICLOUD_ROLE_ARN", role),
            ("ALICLOUD_OIDC_PROVIDER_ARN", provider_arn),
            ("ALICLOUD_OIDC_TOKEN_FILE", &tf),
        ],
        |e| {
            e.add_oidc_role(
                role,
                provider_arn,
                "https://issuer",
                Some("system:serviceaccount:kube-system:provider"),
            );
            e.add_secret("s", "1", "v");
            e.restrict("s", &[role]);
        },
    )
    .await;
    let (f, _) = mount(&mut h, request(&[("objects", "- objectName: s\n")], &[]))
        .await
        .expect("provider rrsa");
    assert_eq!(f["s"], "v");
    assert_eq!(h.emu.count("AssumeRoleWithOIDC", role), 1);
}

/// Log lines written while a test runs (current-thread runtime: every task
/// of the provider and its HTTP client logs here).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The process-wide capture, installed once as the global subscriber:
    /// a thread-local default races with tests on other threads, whose
    /// callsites can cache "no subscriber is interested" and drop events.
    /// Every test of this binary logs into it; callers look for their own
    /// canaries, which no other test plants.
    fn start() -> (Self, ()) {
        static GLOBAL: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        let c = GLOBAL.get_or_init(|| {
            let c = Self::default();
            let writer = c.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            c
        });
        (c.clone(), ())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn same_key_id_with_a_wrong_secret_never_gets_the_owners_session_or_content() {
    let remote = "acs:ram::222:role/reader";
    let mut h = harness(&[], |e| {
        alice(e);
        e.add_secret("remote", "r1", "owner-only-content");
        e.restrict("remote", &[remote]);
        e.add_secret("hot", "1", "owner-hot-content");
        e.restrict("hot", &[USER]);
        e.add_role(remote, &[USER]);
    })
    .await;
    let owner = [
        ("access_key", "AKID-ALICE"),
        ("access_secret", "alice-secret"),
    ];
    let thief = [("access_key", "AKID-ALICE"), ("access_secret", "guessed")];
    let cross = format!("- objectName: remote\n  crossAccountRoleArn: {remote}\n");
    let (f, _) = mount(&mut h, request(&[("objects", &cross)], &owner))
        .await
        .expect("owner");
    assert_eq!(f["remote"], "owner-only-content");
    // The owner's assumed-role session is cached; the thief must not get it.
    let e = mount(&mut h, request(&[("objects", &cross)], &thief))
        .await
        .expect_err("thief");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    assert!(
        e.message().starts_with(&format!(
            "failed to assume cross account role {remote} for object remote: get cross-account credential: SignatureDoesNotMatch"
        )),
        "{}",
        e.message()
    );
    assert_eq!(h.emu.count("AssumeRole", remote), 1, "only the owner's");

    // Concurrent fetches of one object are shared only with the same
    // credential: the thief's runs on its own and fails.
    h.emu.set_latency(Duration::from_millis(200));
    let spawn = |secrets: [(&'static str, &'static str); 2]| {
        let mut c = h.client.clone();
        tokio::spawn(async move {
            c.mount(request(&[("objects", "- objectName: hot\n")], &secrets))
                .await
        })
    };
    let (o, t) = (spawn(owner), spawn(thief));
    let o = o.await.expect("join").expect("owner").into_inner();
    assert_eq!(o.files[0].contents, b"owner-hot-content");
    let t = t.await.expect("join").expect_err("thief");
    assert_eq!(t.code(), tonic::Code::PermissionDenied);
    assert!(!t.message().contains("owner-hot-content"));
}

#[tokio::test]
async fn hostile_endpoints_and_regions_are_refused_before_any_request() {
    let mut h = harness(&ram_role_env(), alice_assumes_the_provider_role).await;
    let port = h.emu.addr().port();
    let endpoints = [
        (
            "http://kms.cn-test.aliyuncs.com".to_string(),
            "kmsEndpoint \"http://kms.cn-test.aliyuncs.com\" must use https",
        ),
        (
            "evil.example".into(),
            "kmsEndpoint \"evil.example\" is not an Alibaba Cloud KMS endpoint",
        ),
        (
            "kms.cn-test.aliyuncs.com.evil.example".into(),
            "kmsEndpoint \"kms.cn-test.aliyuncs.com.evil.example\" is not an Alibaba Cloud KMS endpoint",
        ),
        (
            format!("127.0.0.1:{port}"),
            "is not an Alibaba Cloud KMS endpoint",
        ),
        (
            "x.evil.example?".into(),
            "invalid endpoint \"x.evil.example?\"",
        ),
    ];
    for (endpoint, want) in &endpoints {
        let objects = format!("- objectName: s\n  kmsEndpoint: \"{endpoint}\"\n");
        let e = mount(&mut h, request(&[("objects", &objects)], &[]))
            .await
            .expect_err(endpoint);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().contains(want), "{endpoint}: {}", e.message());
    }
    for region in ["x.evil.example?", "evil.example/", "CN-HANGZHOU", "a b"] {
        let e = mount(
            &mut h,
            request(&[("objects", "- objectName: s\n"), ("region", region)], &[]),
        )
        .await
        .expect_err(region);
        assert_eq!(
            (e.code(), e.message().to_string()),
            (
                tonic::Code::InvalidArgument,
                format!("invalid region {region:?}: only a-z, 0-9 and - are allowed")
            )
        );
    }
    assert!(h.emu.calls().is_empty(), "{:?}", h.emu.calls());
    // An allowed endpoint is used.
    h.emu.add_secret("s", "1", "v");
    let objects = format!("- objectName: s\n  kmsEndpoint: localhost:{port}\n");
    let (f, _) = mount(&mut h, request(&[("objects", &objects)], &[]))
        .await
        .expect("allowed");
    assert_eq!(f["s"], "v");
}

#[tokio::test]
async fn broken_backend_answers_give_bounded_errors_without_their_body() {
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("s", "1", "v");
    })
    .await;
    let url = h.emu.url();
    let canary = "canary-9c1d-backend-body";
    let huge = format!("{{\"SecretData\":\"{}\"}}", canary.repeat(60_000));
    let nested = format!("{{\"SecretData\":{{\"x\":\"{canary}\"}}}}");
    let cases: [(u16, &[u8], tonic::Code, String); 4] = [
        (
            200,
            canary.as_bytes(),
            tonic::Code::Internal,
            format!(
                "failed fetching secret s: unexpected answer from {url} (24 bytes): not JSON at line 1 column 1"
            ),
        ),
        (
            404,
            canary.as_bytes(),
            tonic::Code::Internal,
            format!("failed fetching secret s: HTTP 404 from {url} (24 bytes, not an error JSON)"),
        ),
        (
            200,
            huge.as_bytes(),
            tonic::Code::Internal,
            format!("failed fetching secret s: the answer from {url} exceeds 1048576 bytes"),
        ),
        (
            200,
            nested.as_bytes(),
            tonic::Code::Internal,
            format!(
                "failed fetching secret s: unexpected answer from {url} (47 bytes): unexpected JSON at line 1 column"
            ),
        ),
    ];
    for (status, body, code, want) in cases {
        h.emu.answer_next_raw(status, body);
        let e = mount(&mut h, request(&[("objects", "- objectName: s\n")], &[]))
            .await
            .expect_err(&want);
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(e.message().starts_with(&want), "{}", e.message());
        assert!(!e.message().contains(canary));
    }
}

#[tokio::test]
async fn no_binary_secret_bytes_in_errors_or_trace_logs() {
    let (logs, _guard) = Captured::start();
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_binary_secret("bin", "1", b"canary-77aa-binary");
    })
    .await;
    let (f, _) = mount(&mut h, request(&[("objects", "- objectName: bin\n")], &[]))
        .await
        .expect("binary");
    assert_eq!(f["bin"], "canary-77aa-binary");
    // A binary secret the decoder refuses: its bytes stay out of the error.
    h.emu.answer_next_raw(
        200,
        br#"{"SecretData":"canary-77aa-binary!","SecretDataType":"binary","VersionId":"2"}"#,
    );
    let e = mount(&mut h, request(&[("objects", "- objectName: bin\n")], &[]))
        .await
        .expect_err("bad base64");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::DataLoss,
            "failed fetching secret bin: decode binary data error: invalid base64, key: bin"
        )
    );
    let text = logs.text();
    assert!(text.contains("fetching"), "trace logs were captured");
    for canary in ["canary-77aa", "Y2FuYXJ5LTc3YWEtYmluYXJ5", "alice-secret"] {
        assert!(!text.contains(canary), "{canary} logged");
    }
}

#[tokio::test]
async fn unknown_object_fields_are_accepted_with_one_warning() {
    let (logs, _guard) = Captured::start();
    let mut h = harness(&env_ak(), |e| {
        alice(e);
        e.add_secret("s", "1", "v");
    })
    .await;
    let objects = "- objectName: s\n  objectTyp: kms\n  jmesPath: []\n";
    for _ in 0..2 {
        let (f, _) = mount(&mut h, request(&[("objects", objects)], &[]))
            .await
            .expect("lenient");
        assert_eq!(f["s"], "v");
    }
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ignoring unknown fields"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("object 0 (\"s\"): objectTyp"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn imdsv1_disabled_requires_a_metadata_token() {
    let role = "acs:ram::111:role/node";
    let setup = |e: &Emulator| {
        e.set_ecs_role(role);
        e.add_secret("s", "1", "v");
        e.fail_metadata_tokens();
    };
    let req = || request(&[("objects", "- objectName: s\n")], &[]);
    let mut v1 = harness(&[], setup).await;
    let (f, _) = mount(&mut v1, req()).await.expect("IMDSv1 fallback");
    assert_eq!(f["s"], "v");
    let mut v2 = harness(&[("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")], setup).await;
    let e = mount(&mut v2, req()).await.expect_err("no token");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::Internal,
            "get ecs-ram-role credential: ECS metadata: session token (IMDSv1 is disabled) unavailable (HTTP 403)"
        )
    );
    assert_eq!(v2.emu.count("EcsCredentials", role), 0);
}
