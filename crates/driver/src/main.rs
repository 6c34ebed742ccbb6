//! `secrets-store-csi-driver`: parse flags (Go syntax), print the version
//! or set up logging, serve the CSI socket until SIGTERM or SIGINT.

use secrets_store_csi_driver::config::{Config, Flags};
use std::sync::Arc;

use secrets_store_csi_driver::apiclient::LazyClient;
use secrets_store_csi_driver::csi::controller::ControllerService;
use secrets_store_csi_driver::csi::identity::{IdentityService, Readiness};
use secrets_store_csi_driver::csi::node::NodeService;
use secrets_store_csi_driver::metrics::{self, Metrics};
use secrets_store_csi_driver::mount::linux::LinuxMounter;
use secrets_store_csi_driver::provider::client::ClientConfig;
use secrets_store_csi_driver::provider::{self, ProviderClients};
use secrets_store_csi_driver::publish::{Intervals, PublishConfig, Publisher};
use secrets_store_csi_driver::refresh::RefreshLoop;
use secrets_store_csi_driver::report::Reporter;
use secrets_store_csi_driver::target::Rules;
use secrets_store_csi_driver::volume::{Backing, Store};

/// `size=` of the state directory's tmpfs: a record is about 1 KiB, so
/// this holds tens of thousands (tmpfs takes memory only for what it holds).
const STATE_TMPFS_SIZE: u64 = 64 << 20;
use secrets_store_csi_driver::{VERSION, server, spc, sync, version};
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
    let metrics = serve_metrics(&config.metrics_addr).await?;
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
    let kube = LazyClient::new(config.kubeconfig.clone());
    let publisher = Arc::new(publisher(&config, &kube, providers, metrics.clone()).await?);
    tokio::spawn(reconcile_status(publisher.clone()));
    let reporter = Arc::new(Reporter::new(
        metrics.clone(),
        kube.clone(),
        config.node_id.clone(),
    ));
    if config.refresh_loop {
        tokio::spawn(
            RefreshLoop {
                publisher: publisher.clone(),
                reporter: reporter.clone(),
                driver_name: config.driver_name.clone(),
                interval: config.rotation_poll_interval,
            }
            .run(),
        );
    }
    let store = publisher.store().clone();
    let node = NodeService::new(config.node_id.clone(), publisher, reporter);
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
    release_state_tmpfs(&store);
    tracing::info!("stopped");
    Ok(())
}

/// Opens `--state-dir`, on a tmpfs unless `--state-dir-tmpfs=false`.
fn open_store(config: &Config) -> anyhow::Result<Store> {
    let opened = if config.state_dir_tmpfs {
        Store::open_on_tmpfs(&config.state_dir, STATE_TMPFS_SIZE)
    } else {
        Store::open(&config.state_dir).map(|s| (s, Backing::Disk("--state-dir-tmpfs=false".into())))
    };
    let (store, backing) = opened.map_err(|e| anyhow::anyhow!("--state-dir: {e}"))?;
    match backing {
        Backing::Mounted { moved } => {
            tracing::info!(dir = %store.dir().display(), moved, "state directory: mounted a private tmpfs")
        }
        Backing::Tmpfs => {
            tracing::info!(dir = %store.dir().display(), "state directory: on a tmpfs")
        }
        Backing::Disk(why) => {
            tracing::info!(dir = %store.dir().display(), reason = %why, "state directory: not on a tmpfs")
        }
    }
    Ok(store)
}

/// At a clean shutdown, unmounts the state tmpfs this driver mounted when
/// no volume record remains in it.
fn release_state_tmpfs(store: &Store) {
    match store.release_tmpfs() {
        Ok(true) => tracing::info!("state directory tmpfs unmounted: no volume left"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "state directory tmpfs not unmounted"),
    }
}

/// Writes the SecretProviderClassPodStatus objects a previous run left
/// pending (it died between a mount and the status write).
async fn reconcile_status(publisher: Arc<Publisher>) {
    match publisher.reconcile_status().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            volumes = n,
            "writing statuses left pending by the previous run"
        ),
        Err(e) => tracing::warn!(error = %e, "pending statuses not reconciled"),
    }
}

/// Binds `--metrics-addr` and serves `/metrics` in the background.
async fn serve_metrics(addr: &str) -> anyhow::Result<Arc<Metrics>> {
    let metrics = Arc::new(Metrics::new());
    let parsed = metrics::parse_addr(addr)
        .map_err(|e| anyhow::anyhow!("invalid --metrics-addr {addr:?}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|e| anyhow::anyhow!("binding --metrics-addr {parsed}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics");
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    Ok(metrics)
}

/// The publish pipeline over the real mounter, the state directory and the
/// secret sync controller.
async fn publisher(
    config: &Config,
    kube: &LazyClient,
    providers: Arc<ProviderClients>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Publisher> {
    let store = open_store(config)?;
    // SecretProviderClasses from one watch, for publishes and secret sync
    // (ARCHITECTURE.md, "Publish cost"); without a client every publish
    // fails before reading one.
    let classes = match kube.get().await {
        Ok(client) => spc::Cache::start(client.clone()),
        Err(_) => spc::Cache::default(),
    };
    let sync = start_secret_sync(config, kube, &store, metrics, &classes).await;
    Ok(Publisher::new(
        PublishConfig {
            node_id: config.node_id.clone(),
            rotation: config.enable_secret_rotation,
            intervals: Intervals {
                default: config.rotation_poll_interval,
                floor: config.min_rotation_poll_interval,
            },
            tmpfs_size: config.tmpfs_size,
        },
        Rules::new(&config.kubelet_dir),
        Arc::new(LinuxMounter),
        providers,
        store,
        kube.clone(),
    )
    .with_sync(sync)
    .with_classes(classes))
}

/// Starts the secret sync controller when a Kubernetes client can be made
/// (the driver serves CSI without one). It reads files only through the
/// driver's own volume records.
async fn start_secret_sync(
    config: &Config,
    kube: &LazyClient,
    store: &Store,
    metrics: Arc<Metrics>,
    classes: &spc::Cache,
) -> sync::SyncHandle {
    let client = match kube.get().await {
        Ok(client) => client.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "secret sync disabled: no Kubernetes client");
            return sync::SyncHandle::disconnected();
        }
    };
    let (handle, trigger) = sync::trigger();
    let limit = usize::try_from(config.tmpfs_size).unwrap_or(usize::MAX);
    let files = sync::TrustedVolumes::new(Rules::new(&config.kubelet_dir), store.clone(), limit);
    let sync_config = sync::SyncConfig {
        classes: classes.clone(),
        ..sync::SyncConfig::from_config(config)
    };
    tokio::spawn(sync::run(
        client,
        sync_config,
        Arc::new(files),
        metrics,
        trigger,
    ));
    handle
}
