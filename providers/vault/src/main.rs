//! `secrets-store-csi-driver-provider-vault`: the process entry point.

use std::io::Write;

use secrets_store_provider_vault::{Flags, run, version_text};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags: Flags = secrets_store_go_flag::parse();
    if flags.version {
        let text = version_text(&flags.output)?;
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{text}");
        return Ok(());
    }
    let (log, ignored) = flags.logging();
    log.init(&ignored)?;
    run(flags).await
}
