//! `secrets-store-csi-driver-provider-alibabacloud`: the process entry point.

use secrets_store_provider_alibabacloud::{Flags, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags: Flags = secrets_store_go_flag::parse();
    flags.log.init(&[])?;
    run(flags).await
}
