//! Command-line flags, with the upstream driver's names and defaults so an
//! upstream DaemonSet's arguments work unchanged, turned into a validated
//! [`Config`] before anything starts. Parse them with
//! `secrets_store_go_flag::parse` (Go syntax: `-flag=value`, bare or
//! `=false` bools); a plain `bool` field is a Go bool.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secrets_store_logging::LogFlags;

/// Errors in the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--endpoint` is not `unix://<path>`.
    #[error("invalid --endpoint {0:?}: only unix://<path> endpoints are supported")]
    Endpoint(String),
    /// A duration flag could not be parsed.
    #[error("invalid duration {0:?}: use a Go duration such as 2m, 30s or 1h30m")]
    Duration(String),
}

/// Raw flags as given on the command line (upstream names and defaults).
#[derive(Debug, Clone, Parser)]
#[command(name = "secrets-store-csi-driver", about)]
pub struct Flags {
    /// Print the version as JSON (upstream's shape) and exit.
    #[arg(long)]
    pub version: bool,
    /// Logging: `-v`, `--log-format-json` and klog's flags.
    #[command(flatten)]
    pub log: LogFlags,
    /// CSI endpoint, `unix://<path>`.
    #[arg(long, default_value = "unix://tmp/csi.sock")]
    pub endpoint: String,
    /// Name the driver registers with kubelet.
    #[arg(long, default_value = "secrets-store.csi.k8s.io")]
    pub drivername: String,
    /// Node name (NodeGetInfo node_id, SecretProviderClassPodStatus node label).
    #[arg(long, default_value = "")]
    pub nodeid: String,
    /// Directory of provider sockets.
    #[arg(long, default_value = "/var/run/secrets-store-csi-providers")]
    pub provider_volume: PathBuf,
    /// More provider socket directories, comma separated, searched first.
    #[arg(long, default_value = "/etc/kubernetes/secrets-store-csi-providers")]
    pub additional_provider_volume_paths: String,
    /// Address of the Prometheus metrics endpoint.
    #[arg(long, default_value = ":8095")]
    pub metrics_addr: String,
    /// Metrics backend; only Prometheus exists (others are ignored with a
    /// warning).
    #[arg(long, default_value = "Prometheus")]
    pub metrics_backend: String,
    /// Refresh mounted content on kubelet republish.
    #[arg(long)]
    pub enable_secret_rotation: bool,
    /// Minimum interval between two refreshes of a volume (Go duration).
    #[arg(long, default_value = "2m")]
    pub rotation_poll_interval: String,
    /// Serve pprof (accepted for compatibility; there is no Go profiler here).
    #[arg(long)]
    pub enable_pprof: bool,
    /// pprof port (accepted for compatibility).
    #[arg(long, default_value_t = 6065)]
    pub pprof_port: u16,
    /// Largest provider response accepted, in bytes.
    #[arg(long, default_value_t = 4194304)]
    pub max_call_recv_msg_size: usize,
    /// Poll providers with Version and report their health.
    #[arg(long)]
    pub provider_health_check: bool,
    /// Interval of provider health checks (Go duration).
    #[arg(long, default_value = "2m")]
    pub provider_health_check_interval: String,
    /// Kubeconfig file; in-cluster configuration (or `$KUBECONFIG`) when empty.
    #[arg(long, default_value = "")]
    pub kubeconfig: String,
    /// Refresh mounted volumes from the driver itself every
    /// --rotation-poll-interval, for clusters whose CSIDriver has no
    /// requiresRepublish (needs --enable-secret-rotation). Not an upstream flag.
    #[arg(long)]
    pub enable_refresh_loop: bool,
    /// Deadline of one provider Mount call (Go duration). Not an upstream
    /// flag: upstream waits as long as kubelet does.
    #[arg(long, default_value = "60s")]
    pub provider_timeout: String,
    /// kubelet's root directory. Targets must be kubelet's CSI mount
    /// directories under it (`<dir>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`).
    /// Not an upstream flag.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_dir: PathBuf,
    /// Driver-private directory (on the host, never inside a pod volume)
    /// holding what the driver knows about each volume. Empty means
    /// `<kubelet-dir>/plugins/csi-secrets-store/state`. Not an upstream flag.
    #[arg(long, default_value = "")]
    pub state_dir: String,
    /// Keep the state directory on a tmpfs: when it is not on one, mount a
    /// small private tmpfs on it (records describe tmpfs mounts and end with
    /// them at a reboot); without the privilege to mount, the directory is
    /// used as it is. Not an upstream flag.
    #[arg(long, default_value_t = true)]
    pub state_dir_tmpfs: bool,
    /// Lowest value the per-class `rotation-poll-interval` annotation may
    /// set (Go duration); lower values are raised to it. Not an upstream flag.
    #[arg(long, default_value = "30s")]
    pub min_rotation_poll_interval: String,
    /// Interval at which synced Kubernetes Secrets are checked against the
    /// mounted content and repaired (Go duration). Not an upstream flag:
    /// upstream's sync controller requeues every 5 minutes.
    #[arg(long, default_value = "5m")]
    pub secret_sync_resync_interval: String,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the CSI unix socket.
    pub socket: PathBuf,
    /// Driver name.
    pub driver_name: String,
    /// Node name.
    pub node_id: String,
    /// Provider socket directories, in search order.
    pub provider_dirs: Vec<PathBuf>,
    /// Minimum interval between refreshes of one volume.
    pub rotation_poll_interval: Duration,
    /// Whether republish refreshes content.
    pub enable_secret_rotation: bool,
    /// Largest provider response, bytes.
    pub max_call_recv_msg_size: usize,
    /// Interval of provider health checks, if enabled.
    pub provider_health_check: Option<Duration>,
    /// Deadline of one provider Mount call.
    pub provider_timeout: Duration,
    /// Run the driver-side refresh loop.
    pub refresh_loop: bool,
    /// Kubeconfig file, empty for in-cluster.
    pub kubeconfig: String,
    /// Address of the metrics endpoint.
    pub metrics_addr: String,
    /// Logging flags.
    pub log: LogFlags,
    /// Flags given that have no effect here (warned about at start).
    pub ignored: Vec<String>,
    /// kubelet's root directory.
    pub kubelet_dir: PathBuf,
    /// Driver-private volume state directory.
    pub state_dir: PathBuf,
    /// Keep the state directory on a tmpfs (mount one when it is not).
    pub state_dir_tmpfs: bool,
    /// Floor of the per-class refresh interval annotation.
    pub min_rotation_poll_interval: Duration,
    /// Resync interval of synced Secrets.
    pub secret_sync_resync_interval: Duration,
    /// `size=` of each volume's tmpfs, in bytes: room for two copies of the
    /// largest provider response (the atomic writer holds the old and the
    /// new content during a swap) plus 1 MiB.
    pub tmpfs_size: u64,
}

