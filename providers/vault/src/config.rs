//! Command-line flags with vault-csi-provider v1.7.4's names and defaults
//! (`main.go`), and the process configuration: Vault's `VAULT_*`
//! environment variables, overridden by the flags (an SPC overrides both).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrets_store_provider_sdk::{LogFlags, Redacted};

use crate::params::TlsSettings;

/// Vault's address when nothing sets one (the Vault Go API's default).
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";

/// Provider flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "secrets-store-csi-driver-provider-vault",
    disable_version_flag = true,
    about = "HashiCorp Vault and OpenBao provider for the Secrets Store CSI driver"
)]
pub struct Flags {
    /// Path of the socket the driver calls (its stem is the provider name
    /// the driver looks for, so keep it `vault.sock`).
    #[arg(long, default_value = "/tmp/vault.sock")]
    pub endpoint: PathBuf,
    /// Directory for the socket instead of --endpoint (`<dir>/vault.sock`),
    /// as our other providers take it.
    #[arg(long, conflicts_with = "endpoint")]
    pub provider_volume: Option<PathBuf>,
    /// Deprecated: same as --log-level=debug.
    #[arg(long)]
    pub debug: bool,
    /// Log level: trace, debug, info, warn, error or off (-v also works).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Print version information and exit.
    #[arg(long)]
    pub version: bool,
    /// Version output format: json, json-pretty or yaml.
    #[arg(long, default_value = "json")]
    pub output: String,
    /// Listen address of the HTTP health endpoint (`/health/ready`).
    #[arg(long, default_value = ":8080")]
    pub health_addr: String,
    /// Name of the Secret holding the HMAC key for object versions.
    #[arg(long, default_value = "vault-csi-provider-hmac-key")]
    pub hmac_secret_name: String,
    /// Vault tokens cached (one per pod and settings); 0 or less: none.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub cache_size: i64,
    /// Default Vault address (else VAULT_ADDR).
    #[arg(long, default_value = "")]
    pub vault_addr: String,
    /// Default auth mount path (Kubernetes or JWT auth).
    #[arg(long, default_value = "kubernetes")]
    pub vault_mount: String,
    /// Default Vault namespace (else VAULT_NAMESPACE).
    #[arg(long, default_value = "")]
    pub vault_namespace: String,
    /// PEM CA certificate file for Vault (else VAULT_CACERT).
    #[arg(long, default_value = "")]
    pub vault_tls_ca_cert: String,
    /// Directory of PEM CA certificates for Vault (else VAULT_CAPATH).
    #[arg(long, default_value = "")]
    pub vault_tls_ca_directory: String,
    /// TLS server name for Vault (else VAULT_TLS_SERVER_NAME).
    #[arg(long, default_value = "")]
    pub vault_tls_server_name: String,
    /// PEM client certificate for mTLS (else VAULT_CLIENT_CERT).
    #[arg(long, default_value = "")]
    pub vault_tls_client_cert: String,
    /// PEM client key for mTLS (else VAULT_CLIENT_KEY).
    #[arg(long, default_value = "")]
    pub vault_tls_client_key: String,
    /// Skip TLS verification (else VAULT_SKIP_VERIFY).
    #[arg(long)]
    pub vault_tls_skip_verify: bool,
    /// Logging: `-v`, `--log-format-json` and klog's flags.
    #[command(flatten)]
    pub log: LogFlags,
}

/// Configuration errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--health-addr` is not `[host]:port`.
    #[error("invalid --health-addr {0:?}: expected [ip]:port")]
    HealthAddr(String),
    /// `--endpoint` does not end in `.sock`.
    #[error("--endpoint {0:?} must name a file ending in .sock")]
    Endpoint(PathBuf),
    /// A `VAULT_*` variable has a bad value.
    #[error("invalid {name}: {value:?}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `--output` is not a known format.
    #[error("--output should be one of: 'yaml', 'json', 'json-pretty'")]
    Output,
}

