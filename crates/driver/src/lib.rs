//! The Secrets Store CSI node plugin, `secrets-store.csi.k8s.io`.
//!
//! kubelet calls this plugin over a unix socket ([`server`]) with the CSI
//! Identity and Node services ([`csi`]). Flags are upstream's, parsed and
//! validated in [`config`] before anything binds.
//!
//! Module map (grows with the driver):
//! - [`config`]: command-line flags (upstream names and defaults) → [`config::Config`];
//! - [`server`]: socket lifecycle (stale socket removal, bind, graceful stop);
//! - [`csi`]: thin tonic services; [`csi::identity`] answers who we are.

pub mod config;
pub mod csi;
pub mod server;

/// Version reported to kubelet and in `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
