//! End to end: kubelet simulator → CSI driver → our `alibabacloud` provider
//! binary → the local Alibaba protocol server, on a real kube-apiserver.
//!
//! The driver binary is a parameter: today the upstream Go driver (v1.6.0);
//! our own driver is added to [`drivers`] when its publish path lands.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_testkit::driver::{DriverProcess, kubelet_dir_args};
use secrets_store_testkit::mounts::read_tree;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::provider_peer::create_class;
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions, tools};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const OIDC_PROVIDER: &str = "acs:ram::111:oidc-provider/ack-rrsa-test";
const CANARY: &str = "canary-7f3e9b1c-secret-value";
/// Valid base64 text, so a decoder error could quote it.
const BINARY_CANARY: &str = "Y2FuYXJ5YmluYXJ5c2VjcmV0";

/// The driver binaries every scenario runs against.
/// Every flow runs with our driver and with the upstream Go driver v1.6.0.
fn drivers() -> anyhow::Result<Vec<PathBuf>> {
    Ok(vec![
        tools::workspace_binary("secrets-store-csi-driver")?,
        tools::tool("upstream-secrets-store-csi-driver")?,
    ])
}

struct Env {
    cp: &'static ControlPlane,
    emu: Emulator,
    ns: String,
    provider: Process,
    driver: DriverProcess,
    kubelet: Kubelet,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Drop for Env {
    fn drop(&mut self) {
        // Volumes a test did not unpublish must not stay mounted.
        secrets_store_testkit::mounts::unmount_all_under(self._dirs.1.path());
    }
}

impl Env {
    async fn start(
        driver: &Path,
        provider_env: &[(&str, &str)],
        setup: impl FnOnce(&Emulator),
    ) -> anyhow::Result<Self> {
        let cp = ControlPlane::shared().await?;
        let ns = cp.namespace("ali").await?;
        let emu = Emulator::start().await?;
        setup(&emu);
        let providers = tempfile::Builder::new().prefix("providers-").tempdir()?;
        let kubelet_root = tempfile::Builder::new().prefix("kubelet-").tempdir()?;
        let url = emu.url();
        let kubeconfig = cp.kubeconfig().display().to_string();
        let mut env: Vec<(&str, &str)> = vec![("KUBECONFIG", &kubeconfig)];
        env.extend_from_slice(provider_env);
        let provider = Process::spawn(
            "alibabacloud provider",
            Path::new(env!(
                "CARGO_BIN_EXE_secrets-store-csi-driver-provider-alibabacloud"
            )),
            &[
                format!("--provider-volume={}", providers.path().display()),
                format!("--healthz-port={}", free_port()?),
                format!("--kms-endpoint={url}"),
                format!("--oos-endpoint={url}"),
                format!("--sts-endpoint={url}"),
                format!("--ecs-metadata-endpoint={url}"),
                "--region=cn-test".into(),
                "-v=10".into(),
            ],
            &env,
            &providers.path().join("provider.log"),
        )?;
        support::wait_for_socket(&providers.path().join("alibabacloud.sock")).await?;
        let mut args = vec![
            "--nodeid=node-e2e".into(),
            format!("--provider-volume={}", providers.path().display()),
            format!("--kubeconfig={kubeconfig}"),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            // Rotation is a republish that refreshes a mounted target.
            "--enable-secret-rotation=true".into(),
            "--rotation-poll-interval=1ms".into(),
        ];
        args.extend(kubelet_dir_args(driver, kubelet_root.path()));
        let driver = DriverProcess::start(driver, &args).await?;
        let kubelet =
            Kubelet::new(cp.client().await?, driver.socket(), kubelet_root.path()).await?;
        Ok(Self {
            cp,
            emu,
            ns,
            provider,
            driver,
            kubelet,
            _dirs: (providers, kubelet_root),
        })
    }

    async fn spc(&self, name: &str, params: &[(&str, &str)]) -> anyhow::Result<()> {
        let client = self.cp.client().await?;
        create_class(&client, &self.ns, name, "alibabacloud", params).await
    }

    /// Publishes the pod's `secrets` volume; returns files or the error.
    async fn publish(
        &self,
        pod: &TestPod,
        tokens: &TokenOptions,
    ) -> anyhow::Result<Result<BTreeMap<String, Vec<u8>>, tonic::Status>> {
        let created = self.kubelet.create_pod(pod).await?;
        self.republish(&created, tokens).await
    }

