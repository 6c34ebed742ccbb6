//! The command line: subcommands, their flags and help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use secrets_store_logging::LogFlags;

/// The provider directories the driver searches by default.
pub const DEFAULT_PROVIDER_DIRS: [&str; 2] = [
    "/var/run/secrets-store-csi-providers",
    "/etc/kubernetes/secrets-store-csi-providers",
];

const EXAMPLES: &str = "\
Examples:
  # Check classes before applying them (exit 1 on any mistake)
  secrets-store validate deploy/spc/*.yaml

  # Fill ./secrets once through the vault provider's socket in /tmp/providers
  secrets-store fill spc.yaml ./secrets --provider-dir /tmp/providers \\
      --token vault=/var/run/secrets/tokens/vault-token

  # Keep it filled: refresh every 30 s until Ctrl-C
  secrets-store fill spc.yaml ./secrets --provider-dir /tmp/providers --watch 30s

  # Play kubelet against a node's driver
  secrets-store publish --class db --pod-name web-0 --pod-namespace prod --pod-uid <uid>
  secrets-store unpublish --pod-uid <uid>

  # Shell completions
  secrets-store completions bash > /etc/bash_completion.d/secrets-store";

/// Secrets Store CSI tools: use a SecretProviderClass without Kubernetes,
/// check classes, and talk to a node's driver as kubelet does.
#[derive(Debug, Parser)]
#[command(
    name = "secrets-store",
    version,
    after_help = EXAMPLES,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// More logging on stderr (warnings by default): -v debug, -vv trace.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fill a directory with the secrets a SecretProviderClass names,
    /// through a provider's socket, without Kubernetes.
    #[command(after_help = FILL_NOTES)]
    Fill(FillArgs),
    /// Check SecretProviderClass files: the CRD schema (v1 and v1alpha1),
    /// the provider's parameters and its `objects` (unknown fields are
    /// errors).
    Validate(ValidateArgs),
    /// Send NodePublishVolume to a CSI driver, shaped as kubelet sends it
    /// for an inline volume (debugging a node).
    Publish(PublishArgs),
    /// Send NodeUnpublishVolume to a CSI driver, as kubelet does when the
    /// pod goes away.
    Unpublish(UnpublishArgs),
    /// Print a completion script for a shell.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const FILL_NOTES: &str = "\
The directory is written the way the driver writes a volume: the files live \
in a timestamped directory that `..data` points at and are swapped in one \
rename, so readers never see a mix; unchanged content is not rewritten; a \
failed refresh leaves the last good content in place. File paths and modes \
from the provider are checked with the driver's rules.

Examples:
  secrets-store fill spc.yaml ./secrets --provider-dir /tmp/providers
  secrets-store fill spc.yaml ./secrets --watch 1m --tmpfs   # as root";

/// The pod a fill or publish acts for (what kubelet puts in the volume
/// context).
#[derive(Debug, Clone, Args)]
pub struct PodArgs {
    /// Pod name (fill: `standalone` if unset).
    #[arg(long, value_name = "NAME")]
    pub pod_name: Option<String>,
    /// Pod namespace (fill: `default` if unset).
    #[arg(long, value_name = "NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// Pod UID (fill: a random one per run if unset).
    #[arg(long, value_name = "UID")]
    pub pod_uid: Option<String>,
    /// The pod's service account.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub service_account: String,
    /// An extra volume attribute (the pod volume's `volumeAttributes`);
    /// repeatable.
    #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = key_value)]
    pub attributes: Vec<(String, String)>,
    /// A nodePublishSecretRef entry, its value read from FILE; repeatable.
    #[arg(long = "secret", value_name = "KEY=FILE", value_parser = key_path)]
    pub secrets: Vec<(String, PathBuf)>,
}

/// `fill` flags.
#[derive(Debug, Clone, Args)]
pub struct FillArgs {
    /// The SecretProviderClass YAML file (re-read at every refresh).
    #[arg(value_name = "SPC_FILE")]
    pub spc: PathBuf,
    /// The directory to fill (created if missing; it must be empty or one
    /// this command filled before).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Which class, when the file holds several.
    #[arg(long, value_name = "NAME")]
    pub class: Option<String>,
    /// A directory holding `<provider>.sock`; repeatable, searched in order.
    #[arg(long = "provider-dir", value_name = "DIR", default_values = DEFAULT_PROVIDER_DIRS)]
    pub provider_dirs: Vec<PathBuf>,
    /// A service-account token for AUDIENCE, read from FILE at every fill
    /// (what kubelet passes for the CSIDriver's `tokenRequests`); repeatable.
    #[arg(long = "token", value_name = "AUDIENCE=FILE", value_parser = key_path)]
    pub tokens: Vec<(String, PathBuf)>,
    /// Pod identity and attributes.
    #[command(flatten)]
    pub pod: PodArgs,
    /// Keep running and refresh the content every INTERVAL (Go duration:
    /// `30s`, `2m`) until SIGINT/SIGTERM.
    #[arg(long, value_name = "INTERVAL", value_parser = duration)]
    pub watch: Option<Duration>,
    /// Mount a tmpfs on DIR first, so secrets never reach a disk (root
    /// only; an existing mount is reused).
    #[arg(long)]
    pub tmpfs: bool,
    /// Group owning the files (like a pod's fsGroup).
    #[arg(long, value_name = "GID")]
    pub group: Option<u32>,
    /// Deadline of one provider call.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub timeout: Duration,
    /// Largest provider response accepted, bytes (the driver's flag).
    #[arg(long, value_name = "BYTES", default_value_t = 4194304)]
    pub max_call_recv_msg_size: usize,
}

/// `validate` flags.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// SecretProviderClass YAML files (several documents per file are fine).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Print only problems.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where the driver is and where kubelet would put the volume.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The driver's CSI socket (`unix://` or a path).
    #[arg(
        long,
        value_name = "ENDPOINT",
        default_value = "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"
    )]
    pub endpoint: String,
    /// kubelet's root directory.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kubelet")]
    pub kubelet_dir: PathBuf,
    /// The pod's volume name.
    #[arg(long, value_name = "NAME", default_value = "secrets-store-inline")]
    pub volume: String,
    /// Volume id (default: kubelet's handle for the pod's inline volume).
    #[arg(long, value_name = "ID")]
    pub volume_id: Option<String>,
}

/// `publish` flags.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// Driver socket and volume.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The SecretProviderClass (in the pod's namespace).
    #[arg(long, value_name = "NAME")]
    pub class: String,
    /// Pod identity and attributes (name, namespace and UID required).
    #[command(flatten)]
    pub pod: PodArgs,
    /// kubelet's service-account token JSON
    /// (`{"<audience>":{"token":"…","expirationTimestamp":"…"}}`), read from FILE.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Send the tokens in the CSI secrets, as kubelet does with
    /// `serviceAccountTokenInSecrets`, instead of the volume context.
    #[arg(long, requires = "tokens")]
    pub tokens_in_secrets: bool,
    /// The pod's fsGroup (sent as the volume mount group).
    #[arg(long, value_name = "GID")]
    pub fs_group: Option<u32>,
}

/// `unpublish` flags.
#[derive(Debug, Clone, Args)]
pub struct UnpublishArgs {
    /// Driver socket and volume.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Pod UID.
    #[arg(long, value_name = "UID")]
    pub pod_uid: String,
}

/// Installs logging on stderr: warnings only by default (a command's
/// results are its output), `-v` debug, `-vv` trace through the shared
/// [`LogFlags`] (dependencies stay at info).
pub fn init_logging(verbose: u8) {
    #[derive(Parser)]
    struct Log {
        #[command(flatten)]
        log: LogFlags,
    }
    let v = match verbose {
        0 => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .try_init();
            return;
        }
        1 => "4",
        _ => "5",
    };
    if let Ok(l) = Log::try_parse_from(["log", "-v", v]) {
        let _ = l.log.init(&[]);
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn key_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((k, p)) if !k.is_empty() && !p.is_empty() => Ok((k.to_string(), PathBuf::from(p))),
        _ => Err(format!("expected KEY=FILE, got {s:?}")),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    match secrets_store_go_flag::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flag_values_are_named() {
        let err = Cli::try_parse_from(["secrets-store", "fill", "a", "b", "--watch", "soon"])
            .expect_err("bad duration");
        assert!(
            err.to_string()
                .contains("invalid value 'soon' for '--watch <INTERVAL>'"),
            "{err}"
        );
        let err = Cli::try_parse_from(["secrets-store", "fill", "a", "b", "--token", "vault"])
            .expect_err("bad token");
        assert!(
            err.to_string().contains("expected KEY=FILE, got \"vault\""),
            "{err}"
        );
    }
}
