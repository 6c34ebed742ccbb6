//! `helm lint` and `helm template` of our charts.

use std::path::{Path, PathBuf};
use std::process::Command;

use secrets_store_testkit::tools::tool;

use crate::run;

/// Kubernetes version charts are rendered for: the API server the tests run.
pub const KUBE_VERSION: &str = "1.36.3";

/// One rendering of a chart.
#[derive(Debug, Clone)]
pub struct Render {
    /// The chart directory.
    pub chart: PathBuf,
    /// Release name.
    pub release: String,
    /// Release namespace.
    pub namespace: String,
    /// `--values` files, in order.
    pub values: Vec<PathBuf>,
    /// `--set` assignments.
    pub sets: Vec<String>,
}

impl Render {
    /// A rendering of `chart` as release `release` in `namespace`.
    pub fn new(chart: &Path, release: &str, namespace: &str) -> Self {
        Self {
            chart: chart.to_path_buf(),
            release: release.into(),
            namespace: namespace.into(),
            values: Vec::new(),
            sets: Vec::new(),
        }
    }

    /// Adds a values file.
    pub fn values(mut self, file: &Path) -> Self {
        self.values.push(file.to_path_buf());
        self
    }

    /// Adds a `--set key=value`.
    pub fn set(mut self, assignment: &str) -> Self {
        self.sets.push(assignment.into());
        self
    }

    fn args(&self, cmd: &mut Command) {
        for v in &self.values {
            cmd.arg("--values").arg(v);
        }
        for s in &self.sets {
            cmd.args(["--set", s]);
        }
    }

    /// `helm lint --strict` with these values; its output.
    pub fn lint(&self) -> anyhow::Result<String> {
        let mut cmd = Command::new(tool("helm")?);
        cmd.args(["lint", "--strict", "--kube-version", KUBE_VERSION])
            .arg(&self.chart)
            .args(["--namespace", &self.namespace]);
        self.args(&mut cmd);
        let out = run(&mut cmd)?;
        anyhow::ensure!(out.contains("0 chart(s) failed"), "{out}");
        Ok(out)
    }

    /// `helm template`: the rendered multi-document YAML.
    pub fn template(&self) -> anyhow::Result<String> {
        let mut cmd = Command::new(tool("helm")?);
        cmd.args(["template", &self.release])
            .arg(&self.chart)
            .args(["--namespace", &self.namespace])
            .args(["--kube-version", KUBE_VERSION]);
        self.args(&mut cmd);
        run(&mut cmd)
    }

    /// `helm template` expected to fail; its error output.
    pub fn template_error(&self) -> anyhow::Result<String> {
        let mut cmd = Command::new(tool("helm")?);
        cmd.args(["template", &self.release])
            .arg(&self.chart)
            .args(["--namespace", &self.namespace])
            .args(["--kube-version", KUBE_VERSION]);
        self.args(&mut cmd);
        let out = cmd.output()?;
        anyhow::ensure!(!out.status.success(), "{cmd:?} succeeded");
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
