//! Differential: the same Mount requests to our provider and to HashiCorp's
//! vault-csi-provider v1.7.4, against the same OpenBao, with the same HMAC
//! key Secret. Answers must match (paths, modes, contents, versions), except
//! where a row of COMPATIBILITY.md says otherwise; failures must both fail
//! and carry the same substance.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use secrets_store_testkit::TestPod;
use serde_json::{Value, json};
use tonic::transport::Channel;

use secrets_store_testkit::ControlPlane;
use secrets_store_testkit::vault::{Kind, OpenBao, ROOT_TOKEN, start_peer, start_peer_with_env};

/// Files (path → mode, contents) and versions (id → version).
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    files: BTreeMap<String, (i32, Vec<u8>)>,
    versions: BTreeMap<String, String>,
}

type Outcome = Result<Reply, String>;

/// What the two answers must have in common.
enum Expect {
    /// Identical answers.
    Same,
    /// Identical but for per-read fields of whole-answer JSON files
    /// (`request_id`), hence also their versions.
    SameJson,
    /// Both fail; both messages hold every substring.
    BothFail(Vec<String>),
    /// COMPATIBILITY.md "Vault: file names": ours refuses, upstream passes
    /// the name on (the driver refuses it later).
    OursRefuses(&'static str),
}

struct Case {
    name: &'static str,
    params: Vec<(&'static str, String)>,
    expect: Expect,
}

async fn mount(c: &mut CsiDriverProviderClient<Channel>, req: pb::MountRequest) -> Outcome {
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
        Err(s) => Err(s.message().to_string()),
    }
}

/// The pod the requests are for, and its `vault` token.
struct PodIdentity {
    attrs: BTreeMap<String, String>,
}

async fn pod_identity(ns: &str) -> anyhow::Result<PodIdentity> {
    let client = ControlPlane::shared().await?.client().await?;
    let pod = TestPod::new(ns, "diff", "diff").create(&client).await?;
    let uid = pod.metadata.uid.clone().context("uid")?;
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["vault".into()]),
            expiration_seconds: Some(3600),
            bound_object_ref: Some(BoundObjectReference {
                kind: Some("Pod".into()),
                api_version: Some("v1".into()),
                name: Some("diff".into()),
                uid: Some(uid.clone()),
            }),
        }),
        ..Default::default()
    };
    let tr = Api::<ServiceAccount>::namespaced(client, ns)
        .create_token_request("default", &PostParams::default(), &req)
        .await?;
    let token = tr.status.and_then(|s| s.token).context("no token")?;
    let tokens = json!({"vault": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}});
    let attrs = [
        ("csi.storage.k8s.io/pod.name", "diff".to_string()),
        ("csi.storage.k8s.io/pod.namespace", ns.to_string()),
        ("csi.storage.k8s.io/pod.uid", uid),
        ("csi.storage.k8s.io/serviceAccount.name", "default".into()),
        (
            "csi.storage.k8s.io/serviceAccount.tokens",
            tokens.to_string(),
        ),
    ];
    Ok(PodIdentity {
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    })
}

fn request(pod: &PodIdentity, params: &[(&str, String)]) -> pb::MountRequest {
    let mut attrs = pod.attrs.clone();
    for (k, v) in params {
        attrs.insert(k.to_string(), v.clone());
    }
    pb::MountRequest {
        attributes: serde_json::to_string(&attrs).unwrap_or_default(),
        secrets: "{}".into(),
        target_path: "/tmp/vault-differential-target".into(),
        permission: "420".into(),
        current_object_version: vec![],
    }
}

/// A whole-answer JSON file without its per-read fields.
fn stable_json(contents: &[u8]) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(contents).ok()?;
    v.as_object_mut()?.remove("request_id");
    Some(v)
}

fn judge(case: &Case, ours: &Outcome, upstream: &Outcome) -> Option<String> {
    let name = case.name;
    match (&case.expect, ours, upstream) {
        (Expect::Same, Ok(o), Ok(u)) if o == u => None,
        (Expect::SameJson, Ok(o), Ok(u)) => {
            let files_match = o.files.len() == u.files.len()
                && o.files
                    .iter()
                    .zip(&u.files)
                    .all(|((op, (om, oc)), (up, (um, uc)))| {
                        op == up
                            && om == um
                            && stable_json(oc).is_some()
                            && stable_json(oc) == stable_json(uc)
                    });
            let versions = o.versions.keys().eq(u.versions.keys())
                && o.versions.values().all(|v| !v.is_empty());
            (!(files_match && versions)).then(|| format!("{name}: ours {o:?}\n upstream {u:?}"))
        }
        (Expect::BothFail(substance), Err(o), Err(u)) => {
            let missing: Vec<&String> = substance
                .iter()
                .filter(|s| !o.contains(s.as_str()) || !u.contains(s.as_str()))
                .collect();
            (!missing.is_empty())
                .then(|| format!("{name}: {missing:?} missing:\n ours {o}\n upstream {u}"))
        }
        (Expect::OursRefuses(why), Err(o), Ok(_)) if o.contains(why) => None,
        (_, o, u) => Some(format!(
            "{name}: unexpected outcomes:\n ours {o:?}\n upstream {u:?}"
        )),
    }
}