/// The process configuration.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Address when the SPC sets none.
    pub address: String,
    /// Namespace when the SPC sets none.
    pub namespace: Option<String>,
    /// TLS settings the SPC overlays.
    pub tls: TlsSettings,
    /// Auth mount when the SPC sets none.
    pub auth_mount: String,
    /// Per-request timeout (VAULT_CLIENT_TIMEOUT, 60 s).
    pub timeout: Duration,
    /// Retries of transient failures (VAULT_MAX_RETRIES, 2).
    pub retries: u32,
    /// Token cache size.
    pub cache_size: i64,
    /// HMAC Secret name.
    pub hmac_secret_name: String,
    /// `VAULT_TOKEN`: a token every mount tries before logging in.
    pub token: Option<Redacted<String>>,
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

impl ProviderConfig {
    /// The environment overlaid with the flags.
    pub fn from_flags(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        let bad = |name: &'static str, value: String| ConfigError::Env { name, value };
        let env_skip = match get("VAULT_SKIP_VERIFY") {
            None => false,
            Some(v) => {
                secrets_store_go_flag::parse_bool(&v).map_err(|_| bad("VAULT_SKIP_VERIFY", v))?
            }
        };
        let timeout = match get("VAULT_CLIENT_TIMEOUT") {
            None => Duration::from_secs(60),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .or_else(|_| secrets_store_go_flag::parse_duration(&v))
                .map_err(|_| bad("VAULT_CLIENT_TIMEOUT", v))?,
        };
        let retries = match get("VAULT_MAX_RETRIES") {
            None => 2,
            Some(v) => v.parse::<u32>().map_err(|_| bad("VAULT_MAX_RETRIES", v))?,
        };
        let env_tls = TlsSettings {
            ca_cert: get("VAULT_CACERT"),
            ca_directory: get("VAULT_CAPATH"),
            server_name: get("VAULT_TLS_SERVER_NAME"),
            client_cert: get("VAULT_CLIENT_CERT"),
            client_key: get("VAULT_CLIENT_KEY"),
            skip_verify: env_skip,
        };
        let flag_tls = TlsSettings {
            ca_cert: some(&flags.vault_tls_ca_cert),
            ca_directory: some(&flags.vault_tls_ca_directory),
            server_name: some(&flags.vault_tls_server_name),
            client_cert: some(&flags.vault_tls_client_cert),
            client_key: some(&flags.vault_tls_client_key),
            skip_verify: flags.vault_tls_skip_verify,
        };
        Ok(Self {
            address: some(&flags.vault_addr)
                .or_else(|| get("VAULT_ADDR"))
                .unwrap_or_else(|| DEFAULT_ADDRESS.into()),
            namespace: some(&flags.vault_namespace).or_else(|| get("VAULT_NAMESPACE")),
            tls: env_tls.overlay(&flag_tls),
            auth_mount: flags.vault_mount.clone(),
            timeout,
            retries,
            cache_size: flags.cache_size,
            hmac_secret_name: flags.hmac_secret_name.clone(),
            token: get("VAULT_TOKEN").map(Redacted::new),
        })
    }
}

