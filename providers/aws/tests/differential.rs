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
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use support::{Kind, Moto, Peer, REGION, ROLE, TlsFront};
use tonic::transport::Channel;

/// A normalized successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    /// `path → (mode, contents)`.
    files: BTreeMap<String, (i32, Vec<u8>)>,
    /// Object versions by id.
    versions: BTreeMap<String, String>,
}

type Outcome = Result<Reply, (tonic::Code, String)>;

/// What the table expects of one case.
enum Expect {
    /// The same answer from both.
    Same,
    /// The same files; the object versions differ (an expected difference,
    /// `why`).
    VersionsDiffer { why: &'static str },
    /// Both fail with the same message (RequestIDs blanked); ours with
    /// `code`, upstream's always `Unknown`.
    BothFail(tonic::Code),
    /// Both fail; ours says `ours` (with `code`), upstream's message holds
    /// `upstream` (an expected difference, `why`).
    FailDiffers {
        why: &'static str,
        code: tonic::Code,
        ours: &'static str,
        upstream: &'static str,
    },
    /// Only we fail (an expected difference, `why`).
    OnlyOursFails {
        why: &'static str,
        code: tonic::Code,
        substance: &'static str,
    },
}

struct Case {
    name: &'static str,
    objects: &'static str,
    params: &'static [(&'static str, &'static str)],
    expect: Expect,
}

const fn case(name: &'static str, objects: &'static str, expect: Expect) -> Case {
    Case {
        name,
        objects,
        params: &[],
        expect,
    }
}

impl Case {
    const fn params(mut self, params: &'static [(&'static str, &'static str)]) -> Self {
        self.params = params;
        self
    }
}

/// Blanks `RequestID: <id>` (moto picks a new one per request).
fn normalize(m: &str) -> String {
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
        case("no name", "- {objectAlias: x}\n", BothFail(Code::InvalidArgument)),
        case("bad ARN", "- {objectName: \"arn:aws:secretsmanager\"}\n", BothFail(Code::InvalidArgument)),
        case("ARN in another region", "- {objectName: \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:a\"}\n", BothFail(Code::InvalidArgument)),
        case("no type", "- {objectName: a}\n", BothFail(Code::InvalidArgument)),
        case("ssm as type", "- {objectName: a, objectType: ssm}\n", BothFail(Code::InvalidArgument)),
        case("type against ARN", "- {objectName: \"arn:aws:ssm:us-east-1:123456789012:parameter/a\", objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)),
        case("SSM version and label", "- {objectName: a, objectType: ssmparameter, objectVersion: \"1\", objectVersionLabel: l}\n", BothFail(Code::InvalidArgument)),
        case("bad permission", "- {objectName: a, objectType: secretsmanager, filePermission: \"777\"}\n", BothFail(Code::InvalidArgument)),
        case("jmesPath without path", "- {objectName: db, objectType: secretsmanager, jmesPath: [{objectAlias: x}]}\n", BothFail(Code::InvalidArgument)),
        case("failover without region", "- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectName: b}}\n", BothFail(Code::InvalidArgument)),
        case("duplicate name", "- {objectName: a, objectType: secretsmanager}\n- {objectName: a, objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)),
        case("duplicate alias", "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: b, objectType: secretsmanager, objectAlias: x}\n", BothFail(Code::InvalidArgument)),
        case("empty entry", "- \n", BothFail(Code::InvalidArgument)),
        case("traversal", "- {objectName: ../../etc/passwd, objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)).params(OFF),
        case("bad pathTranslation", "- {objectName: a, objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)).params(&[("pathTranslation", "ab")]),
        case("same failover region", "- {objectName: a, objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)).params(&[("failoverRegion", REGION)]),
        case("bad usePodIdentity", "- {objectName: a, objectType: secretsmanager}\n", BothFail(Code::InvalidArgument)).params(&[("usePodIdentity", "yes")]),
        case("unknown secret", "- {objectName: missing, objectType: secretsmanager}\n", BothFail(Code::NotFound)),
        case("unknown version", "- {objectName: pinned, objectType: secretsmanager, objectVersion: 99999999-9999-9999-9999-999999999999}\n", BothFail(Code::NotFound)),
        case("unknown parameter", "- {objectName: /nope, objectType: ssmparameter}\n", BothFail(Code::NotFound)),
        case(
            "jmesPath on text",
            "- {objectName: text, objectType: secretsmanager, jmesPath: [{path: a, objectAlias: x}]}\n",
            FailDiffers {
                why: "upstream reports only that all regions failed; we append the last error",
                code: Code::InvalidArgument,
                ours: "Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: text (last error: us-east-1: Invalid JSON used with jmesPath in secret: text.)",
                upstream: "Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: text",
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

async fn outcome(c: &mut CsiDriverProviderClient<Channel>, req: pb::MountRequest) -> Outcome {
    match c.mount(req).await {
        Ok(r) => {
            let r = r.into_inner();
            Ok(Reply {
                files: r
                    .files
                    .into_iter()
                    .map(|f| (f.path, (f.mode, f.contents)))
                    .collect(),
                versions: r
                    .object_version
                    .into_iter()
                    .map(|v| (v.id, v.version))
                    .collect(),
            })
        }
        Err(s) => Err((s.code(), normalize(s.message()))),
    }
}

/// Checks one case; returns a description of the mismatch, if any.
fn judge(case: &Case, ours: Outcome, upstream: Outcome) -> Option<String> {
    let name = case.name;
    match (&case.expect, ours, upstream) {
        (Expect::Same, Ok(o), Ok(u)) if o == u => None,
        (Expect::VersionsDiffer { why }, Ok(o), Ok(u)) => (o.files != u.files
            || o.versions.keys().ne(u.versions.keys())
            || o.versions == u.versions)
            .then(|| format!("{name} ({why}):\n ours {o:?}\n upstream {u:?}")),
        (Expect::BothFail(code), Err((oc, om)), Err((uc, um))) => {
            (oc != *code || uc != tonic::Code::Unknown || om != um)
                .then(|| format!("{name}:\n ours {oc:?} {om:?}\n upstream {uc:?} {um:?}"))
        }
        (
            Expect::FailDiffers {
                why,
                code,
                ours,
                upstream,
            },
            Err((oc, om)),
            Err((_, um)),
        ) => (oc != *code || om != *ours || um != *upstream)
            .then(|| format!("{name} ({why}): ours {oc:?} {om:?}, upstream {um:?}")),
        (
            Expect::OnlyOursFails {
                why,
                code,
                substance,
            },
            Err((oc, om)),
            Ok(_),
        ) => (oc != *code || !om.contains(substance))
            .then(|| format!("{name} ({why}): we said {oc:?} {om:?}")),
        (_, o, u) => Some(format!("{name}: unexpected\n ours {o:?}\n upstream {u:?}")),
    }
}

fn request(objects: &str, params: &[(&str, &str)], ns: &str, tokens: &str) -> pb::MountRequest {
    let mut attrs: BTreeMap<&str, &str> = params.iter().copied().collect();
    attrs.insert("objects", objects);
    attrs.entry("region").or_insert(REGION);
    attrs.insert("csi.storage.k8s.io/pod.name", "pod");
    attrs.insert("csi.storage.k8s.io/pod.namespace", ns);
    attrs.insert("csi.storage.k8s.io/serviceAccount.name", "app");
    attrs.insert("csi.storage.k8s.io/serviceAccount.tokens", tokens);
    pb::MountRequest {
        attributes: serde_json::to_string(&attrs).unwrap_or_default(),
        secrets: "null".into(),
        target_path: "/tmp/aws-differential-target".into(),
        permission: "420".into(),
        current_object_version: vec![],
    }
}

async fn client(peer: &Peer) -> anyhow::Result<CsiDriverProviderClient<Channel>> {
    Ok(CsiDriverProviderClient::new(
        secrets_store_grpc_uds::connect(&peer.socket()).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_match_the_upstream_provider() -> anyhow::Result<()> {
    let cp = secrets_store_testkit::ControlPlane::shared().await?;
    let kube = cp.client().await?;
    let moto = Moto::start().await?;
    moto.seed().await?;
    let front = TlsFront::start(&moto).await?;
    let upstream = Peer::start(Kind::Upstream, &front, cp).await?;
    let ours = Peer::start(Kind::Ours, &front, cp).await?;
    let ns = cp.namespace("aws-diff").await?;
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("app".into());
    sa.metadata.annotations = Some(BTreeMap::from([(
        "eks.amazonaws.com/role-arn".to_string(),
        ROLE.to_string(),
    )]));
    Api::<ServiceAccount>::namespaced(kube.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await?;
    let toks = support::pod_tokens(&kube, &ns, "app").await?;
    let (mut u, mut o) = (client(&upstream).await?, client(&ours).await?);
    let mut failures = Vec::new();
    let table = table();
    // Beyond the table: requests without tokens fail the same way.
    let mut no_tokens = request(
        "- {objectName: MySecret, objectType: secretsmanager}\n",
        &[],
        &ns,
        "",
    );
    no_tokens.attributes = no_tokens
        .attributes
        .replace(",\"csi.storage.k8s.io/serviceAccount.tokens\":\"\"", "");
    let (ot, ut) = (
        outcome(&mut o, no_tokens.clone()).await,
        outcome(&mut u, no_tokens).await,
    );
    if let Some(f) = judge(
        &case(
            "no tokens",
            "",
            Expect::BothFail(tonic::Code::InvalidArgument),
        ),
        ot,
        ut,
    ) {
        failures.push(f);
    }
    for case in &table {
        let req = || request(case.objects, case.params, &ns, &toks);
        let theirs = outcome(&mut u, req()).await;
        let mine = outcome(&mut o, req()).await;
        if let Some(f) = judge(case, mine, theirs) {
            failures.push(f);
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}\n--- upstream log:\n{}\n--- our log:\n{}",
        failures.len(),
        table.len() + 1,
        failures.join("\n"),
        upstream.process.log(),
        ours.process.log()
    );
    Ok(())
}

/// Our driver publishes a pod's volume through the upstream provider
/// (IRSA, kubelet-minted tokens), and the files are the ones it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_driver_publishes_through_the_upstream_provider() -> anyhow::Result<()> {
    use anyhow::Context;
    use secrets_store_crds::v1::{SecretProviderClass, SecretProviderClassSpec};
    use secrets_store_testkit::driver::DriverProcess;
    use secrets_store_testkit::process::free_port;
    use secrets_store_testkit::{Kubelet, TestPod, TokenOptions, tools};

    let cp = secrets_store_testkit::ControlPlane::shared().await?;
    let kube = cp.client().await?;
    let moto = Moto::start().await?;
    moto.seed().await?;
    let front = TlsFront::start(&moto).await?;
    let upstream = Peer::start(Kind::Upstream, &front, cp).await?;
    let ns = cp.namespace("aws-upstream").await?;
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("app".into());
    sa.metadata.annotations = Some(BTreeMap::from([(
        "eks.amazonaws.com/role-arn".to_string(),
        ROLE.to_string(),
    )]));
    Api::<ServiceAccount>::namespaced(kube.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await?;
    let objects = "- {objectName: MySecret, objectType: secretsmanager}\n- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - {path: username, objectAlias: dbuser}\n- {objectName: /app/secure, objectType: ssmparameter, objectAlias: secure}\n";
    let spc = SecretProviderClass {
        metadata: kube::api::ObjectMeta {
            name: Some("aws".into()),
            ..Default::default()
        },
        spec: SecretProviderClassSpec {
            provider: "aws".into(),
            parameters: BTreeMap::from([
                ("region".to_string(), REGION.to_string()),
                ("objects".to_string(), objects.to_string()),
            ]),
            ..Default::default()
        },
        status: None,
    };
    Api::<SecretProviderClass>::namespaced(kube.clone(), &ns)
        .create(&PostParams::default(), &spc)
        .await?;
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
    let mut pod = TestPod::new(&ns, "app", "aws");
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
    let dir = kubelet.target_path(&uid, "secrets");
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && e.path().is_file() {
            files.insert(name, std::fs::read(e.path())?);
        }
    }
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
