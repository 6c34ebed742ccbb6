//! The Kubernetes client: from `--kubeconfig` when set, else in-cluster
//! configuration or `$KUBECONFIG`. Making one does not contact the API
//! server, so the driver starts (and answers Probe) without it.

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither in-cluster configuration nor a kubeconfig was found.
    #[error("no Kubernetes configuration: {0}")]
    Infer(kube::config::InferConfigError),
    /// `--kubeconfig` could not be read or used.
    #[error("kubeconfig {path}: {cause}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        cause: kube::config::KubeconfigError,
    },
    /// The configuration could not make a client (TLS set-up).
    #[error("Kubernetes client: {0}")]
    Client(kube::Error),
}

/// A client configured from `kubeconfig` (a file), or inferred when empty.
pub async fn client(kubeconfig: &str) -> Result<kube::Client, Error> {
    let config = if kubeconfig.is_empty() {
        kube::Config::infer().await.map_err(Error::Infer)?
    } else {
        let err = |cause| Error::Kubeconfig {
            path: kubeconfig.to_string(),
            cause,
        };
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(err)?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(err)?
    };
    kube::Client::try_from(config).map_err(Error::Client)
}
