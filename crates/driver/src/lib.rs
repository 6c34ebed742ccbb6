//! The Secrets Store CSI node plugin, `secrets-store.csi.k8s.io`.
//!
//! kubelet calls this plugin over a unix socket ([`server`]) with the CSI
//! Identity and Node services ([`csi`]). A mount happens in [`publish`]:
//! it reads the SecretProviderClass ([`spc`]), mounts a tmpfs ([`mount`]),
//! asks the provider ([`provider`]), writes the files with the atomic writer
//! and records the SecretProviderClassPodStatus ([`status`]). A node-scoped
//! controller syncs Kubernetes Secrets from the mounted files ([`sync`]);
//! [`apiserver`] makes the Kubernetes client. [`metrics`] and [`events`] report what
//! happened. Flags are
//! upstream's, parsed and validated in [`config`] before anything binds.

pub mod apiserver;
pub mod config;
pub mod csi;
pub mod events;
pub mod metrics;
pub mod mount;
pub mod provider;
pub mod publish;
pub mod refresh;
pub mod server;
pub mod spc;
pub mod status;
pub mod sync;
pub mod version;

/// The workspace's one redaction wrapper, under the path driver modules use.
pub use secrets_store_redact as redact;

/// Version reported to kubelet and in `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
