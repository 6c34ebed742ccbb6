//! RBAC proof: the driver runs its flows (publish with tokens, secret sync,
//! rotation on republish, the refresh loop minting tokens and reading a
//! labelled nodePublishSecretRef, unpublish) authenticated as the chart's
//! ServiceAccount, with only the chart's rendered RBAC applied and the API
//! server's audit log on. Every request it makes must be allowed, and every
//! permission the chart grants it must show up in the audit log, apart from
//! the exceptions below. What the driver calls is read from the audit log at
//! test time, so a change in the driver's API use shows up here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassSpec,
};
use secrets_store_deploy_tests::audit::{self, Request};
use secrets_store_deploy_tests::helm::Render;
use secrets_store_deploy_tests::objects::{self, kind};
use secrets_store_deploy_tests::rbac::{self, Permission};
use secrets_store_deploy_tests::{driver_chart, run, values_file};
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::fake_provider::{Behavior, FakeProvider};
use secrets_store_testkit::tools::{tool, workspace_binary};
use secrets_store_testkit::{
    ControlPlane, ControlPlaneOptions, Kubelet, TestPod, TokenOptions, wait_for,
};

const SA: &str = "secrets-store-csi-driver";

/// Granted on purpose although these flows do not use them.
const UNUSED_ON_PURPOSE: &[(&str, &str, &str, &str)] = &[
    (
        "events.k8s.io",
        "events",
        "patch",
        "kube-runtime's event recorder patches an Event only when the same event repeats within its cache window",
    ),
    (
        "secrets-store.csi.x-k8s.io",
        "secretproviderclasses",
        "get",
        "classes come from the driver's watch; a GET happens only before the watch has listed a class or when it is refused",
    ),
];

/// Applies the chart's rendered objects except the DaemonSet (the test runs
/// the driver itself), for real.
fn apply_chart(cp: &ControlPlane, ns: &str, dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let yaml = Render::new(&driver_chart(), "sscsi", ns)
        .values(&values_file("all-features.yaml"))
        .template()?;
    let objs: Vec<_> = objects::parse(&yaml)?
        .into_iter()
        .filter(|o| kind(o) != "DaemonSet")
        .collect();
    let file = dir.join("rbac.json");
    std::fs::write(
        &file,
        serde_json::to_vec(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objs}),
        )?,
    )?;
    run(Command::new(tool("kubectl")?)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(["apply", "-f"])
        .arg(&file))?;
    Ok(objs)
}

