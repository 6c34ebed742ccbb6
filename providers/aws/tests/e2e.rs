//! End to end against moto's server with IAM authentication (SigV4 checked
//! on every call; STS issues the role sessions): kubelet simulator → CSI
//! driver (ours and the upstream Go driver v1.6.0) → our `aws` provider
//! binary → moto, on a real kube-apiserver; IRSA with TokenRequest tokens,
//! EKS Pod Identity through a local agent that checks the pod's token with
//! a TokenReview; failover, the node region, bursts and throttling through
//! direct Mount calls.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use secrets_store_testkit::driver::{DriverProcess, kubelet_dir_args};
use secrets_store_testkit::mounts::read_tree;
use secrets_store_testkit::process::free_port;
use secrets_store_testkit::provider_peer::create_class;
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions, tools};
use support::{Agent, BLOB, CANARY, DB_JSON, FAILOVER, Moto, REGION, ROLE};

const AUDIENCES: [&str; 2] = ["sts.amazonaws.com", "pods.eks.amazonaws.com"];

fn tokens() -> TokenOptions {
    TokenOptions {
        audiences: AUDIENCES.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Every kind of object the provider reads, in one class.
const ALL_OBJECTS: &str = r#"
- objectName: MySecret
  objectType: secretsmanager
- objectName: db
  objectType: secretsmanager
  jmesPath:
    - path: username
      objectAlias: dbuser
    - path: nested.k
      objectAlias: dbnested
      filePermission: "0600"
- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:blob
  objectAlias: blob.bin
- objectName: pinned
  objectType: secretsmanager
  objectVersion: 11111111-1111-1111-1111-111111111111
  objectAlias: pinned-v1
- objectName: pinned
  objectType: secretsmanager
  objectVersionLabel: Blue
  objectAlias: pinned-blue
- objectName: pinned
  objectType: secretsmanager
  objectAlias: pinned-now
- objectName: team/app/key
  objectType: secretsmanager
- objectName: /app/param
  objectType: ssmparameter
- objectName: /app/param
  objectType: ssmparameter
  objectVersionLabel: stable
  objectAlias: param-stable
- objectName: /app/param
  objectType: ssmparameter
  objectVersion: "2"
  objectAlias: param-v2
- objectName: /app/secure
  objectType: ssmparameter
  objectAlias: secure
- objectName: /app/json
  objectType: ssmparameter
  objectAlias: json
  jmesPath:
    - path: password
      objectAlias: ssmpass
"#;

fn expected_all() -> BTreeMap<String, Vec<u8>> {
    [
        ("MySecret", CANARY.as_bytes()),
        ("db", DB_JSON.as_bytes()),
        ("dbuser", b"admin"),
        ("dbnested", b"v"),
        ("blob.bin", BLOB),
        ("pinned-v1", b"old"),
        ("pinned-blue", b"old"),
        ("pinned-now", b"new"),
        ("team_app_key", b"nested"),
        ("_app_param", b"param-v2"),
        ("param-stable", b"param-v1"),
        ("param-v2", b"param-v2"),
        ("secure", b"secure-value"),
        ("json", DB_JSON.as_bytes()),
        ("ssmpass", b"s3cr3t-canary"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_vec()))
    .collect()
}

async fn create_spc(
    client: &kube::Client,
    ns: &str,
    name: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<()> {
    create_class(client, ns, name, "aws", params).await
}

async fn create_sa(
    client: &kube::Client,
    ns: &str,
    name: &str,
    role: Option<&str>,
) -> anyhow::Result<()> {
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(name.into());
    if let Some(r) = role {
        sa.metadata.annotations = Some(BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            r.to_string(),
        )]));
    }
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    Ok(())
}

fn drivers() -> anyhow::Result<Vec<PathBuf>> {
    Ok(vec![
        tools::workspace_binary("secrets-store-csi-driver")?,
        tools::tool("upstream-secrets-store-csi-driver")?,
    ])
}

