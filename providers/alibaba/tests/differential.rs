//! Differential: the upstream Alibaba Cloud provider (Go, v0.6.0, built by
//! `hack/install-tools.sh`) and ours answer the same `Mount` requests, for
//! the same credentials and emulator state, and the answers are compared:
//! file paths, modes, contents and object versions, or, when both fail, the
//! substance of the message. Every deliberate difference is an explicit
//! [`Expect`] entry below and a row in COMPATIBILITY.md.
//!
//! Also: our driver publishing a volume through the upstream provider.

mod support;

use std::collections::BTreeMap;

use anyhow::Context;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_testkit::differential::{Case, Expect, Reply, Text, case, run_table};
use secrets_store_testkit::mounts::read_tree;
use secrets_store_testkit::provider_peer::create_class;
use support::{Backend, Kind, REGION, start_peer};

const USER: &str = "acs:ram::111:user/alice";
/// The JSON secret of the seed's jmesPath example (plus a number and a map).
const TEST_JSON: &str =
    r#"{"username":"testuser","password":"testpassword","count":1,"nested":{"k":"v"}}"#;
const BOB: &str = "acs:ram::111:user/bob";
const ENV_AK: &[(&str, &str)] = &[
    ("ACCESS_KEY_ID", "AKID-ALICE"),
    ("SECRET_ACCESS_KEY", "alice-secret"),
];

fn oos_version_is_v1(r: &mut Reply) {
    for v in r.versions.values_mut() {
        if v == "2" {
            *v = "v1".into();
        }
    }
}

fn emulator_state(e: &Emulator) {
    e.add_access_key("AKID-ALICE", "alice-secret", USER);
    e.add_access_key("AKID-BOB", "bob-secret", BOB);
    e.add_secret("MySecret", "v1", "my-secret-value");
    e.add_secret("test", "t1", TEST_JSON);
    e.add_secret("text", "x1", "not json");
    e.add_binary_secret("blob", "b1", &[0, 1, 254, 255, 10]);
    e.add_secret("pinned", "p1", "old");
    e.put_secret_version("pinned", "p2", "new");
    e.add_stage("pinned", "p1", "Blue");
    e.add_secret("team/app/key", "k1", "nested");
    e.add_secret("ab/c", "a1", "dotless");
    e.add_secret("bobs", "o1", "for bob");
    e.restrict("bobs", &[BOB]);
    e.put_parameter("app/param", "param-value");
    e.put_parameter("app/param", "param-value-2");
}

/// The pod every request is for, and the region.
const POD: &[(&str, &str)] = &[
    ("region", REGION),
    ("csi.storage.k8s.io/pod.name", "pod"),
    ("csi.storage.k8s.io/pod.namespace", "ns"),
    ("csi.storage.k8s.io/serviceAccount.name", "sa"),
];

const OFF: &[(&str, &str)] = &[("pathTranslation", "False")];
const NPS_BOB: &[(&str, &str)] = &[("access_key", "AKID-BOB"), ("access_secret", "bob-secret")];
const NPS_WRONG: &[(&str, &str)] = &[("access_key", "AKID-BOB"), ("access_secret", "guessed")];

