//! The Secrets Store CSI node plugin, `secrets-store.csi.k8s.io`.
//!
//! kubelet calls this plugin over a unix socket ([`server`]) with the CSI
//! Identity and Node services ([`csi`]). A mount happens in [`publish`]:
//! the target must be kubelet's CSI path ([`target`]); it reads the
//! SecretProviderClass ([`spc`]), mounts a bounded tmpfs ([`mount`]), asks
//! the provider ([`provider`]), writes the files with the atomic writer,
//! records the SecretProviderClassPodStatus ([`status`]) and the driver's
//! own record of the volume ([`volume`], a directory no pod can write).
//! [`report`] turns each result into [`metrics`], [`events`] and one log
//! line. A node-scoped controller syncs Kubernetes Secrets from the
//! mounted files, read only through the driver's records ([`sync`]); the optional
//! [`refresh`] loop refreshes volumes from the driver's records. Flags are
//! upstream's, parsed and validated in [`config`] before anything binds.

pub mod apiclient;
pub mod config;
pub mod csi;
pub mod events;
pub mod metrics;
pub mod mount;
pub mod provider;
pub mod publish;
pub mod refresh;
pub mod report;
pub mod server;
pub mod spc;
pub mod status;
pub mod sync;
pub mod target;
pub mod version;
pub mod volume;

/// The workspace's one redaction wrapper, under the path driver modules use.
pub use secrets_store_redact as redact;

/// Version reported to kubelet and in `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
