//! `deploy/` holds what `hack/gen-deploy.sh` generates, up to date: the
//! plain manifests rendered from the driver chart and the chart's copy of
//! the CRDs. Regenerate with `hack/gen-deploy.sh`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use secrets_store_deploy_tests::{alibaba_chart, driver_chart, repo_root, run};
use secrets_store_testkit::tools::tool;

fn yaml_files(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(out)
}

#[test]
fn deploy_manifests_and_chart_crds_are_what_gen_deploy_writes() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    run(Command::new(repo_root().join("hack/gen-deploy.sh"))
        .arg(out.path())
        .env("HELM", tool("helm")?))?;
    let pairs = [
        (
            out.path().join("manifests"),
            repo_root().join("deploy/manifests"),
        ),
        (
            out.path().join("charts/secrets-store-csi-driver/crds"),
            driver_chart().join("crds"),
        ),
    ];
    for (fresh, committed) in pairs {
        let fresh = yaml_files(&fresh)?;
        let committed = yaml_files(&committed)?;
        assert_eq!(
            fresh.keys().collect::<Vec<_>>(),
            committed.keys().collect::<Vec<_>>(),
            "file set differs; run hack/gen-deploy.sh"
        );
        for (name, text) in &fresh {
            assert!(
                committed[name] == *text,
                "{name} is stale; run hack/gen-deploy.sh"
            );
        }
    }
    // Upstream's DaemonSet name, so `kubectl apply` replaces an upstream install.
    let ds = std::fs::read_to_string(
        repo_root().join("deploy/manifests/secrets-store-csi-driver.yaml"),
    )?;
    assert!(
        ds.contains("name: csi-secrets-store\n  namespace: kube-system"),
        "{ds}"
    );
    Ok(())
}

#[test]
fn alibaba_chart_vendors_our_driver_chart() -> anyhow::Result<()> {
    let link = alibaba_chart().join("charts/secrets-store-csi-driver");
    assert_eq!(
        std::fs::canonicalize(&link)?,
        std::fs::canonicalize(driver_chart())?,
        "{} must link to the driver chart",
        link.display()
    );
    let chart = std::fs::read_to_string(alibaba_chart().join("Chart.yaml"))?;
    assert!(
        chart.contains("repository: file://../secrets-store-csi-driver"),
        "{chart}"
    );
    assert!(
        !chart.contains("https://"),
        "no network dependency: {chart}"
    );
    Ok(())
}
