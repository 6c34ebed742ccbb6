//! A CSI driver binary under test, run as kubelet's node would run it:
//! its own process, a unix socket in a temporary directory, logs captured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrets_store_proto::csi::v1 as csi;
use secrets_store_proto::csi::v1::identity_client::IdentityClient;

use crate::process::Process;
use crate::wait_for;

/// Name of our driver's binary.
pub const OUR_DRIVER: &str = "secrets-store-csi-driver";

/// Flags our driver needs to serve a kubelet simulator rooted at
/// `kubelet_root`: `--kubelet-dir` (its state directory then defaults to
/// `<root>/plugins/csi-secrets-store/state`). Empty for other drivers (the
/// upstream Go driver accepts any target and has no such flag).
pub fn kubelet_dir_args(binary: &Path, kubelet_root: &Path) -> Vec<String> {
    if binary.file_name() == Some(std::ffi::OsStr::new(OUR_DRIVER)) {
        vec![format!("--kubelet-dir={}", kubelet_root.display())]
    } else {
        Vec::new()
    }
}

/// A running driver process.
#[derive(Debug)]
pub struct DriverProcess {
    process: Process,
    socket: PathBuf,
    binary: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl DriverProcess {
    /// Starts `binary --endpoint=unix://<tmp>/csi.sock args...` and waits
    /// until its Identity Probe reports ready.
    pub async fn start(binary: &Path, args: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("csi-driver-").tempdir()?;
        let socket = dir.path().join("csi.sock");
        let process = Self::spawn(binary, &socket, args, dir.path())?;
        let mut driver = Self {
            process,
            socket,
            binary: binary.to_path_buf(),
            args: args.to_vec(),
            dir,
        };
        driver.wait_ready().await?;
        Ok(driver)
    }

    fn spawn(binary: &Path, socket: &Path, args: &[String], dir: &Path) -> anyhow::Result<Process> {
        let mut all = vec![format!("--endpoint=unix://{}", socket.display())];
        if binary.file_name() == Some(std::ffi::OsStr::new(OUR_DRIVER)) {
            // Tests keep the state directory on the test's own filesystem:
            // a driver killed by a test would leave its state tmpfs mounted.
            // A later `--state-dir-tmpfs=true` in `args` wins.
            all.push("--state-dir-tmpfs=false".into());
        }
        all.extend(args.iter().cloned());
        Process::spawn("csi driver", binary, &all, &[], &dir.join("driver.log"))
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let socket = self.socket.clone();
        let process = &mut self.process;
        wait_for(
            "the driver's Probe to report ready",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let running = process.check_running();
                let socket = socket.clone();
                async move {
                    running?;
                    if !socket.exists() {
                        return Ok(None);
                    }
                    let Ok(channel) = crate::csi::connect(&socket).await else {
                        return Ok(None);
                    };
                    let probe = IdentityClient::new(channel)
                        .probe(csi::ProbeRequest {})
                        .await?;
                    Ok((probe.into_inner().ready != Some(false)).then_some(()))
                }
            },
        )
        .await
    }

    /// Kills the driver with SIGKILL (no cleanup on its side) and starts it
    /// again with the same arguments and socket.
    pub async fn kill9_and_restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = Self::spawn(&self.binary, &self.socket, &self.args, self.dir.path())?;
        self.wait_ready().await
    }

    /// Process id of the driver.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Path of the CSI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://` endpoint of the CSI socket.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Everything the driver logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Stops the driver with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.process.signal_and_wait("TERM")
    }
}
