//! Command-line flags, with upstream's names and defaults.

use std::path::PathBuf;
use std::time::Duration;

use secrets_store_provider_sdk::LogFlags;

/// Provider flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "secrets-store-csi-driver-provider-alibabacloud",
    version,
    about = "Alibaba Cloud Secrets Manager provider for the Secrets Store CSI driver"
)]
pub struct Flags {
    /// Directory for the provider socket (`alibabacloud.sock`).
    #[arg(long, default_value = "/etc/kubernetes/secrets-store-csi-providers")]
    pub provider_volume: PathBuf,
    /// Port of the HTTP health endpoint.
    #[arg(long, default_value_t = 8989)]
    pub healthz_port: u16,
    /// Path of the HTTP health endpoint.
    #[arg(long, default_value = "/healthz")]
    pub healthz_path: String,
    /// Timeout of the health check behind the endpoint (Go duration).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub healthz_timeout: Duration,
    /// KMS requests per second (upstream's name; it is a rate, not a cap).
    #[arg(long, default_value_t = 10)]
    pub max_concurrent_kms_secret_pulls: u32,
    /// OOS requests per second (upstream's name; it is a rate, not a cap).
    #[arg(long, default_value_t = 10)]
    pub max_concurrent_oos_secret_pulls: u32,
    /// Region when the SPC sets none; unset means the node's region label,
    /// then `cn-hangzhou`.
    #[arg(long)]
    pub region: Option<String>,
    /// KMS endpoint (host or URL) replacing `kms-vpc.<region>.aliyuncs.com`.
    #[arg(long)]
    pub kms_endpoint: Option<String>,
    /// OOS endpoint (host or URL) replacing `oos-vpc.<region>.aliyuncs.com`.
    #[arg(long)]
    pub oos_endpoint: Option<String>,
    /// STS endpoint (host or URL); default from `ALIBABA_CLOUD_STS_REGION`,
    /// else `sts.aliyuncs.com`.
    #[arg(long)]
    pub sts_endpoint: Option<String>,
    /// Host suffixes an SPC `kmsEndpoint` may use besides Alibaba Cloud's
    /// documented KMS endpoints (comma-separated; still HTTPS only).
    #[arg(long, value_delimiter = ',')]
    pub allowed_endpoint_suffixes: Vec<String>,
    /// ECS instance metadata service.
    #[arg(long, default_value = "http://100.100.100.200")]
    pub ecs_metadata_endpoint: String,
    /// Logging: `-v`, `--log-format-json` and klog's flags.
    #[command(flatten)]
    pub log: LogFlags,
}

/// Parses a Go duration such as `5s`, `500ms`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    secrets_store_go_flag::parse_duration(s).map_err(|e| e.to_string())
}

/// The STS endpoint from the environment: `sts.<r>.aliyuncs.com` with
/// `ALIBABA_CLOUD_STS_REGION` (`sts-vpc.` with
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), else `sts.aliyuncs.com`.
pub fn sts_host(get: impl Fn(&str) -> Option<String>) -> String {
    match get("ALIBABA_CLOUD_STS_REGION").filter(|r| !r.is_empty()) {
        Some(r)
            if get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            format!("sts-vpc.{r}.aliyuncs.com")
        }
        Some(r) => format!("sts.{r}.aliyuncs.com"),
        None => "sts.aliyuncs.com".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults() {
        let f: Flags = secrets_store_go_flag::try_parse_from(["p"]).expect("defaults");
        assert_eq!(
            f.provider_volume,
            PathBuf::from("/etc/kubernetes/secrets-store-csi-providers")
        );
        assert_eq!(
            (f.healthz_port, f.healthz_path.as_str(), f.healthz_timeout),
            (8989, "/healthz", Duration::from_secs(5))
        );
        assert_eq!(
            (
                f.max_concurrent_kms_secret_pulls,
                f.max_concurrent_oos_secret_pulls
            ),
            (10, 10)
        );
        assert_eq!(f.region, None);
        let f: Flags = secrets_store_go_flag::try_parse_from([
            "p",
            "-provider-volume=/provider",
            "-v=4",
            "--region=cn-beijing",
            "--healthz-timeout=1m30s",
            "--allowed-endpoint-suffixes=127.0.0.1,kms.test",
        ])
        .expect("go syntax");
        assert_eq!(f.allowed_endpoint_suffixes, ["127.0.0.1", "kms.test"]);
        assert_eq!(
            (f.log.verbosity, f.region.as_deref(), f.healthz_timeout),
            (4, Some("cn-beijing"), Duration::from_secs(90))
        );
    }

    #[test]
    fn durations_and_sts_hosts() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(sts_host(|_| None), "sts.aliyuncs.com");
        assert_eq!(
            sts_host(|k| (k == "ALIBABA_CLOUD_STS_REGION").then(|| "cn-beijing".into())),
            "sts.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            sts_host(|_| Some("true".into())),
            "sts-vpc.true.aliyuncs.com"
        );
    }
}
