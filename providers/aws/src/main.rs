//! `secrets-store-csi-driver-provider-aws`: the process entry point.

use secrets_store_provider_aws::{Flags, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags: Flags = secrets_store_go_flag::parse();
    flags.log.init(&[])?;
    run(flags).await
}
