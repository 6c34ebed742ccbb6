//! Command-line flags (upstream's names and defaults) and the endpoint
//! settings read from the environment.

use std::path::PathBuf;
use std::time::Duration;

use secrets_store_provider_sdk::LogFlags;

/// Provider flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "secrets-store-csi-driver-provider-aws",
    version,
    about = "AWS Secrets Manager and SSM Parameter Store provider for the Secrets Store CSI driver"
)]
pub struct Flags {
    /// Directory for the provider socket (`aws.sock`).
    #[arg(long, default_value = "/var/run/secrets-store-csi-providers")]
    pub provider_volume: PathBuf,
    /// Upstream: the driver writes the files instead of the provider. We
    /// always return the files for the driver to write; accepted for
    /// compatibility.
    #[arg(long)]
    pub driver_writes_secrets: bool,
    /// Requests per second to the Kubernetes API server.
    #[arg(long, default_value_t = 5)]
    pub qps: i32,
    /// Burst of requests to the Kubernetes API server.
    #[arg(long, default_value_t = 10)]
    pub burst: i32,
    /// EKS add-on version, replacing ours in the SDK app id.
    #[arg(long, default_value = "")]
    pub eks_addon_version: String,
    /// HTTP timeout of the Pod Identity agent call (Go duration); invalid or
    /// not positive means the default (5s).
    #[arg(long, default_value = "")]
    pub pod_identity_http_timeout: String,
    /// Ours: the Pod Identity agent's credentials URL, replacing
    /// `http://169.254.170.23/v1/credentials` and its IPv6 twin.
    #[arg(long)]
    pub pod_identity_endpoint: Option<String>,
    /// Logging: `-v`, `--log-format-json` and klog's flags.
    #[command(flatten)]
    pub log: LogFlags,
}

/// Default timeout of a Pod Identity agent call.
pub const DEFAULT_POD_IDENTITY_TIMEOUT: Duration = Duration::from_secs(5);

/// `--pod-identity-http-timeout`, as upstream reads it: empty, invalid or
/// not positive falls back to the default (with an error logged); above
/// 30 s warns.
pub fn pod_identity_timeout(raw: &str) -> Duration {
    if raw.is_empty() {
        return DEFAULT_POD_IDENTITY_TIMEOUT;
    }
    match secrets_store_go_flag::parse_duration(raw) {
        Ok(d) if d.is_zero() => {
            tracing::error!(
                value = raw,
                "podIdentityHttpTimeout must be positive, using the default"
            );
            DEFAULT_POD_IDENTITY_TIMEOUT
        }
        Ok(d) => {
            if d > Duration::from_secs(30) {
                tracing::warn!(
                    value = raw,
                    "podIdentityHttpTimeout is unusually high, consider a smaller value"
                );
            }
            d
        }
        Err(e) => {
            tracing::error!(value = raw, error = %e, "failed to parse podIdentityHttpTimeout, using the default");
            DEFAULT_POD_IDENTITY_TIMEOUT
        }
    }
}

/// Endpoint overrides, as the AWS SDKs read them from the environment:
/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`; and FIPS
/// endpoints with `AWS_USE_FIPS_ENDPOINT=true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Secrets Manager.
    pub secrets_manager: Option<String>,
    /// SSM.
    pub ssm: Option<String>,
    /// STS.
    pub sts: Option<String>,
    /// FIPS endpoints.
    pub use_fips: bool,
}

impl Endpoints {
    /// Reads the variables through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let one =
            |svc: &str| get(&format!("AWS_ENDPOINT_URL_{svc}")).or_else(|| get("AWS_ENDPOINT_URL"));
        Self {
            secrets_manager: one("SECRETS_MANAGER"),
            ssm: one("SSM"),
            sts: one("STS"),
            use_fips: get("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults_and_go_syntax() {
        let f: Flags = secrets_store_go_flag::try_parse_from(["p"]).expect("defaults");
        assert_eq!(
            f.provider_volume,
            PathBuf::from("/var/run/secrets-store-csi-providers")
        );
        assert_eq!((f.qps, f.burst, f.driver_writes_secrets), (5, 10, false));
        assert_eq!(f.eks_addon_version, "");
        let f: Flags = secrets_store_go_flag::try_parse_from([
            "p",
            "-provider-volume=/p",
            "--driver-writes-secrets",
            "--qps=20",
            "-eks-addon-version=v3.1.1-eksbuild.1",
            "--pod-identity-http-timeout=2s",
            "-v=4",
        ])
        .expect("go syntax");
        assert_eq!(
            (f.qps, f.driver_writes_secrets, f.log.verbosity),
            (20, true, 4)
        );
        assert_eq!(
            pod_identity_timeout(&f.pod_identity_http_timeout),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn pod_identity_timeout_falls_back() {
        for raw in ["", "x", "0s", "-1s"] {
            assert_eq!(
                pod_identity_timeout(raw),
                DEFAULT_POD_IDENTITY_TIMEOUT,
                "{raw}"
            );
        }
        assert_eq!(pod_identity_timeout("45s"), Duration::from_secs(45));
    }

    #[test]
    fn endpoints_from_env() {
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some("http://all".to_string()),
            "AWS_ENDPOINT_URL_SSM" => Some("http://ssm".to_string()),
            "AWS_USE_FIPS_ENDPOINT" => Some("TRUE".to_string()),
            _ => None,
        };
        assert_eq!(
            Endpoints::from_env(env),
            Endpoints {
                secrets_manager: Some("http://all".into()),
                ssm: Some("http://ssm".into()),
                sts: Some("http://all".into()),
                use_fips: true,
            }
        );
        assert_eq!(Endpoints::from_env(|_| None), Endpoints::default());
    }
}
