//! The charts lint and render for the driver chart's default values,
//! upstream v1.6.0's own values.yaml and an all-features values file (and
//! the Alibaba chart with our driver chart as its vendored dependency); every
//! rendered object is accepted by a real API server (server-side dry run) and
//! validates with kubeconform against schemas made from that API server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use secrets_store_deploy_tests::helm::{KUBE_VERSION, Render};
use secrets_store_deploy_tests::objects::{self, args, daemonset_container, find, kind};
use secrets_store_deploy_tests::{
    alibaba_chart, aws_chart, driver_chart, run, schemas, values_file,
};
use secrets_store_testkit::ControlPlane;
use secrets_store_testkit::tools::{go_module_dir, tool, workspace_binary};
use serde_json::Value;

/// upstream's chart values, read from the upstream module at test time.
fn upstream_values() -> anyhow::Result<PathBuf> {
    let dir = go_module_dir("sigs.k8s.io/secrets-store-csi-driver", "v1.6.0")?;
    Ok(dir.join("charts/secrets-store-csi-driver/values.yaml"))
}

/// Lints and renders, applies with `--dry-run=server`, runs kubeconform;
/// returns the objects.
async fn check(cp: &ControlPlane, render: &Render, dir: &Path) -> anyhow::Result<Vec<Value>> {
    render.lint()?;
    let yaml = render.template()?;
    let objs = objects::parse(&yaml)?;
    anyhow::ensure!(!objs.is_empty(), "nothing rendered");
    let file = dir.join(format!("{}.yaml", render.release));
    std::fs::write(&file, &yaml)?;

    let applied = run(Command::new(tool("kubectl")?)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(["apply", "--dry-run=server", "-f"])
        .arg(&file))?;
    assert_eq!(
        applied.matches("(server dry run)").count(),
        objs.len(),
        "{applied}"
    );

    let kinds: BTreeSet<(String, String)> = objs
        .iter()
        .map(|o| {
            (
                o["apiVersion"].as_str().unwrap_or_default().to_string(),
                kind(o).to_string(),
            )
        })
        .collect();
    let schema_dir = dir.join(format!("schemas-{}", render.release));
    std::fs::create_dir_all(&schema_dir)?;
    let openapi = schemas::fetch_openapi(&cp.client().await?).await?;
    schemas::write(&openapi, &kinds, &schema_dir)?;
    let report = kubeconform(&schema_dir, &file)?;
    let want = format!("Valid: {}, Invalid: 0, Errors: 0, Skipped: 0", objs.len());
    assert!(report.contains(&want), "kubeconform: {report}");
    Ok(objs)
}

fn kubeconform(schema_dir: &Path, file: &Path) -> anyhow::Result<String> {
    let out = Command::new(tool("kubeconform")?)
        .args(["-strict", "-summary", "-kubernetes-version", KUBE_VERSION])
        .arg("-schema-location")
        .arg(schemas::location(schema_dir))
        .arg(file)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rules_names(objs: &[Value], k: &str) -> BTreeSet<String> {
    objs.iter()
        .filter(|o| kind(o) == k)
        .map(|o| objects::name(o).to_string())
        .collect()
}

const USER_ROLES: [&str; 3] = [
    "secretproviderclasses-admin-role",
    "secretproviderclasses-viewer-role",
    "secretproviderclasspodstatuses-viewer-role",
];

/// Every flag the chart passes exists in our driver.
fn assert_driver_accepts(flags: &[String]) -> anyhow::Result<()> {
    let help = run(Command::new(workspace_binary("secrets-store-csi-driver")?).arg("--help"))?;
    for flag in flags {
        let name = flag.split('=').next().unwrap_or(flag);
        let listed = [' ', '=', '[', ',']
            .iter()
            .any(|c| help.contains(&format!("{name}{c}")));
        assert!(listed, "the driver has no {name}:\n{help}");
    }
    Ok(())
}

#[tokio::test]
async fn driver_chart_defaults_render_our_daemonset_csidriver_and_rbac() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-default").await?;
    let dir = tempfile::tempdir()?;
    let objs = check(cp, &Render::new(&driver_chart(), "sscsi", &ns), dir.path()).await?;

    let driver = daemonset_container(&objs, "secrets-store")?;
    assert_eq!(
        driver["image"],
        "ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver:v0.1.0"
    );
    assert_eq!(driver["securityContext"]["privileged"], true);
    let a = args(driver);
    for want in [
        "--endpoint=$(CSI_ENDPOINT)",
        "--nodeid=$(KUBE_NODE_NAME)",
        "--provider-volume=/var/run/secrets-store-csi-providers",
        "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
        "--metrics-addr=:8095",
        "--provider-health-check-interval=2m",
        "--max-call-recv-msg-size=4194304",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} missing from {a:?}");
    }
    // Optional flags appear only when set: upstream's exact arguments.
    assert_eq!(a.len(), 7, "{a:?}");
    assert_driver_accepts(&a)?;
    let mounts = driver["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pods = mounts
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/kubelet/pods")
        .expect("kubelet pods mount");
    assert_eq!(pods["mountPropagation"], "Bidirectional");
    // The driver's state directory (default <kubelet-dir>/plugins/csi-secrets-store/state) is on the host,
    // and so is the tmpfs the driver mounts on it.
    assert!(
        mounts.iter().any(|m| m["name"] == "plugin-dir"
            && m["mountPath"] == "/var/lib/kubelet/plugins/csi-secrets-store"
            && m["mountPropagation"] == "Bidirectional"),
        "{mounts:?}"
    );
    let registrar = daemonset_container(&objs, "node-driver-registrar")?;
    assert!(
        args(registrar).contains(
            &"--kubelet-registration-path=/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"
                .to_string()
        )
    );
    daemonset_container(&objs, "liveness-probe")?;

    let csidriver = &find(&objs, "CSIDriver", "secrets-store.csi.k8s.io")?["spec"];
    assert_eq!(csidriver["podInfoOnMount"], true);
    assert_eq!(csidriver["attachRequired"], false);
    assert_eq!(
        csidriver["volumeLifecycleModes"],
        serde_json::json!(["Ephemeral"])
    );
    assert_eq!(csidriver["requiresRepublish"], false);
    assert_eq!(csidriver["fsGroupPolicy"], "File");
    assert!(csidriver.get("tokenRequests").is_none());

    let mut roles: BTreeSet<String> = USER_ROLES.iter().map(|s| s.to_string()).collect();
    roles.insert("secretproviderclasses-role".into());
    assert_eq!(rules_names(&objs, "ClusterRole"), roles);
    assert_eq!(
        rules_names(&objs, "ClusterRoleBinding"),
        BTreeSet::from(["secretproviderclasses-rolebinding".to_string()])
    );
    find(&objs, "ServiceAccount", "secrets-store-csi-driver")?;

    // The schemas are strict: a misspelt field fails validation.
    let rendered = std::fs::read_to_string(dir.path().join("sscsi.yaml"))?;
    let bad = dir.path().join("misspelt.yaml");
    std::fs::write(
        &bad,
        rendered.replace("mountPropagation:", "mountPropogation:"),
    )?;
    let report = kubeconform(&dir.path().join("schemas-sscsi"), &bad)?;
    assert!(
        report.contains("Invalid: 1,") && report.contains("mountPropogation"),
        "{report}"
    );
    Ok(())
}

