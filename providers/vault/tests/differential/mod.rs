//! Differential: the same Mount requests to our provider and to HashiCorp's
//! vault-csi-provider v1.7.4, against the same OpenBao, with the same HMAC
//! key Secret, judged by the testkit's differential table. Answers must
//! match (paths, modes, contents, versions), except where a row of
//! COMPATIBILITY.md says otherwise; failures must both fail and carry the
//! same substance (ours with a gRPC code, see "Vault: gRPC codes").

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_testkit::differential::{Case, Expect, Outcome, Reply, case, mount, run_table};
use secrets_store_testkit::{ControlPlane, TestPod};
use serde_json::{Value, json};
use tonic::Code;

use secrets_store_testkit::vault::{Kind, OpenBao, ROOT_TOKEN, start_peer, start_peer_with_env};

const TARGET: &str = "/tmp/vault-differential-target";

/// The attributes the driver adds for the pod the requests are for: its
/// identity and its `vault` token.
async fn pod_attributes(ns: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
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
    Ok(vec![
        ("csi.storage.k8s.io/pod.name", "diff".to_string()),
        ("csi.storage.k8s.io/pod.namespace", ns.to_string()),
        ("csi.storage.k8s.io/pod.uid", uid),
        ("csi.storage.k8s.io/serviceAccount.name", "default".into()),
        (
            "csi.storage.k8s.io/serviceAccount.tokens",
            tokens.to_string(),
        ),
    ])
}