impl Flags {
    /// The socket directory and provider name (the socket's stem).
    pub fn socket(&self) -> Result<(PathBuf, String), ConfigError> {
        if let Some(dir) = &self.provider_volume {
            return Ok((dir.clone(), crate::PROVIDER_NAME.into()));
        }
        let stem = self
            .endpoint
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".sock"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::Endpoint(self.endpoint.clone()))?;
        let dir = self
            .endpoint
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        Ok((dir, stem.to_string()))
    }

    /// `--health-addr` as Go's `net.Listen` reads it (`:8080` is every
    /// address).
    pub fn health_addr(&self) -> Result<SocketAddr, ConfigError> {
        let a = self.health_addr.as_str();
        let err = || ConfigError::HealthAddr(a.to_string());
        let (host, port) = a.rsplit_once(':').ok_or_else(err)?;
        let port: u16 = port.parse().map_err(|_| err())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = match host {
            "" => std::net::Ipv4Addr::UNSPECIFIED.into(),
            "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
            h => h.parse().map_err(|_| err())?,
        };
        Ok(SocketAddr::new(ip, port))
    }

    /// The logging flags with `--log-level`/`--debug` applied, and the
    /// given flags that have no effect here.
    pub fn logging(&self) -> (LogFlags, Vec<String>) {
        let mut log = self.log.clone();
        let mut ignored = Vec::new();
        match self.log_level.to_ascii_lowercase().as_str() {
            "trace" => log.verbosity = log.verbosity.max(5),
            "debug" => log.verbosity = log.verbosity.max(4),
            "info" | "" => {}
            other => ignored.push(format!("--log-level={other}")),
        }
        if self.debug {
            log.verbosity = log.verbosity.max(4);
        }
        (log, ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        let mut argv = vec!["p"];
        argv.extend_from_slice(args);
        secrets_store_go_flag::try_parse_from(argv).expect("flags")
    }

    #[test]
    fn upstream_defaults_and_go_syntax() {
        let f = parse(&[]);
        assert_eq!(f.endpoint, PathBuf::from("/tmp/vault.sock"));
        assert_eq!(f.socket(), Ok((PathBuf::from("/tmp"), "vault".into())));
        assert_eq!(f.health_addr(), Ok("0.0.0.0:8080".parse().expect("addr")));
        assert_eq!(
            (
                f.cache_size,
                f.vault_mount.as_str(),
                f.hmac_secret_name.as_str()
            ),
            (1000, "kubernetes", "vault-csi-provider-hmac-key")
        );
        let f = parse(&[
            "-endpoint=/provider/vault.sock",
            "-vault-addr=http://127.0.0.1:8200",
            "-cache-size=-1",
            "-vault-tls-skip-verify",
            "-health-addr=127.0.0.1:0",
            "-log-level=debug",
        ]);
        assert_eq!(f.socket(), Ok((PathBuf::from("/provider"), "vault".into())));
        assert_eq!(f.cache_size, -1);
        assert!(f.vault_tls_skip_verify);
        assert_eq!(f.health_addr(), Ok("127.0.0.1:0".parse().expect("addr")));
        assert_eq!(f.logging().0.verbosity, 4);
        let f = parse(&["--provider-volume=/etc/providers", "--log-level=warn"]);
        assert_eq!(
            f.socket(),
            Ok((PathBuf::from("/etc/providers"), "vault".into()))
        );
        assert_eq!(f.logging().1, ["--log-level=warn"]);
        assert!(matches!(
            parse(&["--endpoint=/tmp/vault"]).socket(),
            Err(ConfigError::Endpoint(_))
        ));
        assert!(parse(&["--health-addr=8080"]).health_addr().is_err());
    }

    #[test]
    fn flags_override_the_environment() {
        let env = |k: &str| {
            let v = match k {
                "VAULT_ADDR" => "https://env:8200",
                "VAULT_NAMESPACE" => "env-ns",
                "VAULT_CACERT" => "/env/ca.pem",
                "VAULT_CLIENT_TIMEOUT" => "5",
                "VAULT_MAX_RETRIES" => "0",
                "VAULT_TOKEN" => "hvs.canary-token",
                _ => return None,
            };
            Some(v.to_string())
        };
        let c = ProviderConfig::from_flags(&parse(&[]), env).expect("config");
        assert_eq!(
            (
                c.address.as_str(),
                c.namespace.as_deref(),
                c.tls.ca_cert.as_deref()
            ),
            ("https://env:8200", Some("env-ns"), Some("/env/ca.pem"))
        );
        assert_eq!((c.timeout, c.retries), (Duration::from_secs(5), 0));
        assert_eq!(
            c.token.as_ref().map(|t| t.expose().as_str()),
            Some("hvs.canary-token")
        );
        assert!(!format!("{c:?}").contains("canary"));
        let f = parse(&[
            "--vault-addr=http://flag:8200",
            "--vault-tls-ca-cert=/flag/ca.pem",
        ]);
        let c = ProviderConfig::from_flags(&f, env).expect("config");
        assert_eq!(
            (c.address.as_str(), c.tls.ca_cert.as_deref()),
            ("http://flag:8200", Some("/flag/ca.pem"))
        );
        let c = ProviderConfig::from_flags(&parse(&[]), |_| None).expect("defaults");
        assert_eq!(
            (c.address.as_str(), c.timeout, c.retries),
            (DEFAULT_ADDRESS, Duration::from_secs(60), 2)
        );
        let bad = ProviderConfig::from_flags(&parse(&[]), |k| {
            (k == "VAULT_MAX_RETRIES").then(|| "x".into())
        });
        assert_eq!(
            bad.err().map(|e| e.to_string()),
            Some("invalid VAULT_MAX_RETRIES: \"x\"".into())
        );
    }
}