fn obj(name: &str, path: &str, extra: &str) -> String {
    format!("- objectName: {name}\n  secretPath: {path}\n{extra}")
}

fn cases(ns: &str, role: &str) -> Vec<Case> {
    let app = format!("secret/data/app/{ns}");
    let bin = format!("{app}-bin");
    let with = |objects: String| vec![("roleName", role.to_string()), ("objects", objects)];
    let fail = |s: &[&str]| Expect::BothFail(s.iter().map(|x| x.to_string()).collect());
    vec![
        Case {
            name: "kv2 key and mode",
            params: with(obj(
                "pw",
                &app,
                "  secretKey: password\n  filePermission: 0600\n",
            )),
            expect: Expect::Same,
        },
        Case {
            name: "kv1 key",
            params: with(obj("api", &format!("kv1/app/{ns}"), "  secretKey: api\n")),
            expect: Expect::Same,
        },
        Case {
            name: "non-string value",
            params: with(obj("config", &app, "  secretKey: config\n")),
            expect: Expect::Same,
        },
        Case {
            name: "html in a JSON value",
            params: with(obj("html", &app, "  secretKey: html\n")),
            expect: Expect::Same,
        },
        Case {
            name: "encodings",
            params: with(
                obj("b", &bin, "  secretKey: b64\n  encoding: base64\n")
                    + &obj("h", &bin, "  secretKey: hex\n  encoding: Hex\n"),
            ),
            expect: Expect::Same,
        },
        Case {
            name: "two keys of one read, v1 prefix, query",
            params: with(
                obj(
                    "user",
                    &format!("/v1/{app}?version=1"),
                    "  secretKey: username\n",
                ) + &obj("pw", &format!("{app}?version=1"), "  secretKey: password\n"),
            ),
            expect: Expect::Same,
        },
        Case {
            name: "token from a TokenRequest",
            params: vec![
                ("roleName", role.to_string()),
                ("audience", "vault".into()),
                ("objects", obj("pw", &app, "  secretKey: password\n")),
            ],
            expect: Expect::Same,
        },
        Case {
            name: "whole answer",
            params: with(obj("all.json", &app, "")),
            expect: Expect::SameJson,
        },
        Case {
            name: "no roleName",
            params: vec![("objects", obj("a", &app, ""))],
            expect: fail(&["missing 'roleName' in SecretProviderClass definition"]),
        },
        Case {
            name: "no objects",
            params: vec![("roleName", role.into())],
            expect: fail(&[
                "no secrets configured - the provider will not read any secret material",
            ]),
        },
        Case {
            name: "duplicates",
            params: with(obj("a", &app, "") + &obj("a", &app, "")),
            expect: fail(&[
                "each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: a",
            ]),
        },
        Case {
            name: "both mount paths",
            params: vec![
                ("roleName", role.into()),
                ("vaultAuthMountPath", "a".into()),
                ("vaultKubernetesMountPath", "b".into()),
                ("objects", obj("a", &app, "")),
            ],
            expect: fail(&["cannot set both vaultKubernetesMountPath and vaultAuthMountPath"]),
        },
        Case {
            name: "bad vaultSkipTLSVerify",
            params: vec![
                ("roleName", role.into()),
                ("vaultSkipTLSVerify", "yes".into()),
                ("objects", obj("a", &app, "")),
            ],
            expect: fail(&["strconv.ParseBool: parsing \"yes\": invalid syntax"]),
        },
        Case {
            name: "missing key",
            params: with(obj("a", &app, "  secretKey: nope\n")),
            expect: fail(&[&format!(
                "error making mount request: {{{app}}}: {{key \"nope\" does not exist at the secret path}}"
            )]),
        },
        Case {
            name: "bad encoding",
            params: with(obj(
                "a",
                &app,
                "  secretKey: password\n  encoding: utf-16\n",
            )),
            expect: fail(&["invalid encoding type. Should be utf-8, base64, or hex"]),
        },
        Case {
            name: "bad base64",
            params: with(obj("a", &bin, "  secretKey: hex\n  encoding: base64\n")),
            expect: fail(&[&format!("{{{bin}}}: {{illegal base64 data at input byte ")]),
        },
        Case {
            name: "wrong role",
            params: vec![("roleName", "nope".into()), ("objects", obj("a", &app, ""))],
            expect: fail(&[
                "error making mount request: couldn't read secret \"a\": failed to login: ",
                "/v1/auth/kubernetes/login",
                "Code: 400. Errors:",
                "invalid role name \"nope\"",
            ]),
        },
        Case {
            name: "denied path",
            params: with(obj("a", &format!("secret/data/denied/{ns}"), "")),
            expect: fail(&[
                "error making mount request: couldn't read secret \"a\": error requesting secret: ",
                "Code: 403. Errors:",
                "permission denied",
            ]),
        },
        Case {
            name: "missing path",
            params: with(obj("a", &format!("{app}-missing"), "")),
            expect: fail(&[
                "couldn't read secret \"a\": error requesting secret: ",
                "Code: 404. Errors:",
            ]),
        },
        Case {
            name: "unsafe file name",
            params: with(obj("../x", &app, "  secretKey: password\n")),
            expect: Expect::OursRefuses("object \"../x\": "),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_match_the_upstream_provider() -> anyhow::Result<()> {
    let bao = OpenBao::shared().await?;
    let ns = ControlPlane::shared()
        .await?
        .namespace("vault-diff")
        .await?;
    let role = crate::seed_namespace(bao, &ns).await?;
    let app = format!("secret/data/app/{ns}");
    let ours = start_peer(Kind::Ours, bao, &[]).await?;
    let upstream = start_peer(Kind::Upstream, bao, &[]).await?;
    let (mut oc, mut uc) = (ours.client().await?, upstream.client().await?);
    let pod = pod_identity(&ns).await?;
    let mut problems = Vec::new();
    let cases = cases(&ns, &role);
    for case in &cases {
        let req = request(&pod, &case.params);
        let (o, u) = (mount(&mut oc, req.clone()).await, mount(&mut uc, req).await);
        problems.extend(judge(case, &o, &u));
    }
    // Versions change with the contents, the same way on both.
    let req = request(&pod, &cases[0].params);
    let before = mount(&mut oc, req.clone()).await;
    bao.api("POST", &app, Some(json!({"data": {"password": "changed"}})))
        .await?;
    let (o, u) = (mount(&mut oc, req.clone()).await, mount(&mut uc, req).await);
    match (&before, &o, &u) {
        (Ok(b), Ok(o), Ok(u)) => {
            assert_ne!(b.versions, o.versions, "our version did not change");
            assert_eq!(o, u, "after the change");
        }
        other => problems.push(format!("versions: {other:?}")),
    }
    assert!(
        problems.is_empty(),
        "{}\n--- ours\n{}\n--- upstream\n{}",
        problems.join("\n"),
        ours.log(),
        upstream.log()
    );
    crate::assert_clean(&ours.log(), &[]);
    Ok(())
}

/// Standalone use: no Kubernetes client, `VAULT_TOKEN` set (the standalone
/// CLI's demo runs the provider this way). Mounts read with that token, and
/// versions come from a per-process key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_kubernetes_vault_token_reads_and_versions_still_change() -> anyhow::Result<()> {
    let bao = OpenBao::shared().await?;
    let ns = ControlPlane::shared()
        .await?
        .namespace("vault-token")
        .await?;
    crate::seed_namespace(bao, &ns).await?;
    let env = [("KUBECONFIG", "/nonexistent"), ("VAULT_TOKEN", ROOT_TOKEN)];
    let ours = start_peer_with_env(Kind::Ours, bao, &[], &env).await?;
    let mut c = ours.client().await?;
    let app = format!("secret/data/app/{ns}");
    let params = vec![
        ("roleName", "unused".to_string()),
        ("objects", obj("pw", &app, "  secretKey: password\n")),
    ];
    let req = request(
        &PodIdentity {
            attrs: BTreeMap::new(),
        },
        &params,
    );
    let first = mount(&mut c, req.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", ours.log()))?;
    assert_eq!(
        first.files["pw"],
        (0o644, crate::CANARY.as_bytes().to_vec())
    );
    bao.api("POST", &app, Some(json!({"data": {"password": "changed"}})))
        .await?;
    let second = mount(&mut c, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(second.files["pw"].1, b"changed");
    assert_ne!(first.versions["pw"], second.versions["pw"]);
    assert!(!first.versions["pw"].is_empty());
    let log = ours.log();
    assert!(log.contains("VAULT_TOKEN is set"), "{log}");
    assert!(!log.contains("vault login successful"), "no login: {log}");
    crate::assert_clean(&log, &[]);
    Ok(())
}

/// TLS to Vault: a CA file, a server name other than the address's host,
/// skipping verification, and a clear error for an untrusted certificate,
/// against OpenBao's dev TLS listener (its certificate names `localhost4`
/// and `127.0.0.1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_reach_a_tls_openbao() -> anyhow::Result<()> {
    use secrets_store_provider_sdk::Redacted;
    use secrets_store_provider_vault::client::{Call, VaultClient};
    use secrets_store_provider_vault::params::TlsSettings;
    use secrets_store_testkit::process::{Process, free_port};

    let bao = OpenBao::shared().await?;
    let dir = tempfile::Builder::new().prefix("openbao-tls-").tempdir()?;
    let port = free_port()?;
    let home = dir.path().display().to_string();
    let _bao = Process::spawn(
        "openbao (tls)",
        &secrets_store_testkit::tools::tool("bao")?,
        &[
            "server".into(),
            "-dev".into(),
            "-dev-tls".into(),
            format!("-dev-tls-cert-dir={home}"),
            "-dev-root-token-id=root".into(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ],
        &[("HOME", &home)],
        &dir.path().join("bao.log"),
    )?;
    let ca = dir.path().join("vault-ca.pem").display().to_string();
    let addr = format!("https://127.0.0.1:{port}");
    let tls = TlsSettings {
        ca_cert: Some(ca.clone()),
        ..TlsSettings::default()
    };
    let root = Redacted::new("root".to_string());
    let body = Redacted::new(br#"{"data":{"k":"tls-value"}}"#.to_vec());
    secrets_store_testkit::wait_for(
        "openbao over TLS",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || {
            let (tls, addr, root, body) = (tls.clone(), addr.clone(), root.clone(), body.clone());
            async move {
                let Ok(http) = secrets_store_provider_vault::tls::client(&tls) else {
                    return Ok(None);
                };
                let c = VaultClient::new(http, &addr, None, std::time::Duration::from_secs(5), 0);
                let call = Call {
                    method: "POST",
                    path: "secret/data/tls",
                    token: Some(&root),
                    body: Some(body),
                };
                Ok(c.send(&call).await.ok().map(|_| ()))
            }
        },
    )
    .await?;
    let env = [("KUBECONFIG", "/nonexistent"), ("VAULT_TOKEN", "root")];
    let ours = start_peer_with_env(Kind::Ours, bao, &[], &env).await?;
    let mut c = ours.client().await?;
    let objects = obj("k", "secret/data/tls", "  secretKey: k\n");
    let with = |extra: &[(&'static str, String)]| {
        let mut p = vec![("roleName", "r".to_string()), ("objects", objects.clone())];
        p.extend_from_slice(extra);
        request(
            &PodIdentity {
                attrs: BTreeMap::new(),
            },
            &p,
        )
    };
    let ok = |o: Outcome| -> anyhow::Result<Vec<u8>> {
        o.map(|r| r.files["k"].1.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let addr_127 = ("vaultAddress", addr.clone());
    let ca_param = ("vaultCACertPath", ca.clone());
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127.clone(), ca_param.clone()])).await)?,
        b"tls-value"
    );
    let named = ("vaultTLSServerName", "localhost4".to_string());
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127.clone(), ca_param.clone(), named])).await)?,
        b"tls-value"
    );
    let skip = ("vaultSkipTLSVerify", "true".to_string());
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127.clone(), skip])).await)?,
        b"tls-value"
    );
    let wrong_name = ("vaultTLSServerName", "other.test".to_string());
    let err = mount(&mut c, with(&[addr_127.clone(), ca_param, wrong_name]))
        .await
        .expect_err("wrong name");
    assert!(
        err.contains("couldn't read secret \"k\": error requesting secret: GET https://127.0.0.1:")
            && err.contains("certificate"),
        "{err}"
    );
    let err = mount(&mut c, with(&[addr_127]))
        .await
        .expect_err("untrusted");
    assert!(err.contains("certificate"), "{err}");
    Ok(())
}
