//! One logging set-up for the driver and every provider binary.
//!
//! [`LogFlags`] is flattened into each binary's clap flags (parsed with
//! `secrets-store-go-flag`, so `-v=5` and `-logtostderr` work). It accepts
//! every flag klog v2 registers, because upstream DaemonSets pass them, and
//! `--log-format-json`. [`LogFlags::init`] installs the `tracing`
//! subscriber on stderr and then logs ONE warning naming every given flag
//! that has no effect here (klog's file output and header options, and any
//! the binary adds).
//!
//! `-v` means the same everywhere: 0–3 info, 4 debug, 5 and more trace, for
//! this project's crates. Dependencies whose debug output is wire-level
//! noise (h2, hyper, tonic, rustls, kube…) stay at info at every
//! verbosity. `RUST_LOG` is not read. Output is JSON lines with
//! `--log-format-json`, otherwise text, coloured only when stderr is a
//! terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Dependencies capped at info whatever `-v` says.
pub const CAPPED: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "tower",
    "tower_http",
    "tonic",
    "tonic_health",
    "rustls",
    "kube_client",
    "kube_runtime",
    "reqwest",
    "axum",
    "mio",
    "tokio_util",
    // The AWS SDK for Rust: its trace events print signing inputs, session
    // tokens included. Prefixes: every aws_smithy_* and aws_sdk_* crate.
    "aws_smithy",
    "aws_sdk",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_credential_types",
    "aws_types",
];

/// Installing the subscriber failed.
#[derive(Debug, thiserror::Error)]
#[error("a global tracing subscriber is already installed")]
pub struct AlreadyInstalled;

/// Logging flags: ours plus every flag klog v2 registers.
#[derive(Debug, Clone, clap::Args)]
pub struct LogFlags {
    /// Log verbosity (klog's -v): 0-3 info, 4 debug, 5 and more trace for
    /// this project; dependencies stay at info.
    #[arg(short = 'v', long = "v", default_value_t = 0, value_name = "N")]
    pub verbosity: u32,
    /// Log as JSON lines instead of text.
    #[arg(long = "log-format-json")]
    pub json: bool,
    /// klog: per-file verbosity (Go file patterns; no effect here).
    #[arg(long = "vmodule", default_value = "", value_name = "PATTERN=N,...")]
    pub vmodule: String,
    /// klog: log to standard error (always the case here).
    #[arg(long = "logtostderr", default_value_t = true)]
    pub logtostderr: bool,
    /// klog: also log to standard error (always the case here).
    #[arg(long = "alsologtostderr")]
    pub alsologtostderr: bool,
    /// klog: log file (no effect here: logs go to stderr).
    #[arg(long = "log_file", default_value = "")]
    pub log_file: String,
    /// klog: log directory (no effect here: logs go to stderr).
    #[arg(long = "log_dir", default_value = "")]
    pub log_dir: String,
    /// klog: log file size limit in MB (no effect here).
    #[arg(long = "log_file_max_size", default_value_t = 1800)]
    pub log_file_max_size: u64,
    /// klog: severity copied to stderr when logging to files (no effect here).
    #[arg(long = "stderrthreshold")]
    pub stderrthreshold: Option<String>,
    /// klog: severity copied to stderr with --alsologtostderr (no effect here).
    #[arg(long = "alsologtostderrthreshold")]
    pub alsologtostderrthreshold: Option<String>,
    /// klog: legacy stderr threshold behaviour (no effect here).
    #[arg(long = "legacy_stderr_threshold_behavior", default_value_t = true)]
    pub legacy_stderr_threshold_behavior: bool,
    /// klog: add the file directory to the header (no effect here).
    #[arg(long = "add_dir_header")]
    pub add_dir_header: bool,
    /// klog: no header prefixes (no effect here).
    #[arg(long = "skip_headers")]
    pub skip_headers: bool,
    /// klog: no headers in log files (no effect here).
    #[arg(long = "skip_log_headers")]
    pub skip_log_headers: bool,
    /// klog: one file per severity (no effect here).
    #[arg(long = "one_output")]
    pub one_output: bool,
    /// klog: stack trace at file:line (no effect here).
    #[arg(long = "log_backtrace_at", default_value = "")]
    pub log_backtrace_at: String,
}

impl LogFlags {
    /// The level of this project's crates for the verbosity.
    pub fn level(&self) -> &'static str {
        match self.verbosity {
            0..=3 => "info",
            4 => "debug",
            _ => "trace",
        }
    }

    /// The filter directives: our level, with [`CAPPED`] at info.
    pub fn directives(&self) -> String {
        let mut d = self.level().to_string();
        if self.level() != "info" {
            for target in CAPPED {
                d.push_str(&format!(",{target}=info"));
            }
        }
        d
    }

    /// The klog flags given with a value that asks for something this
    /// set-up does not do, by name.
    pub fn ignored(&self) -> Vec<&'static str> {
        let checks = [
            (!self.vmodule.is_empty(), "--vmodule"),
            (!self.logtostderr, "--logtostderr=false"),
            (!self.log_file.is_empty(), "--log_file"),
            (!self.log_dir.is_empty(), "--log_dir"),
            (self.log_file_max_size != 1800, "--log_file_max_size"),
            (self.stderrthreshold.is_some(), "--stderrthreshold"),
            (
                self.alsologtostderrthreshold.is_some(),
                "--alsologtostderrthreshold",
            ),
            (
                !self.legacy_stderr_threshold_behavior,
                "--legacy_stderr_threshold_behavior",
            ),
            (self.add_dir_header, "--add_dir_header"),
            (self.skip_headers, "--skip_headers"),
            (self.skip_log_headers, "--skip_log_headers"),
            (self.one_output, "--one_output"),
            (!self.log_backtrace_at.is_empty(), "--log_backtrace_at"),
        ];
        checks
            .into_iter()
            .filter(|(hit, _)| *hit)
            .map(|(_, n)| n)
            .collect()
    }

    /// A subscriber writing to `writer` as the flags say.
    pub fn subscriber<W>(&self, writer: W, ansi: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(self.directives()))
            .with_writer(writer);
        if self.json {
            Box::new(builder.json().finish())
        } else {
            Box::new(builder.with_ansi(ansi).finish())
        }
    }

    /// Installs the process-wide subscriber on stderr, then logs one
    /// warning naming every flag that has no effect: the klog ones from
    /// [`LogFlags::ignored`] and `also_ignored` from the binary.
    pub fn init(&self, also_ignored: &[String]) -> Result<(), AlreadyInstalled> {
        let ansi = std::io::stderr().is_terminal();
        tracing::subscriber::set_global_default(self.subscriber(std::io::stderr, ansi))
            .map_err(|_| AlreadyInstalled)?;
        self.warn_ignored(also_ignored);
        Ok(())
    }

    fn warn_ignored(&self, also_ignored: &[String]) {
        let mut names: Vec<String> = self.ignored().into_iter().map(String::from).collect();
        names.extend(also_ignored.iter().cloned());
        if !names.is_empty() {
            tracing::warn!(
                flags = %names.join(" "),
                "flags accepted for compatibility have no effect"
            );
        }
    }
}

#[cfg(test)]
mod tests;
