//! Differential: the upstream AWS provider (Go, 3.1.1, built by
//! `hack/install-tools.sh`) and ours answer the same `Mount` requests, with
//! the same pod token and moto state, both reaching moto through HTTPS
//! under AWS's endpoint names. Answers are compared file by file (path,
//! mode, contents) with object versions, or, when both fail, by the
//! message with RequestIDs blanked. Every deliberate difference is an
//! explicit [`Expect`] entry and a row in COMPATIBILITY.md.
//!
//! Also: our driver publishing a volume through the upstream provider.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use secrets_store_testkit::ControlPlane;
use secrets_store_testkit::differential::{Case, Expect, Outcome, Reply, Text, case, run_table};
use secrets_store_testkit::mounts::read_tree;
use secrets_store_testkit::provider_peer::create_class;
use support::{Kind, Moto, Peer, REGION, ROLE, TlsFront, start_peer};

/// Files by path; `RequestID: <id>` blanked in messages (moto picks a new
/// one per request).
fn normalize(o: Outcome) -> Outcome {
    o.map(Reply::sorted)
        .map_err(|(code, m)| (code, blank_request_ids(&m)))
}

fn blank_request_ids(m: &str) -> String {
    let mut out = String::new();
    let mut rest = m;
    while let Some(i) = rest.find("RequestID: ") {
        out.push_str(&rest[..i + "RequestID: ".len()]);
        rest = &rest[i + "RequestID: ".len()..];
        let end = rest.find(',').unwrap_or(rest.len());
        out.push('*');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

const OFF: &[(&str, &str)] = &[("pathTranslation", "False")];
const DASH: &[(&str, &str)] = &[("pathTranslation", "-")];
const FAILOVER: &[(&str, &str)] = &[("failoverRegion", "us-west-2")];

/// The table: objects of both services, versions, labels, jmesPath, paths,
/// permissions, failover entries, and invalid classes.
fn table() -> Vec<Case> {
    use Expect::*;
    use tonic::Code;
    vec![
        case("no tokens", "- {objectName: MySecret, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument))
            .without(&[TOKENS]),
        case("plain secret", "- {objectName: MySecret, objectType: secretsmanager}\n", Same),
        case("alias and permission", "- {objectName: MySecret, objectType: secretsmanager, objectAlias: s, filePermission: \"0600\"}\n", Same),
        case(
            "jmesPath",
            "- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - {path: username, objectAlias: u}\n    - {path: nested.k, objectAlias: k, filePermission: \"0400\"}\n",
            Same,
        ),
        case("binary secret", "- {objectName: blob, objectType: secretsmanager}\n", Same),
        case("pinned version", "- {objectName: pinned, objectType: secretsmanager, objectVersion: 11111111-1111-1111-1111-111111111111}\n", Same),
        case("version label", "- {objectName: pinned, objectType: secretsmanager, objectVersionLabel: Blue}\n", Same),
        case(
            "several secrets (one batch call here)",
            "- {objectName: MySecret, objectType: secretsmanager}\n- {objectName: db, objectType: secretsmanager}\n- {objectName: pinned, objectType: secretsmanager, objectAlias: now}\n",
            Same,
        ),
        case("translation default", "- {objectName: team/app/key, objectType: secretsmanager}\n", Same),
        case("translation custom", "- {objectName: team/app/key, objectType: secretsmanager}\n", Same).params(DASH),
        case("translation off", "- {objectName: team/app/key, objectType: secretsmanager}\n", Same).params(OFF),
        case("SSM String", "- {objectName: /app/param, objectType: ssmparameter}\n", Same),
        case("SSM SecureString", "- {objectName: /app/secure, objectType: ssmparameter}\n", Same),
        case("SSM label", "- {objectName: /app/param, objectType: ssmparameter, objectVersionLabel: stable, objectAlias: p}\n", Same),
        case("SSM version", "- {objectName: /app/param, objectType: ssmparameter, objectVersion: \"1\", objectAlias: p}\n", Same),
        case(
            "SSM jmesPath",
            "- objectName: /app/json\n  objectType: ssmparameter\n  jmesPath:\n    - {path: password, objectAlias: pw}\n",
            Same,
        ),
        case(
            "more than ten parameters",
            "- {objectName: /many/p0, objectType: ssmparameter}\n- {objectName: /many/p1, objectType: ssmparameter}\n- {objectName: /many/p2, objectType: ssmparameter}\n- {objectName: /many/p3, objectType: ssmparameter}\n- {objectName: /many/p4, objectType: ssmparameter}\n- {objectName: /many/p5, objectType: ssmparameter}\n- {objectName: /many/p6, objectType: ssmparameter}\n- {objectName: /many/p7, objectType: ssmparameter}\n- {objectName: /many/p8, objectType: ssmparameter}\n- {objectName: /many/p9, objectType: ssmparameter}\n- {objectName: /many/p10, objectType: ssmparameter}\n- {objectName: /many/p11, objectType: ssmparameter}\n",
            Same,
        ),
        case("both services", "- {objectName: MySecret, objectType: secretsmanager}\n- {objectName: /app/param, objectType: ssmparameter}\n", Same),
        case(
            "failover entry (primary answers)",
            "- {objectName: MySecret, objectType: secretsmanager, objectAlias: m, failoverObject: {objectName: west-only}}\n",
            VersionsDiffer {
                why: "upstream also reads the failover region and reports its version id with the primary's value; we read only the primary and report its version",
            },
        )
        .params(FAILOVER),
        case("unknown fields are ignored", "- {objectName: MySecret, objectType: secretsmanager, objectTyp: x}\n", Same),
        case("no name", "- {objectAlias: x}\n", SameFailure(Code::InvalidArgument)),
        case("bad ARN", "- {objectName: \"arn:aws:secretsmanager\"}\n", SameFailure(Code::InvalidArgument)),
        case("ARN in another region", "- {objectName: \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:a\"}\n", SameFailure(Code::InvalidArgument)),
        case("no type", "- {objectName: a}\n", SameFailure(Code::InvalidArgument)),
        case("ssm as type", "- {objectName: a, objectType: ssm}\n", SameFailure(Code::InvalidArgument)),
        case("type against ARN", "- {objectName: \"arn:aws:ssm:us-east-1:123456789012:parameter/a\", objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)),
        case("SSM version and label", "- {objectName: a, objectType: ssmparameter, objectVersion: \"1\", objectVersionLabel: l}\n", SameFailure(Code::InvalidArgument)),
        case("bad permission", "- {objectName: a, objectType: secretsmanager, filePermission: \"777\"}\n", SameFailure(Code::InvalidArgument)),
        case("jmesPath without path", "- {objectName: db, objectType: secretsmanager, jmesPath: [{objectAlias: x}]}\n", SameFailure(Code::InvalidArgument)),
        case("failover without region", "- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectName: b}}\n", SameFailure(Code::InvalidArgument)),
        case("duplicate name", "- {objectName: a, objectType: secretsmanager}\n- {objectName: a, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)),
        case("duplicate alias", "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: b, objectType: secretsmanager, objectAlias: x}\n", SameFailure(Code::InvalidArgument)),
        case("empty entry", "- \n", SameFailure(Code::InvalidArgument)),
        case("traversal", "- {objectName: ../../etc/passwd, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)).params(OFF),
        case("bad pathTranslation", "- {objectName: a, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)).params(&[("pathTranslation", "ab")]),
        case("same failover region", "- {objectName: a, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)).params(&[("failoverRegion", REGION)]),
        case("bad usePodIdentity", "- {objectName: a, objectType: secretsmanager}\n", SameFailure(Code::InvalidArgument)).params(&[("usePodIdentity", "yes")]),
        case("unknown secret", "- {objectName: missing, objectType: secretsmanager}\n", SameFailure(Code::NotFound)),
        case("unknown version", "- {objectName: pinned, objectType: secretsmanager, objectVersion: 99999999-9999-9999-9999-999999999999}\n", SameFailure(Code::NotFound)),
        case("unknown parameter", "- {objectName: /nope, objectType: ssmparameter}\n", SameFailure(Code::NotFound)),
        case(
            "jmesPath on text",
            "- {objectName: text, objectType: secretsmanager, jmesPath: [{path: a, objectAlias: x}]}\n",
            FailDiffers {
                why: "upstream reports only that all regions failed; we append the last error",
                code: Code::InvalidArgument,
                ours: Text::Is("Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: text (last error: us-east-1: Invalid JSON used with jmesPath in secret: text.)"),
                upstream: Text::Is("Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: text"),
            },
        ),
        case(
            "alias equal to another object's file",
            "- {objectName: MySecret, objectType: secretsmanager}\n- {objectName: db, objectType: secretsmanager, objectAlias: MySecret}\n",
            OnlyOursFails {
                why: "upstream writes both objects to one path (the last wins); we refuse the class",
                code: Code::InvalidArgument,
                substance: "duplicate file path: MySecret",
            },
        ),
    ]
}

const TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// The shared control plane, moto (seeded) behind its TLS front, the
/// upstream provider, and a namespace with the IRSA service account `app`.
struct World {
    cp: &'static ControlPlane,
    kube: kube::Client,
    front: TlsFront,
    upstream: Peer,
    ns: String,
    _moto: Moto,
}

impl World {
    async fn start(ns: &str) -> anyhow::Result<Self> {
        let cp = ControlPlane::shared().await?;
        let kube = cp.client().await?;
        let moto = Moto::start().await?;
        moto.seed().await?;
        let front = TlsFront::start(&moto).await?;
        let upstream = start_peer(Kind::Upstream, &front, cp).await?;
        let ns = cp.namespace(ns).await?;
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some("app".into());
        sa.metadata.annotations = Some(BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            ROLE.to_string(),
        )]));
        Api::<ServiceAccount>::namespaced(kube.clone(), &ns)
            .create(&PostParams::default(), &sa)
            .await?;
        Ok(Self {
            cp,
            kube,
            front,
            upstream,
            ns,
            _moto: moto,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_match_the_upstream_provider() -> anyhow::Result<()> {
    let w = World::start("aws-diff").await?;
    let ours = start_peer(Kind::Ours, &w.front, w.cp).await?;
    let toks = support::pod_tokens(&w.kube, &w.ns, "app").await?;
    let pod = [
        ("region", REGION),
        ("csi.storage.k8s.io/pod.name", "pod"),
        ("csi.storage.k8s.io/pod.namespace", w.ns.as_str()),
        ("csi.storage.k8s.io/serviceAccount.name", "app"),
        (TOKENS, toks.as_str()),
    ];
    let request = |c: &Case| c.request(&pod, "/tmp/aws-differential-target");
    run_table(&ours, &w.upstream, &table(), request, normalize).await
}

/// Our driver publishes a pod's volume through the upstream provider
/// (IRSA, kubelet-minted tokens), and the files are the ones it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_driver_publishes_through_the_upstream_provider() -> anyhow::Result<()> {
    use anyhow::Context;
    use secrets_store_testkit::driver::DriverProcess;
    use secrets_store_testkit::process::free_port;
    use secrets_store_testkit::{Kubelet, TestPod, TokenOptions, tools};

    let w = World::start("aws-upstream").await?;
    let (cp, kube, ns, upstream) = (w.cp, w.kube.clone(), &w.ns, &w.upstream);
    let objects = "- {objectName: MySecret, objectType: secretsmanager}\n- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - {path: username, objectAlias: dbuser}\n- {objectName: /app/secure, objectType: ssmparameter, objectAlias: secure}\n";
    let params = [("region", REGION), ("objects", objects)];
    create_class(&kube, ns, "aws", "aws", &params).await?;
    let kubelet_root = tempfile::Builder::new().prefix("kubelet-").tempdir()?;
    let driver = DriverProcess::start(
        &tools::workspace_binary("secrets-store-csi-driver")?,
        &[
            "--nodeid=node-aws-upstream-provider".into(),
            format!("--provider-volume={}", upstream.dir.path().display()),
            format!("--kubeconfig={}", cp.kubeconfig().display()),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            format!("--kubelet-dir={}", kubelet_root.path().display()),
        ],
    )
    .await?;
    let kubelet = Kubelet::new(kube.clone(), driver.socket(), kubelet_root.path()).await?;
    let mut pod = TestPod::new(ns, "app", "aws");
    pod.service_account = "app".into();
    let created = kubelet.create_pod(&pod).await?;
    let uid = created.metadata.uid.clone().context("uid")?;
    let tokens = TokenOptions {
        audiences: vec!["sts.amazonaws.com".into(), "pods.eks.amazonaws.com".into()],
        ..Default::default()
    };
    let published = kubelet.publish(&created, "secrets", &tokens).await?;
    let logs = || format!("{}\n{}", upstream.process.log(), driver.log());
    published.map_err(|s| anyhow::anyhow!("publish: {s:?}\n{}", logs()))?;
    let files = read_tree(&kubelet.target_path(&uid, "secrets"))?;
    secrets_store_testkit::mounts::unmount_all_under(kubelet_root.path());
    let want: BTreeMap<String, Vec<u8>> = [
        ("MySecret", support::CANARY.as_bytes()),
        ("db", support::DB_JSON.as_bytes()),
        ("dbuser", b"admin"),
        ("secure", b"secure-value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_vec()))
    .collect();
    assert_eq!(files, want, "{}", logs());
    Ok(())
}