#[tokio::test]
async fn upstream_v1_6_0_values_file_renders_unchanged() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-upstream").await?;
    let dir = tempfile::tempdir()?;
    let render = Render::new(&driver_chart(), "csi-secrets-store", &ns).values(&upstream_values()?);
    let objs = check(cp, &render, dir.path()).await?;
    let driver = daemonset_container(&objs, "secrets-store")?;
    // The file names upstream's image; everything else is the same install.
    assert_eq!(
        driver["image"],
        "registry.k8s.io/csi-secrets-store/driver:v1.6.0"
    );
    assert_eq!(
        daemonset_container(&objs, "node-driver-registrar")?["image"],
        "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.16.0"
    );
    assert_driver_accepts(&args(driver))?;
    let roles = rules_names(&objs, "ClusterRole");
    for r in USER_ROLES.iter().chain(&["secretproviderclasses-role"]) {
        assert!(roles.contains(*r), "{r} missing: {roles:?}");
    }
    Ok(())
}

#[tokio::test]
async fn all_features_values_render_every_flag_role_and_token_request() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-all").await?;
    let dir = tempfile::tempdir()?;
    let render = Render::new(&driver_chart(), "all", &ns).values(&values_file("all-features.yaml"));
    let objs = check(cp, &render, dir.path()).await?;
    let driver = daemonset_container(&objs, "secrets-store")?;
    assert_eq!(
        driver["image"],
        "ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    let a = args(driver);
    for want in [
        "-v=4",
        "--log-format-json=true",
        "--provider-volume=/run/sscsi/providers",
        "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers,/opt/sscsi/providers",
        "--metrics-addr=0.0.0.0:9095",
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1m",
        "--provider-health-check=true",
        "--provider-health-check-interval=30s",
        "--max-call-recv-msg-size=8388608",
        "--kubelet-dir=/var/lib/k8s/kubelet",
        "--provider-timeout=30s",
        "--min-rotation-poll-interval=10s",
        "--secret-sync-resync-interval=2m",
        "--enable-refresh-loop=true",
        "--enable-pprof=false",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} missing from {a:?}");
    }
    assert_driver_accepts(&a)?;
    let ports: Vec<i64> = driver["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["containerPort"].as_i64())
        .collect();
    assert_eq!(ports, [9809, 9095]);

    let csidriver = &find(&objs, "CSIDriver", "secrets-store.csi.k8s.io")?["spec"];
    assert_eq!(csidriver["requiresRepublish"], true);
    assert_eq!(csidriver["fsGroupPolicy"], "ReadWriteOnceWithFSType");
    assert_eq!(csidriver["tokenRequests"][1]["audience"], "vault");
    assert_eq!(csidriver["serviceAccountTokenInSecrets"], true);

    let bindings = rules_names(&objs, "ClusterRoleBinding");
    for b in [
        "secretproviderclasses-rolebinding",
        "secretprovidersyncing-rolebinding",
        "secretproviderrotation-rolebinding",
        "secretprovidertokenrequest-rolebinding",
    ] {
        assert!(bindings.contains(b), "{b} missing: {bindings:?}");
    }
    let ds = objs
        .iter()
        .find(|o| kind(o) == "DaemonSet")
        .expect("DaemonSet");
    assert_eq!(ds["metadata"]["labels"]["team"], "platform");
    assert_eq!(ds["spec"]["template"]["metadata"]["labels"]["tier"], "node");
    Ok(())
}