fn borrowed<'a>(attrs: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    attrs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Whole-answer JSON files carry Vault's per-read `request_id`, and their
/// versions (keyed hashes of the contents) differ with it: compare the
/// files without it, and only whether each version is set.
fn without_request_id(r: &mut Reply) {
    for (_, _, contents) in &mut r.files {
        let Ok(mut v) = serde_json::from_slice::<Value>(contents) else {
            continue;
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        *contents = serde_json::to_vec(&v).unwrap_or_default();
    }
    for version in r.versions.values_mut() {
        if !version.is_empty() {
            *version = "(set)".into();
        }
    }
}

fn obj(name: &str, path: &str, extra: &str) -> String {
    format!("- objectName: {name}\n  secretPath: {path}\n{extra}")
}

/// The table; `ns` names the namespace's secrets, `role` its Vault role.
fn table(ns: &str, role: &str) -> Vec<Case> {
    use Expect::*;
    let app = format!("secret/data/app/{ns}");
    let bin = format!("{app}-bin");
    let fail = Expect::both_fail;
    let with =
        |name, objects: String, expect| case(name, objects, expect).params(&[("roleName", role)]);
    vec![
        with(
            "kv2 key and mode",
            obj(
                "pw",
                &app,
                "  secretKey: password\n  filePermission: 0600\n",
            ),
            Same,
        ),
        with(
            "kv1 key",
            obj("api", &format!("kv1/app/{ns}"), "  secretKey: api\n"),
            Same,
        ),
        with(
            "non-string value",
            obj("config", &app, "  secretKey: config\n"),
            Same,
        ),
        with(
            "html in a JSON value",
            obj("html", &app, "  secretKey: html\n"),
            Same,
        ),
        with(
            "encodings",
            obj("b", &bin, "  secretKey: b64\n  encoding: base64\n")
                + &obj("h", &bin, "  secretKey: hex\n  encoding: Hex\n"),
            Same,
        ),
        with(
            "two keys of one read, v1 prefix, query",
            obj(
                "user",
                &format!("/v1/{app}?version=1"),
                "  secretKey: username\n",
            ) + &obj("pw", &format!("{app}?version=1"), "  secretKey: password\n"),
            Same,
        ),
        with(
            "token from a TokenRequest",
            obj("pw", &app, "  secretKey: password\n"),
            Same,
        )
        .params(&[("audience", "vault")]),
        with(
            "whole answer",
            obj("all.json", &app, ""),
            Equivalent {
                why: "the per-read request_id",
                canonical: without_request_id,
            },
        ),
        case(
            "no roleName",
            obj("a", &app, ""),
            fail(
                Code::InvalidArgument,
                &["missing 'roleName' in SecretProviderClass definition"],
            ),
        ),
        with(
            "no objects",
            String::new(),
            fail(
                Code::InvalidArgument,
                &["no secrets configured - the provider will not read any secret material"],
            ),
        )
        .without(&["objects"]),
        with(
            "duplicates",
            obj("a", &app, "") + &obj("a", &app, ""),
            fail(
                Code::InvalidArgument,
                &[
                    "each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: a",
                ],
            ),
        ),
        with(
            "both mount paths",
            obj("a", &app, ""),
            fail(
                Code::InvalidArgument,
                &["cannot set both vaultKubernetesMountPath and vaultAuthMountPath"],
            ),
        )
        .params(&[
            ("vaultAuthMountPath", "a"),
            ("vaultKubernetesMountPath", "b"),
        ]),
        with(
            "bad vaultSkipTLSVerify",
            obj("a", &app, ""),
            fail(
                Code::InvalidArgument,
                &["strconv.ParseBool: parsing \"yes\": invalid syntax"],
            ),
        )
        .params(&[("vaultSkipTLSVerify", "yes")]),
        with(
            "missing key",
            obj("a", &app, "  secretKey: nope\n"),
            fail(
                Code::NotFound,
                &[&format!(
                    "error making mount request: {{{app}}}: {{key \"nope\" does not exist at the secret path}}"
                )],
            ),
        ),
        with(
            "bad encoding",
            obj("a", &app, "  secretKey: password\n  encoding: utf-16\n"),
            fail(
                Code::InvalidArgument,
                &["invalid encoding type. Should be utf-8, base64, or hex"],
            ),
        ),
        with(
            "bad base64",
            obj("a", &bin, "  secretKey: hex\n  encoding: base64\n"),
            fail(
                Code::InvalidArgument,
                &[&format!("{{{bin}}}: {{illegal base64 data at input byte ")],
            ),
        ),
        case(
            "wrong role",
            obj("a", &app, ""),
            fail(
                Code::InvalidArgument,
                &[
                    "error making mount request: couldn't read secret \"a\": failed to login: ",
                    "/v1/auth/kubernetes/login",
                    "Code: 400. Errors:",
                    "invalid role name \"nope\"",
                ],
            ),
        )
        .params(&[("roleName", "nope")]),
        with(
            "denied path",
            obj("a", &format!("secret/data/denied/{ns}"), ""),
            fail(
                Code::PermissionDenied,
                &[
                    "error making mount request: couldn't read secret \"a\": error requesting secret: ",
                    "Code: 403. Errors:",
                    "permission denied",
                ],
            ),
        ),
        with(
            "missing path",
            obj("a", &format!("{app}-missing"), ""),
            fail(
                Code::NotFound,
                &[
                    "couldn't read secret \"a\": error requesting secret: ",
                    "Code: 404. Errors:",
                ],
            ),
        ),
        with(
            "unsafe file name",
            obj("../x", &app, "  secretKey: password\n"),
            OnlyOursFails {
                why: "COMPATIBILITY.md \"Vault: file names\"",
                code: Code::InvalidArgument,
                substance: "object \"../x\": ",
            },
        ),
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
    let ours = start_peer(Kind::Ours, bao, &[]).await?;
    let upstream = start_peer(Kind::Upstream, bao, &[]).await?;
    let attrs = pod_attributes(&ns).await?;
    let pod = borrowed(&attrs);
    let request = |c: &Case| c.request(&pod, TARGET);
    let sorted = |o: Outcome| o.map(Reply::sorted);
    run_table(&ours, &upstream, &table(&ns, &role), request, sorted).await?;

    // Versions change with the contents, the same way on both.
    let app = format!("secret/data/app/{ns}");
    let (mut oc, mut uc) = (ours.client().await?, upstream.client().await?);
    let req = request(&table(&ns, &role)[0]);
    let before = mount(&mut oc, req.clone()).await;
    bao.api("POST", &app, Some(json!({"data": {"password": "changed"}})))
        .await?;
    let (o, u) = (mount(&mut oc, req.clone()).await, mount(&mut uc, req).await);
    match (&before, &o, &u) {
        (Ok(b), Ok(o), Ok(u)) => {
            assert_ne!(b.versions, o.versions, "our version did not change");
            assert_eq!(o, u, "after the change");
        }
        other => panic!("versions: {other:?}\n--- ours\n{}", ours.log()),
    }
    crate::assert_clean(&ours.log(), &[]);
    Ok(())
}

/// A request with no pod attributes and these parameters.
fn bare_request(objects: String, params: &[(&str, &str)]) -> pb::MountRequest {
    case("bare", objects, Expect::Same)
        .params(params)
        .request(&[], TARGET)
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
    let req = bare_request(
        obj("pw", &app, "  secretKey: password\n"),
        &[("roleName", "unused")],
    );
    let first = mount(&mut c, req.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}\n{}", ours.log()))?;
    assert_eq!(first.file("pw"), Some((0o644, crate::CANARY.as_bytes())));
    bao.api("POST", &app, Some(json!({"data": {"password": "changed"}})))
        .await?;
    let second = mount(&mut c, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(second.file("pw").map(|f| f.1), Some(&b"changed"[..]));
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
    let with = |extra: &[(&str, &str)]| {
        bare_request(objects.clone(), &[&[("roleName", "r")], extra].concat())
    };
    let ok = |o: Outcome| -> anyhow::Result<Vec<u8>> {
        let reply = o.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(reply.file("k").context("no file k")?.1.to_vec())
    };
    let addr_127 = ("vaultAddress", addr.as_str());
    let ca_param = ("vaultCACertPath", ca.as_str());
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127, ca_param])).await)?,
        b"tls-value"
    );
    let named = ("vaultTLSServerName", "localhost4");
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127, ca_param, named])).await)?,
        b"tls-value"
    );
    let skip = ("vaultSkipTLSVerify", "true");
    assert_eq!(
        ok(mount(&mut c, with(&[addr_127, skip])).await)?,
        b"tls-value"
    );
    let wrong_name = ("vaultTLSServerName", "other.test");
    let (_, err) = mount(&mut c, with(&[addr_127, ca_param, wrong_name]))
        .await
        .expect_err("wrong name");
    assert!(
        err.contains("couldn't read secret \"k\": error requesting secret: GET https://127.0.0.1:")
            && err.contains("certificate"),
        "{err}"
    );
    let (_, err) = mount(&mut c, with(&[addr_127]))
        .await
        .expect_err("untrusted");
    assert!(err.contains("certificate"), "{err}");
    Ok(())
}
