//! `secrets-store-csi-driver-provider-vault`: the process entry point.

use secrets_store_provider_vault::{Flags, run, version_text};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags: Flags = secrets_store_go_flag::parse();
    if flags.version {
        println!("{}", version_text(&flags.output)?);
        return Ok(());
    }
    let (log, ignored) = flags.logging();
    log.init(&ignored)?;
    run(flags).await
}