/// The table: the seed's examples, jmesPath, aliases, versions and stages,
/// OOS, binary secrets, path translation, credentials, and invalid SPCs.
fn table() -> Vec<Case> {
    use Expect::*;
    use tonic::Code;
    let fail = Expect::both_fail;
    vec![
        case("seed: one secret", "- objectName: \"MySecret\"\n", Same),
        case(
            "seed: jmesPath keys",
            "- objectName: \"test\"\n  jmesPath:\n    - path: \"username\"\n      objectAlias: \"MySecretUsername\"\n    - path: \"password\"\n      objectAlias: \"MySecretPassword\"\n",
            Same,
        ),
        case("jmesPath nested key", "- objectName: test\n  objectAlias: t.json\n  jmesPath:\n    - {path: nested.k, objectAlias: k}\n", Same),
        case("alias", "- objectName: MySecret\n  objectAlias: renamed\n", Same),
        case("ARN name", "- objectName: \"acs:kms:cn-test:111:secret/MySecret\"\n  objectAlias: by-arn\n", Same),
        case("version id", "- objectName: pinned\n  objectVersion: p1\n", Same),
        case("stage ACSPrevious", "- objectName: pinned\n  objectVersionLabel: ACSPrevious\n", Same),
        case("custom stage", "- objectName: pinned\n  objectVersionLabel: Blue\n", Same),
        case("current by default", "- objectName: pinned\n  objectAlias: now\n", Same),
        case("binary secret", "- objectName: blob\n  objectAlias: blob.bin\n", Same),
        case(
            "OOS parameter",
            "- objectName: app/param\n  objectType: oos\n",
            Differs {
                why: "OOS object versions: upstream always \"v1\", ours the ParameterVersion",
                align: oos_version_is_v1,
            },
        ),
        case("translation default", "- objectName: team/app/key\n", Same),
        case("translation custom", "- objectName: team/app/key\n", Same)
            .params(&[("pathTranslation", "-")]),
        case("translation off", "- objectName: team/app/key\n", Same).params(OFF),
        case("translation off, leading slash", "- objectName: MySecret\n  objectAlias: /dir/file\n", Same).params(OFF),
        case(
            "translation off, name with 'ab'",
            "- objectName: ab/c\n",
            OnlyUpstreamFails {
                why: "upstream's `../` regex has unescaped dots and refuses any `<x><y>/` at the start",
                substance: "path can not contain ../",
            },
        )
        .params(OFF),
        case("several objects in order", "- objectName: MySecret\n- objectName: blob\n- objectName: pinned\n  objectVersion: p2\n  objectAlias: p2\n", Same),
        case("nodePublishSecretRef keys", "- objectName: bobs\n", Same).secrets(NPS_BOB),
        case(
            "unknown fields are ignored",
            "- objectName: MySecret\n  objectTyp: kms\n  jmesPath: []\n",
            Same,
        ),
        case(
            "dedicated instance endpoint",
            "- objectName: MySecret\n  kmsEndpoint: kst-test.cryptoservice.kms.aliyuncs.com\n",
            OnlyOursFails {
                why: "for a region without a bundled CA upstream falls back to the system roots; we trust only Alibaba's private KMS CAs for dedicated instances",
                code: Code::Unavailable,
                substance: "failed fetching secret MySecret: request to https://kst-test.cryptoservice.kms.aliyuncs.com failed",
            },
        ),
        case("public endpoint by kmsEndpoint", "- objectName: MySecret\n  kmsEndpoint: kms.cn-test.aliyuncs.com\n", Same),
        case(
            "empty objects",
            "",
            OnlyOursFails {
                why: "upstream mounts nothing and reports success; we refuse an SPC that lists no objects",
                code: Code::InvalidArgument,
                substance: "failed to load SecretProviderClass: no objects specified",
            },
        ),
        case("no name", "- objectAlias: x\n", fail(Code::InvalidArgument, &["object name must be specified"])),
        case("bad ARN", "- objectName: \"acs:kms:x\"\n", fail(Code::InvalidArgument, &["invalid ARN format in object name"])),
        case("ARN of another service", "- objectName: \"acs:oss:r:1:b\"\n", fail(Code::InvalidArgument, &["invalid service in ARN"])),
        case(
            "unsupported type",
            "- objectName: a\n  objectType: s3\n",
            fail(Code::InvalidArgument, &["unsupported object type \"s3\", only support \"kms\" and \"oos\""]),
        ),
        case("jmesPath without path", "- objectName: test\n  jmesPath:\n    - objectAlias: x\n", fail(Code::InvalidArgument, &["path must be specified for JMES object"])),
        case("jmesPath without alias", "- objectName: test\n  jmesPath:\n    - path: x\n", fail(Code::InvalidArgument, &["object alias must be specified for JMES object"])),
        case("duplicate name", "- objectName: a\n- objectName: a\n", fail(Code::InvalidArgument, &["duplicate object name: a (type: kms)"])),
        case(
            "duplicate alias",
            "- objectName: MySecret\n  objectAlias: a\n- objectName: blob\n  objectAlias: a\n",
            fail(Code::InvalidArgument, &["duplicate object alias: a"]),
        ),
        case(
            "alias equal to another object's name",
            "- objectName: MySecret\n- objectName: blob\n  objectAlias: MySecret\n",
            OnlyOursFails {
                why: "upstream compares aliases only with aliases, so two objects may answer the same file path",
                code: Code::InvalidArgument,
                substance: "duplicate object alias: MySecret",
            },
        ),
        case(
            "duplicate jmesPath alias",
            "- objectName: test\n  jmesPath:\n    - {path: username, objectAlias: u}\n- objectName: MySecret\n  jmesPath:\n    - {path: x, objectAlias: u}\n",
            fail(Code::InvalidArgument, &["duplicate JMES path object alias: u"]),
        ),
        case(
            "jmesPath alias equal to an object file",
            "- objectName: test\n  jmesPath:\n    - {path: username, objectAlias: test}\n",
            OnlyOursFails {
                why: "upstream compares jmesPath aliases only with each other, so a key may answer its parent's file path",
                code: Code::InvalidArgument,
                substance: "duplicate JMES path object alias: test",
            },
        ),
        case(
            "YAML 1.1 boolean as a path",
            "- objectName: test\n  jmesPath:\n    - {path: n, objectAlias: x}\n",
            FailDiffers {
                why: "upstream reads YAML 1.1, where an unquoted `n` is the boolean false (path \"false\"); we read YAML 1.2 (path \"n\")",
                code: Code::InvalidArgument,
                ours: Text::Has("jmes path - n for object alias - x does not point to a valid object"),
                upstream: Text::Has("jmes path - false for object alias - x does not point to a valid object"),
            },
        ),
        case("traversal", "- objectName: ../../etc/passwd\n", fail(Code::InvalidArgument, &["path can not contain ../"])).params(OFF),
        case("not YAML", "- objectName: [unclosed\n", fail(Code::InvalidArgument, &["failed to load SecretProviderClass"])),
        case("bad pathTranslation", "- objectName: MySecret\n", fail(Code::InvalidArgument, &["pathTranslation must be either 'False' or a single character string"]))
            .params(&[("pathTranslation", "ab")]),
        case("unknown secret", "- objectName: missing\n", fail(Code::NotFound, &["failed fetching secret missing", "Forbidden.ResourceNotFound"])),
        case("unknown version", "- objectName: pinned\n  objectVersion: nope\n", fail(Code::NotFound, &["failed fetching secret pinned", "Forbidden.ResourceNotFound"])),
        case("unknown OOS parameter", "- objectName: nope\n  objectType: oos\n", fail(Code::NotFound, &["failed fetching secret nope", "EntityNotExists.Parameter"])),
        case("not permitted", "- objectName: bobs\n", fail(Code::PermissionDenied, &["failed fetching secret bobs", "Forbidden.NoPermission"])),
        case("wrong secret key", "- objectName: MySecret\n", fail(Code::PermissionDenied, &["failed fetching secret MySecret", "SignatureDoesNotMatch"]))
            .secrets(NPS_WRONG),
        case("jmesPath on text", "- objectName: text\n  jmesPath:\n    - {path: a, objectAlias: x}\n", fail(Code::InvalidArgument, &["invalid JSON used with jmesPath in secret: text"])),
        case("jmesPath invalid", "- objectName: test\n  jmesPath:\n    - {path: '[[', objectAlias: x}\n", fail(Code::InvalidArgument, &["invalid JMES Path: [["])),
        case(
            "jmesPath missing key",
            "- objectName: test\n  jmesPath:\n    - {path: missing, objectAlias: x}\n",
            fail(Code::InvalidArgument, &["jmes path - missing for object alias - x does not point to a valid object"]),
        ),
        case(
            "jmesPath not a string",
            "- objectName: test\n  jmesPath:\n    - {path: count, objectAlias: x}\n",
            fail(Code::InvalidArgument, &["invalid JMES search result type for path count; only string is allowed"]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_match_the_upstream_provider() -> anyhow::Result<()> {
    let backend = Backend::start().await?;
    emulator_state(&backend.emu);
    let upstream = start_peer(Kind::Upstream, &backend, ENV_AK, 4).await?;
    let ours = start_peer(Kind::Ours, &backend, ENV_AK, 4).await?;
    let request = |c: &Case| c.request(POD, "/tmp/differential-target");
    run_table(&ours, &upstream, &table(), request, |o| o).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_driver_publishes_through_the_upstream_provider() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ObjectMeta, PostParams};
    use secrets_store_testkit::driver::DriverProcess;
    use secrets_store_testkit::process::free_port;
    use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions, tools};

    let backend = Backend::start().await?;
    emulator_state(&backend.emu);
    let upstream = start_peer(Kind::Upstream, &backend, &[], 4).await?;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("ali-upstream").await?;
    let client = cp.client().await?;
    // nodePublishSecretRef credentials, as the seed's AK/SK set-up.
    let creds = Secret {
        metadata: ObjectMeta {
            name: Some("alibaba-credentials".into()),
            labels: Some(BTreeMap::from([(
                "secrets-store.csi.k8s.io/used".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("access_key".to_string(), "AKID-ALICE".to_string()),
            ("access_secret".to_string(), "alice-secret".to_string()),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &creds)
        .await?;
    let objects = "- objectName: MySecret\n- objectName: test\n  jmesPath:\n    - {path: username, objectAlias: MySecretUsername}\n- objectName: app/param\n  objectType: oos\n";
    let params = [("region", REGION), ("objects", objects)];
    create_class(&client, &ns, "seed", "alibabacloud", &params).await?;
    let providers_dir = upstream.dir.path().display().to_string();
    let kubeconfig = cp.kubeconfig().display().to_string();
    let kubelet_root = tempfile::Builder::new().prefix("kubelet-").tempdir()?;
    let driver = DriverProcess::start(
        &tools::workspace_binary("secrets-store-csi-driver")?,
        &[
            "--nodeid=node-upstream-provider".into(),
            format!("--provider-volume={providers_dir}"),
            format!("--kubeconfig={kubeconfig}"),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            format!("--kubelet-dir={}", kubelet_root.path().display()),
        ],
    )
    .await?;
    let kubelet = Kubelet::new(client, driver.socket(), kubelet_root.path()).await?;
    let mut pod = TestPod::new(&ns, "app", "seed");
    pod.volumes[0].node_publish_secret_ref = Some("alibaba-credentials".into());
    let created = kubelet.create_pod(&pod).await?;
    let uid = created.metadata.uid.clone().context("uid")?;
    let published = kubelet
        .publish(&created, "secrets", &TokenOptions::default())
        .await?;
    let logs = || format!("{}\n{}", upstream.process.log(), driver.log());
    published.map_err(|s| anyhow::anyhow!("publish: {s:?}\n{}", logs()))?;
    let files = read_tree(&kubelet.target_path(&uid, "secrets"))?;
    secrets_store_testkit::mounts::unmount_all_under(kubelet_root.path());
    let want: BTreeMap<String, Vec<u8>> = [
        ("MySecret", "my-secret-value"),
        ("test", TEST_JSON),
        ("MySecretUsername", "testuser"),
        ("app_param", "param-value-2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect();
    assert_eq!(files, want, "{}", logs());
    Ok(())
}
