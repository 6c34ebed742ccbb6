//! Calling providers over their unix sockets.
//!
//! One lazily connected channel per socket, kept for the process lifetime
//! (it reconnects by itself after a provider restart). Every call has a
//! deadline, responses are capped at `--max-call-recv-msg-size`, and a call
//! that finds the provider unavailable is retried a bounded number of times.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use secrets_store_proto::provider::v1alpha1 as api;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use tonic::transport::Channel;

use super::dirs::{ProviderName, find_socket};

/// Attempts for a call that finds the provider unavailable.
const ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubled for each later one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Provider call failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `<provider>.sock` in any provider directory.
    #[error("provider not found: provider {0:?}")]
    NotFound(String),
    /// The provider could not be reached.
    #[error("error connecting to provider {provider:?}: {message}")]
    Unavailable {
        /// Provider name.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// The provider did not answer in time.
    #[error("provider {0:?} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The response is larger than the configured maximum.
    #[error(
        "provider {0:?} response is larger than {1} bytes; raise --max-call-recv-msg-size if this is expected"
    )]
    TooLarge(String, usize),
    /// The provider answered with a gRPC error.
    #[error("provider {provider:?} failed: {code:?}: {message}")]
    Status {
        /// Provider name.
        provider: String,
        /// gRPC code.
        code: tonic::Code,
        /// Message from the provider.
        message: String,
    },
}

/// Settings of provider calls.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Directories searched for sockets, in order.
    pub dirs: Vec<PathBuf>,
    /// Largest response accepted, bytes.
    pub max_recv: usize,
    /// Deadline of one Mount call.
    pub mount_timeout: Duration,
}

/// Cached provider channels.
#[derive(Debug)]
pub struct ProviderClients {
    config: ClientConfig,
    channels: Mutex<HashMap<PathBuf, Channel>>,
}

impl ProviderClients {
    /// Clients for the given settings.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, provider: &ProviderName) -> Result<CsiDriverProviderClient<Channel>, Error> {
        let socket = find_socket(&self.config.dirs, provider)
            .ok_or_else(|| Error::NotFound(provider.to_string()))?;
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = channels
            .entry(socket.clone())
            .or_insert_with(|| {
                // The call deadline is enforced around each call (one timer,
                // one error); the endpoint only bounds connecting.
                let endpoint =
                    secrets_store_grpc_uds::endpoint().connect_timeout(Duration::from_secs(5));
                secrets_store_grpc_uds::connect_lazy(endpoint, &socket)
            })
            .clone();
        Ok(CsiDriverProviderClient::new(channel)
            .max_decoding_message_size(self.config.max_recv)
            .max_encoding_message_size(usize::MAX))
    }

    /// Calls Mount, retrying while the provider is unavailable.
    pub async fn mount(
        &self,
        provider: &ProviderName,
        request: api::MountRequest,
    ) -> Result<api::MountResponse, Error> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut client = self.client(provider)?;
            let call = client.mount(request.clone());
            let result = tokio::time::timeout(self.config.mount_timeout, call).await;
            let status = match result {
                Err(_) => {
                    return Err(Error::Timeout(
                        provider.to_string(),
                        self.config.mount_timeout,
                    ));
                }
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
            };
            let retry = status.code() == tonic::Code::Unavailable && attempt < ATTEMPTS;
            if !retry {
                return Err(self.classify(provider, status));
            }
            tracing::debug!(provider = %provider, attempt, "provider unavailable, retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// Calls Version (health checks and logs).
    pub async fn version(&self, provider: &ProviderName) -> Result<api::VersionResponse, Error> {
        let mut client = self.client(provider)?;
        let call = client.version(api::VersionRequest {
            version: "v1alpha1".into(),
        });
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Err(_) => Err(Error::Timeout(provider.to_string(), Duration::from_secs(5))),
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(self.classify(provider, status)),
        }
    }

    fn classify(&self, provider: &ProviderName, status: tonic::Status) -> Error {
        let p = provider.to_string();
        match status.code() {
            tonic::Code::Unavailable => Error::Unavailable {
                provider: p,
                message: status.message().to_string(),
            },
            tonic::Code::DeadlineExceeded => Error::Timeout(p, self.config.mount_timeout),
            // tonic reports an oversized message as OutOfRange (grpc-go as
            // ResourceExhausted).
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
                if status.message().contains("too large")
                    || status.message().contains("larger than max") =>
            {
                Error::TooLarge(p, self.config.max_recv)
            }
            code => Error::Status {
                provider: p,
                code,
                message: status.message().to_string(),
            },
        }
    }
}