impl Flags {
    /// Driver flags accepted for upstream compatibility that do nothing
    /// here (klog's are reported by [`LogFlags`]).
    pub fn ignored(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.metrics_backend.eq_ignore_ascii_case("prometheus") {
            out.push(format!("--metrics-backend={}", self.metrics_backend));
        }
        if self.enable_pprof {
            out.push("--enable-pprof".into());
        }
        if self.pprof_port != 6065 {
            out.push("--pprof-port".into());
        }
        out
    }

    /// Validates the flags.
    pub fn into_config(self) -> Result<Config, Error> {
        let mut provider_dirs: Vec<PathBuf> = self
            .additional_provider_volume_paths
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        provider_dirs.push(self.provider_volume.clone());
        let state_dir = if self.state_dir.is_empty() {
            self.kubelet_dir.join("plugins/csi-secrets-store/state")
        } else {
            PathBuf::from(&self.state_dir)
        };
        let ignored = self.ignored();
        Ok(Config {
            ignored,
            tmpfs_size: tmpfs_size(self.max_call_recv_msg_size),
            kubelet_dir: self.kubelet_dir,
            state_dir,
            state_dir_tmpfs: self.state_dir_tmpfs,
            min_rotation_poll_interval: parse_duration(&self.min_rotation_poll_interval)?,
            secret_sync_resync_interval: parse_duration(&self.secret_sync_resync_interval)?,
            socket: parse_endpoint(&self.endpoint)?,
            driver_name: self.drivername,
            node_id: self.nodeid,
            provider_dirs,
            rotation_poll_interval: parse_duration(&self.rotation_poll_interval)?,
            enable_secret_rotation: self.enable_secret_rotation,
            max_call_recv_msg_size: self.max_call_recv_msg_size,
            provider_health_check: if self.provider_health_check {
                Some(parse_duration(&self.provider_health_check_interval)?)
            } else {
                None
            },
            provider_timeout: parse_duration(&self.provider_timeout)?,
            refresh_loop: self.enable_refresh_loop && self.enable_secret_rotation,
            kubeconfig: self.kubeconfig,
            metrics_addr: self.metrics_addr,
            log: self.log,
        })
    }
}

/// Socket path of a `unix://` endpoint. Like upstream, `unix://tmp/csi.sock`
/// means `/tmp/csi.sock` (a `/` is prepended to a relative remainder) and the
/// scheme is matched case-insensitively.
pub fn parse_endpoint(endpoint: &str) -> Result<PathBuf, Error> {
    let rest = endpoint
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("unix://"))
        .map(|_| &endpoint[7..])
        .filter(|rest| !rest.is_empty())
        .ok_or_else(|| Error::Endpoint(endpoint.to_string()))?;
    Ok(if rest.starts_with('/') {
        PathBuf::from(rest)
    } else {
        PathBuf::from(format!("/{rest}"))
    })
}

/// tmpfs size for a given provider response limit, rounded up to 4 KiB pages.
pub fn tmpfs_size(max_call_recv_msg_size: usize) -> u64 {
    let bytes = (max_call_recv_msg_size as u64)
        .saturating_mul(2)
        .saturating_add(1 << 20);
    bytes.div_ceil(4096).saturating_mul(4096)
}

