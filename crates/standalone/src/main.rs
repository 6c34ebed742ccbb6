//! The `secrets-store` binary: parses the command line, sets up logging on
//! stderr and runs the command; errors are printed once, with exit code 1.

use std::process::ExitCode;

use clap::Parser;
use secrets_store_standalone::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    secrets_store_standalone::cli::init_logging(cli.verbose);
    match secrets_store_standalone::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
