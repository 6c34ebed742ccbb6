//! The `alibabacloud` provider: mounts Alibaba Cloud KMS Secrets Manager
//! secrets and OOS encrypted parameters, a drop-in for upstream's provider.
//!
//! The provider API server, request decoding, YAML, paths, jmesPath and the
//! rate/retry/cache helpers come from `secrets-store-provider-sdk`; this
//! crate holds Alibaba's parameters ([`objects`]), where requests may go
//! ([`endpoint`]), credentials ([`credential`], [`auth`], [`sts`]), signing
//! ([`sign`]), the HTTP transport ([`transport`]), the two backends
//! ([`backend`]), errors and their gRPC codes ([`error`]), the node region
//! lookup ([`region`]) and the mount flow ([`provider`]).

pub mod auth;
pub mod backend;
pub mod config;
pub mod credential;
pub mod endpoint;
pub mod error;
pub mod objects;
pub mod provider;
pub mod region;
pub mod sign;
pub mod sts;
pub mod transport;

use std::sync::Arc;

use secrets_store_provider_sdk::server::HealthzConfig;
use secrets_store_provider_sdk::{Server, ServerConfig};

pub use config::Flags;
pub use provider::{AlibabaProvider, ProviderConfig};

/// Provider name (`spec.provider`, socket stem).
pub const PROVIDER_NAME: &str = "alibabacloud";
/// `runtime_name` of the Version RPC.
pub const RUNTIME_NAME: &str = "secrets-store-csi-driver-provider-alibabacloud";

/// Runs the provider until SIGTERM/SIGINT.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let config = ProviderConfig::from_flags(&flags, env)?;
    let kube = match kube::Client::try_default().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "no Kubernetes client; node region lookup and pod service-account tokens are unavailable");
            None
        }
    };
    let provider = Arc::new(AlibabaProvider::new(config, kube));
    let server = Server::bind(
        ServerConfig {
            providers_dir: flags.provider_volume.clone(),
            name: PROVIDER_NAME.into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            healthz: Some(HealthzConfig {
                addr: ([0, 0, 0, 0], flags.healthz_port).into(),
                path: flags.healthz_path.clone(),
                timeout: flags.healthz_timeout,
            }),
        },
        provider,
    )
    .await?;
    server.serve(secrets_store_provider_sdk::shutdown()).await?;
    Ok(())
}
