//! `secrets-store-csi-driver-provider-alibabacloud`: the process entry point.

use clap::Parser;
use secrets_store_provider_alibabacloud::{Flags, init_tracing, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_tracing(&flags);
    run(flags).await
}