/// IRSA and Pod Identity mounts of every object kind, through our driver
/// and through the upstream Go driver v1.6.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_drivers_mount_every_kind_with_irsa_and_pod_identity() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let moto = Moto::start().await?;
    moto.seed().await?;
    let agent = Agent::start(client.clone(), moto.role_session().await?).await?;
    let (provider, providers) =
        support::start_ours(&moto, cp.kubeconfig(), Some(&agent.url)).await?;
    for (n, driver) in drivers()?.iter().enumerate() {
        let ns = cp.namespace("aws-e2e").await?;
        create_sa(&client, &ns, "app", Some(ROLE)).await?;
        create_sa(&client, &ns, "mallory", None).await?;
        create_spc(
            &client,
            &ns,
            "all",
            &[("objects", ALL_OBJECTS), ("region", REGION)],
        )
        .await?;
        create_spc(
            &client,
            &ns,
            "podid",
            &[
                (
                    "objects",
                    "- {objectName: MySecret, objectType: secretsmanager}\n",
                ),
                ("region", REGION),
                ("usePodIdentity", "true"),
            ],
        )
        .await?;
        let kubelet_root = tempfile::Builder::new().prefix("kubelet-").tempdir()?;
        let mut args = vec![
            format!("--nodeid=node-aws-{n}"),
            format!("--provider-volume={}", providers.path().display()),
            format!("--kubeconfig={}", cp.kubeconfig().display()),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
        ];
        args.extend(kubelet_dir_args(driver, kubelet_root.path()));
        let driver_proc = DriverProcess::start(driver, &args).await?;
        let kubelet =
            Kubelet::new(client.clone(), driver_proc.socket(), kubelet_root.path()).await?;
        let logs = || {
            format!(
                "{}\n{}\n{}",
                provider.log(),
                driver_proc.log(),
                moto.process.log()
            )
        };
        let publish = |name: &'static str, sa: &'static str, spc: &'static str| {
            let (kubelet, ns) = (kubelet.clone(), ns.clone());
            async move {
                let mut pod = TestPod::new(&ns, name, spc);
                pod.service_account = sa.into();
                let created = kubelet.create_pod(&pod).await?;
                let uid = created.metadata.uid.clone().context("uid")?;
                let r = kubelet.publish(&created, "secrets", &tokens()).await?;
                anyhow::Ok(r.map(|_| kubelet.target_path(&uid, "secrets")))
            }
        };
        let target = publish("irsa", "app", "all")
            .await?
            .map_err(|s| anyhow::anyhow!("{} {s:?}\n{}", driver.display(), logs()))?;
        let files = read_tree(&target)?;
        assert_eq!(files, expected_all(), "{}", driver.display());
        let mode = std::fs::metadata(target.join("dbnested"))?;
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let target = publish("podid", "app", "podid")
            .await?
            .map_err(|s| anyhow::anyhow!("{s:?}\n{}", logs()))?;
        assert_eq!(
            read_tree(&target)?.get("MySecret").map(Vec::as_slice),
            Some(CANARY.as_bytes())
        );
        // A wrong secret key is refused by moto's SigV4 check (403).
        let denied = publish("mallory", "mallory", "podid").await?;
        let status = denied.err().context("mallory's wrong key must fail")?;
        assert!(
            status.message().contains("SignatureDoesNotMatch") || status.message().contains("403"),
            "{status:?}"
        );
        // IRSA for a service account without the role annotation.
        let no_role = publish("norole", "mallory", "all")
            .await?
            .err()
            .context("no role")?;
        assert!(
            no_role
                .message()
                .contains("An IAM role must be associated with service account mallory"),
            "{no_role:?}"
        );
        secrets_store_testkit::mounts::unmount_all_under(kubelet_root.path());
    }
    assert!(agent.calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let log = provider.log();
    assert!(
        !log.contains(CANARY) && !log.contains("s3cr3t-canary"),
        "secret in the provider log"
    );
    Ok(())
}

fn request(objects: &str, params: &[(&str, &str)], tokens: &str) -> pb::MountRequest {
    let mut attrs: BTreeMap<&str, &str> = params.iter().copied().collect();
    attrs.insert("objects", objects);
    attrs.insert("csi.storage.k8s.io/pod.name", "pod");
    attrs.insert("csi.storage.k8s.io/pod.namespace", "ns");
    attrs.insert("csi.storage.k8s.io/serviceAccount.name", "app");
    attrs.insert("csi.storage.k8s.io/serviceAccount.tokens", tokens);
    pb::MountRequest {
        attributes: serde_json::to_string(&attrs).unwrap_or_default(),
        secrets: "{}".into(),
        target_path: "/tmp/aws-direct-target".into(),
        permission: "420".into(),
        current_object_version: vec![],
    }
}

fn files(r: &pb::MountResponse) -> BTreeMap<String, Vec<u8>> {
    r.files
        .iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect()
}