    async fn republish(
        &self,
        pod: &k8s_openapi::api::core::v1::Pod,
        tokens: &TokenOptions,
    ) -> anyhow::Result<Result<BTreeMap<String, Vec<u8>>, tonic::Status>> {
        let uid = pod.metadata.uid.clone().context("uid")?;
        match self.kubelet.publish(pod, "secrets", tokens).await? {
            Err(status) => Ok(Err(status)),
            Ok(_) => Ok(Ok(read_tree(&self.kubelet.target_path(&uid, "secrets"))?)),
        }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.provider.log(), self.driver.log())
    }
}

fn text(files: &BTreeMap<String, Vec<u8>>, name: &str) -> String {
    String::from_utf8_lossy(files.get(name).map(Vec::as_slice).unwrap_or_default()).into_owned()
}

fn alice(e: &Emulator) {
    e.add_access_key("AKID-ALICE", "alice-secret", "acs:ram::111:user/alice");
}

const ENV_AK: &[(&str, &str)] = &[
    ("ACCESS_KEY_ID", "AKID-ALICE"),
    ("SECRET_ACCESS_KEY", "alice-secret"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_examples_objects_versions_jmes_oos_translation_rotation() -> anyhow::Result<()> {
    for driver in drivers()? {
        let env = Env::start(&driver, ENV_AK, |e| {
            alice(e);
            e.add_secret("test", "v1", CANARY);
            e.add_secret(
                "db",
                "d1",
                r#"{"username":"testuser","password":"testpassword"}"#,
            );
            e.add_binary_secret("blob", "b1", &[0, 1, 254, 255]);
            e.add_secret("pinned", "p1", "old");
            e.put_secret_version("pinned", "p2", "new");
            e.put_parameter("app/param", "param-value");
        })
        .await?;
        // The seed's examples: a plain secret, and jmesPath keys.
        env.spc(
            "all",
            &[(
                "objects",
                r#"
- objectName: "test"
- objectName: "db"
  jmesPath:
    - path: "username"
      objectAlias: "MySecretUsername"
    - path: "password"
      objectAlias: "MySecretPassword"
- objectName: blob
  objectAlias: blob.bin
- objectName: pinned
  objectVersion: p1
- objectName: pinned
  objectAlias: pinned-previous
  objectVersionLabel: ACSPrevious
- objectName: app/param
  objectType: oos
"#,
            )],
        )
        .await?;
        let pod = env
            .kubelet
            .create_pod(&TestPod::new(&env.ns, "all", "all"))
            .await?;
        let files = env
            .republish(&pod, &TokenOptions::default())
            .await?
            .map_err(|s| anyhow::anyhow!("publish: {s:?}\n{}", env.logs()))?;
        assert_eq!(text(&files, "test"), CANARY);
        assert_eq!(text(&files, "MySecretUsername"), "testuser");
        assert_eq!(text(&files, "MySecretPassword"), "testpassword");
        assert_eq!(files["blob.bin"], vec![0, 1, 254, 255]);
        assert_eq!(text(&files, "pinned"), "old");
        assert_eq!(text(&files, "pinned-previous"), "old");
        assert_eq!(text(&files, "app_param"), "param-value");

        // Rotation: kubelet republishes; the new current version shows.
        env.emu.put_secret_version("test", "v2", "rotated-value");
        env.emu.put_parameter("app/param", "param-value-2");
        let files = env
            .republish(&pod, &TokenOptions::default())
            .await?
            .map_err(|s| anyhow::anyhow!("republish: {s:?}"))?;
        assert_eq!(text(&files, "test"), "rotated-value");
        assert_eq!(text(&files, "app_param"), "param-value-2");
        assert_eq!(text(&files, "pinned"), "old", "pinned version stays");

        // Path translation off: nested files.
        env.spc(
            "nested",
            &[
                ("objects", "- objectName: app/param\n  objectType: oos\n"),
                ("pathTranslation", "False"),
            ],
        )
        .await?;
        let files = env
            .publish(
                &TestPod::new(&env.ns, "nested", "nested"),
                &TokenOptions::default(),
            )
            .await??;
        assert_eq!(text(&files, "app/param"), "param-value-2");

        // A binary secret the decoder refuses: the mount fails, and neither
        // its bytes nor their base64 reach the error or the logs (-v=10).
        env.spc("binary", &[("objects", "- objectName: blob\n")])
            .await?;
        env.emu.answer_next_raw(
            200,
            format!(
                r#"{{"SecretData":"{BINARY_CANARY}!","SecretDataType":"binary","VersionId":"b2"}}"#
            )
            .as_bytes(),
        );
        let failed = env
            .publish(
                &TestPod::new(&env.ns, "binary", "binary"),
                &TokenOptions::default(),
            )
            .await?
            .expect_err("undecodable binary secret");
        assert!(
            failed
                .message()
                .contains("decode binary data error: invalid base64, key: blob")
                && !failed.message().contains(BINARY_CANARY),
            "{failed:?}"
        );

        let logs = env.logs();
        assert!(
            !logs.contains(CANARY)
                && !logs.contains(BINARY_CANARY)
                && !logs.contains("testpassword")
                && !logs.contains("alice-secret"),
            "secret in logs:\n{logs}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_paths_pod_rrsa_node_publish_secret_ecs_and_cross_account() -> anyhow::Result<()> {
    let pod_role = "acs:ram::111:role/pod-reader";
    let cross_role = "acs:ram::222:role/cross";
    let ecs_role = "acs:ram::111:role/node";
    let bob = "acs:ram::111:user/bob";
    for driver in drivers()? {
        let env = Env::start(
            &driver,
            &[("ALICLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER)],
            |e| {
                e.add_access_key("AKID-BOB", "bob-secret", bob);
                e.set_ecs_role(ecs_role);
                e.add_secret("for-pod", "1", "pod-value");
                e.restrict("for-pod", &[pod_role]);
                e.add_secret("for-bob", "1", "bob-value");
                e.restrict("for-bob", &[bob]);
                e.add_secret("for-node", "1", "node-value");
                e.restrict("for-node", &[ecs_role]);
                e.add_secret("remote", "1", "remote-value");
                e.restrict("remote", &[cross_role]);
                e.add_role(cross_role, &[bob]);
            },
        )
        .await?;
        let client = env.cp.client().await?;

        // Pod RRSA: a real TokenRequest token for sts.aliyuncs.com.
        env.emu.add_oidc_role(
            pod_role,
            OIDC_PROVIDER,
            ISSUER,
            Some(&format!("system:serviceaccount:{}:reader", env.ns)),
        );
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("reader".into()),
                annotations: Some(
                    [(
                        "ack.alibabacloud.com/role-arn".to_string(),
                        pod_role.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(client.clone(), &env.ns)
            .create(&PostParams::default(), &sa)
            .await?;
        env.spc(
            "rrsa",
            &[
                ("objects", "- objectName: for-pod\n"),
                ("usePodServiceAccountToken", "true"),
            ],
        )
        .await?;
        let mut pod = TestPod::new(&env.ns, "rrsa", "rrsa");
        pod.service_account = "reader".into();
        let tokens = TokenOptions {
            audiences: vec!["sts.aliyuncs.com".into()],
            ..Default::default()
        };
        let files = env
            .publish(&pod, &tokens)
            .await?
            .map_err(|s| anyhow::anyhow!("rrsa: {s:?}\n{}", env.logs()))?;
        assert_eq!(text(&files, "for-pod"), "pod-value");
        assert_eq!(env.emu.count("AssumeRoleWithOIDC", pod_role), 1);
        // Without the token the mount fails instead of falling back.
        let mut pod2 = pod.clone();
        pod2.name = "rrsa-no-token".into();
        let err = env
            .publish(&pod2, &TokenOptions::default())
            .await?
            .expect_err("no token");
        assert!(err.message().contains("sts.aliyuncs.com"), "{err:?}");

        // nodePublishSecretRef AK/SK, plus a cross-account object.
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("bob-ak".into()),
                ..Default::default()
            },
            string_data: Some(
                [
                    ("access_key".to_string(), "AKID-BOB".to_string()),
                    ("access_secret".to_string(), "bob-secret".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        Api::<Secret>::namespaced(client.clone(), &env.ns)
            .create(&PostParams::default(), &secret)
            .await?;
        env.spc("bob", &[("objects", &format!("- objectName: for-bob\n- objectName: remote\n  crossAccountRoleArn: {cross_role}\n"))]).await?;
        let mut pod = TestPod::new(&env.ns, "bob", "bob");
        pod.volumes[0].node_publish_secret_ref = Some("bob-ak".into());
        let files = env
            .publish(&pod, &TokenOptions::default())
            .await?
            .map_err(|s| anyhow::anyhow!("bob: {s:?}\n{}", env.logs()))?;
        assert_eq!(
            (
                text(&files, "for-bob").as_str(),
                text(&files, "remote").as_str()
            ),
            ("bob-value", "remote-value")
        );
        assert_eq!(env.emu.count("AssumeRole", cross_role), 1);

        // Nothing else configured: the ECS instance role.
        env.spc("node", &[("objects", "- objectName: for-node\n")])
            .await?;
        let files = env
            .publish(
                &TestPod::new(&env.ns, "node", "node"),
                &TokenOptions::default(),
            )
            .await??;
        assert_eq!(text(&files, "for-node"), "node-value");
        assert_eq!(env.emu.count("EcsCredentials", ecs_role), 1);

        let logs = env.logs();
        for s in ["pod-value", "bob-secret", "remote-value", "node-value"] {
            assert!(!logs.contains(s), "{s} in logs");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_burst_and_hostile_input() -> anyhow::Result<()> {
    for driver in drivers()? {
        let env = Env::start(&driver, ENV_AK, |e| {
            alice(e);
            e.add_secret("hot", "1", "hot-value");
            e.add_secret("json", "1", r#"{"a":"b"}"#);
        })
        .await?;
        env.spc("hot", &[("objects", "- objectName: hot\n")])
            .await?;
        // Throttled twice: the mount still succeeds.
        env.emu.throttle_next(2);
        let files = env
            .publish(
                &TestPod::new(&env.ns, "hot-0", "hot"),
                &TokenOptions::default(),
            )
            .await??;
        assert_eq!(text(&files, "hot"), "hot-value");
        assert_eq!(env.emu.count("GetSecretValue", "hot"), 3);

        // A burst of identical mounts: one backend call.
        env.emu.clear_calls();
        env.emu.set_latency(Duration::from_millis(1500));
        let mut pods = Vec::new();
        for i in 1..=4 {
            pods.push(
                env.kubelet
                    .create_pod(&TestPod::new(&env.ns, &format!("hot-{i}"), "hot"))
                    .await?,
            );
        }
        let no_tokens = TokenOptions::default();
        let results = futures_join(pods.iter().map(|p| env.republish(p, &no_tokens))).await;
        for r in results {
            assert_eq!(text(&r??, "hot"), "hot-value");
        }
        assert_eq!(
            env.emu.count("GetSecretValue", "hot"),
            1,
            "{:?}",
            env.emu.calls()
        );
        env.emu.set_latency(Duration::ZERO);

        // Hostile input: clear errors, nothing written.
        let cases = [
            ("yaml", "- objectName: [unclosed\n", "not a valid YAML list"),
            (
                "jmes",
                "- objectName: json\n  jmesPath:\n    - {path: '[[', objectAlias: x}\n",
                "invalid JMES Path",
            ),
            (
                "type",
                "- objectName: json\n  objectType: s3\n",
                "unsupported object type",
            ),
            (
                "traversal",
                "- objectName: json\n  objectAlias: ../../../etc/cron.d/x\n",
                "path can not contain ../",
            ),
        ];
        for (name, objects, want) in cases {
            let mut params = vec![("objects", objects)];
            if name == "traversal" {
                params.push(("pathTranslation", "False"));
            }
            env.spc(name, &params).await?;
            let pod = env
                .kubelet
                .create_pod(&TestPod::new(&env.ns, name, name))
                .await?;
            let err = env
                .republish(&pod, &TokenOptions::default())
                .await?
                .expect_err(name);
            assert!(err.message().contains(want), "{name}: {err:?}");
            let target = env
                .kubelet
                .target_path(pod.metadata.uid.as_deref().unwrap_or_default(), "secrets");
            let written = if target.exists() {
                read_tree(&target)?
            } else {
                BTreeMap::new()
            };
            assert!(written.is_empty(), "{name}: {written:?}");
        }
        assert!(!env.cp.kubeconfig().as_os_str().is_empty());
    }
    Ok(())
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let mut out = Vec::new();
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    // Poll all concurrently.
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for d in done {
        out.extend(d);
    }
    out
}
