//! Reading the SecretProviderClass a volume names, from the pod's namespace:
//! from a cache fed by one cluster-wide watch ([`Cache`]) when it holds the
//! class, else with a GET.
//!
//! The cache serves a class only once its watch has listed every class
//! (the reflector's store is ready) and only while the watch holds it: a
//! class deleted or changed is served stale no longer than the watch takes
//! to deliver the event; a class the cache has not seen (just created, or
//! the watch is not allowed or not synced) is read with a GET.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use secrets_store_crds::v1::SecretProviderClass;

use crate::provider::ProviderName;

/// Why a SecretProviderClass cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The class does not exist in the pod's namespace.
    #[error("failed to get secretproviderclass {namespace}/{name}, error: {source}")]
    NotFound {
        /// Pod namespace.
        namespace: String,
        /// Class name.
        name: String,
        /// API error (names the missing object).
        source: kube::Error,
    },
    /// The API server could not be asked.
    #[error("failed to get secretproviderclass {namespace}/{name}, error: {source}")]
    Api {
        /// Pod namespace.
        namespace: String,
        /// Class name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// `spec.provider` is empty.
    #[error("provider not set in {0}/{1}")]
    NoProvider(String, String),
    /// `spec.provider` is not a valid provider name.
    #[error("{0} in {1}/{2}")]
    BadProvider(crate::provider::dirs::InvalidProviderName, String, String),
    /// `spec.parameters` is empty.
    #[error("parameters not set in {0}/{1}")]
    NoParameters(String, String),
}

/// What the driver needs from a SecretProviderClass.
#[derive(Debug, Clone)]
pub struct ProviderClass {
    /// Class name.
    pub name: String,
    /// Provider to ask.
    pub provider: ProviderName,
    /// Parameters for the provider.
    pub parameters: BTreeMap<String, String>,
    /// The whole object (secret sync reads `secretObjects`).
    pub object: SecretProviderClass,
}

/// SecretProviderClasses kept current by one cluster-wide watch (see the
/// module doc); `Default` is a cache without a watch (every read a GET).
#[derive(Clone, Default)]
pub struct Cache {
    store: Option<reflector::Store<SecretProviderClass>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("watching", &self.store.is_some())
            .finish()
    }
}

impl Cache {
    /// Starts the watch as a background task. `managedFields` are dropped
    /// before they are stored.
    pub fn start(client: kube::Client) -> Self {
        let (store, writer) = reflector::store();
        let api: Api<SecretProviderClass> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|class| class.metadata.managed_fields = None);
        let warned = AtomicBool::new(false);
        let events = reflector::reflector(writer, stream).for_each(move |event| {
            if let Err(e) = event {
                // Reads fall back to GETs; say so once, then only at debug.
                if warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %e, "SecretProviderClass watch failed");
                } else {
                    tracing::warn!(error = %e, "SecretProviderClass watch failed; classes are read with GETs until it works");
                }
            }
            std::future::ready(())
        });
        tokio::spawn(events);
        Self { store: Some(store) }
    }

    /// `<namespace>/<name>` from the cache, else with a GET.
    pub async fn object(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<SecretProviderClass>, kube::Error> {
        if let Some(object) = self.cached(namespace, name) {
            return Ok(object);
        }
        let api: Api<SecretProviderClass> = Api::namespaced(client.clone(), namespace);
        Ok(Arc::new(api.get(name).await?))
    }

    /// The class, when the watch has listed every class and holds it.
    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<SecretProviderClass>> {
        let store = self.store.as_ref()?;
        store.wait_until_ready().now_or_never()?.ok()?;
        store.get(&ObjectRef::new(name).within(namespace))
    }
}

/// `<namespace>/<name>` checked, when `cache` holds it (no request).
pub fn cached(cache: &Cache, namespace: &str, name: &str) -> Option<ProviderClass> {
    let object = cache.cached(namespace, name)?;
    check(namespace, name, SecretProviderClass::clone(&object)).ok()
}

/// Reads and checks `<namespace>/<name>`: from `cache` when it holds the
/// class, else with a GET.
pub async fn get(
    client: &kube::Client,
    cache: &Cache,
    namespace: &str,
    name: &str,
) -> Result<ProviderClass, Error> {
    let object = cache
        .object(client, namespace, name)
        .await
        .map_err(|source| {
            let (namespace, name) = (namespace.to_string(), name.to_string());
            match &source {
                kube::Error::Api(s) if s.code == 404 => Error::NotFound {
                    namespace,
                    name,
                    source,
                },
                _ => Error::Api {
                    namespace,
                    name,
                    source,
                },
            }
        })?;
    check(namespace, name, SecretProviderClass::clone(&object))
}

/// Checks a class already read (from the API server, or from a file by
/// the standalone CLI): a valid provider name and some parameters.
pub fn check(
    namespace: &str,
    name: &str,
    object: SecretProviderClass,
) -> Result<ProviderClass, Error> {
    let spec = &object.spec;
    if spec.provider.trim().is_empty() {
        return Err(Error::NoProvider(namespace.into(), name.into()));
    }
    let provider = ProviderName::new(spec.provider.trim())
        .map_err(|e| Error::BadProvider(e, namespace.into(), name.into()))?;
    if spec.parameters.is_empty() {
        return Err(Error::NoParameters(namespace.into(), name.into()));
    }
    Ok(ProviderClass {
        name: name.to_string(),
        provider,
        parameters: spec.parameters.clone(),
        object,
    })
}
