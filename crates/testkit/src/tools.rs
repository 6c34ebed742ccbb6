//! Where the real test components live, and upstream Go modules.
//!
//! `hack/install-tools.sh` builds every tool into a cache outside the clone
//! and links the pinned versions into `<dir>/bin`. The directory is
//! `$SSCSI_TOOLS_DIR`, else `~/.cache/secrets-store-csi-rs/tools`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// The tools cache directory (see the module doc).
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SSCSI_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/secrets-store-csi-rs/tools")
}

/// Path of an installed tool, e.g. `tool("kube-apiserver")`.
///
/// Fails with the install command when the tool is missing: tests never skip
/// silently because a component is absent.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = tools_dir().join("bin").join(name);
    if path.exists() {
        return Ok(path);
    }
    bail!(
        "test tool {name:?} not found at {}; install it with `hack/install-tools.sh` \
         (or set SSCSI_TOOLS_DIR)",
        path.display()
    )
}

/// Downloads a Go module through the Go module proxy (`go mod download`) and
/// returns the directory holding its files. Used to read upstream `.proto`
/// and CRD files at test time without committing them.
pub fn go_module_dir(module: &str, version: &str) -> anyhow::Result<PathBuf> {
    let out = Command::new("go")
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .output()
        .context("running `go mod download` (is Go installed?)")?;
    #[derive(serde::Deserialize)]
    struct Download {
        #[serde(rename = "Dir")]
        dir: Option<PathBuf>,
        #[serde(rename = "Error")]
        error: Option<String>,
    }
    let d: Download = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "go mod download {module}@{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    match (d.dir, d.error) {
        (Some(dir), None) => Ok(dir),
        (_, Some(e)) => bail!("go mod download {module}@{version}: {e}"),
        (None, None) => bail!("go mod download {module}@{version}: no directory reported"),
    }
}

/// A binary of this workspace (e.g. the driver, for another crate's tests),
/// found next to the running test executable (`target/<profile>/<name>`).
/// `cargo test --workspace` builds every workspace binary before the tests.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test executable has no target directory")?;
    let path = dir.join(name);
    if path.exists() {
        return Ok(path);
    }
    bail!(
        "workspace binary {name:?} not built at {}; run `cargo build --workspace --bins` (hack/test.sh does)",
        path.display()
    )
}
