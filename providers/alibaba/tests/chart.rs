//! The provider's Helm chart lints, renders, and every object it renders is
//! accepted by a real API server (server-side dry run).

use std::path::Path;
use std::process::Command;

use secrets_store_testkit::ControlPlane;
use secrets_store_testkit::tools::tool;

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/charts/secrets-store-csi-driver-provider-alibabacloud"
);

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// A copy of the chart without its optional dependency on the upstream
/// driver chart (not reachable offline; off by default in values.yaml).
fn chart_without_dependency(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let copy = dir.join("chart");
    run(Command::new("cp").arg("-r").arg(CHART).arg(&copy))?;
    let chart_yaml = copy.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml)?;
    let kept: String = text
        .split("dependencies:")
        .next()
        .unwrap_or(&text)
        .to_string();
    std::fs::write(&chart_yaml, kept)?;
    Ok(copy)
}

#[tokio::test]
async fn chart_lints_renders_and_is_accepted_by_the_api_server() -> anyhow::Result<()> {
    let helm = tool("helm")?;
    let lint = run(Command::new(&helm).args(["lint", CHART]))?;
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let dir = tempfile::tempdir()?;
    let chart = chart_without_dependency(dir.path())?;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart").await?;
    for extra in [&[][..], &["--set", "rrsa.enable=true"][..]] {
        let rendered = run(Command::new(&helm)
            .args(["template", "csi-alibaba"])
            .arg(&chart)
            .args(["--namespace", &ns])
            .args(extra))?;
        assert!(rendered.contains("kind: DaemonSet"), "{rendered}");
        assert!(rendered.contains("--provider-volume"), "{rendered}");
        let manifest = dir.path().join("rendered.yaml");
        std::fs::write(&manifest, &rendered)?;
        let applied = run(Command::new(tool("kubectl")?)
            .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
            .args(["apply", "--dry-run=server", "-n", &ns, "-f"])
            .arg(&manifest))?;
        assert!(
            applied.contains("daemonset.apps/") && applied.contains("(server dry run)"),
            "{applied}"
        );
    }
    Ok(())
}
