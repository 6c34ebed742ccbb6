//! Running a provider binary (ours or the upstream Go provider) against the
//! emulator the way it runs in a cluster: HTTPS to the real endpoint names.
//!
//! The emulator listens on port 443 of a random loopback address with a
//! certificate for Alibaba's endpoint names, signed by a fresh CA. Each
//! provider runs in a private mount namespace whose `/etc/hosts` maps those
//! names to that address, and trusts the CA through `SSL_CERT_FILE` (the
//! upstream provider only speaks HTTPS, and its OOS endpoint is fixed to
//! `oos-vpc.<region>.aliyuncs.com`, so names, not flags, must lead there).

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::tools;

/// Region of every endpoint name the emulator answers for.
pub const REGION: &str = "cn-test";
/// The names the emulator's certificate and the hosts file carry.
pub const NAMES: &[&str] = &[
    "kms-vpc.cn-test.aliyuncs.com",
    "kms.cn-test.aliyuncs.com",
    "oos-vpc.cn-test.aliyuncs.com",
    "sts.aliyuncs.com",
    DEDICATED,
];
/// A dedicated KMS instance gateway name (its certificate is the
/// emulator's, not one of Alibaba's private KMS CAs).
pub const DEDICATED: &str = "kst-test.cryptoservice.kms.aliyuncs.com";

/// The emulator on `<random 127.x.y.z>:443`, its CA and a hosts file.
pub struct Backend {
    /// The emulator.
    pub emu: Emulator,
    /// Holds `ca.pem` and `hosts`.
    pub dir: tempfile::TempDir,
}

impl Backend {
    /// Starts the emulator and writes its CA and the hosts file.
    pub async fn start() -> anyhow::Result<Self> {
        let emu = loop {
            let ip = Ipv4Addr::new(
                127,
                fastrand::u8(16..250),
                fastrand::u8(1..250),
                fastrand::u8(2..250),
            );
            match Emulator::start_tls(SocketAddr::from((ip, 443)), NAMES).await {
                Ok(e) => break e,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e).context("binding the emulator on port 443"),
            }
        };
        let dir = tempfile::Builder::new().prefix("alibaba-peer-").tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), emu.ca_pem().context("tls")?)?;
        let hosts = format!(
            "127.0.0.1 localhost\n{} {}\n",
            emu.addr().ip(),
            NAMES.join(" ")
        );
        std::fs::write(dir.path().join("hosts"), hosts)?;
        Ok(Self { emu, dir })
    }

    /// `SSL_CERT_FILE` for the providers.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn hosts(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }
}

/// Waits until a provider has created its socket.
pub async fn wait_for_socket(socket: &Path) -> anyhow::Result<()> {
    secrets_store_testkit::wait_for_socket(socket).await
}

/// Which provider binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `secrets-store-csi-driver-provider-alibabacloud` (this crate).
    Ours,
    /// The upstream Go provider 0.6.0, built by `hack/install-tools.sh`.
    Upstream,
}

/// A running provider and its socket directory.
pub struct Peer {
    /// Which one.
    pub kind: Kind,
    /// The process (the provider itself, after `unshare` and `sh` exec).
    pub process: Process,
    /// Holds `alibabacloud.sock` and the log.
    pub dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `kind` against `backend` with `env` (credentials) and waits
    /// for its socket.
    pub async fn start(
        kind: Kind,
        backend: &Backend,
        env: &[(&str, &str)],
        verbosity: u8,
    ) -> anyhow::Result<Self> {
        let binary = match kind {
            Kind::Ours => PathBuf::from(env!(
                "CARGO_BIN_EXE_secrets-store-csi-driver-provider-alibabacloud"
            )),
            Kind::Upstream => tools::tool("upstream-alibaba-provider")?,
        };
        let dir = tempfile::Builder::new().prefix("provider-").tempdir()?;
        let mut args = vec![
            "-m".to_string(),
            "sh".into(),
            "-c".into(),
            r#"mount --bind "$0" /etc/hosts && exec "$@""#.into(),
            backend.hosts().display().to_string(),
            binary.display().to_string(),
            format!("--provider-volume={}", dir.path().display()),
            format!("--healthz-port={}", free_port()?),
            format!("-v={verbosity}"),
        ];
        if kind == Kind::Upstream {
            args.push(format!("--region={REGION}"));
        }
        let ca = backend.ca_file().display().to_string();
        let mut envs: Vec<(&str, &str)> =
            vec![("SSL_CERT_FILE", &ca), ("KUBECONFIG", "/nonexistent")];
        envs.extend_from_slice(env);
        let process = Process::spawn(
            &format!("{kind:?} alibabacloud provider"),
            Path::new("unshare"),
            &args,
            &envs,
            &dir.path().join("provider.log"),
        )?;
        wait_for_socket(&dir.path().join("alibabacloud.sock"))
            .await
            .with_context(|| format!("{kind:?} provider log:\n{}", process.log()))?;
        Ok(Self { kind, process, dir })
    }

    /// The provider's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("alibabacloud.sock")
    }
}