/// Direct Mount calls: failover, the node's region, a burst of identical
/// mounts (one backend call per credential and secret) and throttling
/// (bounded retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_node_region_burst_and_throttling() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let moto = Moto::start().await?;
    moto.seed().await?;
    let (provider, dir) = support::start_ours(&moto, cp.kubeconfig(), None).await?;
    let ns = cp.namespace("aws-direct").await?;
    create_sa(&client, &ns, "app", Some(ROLE)).await?;
    let toks = support::pod_tokens(&client, &ns, "app").await?;
    let channel = secrets_store_grpc_uds::connect(&dir.path().join("aws.sock")).await?;
    let mut c = CsiDriverProviderClient::new(channel);
    let fix_ns = |mut r: pb::MountRequest| {
        r.attributes = r.attributes.replace("\"ns\"", &format!("{ns:?}"));
        r
    };
    let logs = || format!("{}\n{}", provider.log(), moto.process.log());

    // A burst of 50 identical mounts: one STS call, one backend call per secret.
    let before = moto.calls().len();
    let objects = "- {objectName: MySecret, objectType: secretsmanager}\n- {objectName: db, objectType: secretsmanager}\n- {objectName: /app/param, objectType: ssmparameter}\n";
    let req = fix_ns(request(objects, &[("region", REGION)], &toks));
    let burst = futures_join((0..50).map(|_| {
        let mut c = c.clone();
        let req = req.clone();
        async move { c.mount(req).await }
    }))
    .await;
    for r in burst {
        let r = r
            .map_err(|s| anyhow::anyhow!("{s:?}\n{}", logs()))?
            .into_inner();
        assert_eq!(files(&r).len(), 3);
    }
    let calls: Vec<String> = moto.calls()[before..].to_vec();
    let count = |p: &str| calls.iter().filter(|c| c.starts_with(p)).count();
    assert_eq!(count("AssumeRoleWithWebIdentity"), 1, "{calls:?}");
    assert_eq!(count("BatchGetSecretValue"), 1, "{calls:?}");
    assert_eq!(count("GetSecretValue"), 0, "{calls:?}");
    assert_eq!(count("GetParameters"), 1, "{calls:?}");

    // Throttled twice, then served: three attempts.
    moto.throttle(2)?;
    let before = moto.calls().len();
    let one = fix_ns(request(
        "- {objectName: MySecret, objectType: secretsmanager}\n",
        &[("region", REGION)],
        &toks,
    ));
    let r = c
        .mount(one.clone())
        .await
        .map_err(|s| anyhow::anyhow!("{s:?}\n{}", logs()))?;
    assert_eq!(
        files(r.get_ref()).get("MySecret").map(Vec::as_slice),
        Some(CANARY.as_bytes())
    );
    assert_eq!(
        moto.calls().len() - before,
        3,
        "{:?}",
        &moto.calls()[before..]
    );
    // Throttled for good: four attempts, bounded, then Unavailable (another
    // secret: a successful answer is reused for a second).
    moto.throttle(100)?;
    let started = Instant::now();
    let before = moto.calls().len();
    let other = fix_ns(request(
        "- {objectName: team/app/key, objectType: secretsmanager}\n",
        &[("region", REGION)],
        &toks,
    ));
    let e = c.mount(other).await.err().context("throttled")?;
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("ThrottlingException"), "{e:?}");
    assert_eq!(moto.calls().len() - before, 4);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Failover: the primary throttled for good, the failover region answers.
    moto.throttle(4)?;
    let fo = fix_ns(request(
        "- {objectName: MySecret, objectType: secretsmanager, objectAlias: ms, objectVersionLabel: AWSCURRENT}\n",
        &[("region", REGION), ("failoverRegion", FAILOVER)],
        &toks,
    ));
    let r = c
        .mount(fo)
        .await
        .map_err(|s| anyhow::anyhow!("{s:?}\n{}", logs()))?;
    assert_eq!(
        files(r.get_ref()).get("ms").map(Vec::as_slice),
        Some(&b"from-the-west"[..])
    );
    moto.throttle(0)?;

    // No region parameter: the node's topology.kubernetes.io/region label.
    let mut node = Node::default();
    node.metadata.name = Some(format!("aws-node-{ns}"));
    node.metadata.labels = Some(BTreeMap::from([(
        "topology.kubernetes.io/region".to_string(),
        REGION.to_string(),
    )]));
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let mut pod = TestPod::new(&ns, "pod", "none");
    pod.service_account = "app".into();
    let mut spec: Pod = pod.create(&client).await?;
    spec.metadata.managed_fields = None;
    let binding = serde_json::json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "pod"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": format!("aws-node-{ns}")}
    });
    let _: serde_json::Value = Api::<Pod>::namespaced(client.clone(), &ns)
        .create_subresource("binding", "pod", &PostParams::default(), &binding)
        .await?;
    let r = c
        .mount(fix_ns(request(
            "- {objectName: MySecret, objectType: secretsmanager}\n",
            &[],
            &toks,
        )))
        .await
        .map_err(|s| anyhow::anyhow!("{s:?}\n{}", logs()))?;
    assert_eq!(files(r.get_ref()).len(), 1);
    Ok(())
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(|f| Box::pin(f)).collect();
    let mut out = Vec::with_capacity(handles.len());
    // Start all, then collect in order.
    let joined = futures::future::join_all(handles).await;
    out.extend(joined);
    out
}
