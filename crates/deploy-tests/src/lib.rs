//! Dev-only: what `deploy/` ships, tested with the real tools and a real API
//! server. The library holds the pieces the tests share: running Helm
//! ([`helm`]), reading rendered objects ([`objects`]), kubeconform schemas
//! made from the API server's own OpenAPI document ([`schemas`]), the API
//! server's audit log ([`audit`]) and the RBAC rules a chart grants
//! ([`rbac`]). The tests are in `tests/`: charts, generated files, the RBAC
//! proof and the image archives.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod audit;
pub mod helm;
pub mod objects;
pub mod rbac;
pub mod schemas;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The driver chart.
pub fn driver_chart() -> PathBuf {
    repo_root().join("deploy/charts/secrets-store-csi-driver")
}

/// The Alibaba Cloud provider chart.
pub fn alibaba_chart() -> PathBuf {
    repo_root().join("deploy/charts/secrets-store-csi-driver-provider-alibabacloud")
}

/// The AWS provider chart.
pub fn aws_chart() -> PathBuf {
    repo_root().join("deploy/charts/secrets-store-csi-driver-provider-aws")
}

/// A values file of this crate's `values/` directory.
pub fn values_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("values")
        .join(name)
}

/// Runs `cmd`; its stdout on success, else an error with both streams.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}
