//! The `vault` provider: mounts HashiCorp Vault and OpenBao secrets, a
//! drop-in for HashiCorp's vault-csi-provider v1.7.4 (same flags, SPC
//! parameters, `objects` fields, file contents and version scheme).
//!
//! The provider API server, request decoding, `objects` YAML, path checks
//! and the credential-keyed cache come from `secrets-store-provider-sdk`;
//! this crate holds the parameters and their strict validation
//! ([`params`], [`validate_parameters`] for tools), the flags and process
//! configuration ([`config`]), TLS ([`tls`]), Vault's HTTP API
//! ([`client`]), Kubernetes/JWT login and the per-pod token cache
//! ([`auth`]), answers and file contents ([`response`]), object versions
//! ([`versions`]), errors ([`error`]) and the mount flow ([`provider`]).

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod params;
pub mod provider;
pub mod response;
pub mod tls;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use secrets_store_provider_sdk::server::HealthzConfig;
use secrets_store_provider_sdk::{Server, ServerConfig};

pub use config::{Flags, ProviderConfig};
pub use params::{ParamError, parameter_errors, validate_parameters};
pub use provider::VaultProvider;

/// Provider name (`spec.provider`, socket stem).
pub const PROVIDER_NAME: &str = "vault";
/// `runtime_name` of the Version RPC (upstream's).
pub const RUNTIME_NAME: &str = "vault-csi-provider";
/// Path of the HTTP readiness endpoint (upstream's).
pub const HEALTH_PATH: &str = "/health/ready";
/// Where a pod's service account namespace is mounted.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The `--version` information, with upstream's fields.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    major: &'static str,
    minor: &'static str,
    patch: &'static str,
    git_version: String,
    git_commit: &'static str,
    git_tree_state: &'static str,
    build_date: &'static str,
    go_version: &'static str,
    compiler: &'static str,
    platform: String,
    min_driver_version: &'static str,
}

/// The `--version` output in `format` (json, json-pretty, yaml).
pub fn version_text(format: &str) -> Result<String, config::ConfigError> {
    let info = VersionInfo {
        major: env!("CARGO_PKG_VERSION_MAJOR"),
        minor: env!("CARGO_PKG_VERSION_MINOR"),
        patch: env!("CARGO_PKG_VERSION_PATCH"),
        git_version: format!("v{}", env!("CARGO_PKG_VERSION")),
        git_commit: "",
        git_tree_state: "",
        build_date: "",
        go_version: "",
        compiler: "rustc",
        platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        min_driver_version: "v1.4.0",
    };
    let value = serde_json::to_value(&info).unwrap_or_default();
    match format {
        "" | "json" => Ok(serde_json::to_string(&info).unwrap_or_default()),
        "json-pretty" => Ok(serde_json::to_string_pretty(&info).unwrap_or_default()),
        "yaml" => Ok(value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}: {:?}\n", v.as_str().unwrap_or_default()))
            .collect()),
        _ => Err(config::ConfigError::Output),
    }
}

/// The provider's namespace: the service account's, else `POD_NAMESPACE`,
/// else the client's default.
fn own_namespace(client: &kube::Client) -> String {
    std::fs::read_to_string(NAMESPACE_FILE)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| client.default_namespace().to_string())
}

/// Runs the provider until SIGTERM/SIGINT.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let config = ProviderConfig::from_flags(&flags, |k| std::env::var(k).ok())?;
    let (providers_dir, name) = flags.socket()?;
    let health = flags.health_addr()?;
    let kube = match kube::Client::try_default().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "no Kubernetes client; pods must pass their token for the audience, and object versions use a per-process key");
            None
        }
    };
    let versions = versions::Versions::new(kube.clone().map(|client| versions::KeySecret {
        namespace: own_namespace(&client),
        client,
        name: config.hmac_secret_name.clone(),
    }));
    if config.token.is_some() {
        tracing::warn!(
            "VAULT_TOKEN is set: every mount reads with that token first, and logs in as the pod only when Vault refuses it"
        );
    }
    if config.cache_size <= 0 {
        tracing::info!(size = config.cache_size, "vault token cache disabled");
    }
    let provider = Arc::new(VaultProvider::new(config, kube, versions));
    let server = Server::bind(
        ServerConfig {
            providers_dir,
            name,
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            healthz: Some(HealthzConfig {
                addr: health,
                path: HEALTH_PATH.into(),
                timeout: Duration::from_secs(5),
            }),
        },
        provider,
    )
    .await?;
    server.serve(secrets_store_provider_sdk::shutdown()).await?;
    Ok(())
}
