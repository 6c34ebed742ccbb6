//! Reading the SecretProviderClass a volume names, from the pod's namespace.

use std::collections::BTreeMap;

use kube::Api;
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

/// Reads and checks `<namespace>/<name>`.
pub async fn get(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<ProviderClass, Error> {
    let api: Api<SecretProviderClass> = Api::namespaced(client.clone(), namespace);
    let object = api.get(name).await.map_err(|source| {
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
    check(namespace, name, object)
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
