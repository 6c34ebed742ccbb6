//! `secrets-store`: the Secrets Store CSI driver's pieces on the command
//! line, without a cluster.
//!
//! - [`fill`]: fills a directory from a SecretProviderClass file through
//!   any provider's socket, with the driver's request building, response
//!   checks and atomic writer, once or with `--watch`;
//! - [`validate`]: checks SecretProviderClass files against the CRD schema
//!   ([`class`], [`schema`]) and our providers' strict parameter checks;
//! - [`node`]: NodePublishVolume/NodeUnpublishVolume as kubelet sends them,
//!   for debugging a node's driver;
//! - [`cli`]: the flags and help.
//!
//! Provider protocol, payload rules and mounts are the driver's and the
//! provider SDK's; this crate only wires them to a command line.

pub mod class;
pub mod cli;
pub mod fill;
pub mod node;
pub mod schema;
pub mod validate;

use std::io::Write;

use clap::CommandFactory;

pub use cli::{Cli, Command};

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Fill(args) => fill::run(args).await?,
        Command::Validate(args) => {
            let mut out = std::io::stdout().lock();
            let report = validate::run(&args.files, args.quiet, &mut out)?;
            if !report.problems.is_empty() {
                let n = report.problems.len();
                writeln!(out, "{n} problem(s) in {} class(es)", report.classes)?;
                return Ok(1);
            }
        }
        Command::Publish(args) => {
            let target = node::publish(args).await?;
            println!("published {}", target.display());
        }
        Command::Unpublish(args) => {
            let target = node::unpublish(args).await?;
            println!("unpublished {}", target.display());
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "secrets-store", &mut std::io::stdout());
        }
    }
    Ok(0)
}
