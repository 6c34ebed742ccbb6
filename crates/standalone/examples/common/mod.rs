//! What both demos share: finding the binaries built next to them, and
//! running a demo until it ends or Ctrl-C stops it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// A binary built next to the running example (`target/<profile>/<name>`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} not built; run ./hack/demo.sh",
        path.display()
    );
    Ok(path)
}

/// Runs `demo` to its end, or until Ctrl-C: then `demo` is dropped, which
/// stops (and unmounts) everything it started, and the run counts as a
/// success.
pub async fn until_ctrl_c(
    demo: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = tokio::select! {
        biased;
        _ = &mut ctrl_c => return interrupted(),
        r = demo => r,
    };
    // Ctrl-C reaches the children too: one it killed makes the demo fail
    // just before the signal is seen here.
    if result.is_err()
        && tokio::time::timeout(Duration::from_millis(300), &mut ctrl_c)
            .await
            .is_ok()
    {
        return interrupted();
    }
    result
}

fn interrupted() -> anyhow::Result<()> {
    eprintln!("interrupted; everything stopped");
    Ok(())
}
