//! `secrets-store-csi-driver`: parse flags (Go syntax), print the version
//! or set up logging, serve the CSI socket until SIGTERM or SIGINT.

use secrets_store_csi_driver::config::{Config, Flags};
use std::sync::Arc;

use secrets_store_csi_driver::csi::controller::ControllerService;
use secrets_store_csi_driver::csi::identity::{IdentityService, Readiness};
use secrets_store_csi_driver::csi::node::NodeService;
use secrets_store_csi_driver::metrics::{self, Metrics};
use secrets_store_csi_driver::mount::linux::LinuxMounter;
use secrets_store_csi_driver::provider::client::ClientConfig;
use secrets_store_csi_driver::provider::{self, ProviderClients};
use secrets_store_csi_driver::publish::{PublishConfig, Publisher};
use secrets_store_csi_driver::{VERSION, server, sync, version};
use secrets_store_proto::csi::v1::controller_server::ControllerServer;
use secrets_store_proto::csi::v1::identity_server::IdentityServer;
use secrets_store_proto::csi::v1::node_server::NodeServer;
use tonic::service::Routes;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags: Flags = secrets_store_go_flag::parse();
    if flags.version {
        println!("{}", version::BUILD.json());
        return Ok(());
    }
    let config = match flags.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(64);
        }
    };
    config.log.init(&config.ignored)?;
    tracing::info!(
        version = VERSION,
        driver = %config.driver_name,
        node = %config.node_id,
        socket = %config.socket.display(),
        "starting"
    );

    let readiness = Readiness::default();
    let identity = IdentityService::new(config.driver_name.clone(), VERSION, readiness.clone());
    let metrics = Arc::new(Metrics::new());
    let metrics_addr = metrics::parse_addr(&config.metrics_addr)
        .map_err(|e| anyhow::anyhow!("invalid --metrics-addr {:?}: {e}", config.metrics_addr))?;
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding --metrics-addr {metrics_addr}: {e}"))?;
    tracing::info!(addr = %metrics_listener.local_addr()?, "serving metrics");
    tokio::spawn(metrics::serve(metrics_listener, metrics.clone()));
    let providers = Arc::new(ProviderClients::new(ClientConfig {
        dirs: config.provider_dirs.clone(),
        max_recv: config.max_call_recv_msg_size,
        mount_timeout: config.provider_timeout,
    }));
    if let Some(interval) = config.provider_health_check {
        tokio::spawn(provider::health::run(
            providers.clone(),
            config.provider_dirs.clone(),
            metrics.clone(),
            interval,
        ));
    }
    let publisher = Arc::new(Publisher::new(
        PublishConfig {
            node_id: config.node_id.clone(),
            rotation: config
                .enable_secret_rotation
                .then_some(config.rotation_poll_interval),
            kubeconfig: config.kubeconfig.clone(),
        },
        Arc::new(LinuxMounter),
        providers,
        metrics.clone(),
    ));
    if config.refresh_loop {
        tokio::spawn(secrets_store_csi_driver::refresh::run(
            publisher.clone(),
            config.driver_name.clone(),
            config.rotation_poll_interval,
        ));
    }
    // The publish pipeline will take this handle to ask for immediate passes.
    let _sync_handle = start_secret_sync(&config, metrics.clone()).await;
    let node = NodeService::new(config.node_id.clone(), publisher);
    let routes = Routes::new(IdentityServer::new(identity))
        .add_service(NodeServer::new(node))
        .add_service(ControllerServer::new(ControllerService));
    let listener = server::bind(&config.socket)?;
    server::serve(
        &config.socket,
        listener,
        routes,
        readiness,
        secrets_store_signal::shutdown(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the secret sync controller when a Kubernetes client can be made
/// (the driver serves CSI without one).
async fn start_secret_sync(config: &Config, metrics: Arc<Metrics>) -> sync::SyncHandle {
    let client = match secrets_store_csi_driver::apiserver::client(&config.kubeconfig).await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "secret sync disabled: no Kubernetes client");
            return sync::SyncHandle::disconnected();
        }
    };
    let (handle, trigger) = sync::trigger();
    let limit = usize::try_from(config.tmpfs_size).unwrap_or(usize::MAX);
    let files = sync::KubeletVolumes::new(&config.kubelet_dir, limit);
    tokio::spawn(sync::run(
        client,
        sync::SyncConfig::from_config(config),
        Arc::new(files),
        metrics,
        trigger,
    ));
    handle
}