#[tokio::test]
async fn settings_the_driver_cannot_honour_fail_rendering() -> anyhow::Result<()> {
    let cases = [
        (
            "windows.enabled=true",
            "this driver runs on Linux nodes only",
        ),
        (
            "enableRefreshLoop=true",
            "enableRefreshLoop needs enableSecretRotation",
        ),
    ];
    for (set, message) in cases {
        let err = Render::new(&driver_chart(), "bad", "default")
            .set(set)
            .template_error()?;
        assert!(err.contains(message), "{set}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn alibaba_chart_deploys_our_provider_and_our_vendored_driver_chart() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-alibaba").await?;
    let dir = tempfile::tempdir()?;
    let objs = check(
        cp,
        &Render::new(&alibaba_chart(), "alibaba", &ns),
        dir.path(),
    )
    .await?;
    let provider = daemonset_container(&objs, "provider-alibabacloud-installer")?;
    assert_eq!(
        provider["image"],
        "ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver-provider-alibabacloud:v0.1.0"
    );
    assert_eq!(
        provider["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    let drivers: Vec<&Value> = objs
        .iter()
        .filter(|o| kind(o) == "DaemonSet" && objects::name(o) == "secrets-store-csi-driver")
        .collect();
    assert_eq!(
        drivers.len(),
        1,
        "our driver chart renders as the dependency"
    );
    let csidriver = &find(&objs, "CSIDriver", "secrets-store.csi.k8s.io")?["spec"];
    assert_eq!(
        csidriver["tokenRequests"][0]["audience"],
        "sts.aliyuncs.com"
    );

    let rrsa = Render::new(&alibaba_chart(), "alibaba-rrsa", &ns)
        .set("rrsa.enable=true")
        .set("rrsa.accountId=1234567890")
        .set("rrsa.clusterId=c0ffee")
        .set("secrets-store-csi-driver.install=false");
    let objs = check(cp, &rrsa, dir.path()).await?;
    let provider = daemonset_container(&objs, "provider-alibabacloud-installer")?;
    let env: Vec<(String, String)> = provider["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert!(
        env.contains(&("ALICLOUD_ACCOUNT_ID".into(), "1234567890".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("ALICLOUD_CLUSTER_ID".into(), "c0ffee".into())),
        "{env:?}"
    );
    assert!(
        !objs.iter().any(|o| kind(o) == "CSIDriver"),
        "driver chart not installed"
    );
    Ok(())
}

#[tokio::test]
async fn aws_chart_deploys_our_provider_with_upstream_values() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-aws").await?;
    let dir = tempfile::tempdir()?;
    let objs = check(cp, &Render::new(&aws_chart(), "aws", &ns), dir.path()).await?;
    let provider = daemonset_container(&objs, "provider-aws-installer")?;
    assert_eq!(
        provider["image"],
        "ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver-provider-aws:v0.1.0"
    );
    assert_eq!(
        provider["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    let csidriver = &find(&objs, "CSIDriver", "secrets-store.csi.k8s.io")?["spec"];
    assert_eq!(
        csidriver["tokenRequests"],
        serde_json::json!([{"audience": "sts.amazonaws.com"}, {"audience": "pods.eks.amazonaws.com"}])
    );
    // Upstream's values: a fixed region (no pods/nodes RBAC), FIPS, the
    // Pod Identity timeout, client throttling and the add-on version.
    let set = Render::new(&aws_chart(), "aws-set", &ns)
        .set("awsRegion=us-east-1")
        .set("useFipsEndpoint=true")
        .set("podIdentityHttpTimeout=2s")
        .set("k8sThrottlingParams.qps=20")
        .set("k8sThrottlingParams.burst=40")
        .set("eksAddonVersion=v3.1.1-eksbuild.1")
        .set("secrets-store-csi-driver.install=false");
    let objs = check(cp, &set, dir.path()).await?;
    let provider = daemonset_container(&objs, "provider-aws-installer")?;
    let args: Vec<&str> = provider["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "--pod-identity-http-timeout=2s",
        "--qps=20",
        "--burst=40",
        "--eks-addon-version=v3.1.1-eksbuild.1",
    ] {
        assert!(args.contains(&want), "{args:?}");
    }
    let env = serde_json::to_string(&provider["env"])?;
    assert!(
        env.contains("AWS_REGION") && env.contains("AWS_USE_FIPS_ENDPOINT"),
        "{env}"
    );
    let role = find(
        &objs,
        "ClusterRole",
        "aws-set-secrets-store-csi-driver-provider-aws-cluster-role",
    )?;
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}])
    );
    Ok(())
}