/// Parses a Go duration string (`300ms`, `2m`, `1h30m`, `1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    secrets_store_go_flag::parse_duration(s).map_err(|e| Error::Duration(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms_upstream_accepts() {
        let cases = [
            ("unix://tmp/csi.sock", Some("/tmp/csi.sock")),
            ("unix:///csi/csi.sock", Some("/csi/csi.sock")),
            ("UNIX:///csi/csi.sock", Some("/csi/csi.sock")),
            ("tcp://127.0.0.1:10000", None),
            ("unix://", None),
            ("/csi/csi.sock", None),
        ];
        for (input, want) in cases {
            let got = parse_endpoint(input).ok();
            assert_eq!(got.as_deref(), want.map(std::path::Path::new), "{input}");
        }
    }

    #[test]
    fn upstream_daemonset_arguments_parse() {
        let flags = secrets_store_go_flag::try_parse_from::<Flags, _, _>([
            "secrets-store-csi-driver",
            "--endpoint=unix:///csi/csi.sock",
            "--nodeid=node-1",
            "--provider-volume=/var/run/secrets-store-csi-providers",
            "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
            "--metrics-addr=:8095",
            "--enable-secret-rotation=false",
            "--rotation-poll-interval=2m",
            "--provider-health-check=false",
            "--provider-health-check-interval=2m",
            "--max-call-recv-msg-size=4194304",
            "-v=5",
        ])
        .expect("upstream arguments parse");
        let config = flags.into_config().expect("valid");
        assert_eq!(config.socket, PathBuf::from("/csi/csi.sock"));
        assert_eq!(config.node_id, "node-1");
        assert_eq!(config.log.verbosity, 5);
        assert!(config.ignored.is_empty());
        assert_eq!(
            config.provider_dirs,
            [
                PathBuf::from("/etc/kubernetes/secrets-store-csi-providers"),
                PathBuf::from("/var/run/secrets-store-csi-providers")
            ]
        );
        assert_eq!(config.rotation_poll_interval, Duration::from_secs(120));
        assert!(config.provider_health_check.is_none());
    }

    #[test]
    fn go_style_bools_and_single_dash_flags() {
        let parse = |args: &[&str]| {
            secrets_store_go_flag::try_parse_from::<Flags, _, _>(
                std::iter::once("d").chain(args.iter().copied()),
            )
        };
        let f = parse(&[
            "-endpoint=unix:///x/csi.sock",
            "-enable-secret-rotation",
            "--provider-health-check=True",
            "--log-format-json=0",
            "-enable-refresh-loop=t",
            "-logtostderr",
            "-vmodule=publish=5",
            "--log_file_max_size=10",
        ])
        .expect("go syntax");
        assert_eq!(f.log.ignored(), ["--vmodule", "--log_file_max_size"]);
        assert_eq!(f.endpoint, "unix:///x/csi.sock");
        assert!(f.enable_secret_rotation && f.provider_health_check && f.enable_refresh_loop);
        assert!(!f.log.json && !f.enable_pprof);
        let f = parse(&[
            "--metrics-backend=stackdriver",
            "-enable-pprof",
            "--pprof-port=7000",
            "-version",
        ])
        .expect("ignored flags parse");
        assert!(f.version);
        assert_eq!(
            f.ignored(),
            [
                "--metrics-backend=stackdriver",
                "--enable-pprof",
                "--pprof-port"
            ]
        );
        assert!(
            parse(&["--metrics-backend=prometheus"])
                .expect("lower case")
                .ignored()
                .is_empty()
        );
        let err = parse(&["--enable-secret-rotation=yes"]).expect_err("not a Go bool");
        assert!(err.to_string().contains("invalid boolean \"yes\""), "{err}");
    }

    #[test]
    fn defaults_match_upstream() {
        let config = secrets_store_go_flag::try_parse_from::<Flags, _, _>(["d"])
            .expect("parse")
            .into_config()
            .expect("valid");
        assert_eq!(config.socket, PathBuf::from("/tmp/csi.sock"));
        assert_eq!(config.driver_name, "secrets-store.csi.k8s.io");
        assert_eq!(config.max_call_recv_msg_size, 4 * 1024 * 1024);
        assert!(!config.enable_secret_rotation);
        assert_eq!(config.kubelet_dir, PathBuf::from("/var/lib/kubelet"));
        assert_eq!(
            config.state_dir,
            PathBuf::from("/var/lib/kubelet/plugins/csi-secrets-store/state")
        );
        assert!(config.state_dir_tmpfs);
        let off =
            secrets_store_go_flag::try_parse_from::<Flags, _, _>(["d", "--state-dir-tmpfs=false"])
                .expect("parse");
        assert!(!off.state_dir_tmpfs);
        assert_eq!(config.min_rotation_poll_interval, Duration::from_secs(30));
        assert_eq!(config.secret_sync_resync_interval, Duration::from_secs(300));
        assert_eq!(config.tmpfs_size, 9 << 20);
    }
}
