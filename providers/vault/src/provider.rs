//! The mount flow: parameters → TLS and client (environment < flags <
//! SPC) → for each object, in SPC order: one read per (path, method) per
//! mount, logging in on first use (the pod's token) and once more on a 403
//! with a cached token → the key's value or the whole answer as JSON →
//! decoding → file (object mode, else the request's) and version.

use std::collections::HashMap;
use std::sync::Arc;

use secrets_store_provider_sdk::objects::Strictness;
use secrets_store_provider_sdk::{MountError, MountRequest, Mounted, Provider, Redacted};

use crate::auth::{Authenticator, Jwt, Login, Session};
use crate::client::{Call, VaultClient};
use crate::config::ProviderConfig;
use crate::error::{MountFailure, ReadError};
use crate::params::{Object, Parameters};
use crate::response::{self, VaultSecret};
use crate::tls;
use crate::versions::Versions;

/// The `vault` provider.
pub struct VaultProvider {
    config: ProviderConfig,
    auth: Authenticator,
    versions: Versions,
}

/// Answers already read in this mount, by (path, method) as upstream keys
/// them (`secretArgs` is not part of the key).
type Reads = HashMap<(String, String), Arc<VaultSecret>>;

impl VaultProvider {
    /// A provider; `kube` requests pod tokens when a mount carries none.
    pub fn new(config: ProviderConfig, kube: Option<kube::Client>, versions: Versions) -> Self {
        Self {
            auth: Authenticator::new(kube, config.cache_size, config.token.clone()),
            config,
            versions,
        }
    }

    /// Vault tokens cached now.
    pub fn cached_tokens(&self) -> usize {
        self.auth.cached()
    }

    async fn mount_objects(&self, req: &MountRequest) -> Result<Mounted, MountFailure> {
        let params = Parameters::parse(&req.attributes, Strictness::Lenient)?;
        for u in &params.unknown {
            tracing::debug!(field = %u, "ignoring unknown object field");
        }
        let tokens = req.service_account_tokens()?;
        let jwt = match tokens.get(params.token_audience()) {
            Some(t) => Jwt::Given(t.token.clone()),
            None => Jwt::Request {
                pod: req.pod(),
                audience: params.audience.clone(),
            },
        };
        let key = self.versions.key().await;
        let tls = self.config.tls.overlay(&params.tls);
        let address = params
            .vault_address
            .clone()
            .unwrap_or_else(|| self.config.address.clone());
        let namespace = params
            .vault_namespace
            .clone()
            .or_else(|| self.config.namespace.clone());
        let client = VaultClient::new(
            tls::client(&tls)?,
            &address,
            namespace.clone(),
            self.config.timeout,
            self.config.retries,
        );
        let login = Login {
            address,
            namespace,
            tls,
            mount: params
                .auth_mount_path
                .clone()
                .unwrap_or_else(|| self.config.auth_mount.clone()),
            role: params.role_name.clone(),
            jwt,
        };
        let mut session = Session::new(&self.auth, &client, login);
        let mut reads = Reads::new();
        let mut mounted = Mounted::new();
        for object in &params.objects {
            let contents = contents(&mut session, &client, &mut reads, object).await?;
            let mode = match object.file_permission.0 {
                0 => req.permission,
                m => m,
            };
            let version = Versions::version(&key, object, contents.expose());
            mounted
                .file(&object.object_name, mode, contents.into_inner())
                .map_err(|source| MountFailure::File {
                    object: object.object_name.clone(),
                    source,
                })?;
            mounted.version(&object.object_name, &version);
            tracing::debug!(file = %object.object_name, "secret added to mount response");
        }
        Ok(mounted)
    }
}

impl Provider for VaultProvider {
    async fn mount(&self, req: MountRequest) -> Result<Mounted, MountError> {
        self.mount_objects(&req).await.map_err(MountError::from)
    }
}

/// The file contents of `object`.
async fn contents(
    session: &mut Session<'_>,
    client: &VaultClient,
    reads: &mut Reads,
    object: &Object,
) -> Result<Redacted<Vec<u8>>, MountFailure> {
    let cache_key = (object.secret_path.clone(), object.method.clone());
    let secret = match reads.get(&cache_key) {
        Some(s) => s.clone(),
        None => {
            let read =
                read(session, client, object)
                    .await
                    .map_err(|source| MountFailure::Read {
                        object: object.object_name.clone(),
                        source,
                    })?;
            let secret = match read {
                Some(s) if s.data.is_some() => Arc::new(s),
                other => {
                    return Err(MountFailure::Empty {
                        path: object.secret_path.clone(),
                        warnings: other.and_then(|s| s.warnings).unwrap_or_default(),
                    });
                }
            };
            for w in secret.warnings.iter().flatten() {
                tracing::warn!(warning = %w, path = %object.secret_path, "warning in response from Vault API");
            }
            reads.insert(cache_key, secret.clone());
            secret
        }
    };
    if object.secret_key.is_empty() {
        return Ok(Redacted::new(response::go_json(&*secret).into_bytes()));
    }
    let content_error = |source| MountFailure::Content {
        path: object.secret_path.clone(),
        source,
    };
    let empty = serde_json::Map::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let value = response::key_from_data(data, &object.secret_key).map_err(content_error)?;
    let encoding = object.encoding().map_err(MountFailure::Params)?;
    let decoded = response::decode(value, encoding).map_err(content_error)?;
    Ok(Redacted::new(decoded))
}

/// One read of `object`'s path, with upstream's 403 rule.
async fn read(
    session: &mut Session<'_>,
    client: &VaultClient,
    object: &Object,
) -> Result<Option<VaultSecret>, ReadError> {
    let (token, fresh) = session.token().await.map_err(ReadError::Auth)?;
    let body = object
        .secret_args
        .as_ref()
        .map(|a| Redacted::new(serde_json::to_vec(a).unwrap_or_default()));
    let call = |t| Call {
        method: object.method(),
        path: &object.secret_path,
        token: Some(t),
        body: body.clone(),
    };
    let answer = match client.send(&call(&token.token)).await {
        Ok(a) => a,
        Err(first) if first.status() == Some(403) && !fresh => {
            let again = session
                .replace(&token)
                .await
                .map_err(|auth| ReadError::Reauth {
                    first: first.clone(),
                    auth,
                })?;
            client
                .send(&call(&again.token))
                .await
                .map_err(ReadError::Vault)?
        }
        Err(e) => return Err(ReadError::Vault(e)),
    };
    response::parse(&answer).map_err(ReadError::Answer)
}