/// Waits until the API server's authorizer allows each permission to the
/// ServiceAccount (RBAC objects reach the authorizer through its caches).
async fn wait_until_effective(
    cp: &ControlPlane,
    ns: &str,
    granted: &BTreeSet<Permission>,
) -> anyhow::Result<()> {
    let reviews: Api<SubjectAccessReview> = Api::all(cp.client().await?);
    for p in granted {
        let (resource, subresource) = match p.resource.split_once('/') {
            Some((r, s)) => (r.to_string(), Some(s.to_string())),
            None => (p.resource.clone(), None),
        };
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{ns}:{SA}")),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.clone()),
                    resource: Some(resource),
                    subresource,
                    verb: Some(p.verb.clone()),
                    namespace: Some(ns.into()),
                    name: Some("secrets-store.csi.k8s.io".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        wait_for(
            &format!("RBAC to allow {p}"),
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let (reviews, review) = (reviews.clone(), review.clone());
                async move {
                    let status = reviews
                        .create(&PostParams::default(), &review)
                        .await?
                        .status;
                    Ok(status.is_some_and(|s| s.allowed).then_some(()))
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// A kubeconfig authenticating as the chart's ServiceAccount with a
/// TokenRequest token.
async fn service_account_kubeconfig(
    cp: &ControlPlane,
    ns: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let sas: Api<ServiceAccount> = Api::namespaced(cp.client().await?, ns);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request(SA, &PostParams::default(), &req)
        .await?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| anyhow::anyhow!("TokenRequest returned no token"))?;
    cp.write_kubeconfig(&token, path)
}

async fn create_fixtures(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    let spcs: Api<SecretProviderClass> = Api::namespaced(client.clone(), ns);
    let spec = SecretProviderClassSpec {
        provider: "fake".into(),
        parameters: [("objects".to_string(), "x".to_string())].into(),
        secret_objects: vec![SecretObject {
            secret_name: "synced".into(),
            type_: "Opaque".into(),
            data: vec![SecretObjectData {
                object_name: "f".into(),
                key: "value".into(),
            }],
            ..Default::default()
        }],
    };
    spcs.create(
        &PostParams::default(),
        &SecretProviderClass::new("app", spec),
    )
    .await?;
    let mut creds = Secret::default();
    creds.metadata.name = Some("creds".into());
    creds.metadata.labels = Some(
        [(
            "secrets-store.csi.k8s.io/used".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    creds.string_data = Some([("access_key".to_string(), "AK".to_string())].into());
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &creds)
        .await?;
    Ok(())
}

async fn wait_for_file(path: &Path, want: &'static [u8], what: &str) -> anyhow::Result<()> {
    wait_for(
        what,
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let now = std::fs::read(path).unwrap_or_default();
            async move { Ok((now == want).then_some(())) }
        },
    )
    .await
}

/// Runs every flow; the driver is killed when this returns.
async fn run_flows(cp: &ControlPlane, ns: &str, dir: &Path) -> anyhow::Result<()> {
    let admin = cp.client().await?;
    let kubeconfig = dir.join("driver.kubeconfig");
    service_account_kubeconfig(cp, ns, &kubeconfig).await?;
    create_fixtures(&admin, ns).await?;
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers)?;
    let kubelet_root = dir.join("kubelet");
    let provider = FakeProvider::start(&providers, "fake").await?;
    provider.set(Behavior::files(&[("f", b"v1", 0o644)], &[("f", "1")]));
    let args: Vec<String> = vec![
        "--nodeid=node-1".into(),
        format!("--provider-volume={}", providers.display()),
        "--additional-provider-volume-paths=".into(),
        "--metrics-addr=127.0.0.1:0".into(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--kubelet-dir={}", kubelet_root.display()),
        format!("--state-dir={}", dir.join("state").display()),
        "--enable-secret-rotation".into(),
        "--rotation-poll-interval=1s".into(),
        "--enable-refresh-loop".into(),
    ];
    let driver =
        DriverProcess::start(&workspace_binary("secrets-store-csi-driver")?, &args).await?;
    let kubelet = Kubelet::new(admin.clone(), driver.socket(), &kubelet_root).await?;
    let mut spec = TestPod::new(ns, "app", "app");
    spec.volumes[0].node_publish_secret_ref = Some("creds".into());
    let pod = kubelet.create_pod(&spec).await?;
    let tokens = TokenOptions {
        audiences: vec!["sts.aliyuncs.com".into(), "vault".into()],
        in_secrets: true,
        ..Default::default()
    };
    kubelet.publish(&pod, "secrets", &tokens).await??;
    let file = kubelet
        .target_path(pod.metadata.uid.as_deref().unwrap_or_default(), "secrets")
        .join("f");
    assert_eq!(std::fs::read(&file)?, b"v1");

    // The refresh loop (no republish): tokens minted by the driver, the
    // labelled nodePublishSecretRef read, the synced Secret updated.
    provider.set(Behavior::files(&[("f", b"v2", 0o644)], &[("f", "2")]));
    wait_for_file(&file, b"v2", "the refresh loop to refresh the volume").await?;
    // Rotation on kubelet's republish.
    provider.set(Behavior::files(&[("f", b"v3", 0o644)], &[("f", "3")]));
    wait_for(
        "a republish to rotate the volume",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let (kubelet, pod, tokens, file) = (&kubelet, &pod, &tokens, &file);
            async move {
                kubelet.publish(pod, "secrets", tokens).await??;
                Ok((std::fs::read(file)? == b"v3").then_some(()))
            }
        },
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    wait_for(
        "the synced Secret to follow",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let secrets = secrets.clone();
            async move {
                let data = secrets.get_opt("synced").await?.and_then(|s| s.data);
                let value = data.and_then(|d| d.get("value").map(|v| v.0.clone()));
                Ok((value.as_deref() == Some(&b"v3"[..])).then_some(()))
            }
        },
    )
    .await?;
    kubelet.unpublish(&pod, "secrets").await??;
    // The audit log is written before each response (blocking mode): it
    // already holds every request; the driver is killed when dropped.
    drop(driver);
    Ok(())
}

#[tokio::test]
async fn driver_flows_as_the_chart_service_account_use_exactly_what_the_chart_grants()
-> anyhow::Result<()> {
    let cp = ControlPlane::start(ControlPlaneOptions {
        audit_log: true,
        ..Default::default()
    })
    .await?;
    let ns = cp.namespace("sscsi").await?;
    let dir = tempfile::Builder::new().prefix("rbac-proof-").tempdir()?;
    let objs = apply_chart(&cp, &ns, dir.path())?;
    let roles = rbac::roles_bound_to(&objs, &ns, SA);
    let granted = rbac::granted(&objs, &roles)?;
    wait_until_effective(&cp, &ns, &granted).await?;
    let flows = run_flows(&cp, &ns, dir.path()).await;
    secrets_store_testkit::mounts::unmount_all_under(dir.path());
    flows?;

    let log = cp
        .audit_log()
        .ok_or_else(|| anyhow::anyhow!("no audit log"))?;
    let user = format!("system:serviceaccount:{ns}:{SA}");
    let requests = audit::requests_of(log, &user)?;
    assert!(
        !requests.is_empty(),
        "no request by {user} in the audit log"
    );

    let refused: Vec<&Request> = requests.iter().filter(|r| r.code == 403).collect();
    assert!(
        refused.is_empty(),
        "requests the chart's RBAC refuses: {refused:#?}"
    );
    let used: BTreeSet<Permission> = requests.iter().map(Request::permission).collect();
    let excused: BTreeSet<Permission> = UNUSED_ON_PURPOSE
        .iter()
        .map(|(g, r, v, _why)| Permission::new(g, r, v))
        .collect();
    let unused: Vec<String> = granted
        .difference(&used)
        .filter(|p| !excused.contains(p))
        .map(ToString::to_string)
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants the driver what it never used: {unused:?}\n(roles {roles:?}; used: {:?})",
        used.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    for p in &excused {
        assert!(
            granted.contains(p),
            "exception {p} is no longer granted; remove it"
        );
    }
    Ok(())
}
