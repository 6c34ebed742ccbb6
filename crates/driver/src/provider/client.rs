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

use backon::{ExponentialBuilder, Retryable};
use secrets_store_proto::provider::v1alpha1 as api;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use tonic::transport::Channel;

use super::dirs::{ProviderName, find_socket};

/// Retries of a call that finds the provider unavailable: two, after
/// 200–400 ms and 400–800 ms.
const RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(2))
    .with_factor(2.0)
    .with_jitter()
    .with_max_times(2);

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

    /// Calls Mount, retrying (bounded, jittered) while the provider is
    /// unavailable; a timeout or any other error is final.
    pub async fn mount(
        &self,
        provider: &ProviderName,
        request: api::MountRequest,
    ) -> Result<api::MountResponse, Error> {
        (|| self.mount_once(provider, request.clone()))
            .retry(RETRY)
            .when(|e| matches!(e, Error::Unavailable { .. }))
            .notify(|e, delay| {
                tracing::debug!(provider = %provider, error = %e, delay_ms = delay.as_millis() as u64, "provider unavailable, retrying");
            })
            .await
    }

    async fn mount_once(
        &self,
        provider: &ProviderName,
        request: api::MountRequest,
    ) -> Result<api::MountResponse, Error> {
        let mut client = self.client(provider)?;
        match tokio::time::timeout(self.config.mount_timeout, client.mount(request)).await {
            Err(_) => Err(Error::Timeout(
                provider.to_string(),
                self.config.mount_timeout,
            )),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.classify(provider, status)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_store_testkit::fake_provider::{Behavior, FakeProvider};

    #[tokio::test]
    async fn retries_only_an_unavailable_provider_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeProvider::start(dir.path(), "fake").await.expect("fake");
        let clients = ProviderClients::new(ClientConfig {
            dirs: vec![dir.path().to_path_buf()],
            max_recv: 1 << 20,
            mount_timeout: Duration::from_secs(20),
        });
        let name = ProviderName::new("fake").expect("name");
        let request = || api::MountRequest {
            target_path: "/t".into(),
            ..Default::default()
        };

        fake.set(Behavior::Fail(tonic::Code::Unavailable, "down".into()));
        let err = clients.mount(&name, request()).await.expect_err("down");
        assert_eq!(
            err.to_string(),
            r#"error connecting to provider "fake": down"#
        );
        assert_eq!(fake.requests().len(), 3, "one call and two retries");

        fake.set(Behavior::Fail(
            tonic::Code::InvalidArgument,
            "bad spc".into(),
        ));
        let err = clients.mount(&name, request()).await.expect_err("bad");
        assert_eq!(
            err.to_string(),
            r#"provider "fake" failed: InvalidArgument: bad spc"#
        );
        assert_eq!(fake.requests().len(), 4, "no retry");

        fake.set(Behavior::files(&[("a", b"x", 0o644)], &[("a", "1")]));
        let ok = clients.mount(&name, request()).await.expect("mount");
        assert_eq!(ok.files[0].path, "a");
    }
}
