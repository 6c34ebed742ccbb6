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

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_testkit::process::free_port;
use secrets_store_testkit::provider_peer::{bind_random_loopback_443, write_hosts};
use secrets_store_testkit::tools;

pub use secrets_store_testkit::provider_peer::{Kind, Peer};

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
        let emu = bind_random_loopback_443("the emulator", |addr| Emulator::start_tls(addr, NAMES))
            .await?;
        let dir = tempfile::Builder::new().prefix("alibaba-peer-").tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), emu.ca_pem().context("tls")?)?;
        write_hosts(&dir.path().join("hosts"), emu.addr().ip(), NAMES)?;
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

/// Starts `kind` (ours, or the upstream Go provider 0.6.0) against
/// `backend` with `env` (credentials) and waits for its socket.
pub async fn start_peer(
    kind: Kind,
    backend: &Backend,
    env: &[(&str, &str)],
    verbosity: u8,
) -> anyhow::Result<Peer> {
    let binary = match kind {
        Kind::Ours => PathBuf::from(env!(
            "CARGO_BIN_EXE_secrets-store-csi-driver-provider-alibabacloud"
        )),
        Kind::Upstream => tools::tool("upstream-alibaba-provider")?,
    };
    let mut peer = Peer::builder(kind, "alibabacloud", &binary)?
        .bind(&backend.hosts(), "/etc/hosts")
        .args([
            format!("--healthz-port={}", free_port()?),
            format!("-v={verbosity}"),
        ]);
    if kind == Kind::Upstream {
        peer = peer.args([format!("--region={REGION}")]);
    }
    let ca = backend.ca_file().display().to_string();
    peer.envs([
        ("SSL_CERT_FILE", ca.as_str()),
        ("KUBECONFIG", "/nonexistent"),
    ])
    .envs(env.iter().copied())
    .start()
    .await
}
