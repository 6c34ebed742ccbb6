//! Generated gRPC code and the wire contract around it.
//!
//! Two wire APIs live here, both generated from this crate's own `.proto`
//! files (see `proto/`):
//! - [`csi::v1`]: the CSI Identity and Node services (spec v1.12.0), served by
//!   the driver to kubelet;
//! - [`provider::v1alpha1`]: the `CSIDriverProvider` service, served by
//!   providers and called by the driver.
//!
//! Beside the generated code sit the wire contract's attribute keys and the
//! service-account-token JSON ([`attributes`]), kubelet's volume handle and
//! target path layout ([`kubelet`]), and `Debug` of the messages
//! that carry secrets, tokens or file contents, which prints them redacted.
//! Behaviour (validation, dialling) belongs to the crates that use these
//! types. [`PROTO_DIR`] points at the sources so tests can prove wire
//! compatibility with upstream.

pub mod attributes;
mod debug;
pub mod kubelet;

/// Directory holding this crate's `.proto` sources.
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// Container Storage Interface.
pub mod csi {
    /// CSI v1 (package `csi.v1`): Identity and Node services.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("csi.v1");
    }
}

/// Secrets Store CSI driver provider API.
pub mod provider {
    /// Provider API v1alpha1 (package `v1alpha1`, service `CSIDriverProvider`).
    #[allow(missing_docs, clippy::all)]
    pub mod v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}
