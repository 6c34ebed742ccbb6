//! Logging in to Vault with the pod's service-account token (Kubernetes or
//! JWT auth: `POST /v1/auth/<mount>/login {"jwt", "role"}`), and the
//! per-pod token cache.
//!
//! The JWT is the pod's token for the configured audience from the mount
//! request, else one this provider requests for the pod (TokenRequest,
//! 15 minutes, bound to the pod), as upstream does.
//!
//! Tokens are cached by the [`CredentialKey`] of everything the login is
//! made of: address, namespace, TLS settings, auth mount, role, and the
//! JWT itself when the request carried one (else the pod's identity and
//! audience, from which this provider mints the JWT). A token is used
//! until its lease is near its end; a 403 with a cached token logs in once
//! more (upstream's rule). `--cache-size` bounds the cache (≤ 0: no cache,
//! one login per mount).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::cache::{
    CredentialKey, CredentialKeyBuilder, CredentialMaterial, Expiring, ExpiringCache,
};
use secrets_store_provider_sdk::request::PodInfo;

use crate::client::{Call, VaultClient, VaultError};
use crate::params::TlsSettings;

/// Lifetime of a token this provider requests for a pod (upstream's).
pub const TOKEN_REQUEST_SECONDS: i64 = 900;
/// A cached Vault token is replaced this long before its lease ends.
const REFRESH_MARGIN: Duration = Duration::from_secs(5);

/// Login failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No token in the request and no way to request one.
    #[error(
        "no service account token for audience {0:?} in the mount request, and no Kubernetes client to request one"
    )]
    NoKubeClient(String),
    /// The TokenRequest failed.
    #[error("failed to create a service account token for requesting pod {pod}: {message}")]
    TokenRequest {
        /// `namespace/name`.
        pod: String,
        /// The API server's answer.
        message: String,
    },
    /// Vault refused the login or could not be reached.
    #[error("failed to login: {0}")]
    Login(#[source] VaultError),
    /// Vault's answer carries no token.
    #[error("failed to parse login response: {0}")]
    LoginResponse(&'static str),
}

/// Where the login JWT comes from.
#[derive(Debug, Clone)]
pub enum Jwt {
    /// The pod's token from the mount request.
    Given(Redacted<String>),
    /// A token to request for the pod, for `audience` (empty: the API
    /// server's default audiences).
    Request {
        /// The pod.
        pod: PodInfo,
        /// The audience.
        audience: String,
    },
}

/// Everything one login is made of.
#[derive(Debug, Clone)]
pub struct Login {
    /// Vault address.
    pub address: String,
    /// Vault namespace.
    pub namespace: Option<String>,
    /// TLS settings in effect.
    pub tls: TlsSettings,
    /// Auth mount path.
    pub mount: String,
    /// Role.
    pub role: String,
    /// The JWT.
    pub jwt: Jwt,
}

impl CredentialMaterial for Login {
    fn feed(&self, k: &mut CredentialKeyBuilder) {
        let opt = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
        k.field("address", self.address.as_bytes())
            .optional("namespace", opt(&self.namespace).as_deref())
            .optional("ca_cert", opt(&self.tls.ca_cert).as_deref())
            .optional("ca_directory", opt(&self.tls.ca_directory).as_deref())
            .optional("server_name", opt(&self.tls.server_name).as_deref())
            .optional("client_cert", opt(&self.tls.client_cert).as_deref())
            .optional("client_key", opt(&self.tls.client_key).as_deref())
            .field("skip_verify", &[u8::from(self.tls.skip_verify)])
            .field("mount", self.mount.as_bytes())
            .field("role", self.role.as_bytes());
        match &self.jwt {
            Jwt::Given(t) => {
                k.field("jwt", t.expose().as_bytes());
            }
            Jwt::Request { pod, audience } => {
                k.field("pod.namespace", pod.namespace.as_bytes())
                    .field("pod.name", pod.name.as_bytes())
                    .field("pod.uid", pod.uid.as_bytes())
                    .field("pod.service_account", pod.service_account.as_bytes())
                    .field("audience", audience.as_bytes());
            }
        }
    }
}

/// A Vault token and the end of its lease.
#[derive(Debug, Clone)]
pub struct VaultToken {
    /// The token.
    pub token: Redacted<String>,
    expires_at: Option<SystemTime>,
}

impl Expiring for VaultToken {
    fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

/// Logs in and caches tokens.
pub struct Authenticator {
    kube: Option<kube::Client>,
    cache: Option<ExpiringCache<(), VaultToken>>,
    preset: Option<Redacted<String>>,
}

impl Authenticator {
    /// An authenticator caching up to `cache_size` tokens (none if ≤ 0).
    /// A `preset` token (`VAULT_TOKEN`) is tried first by every mount, as
    /// the Vault Go API client does; a 403 to it logs in as the pod.
    pub fn new(
        kube: Option<kube::Client>,
        cache_size: i64,
        preset: Option<Redacted<String>>,
    ) -> Self {
        let cache = usize::try_from(cache_size)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| ExpiringCache::with_capacity(REFRESH_MARGIN, n));
        Self {
            kube,
            cache,
            preset,
        }
    }

    /// Tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.as_ref().map_or(0, ExpiringCache::len)
    }

    async fn jwt(&self, jwt: &Jwt) -> Result<Redacted<String>, AuthError> {
        let (pod, audience) = match jwt {
            Jwt::Given(t) => return Ok(t.clone()),
            Jwt::Request { pod, audience } => (pod, audience),
        };
        let Some(kube) = &self.kube else {
            return Err(AuthError::NoKubeClient(audience.clone()));
        };
        tracing::debug!(namespace = %pod.namespace, service_account = %pod.service_account, pod_uid = %pod.uid, %audience, "requesting a service account token bound to the pod");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience.clone()]
                }),
                expiration_seconds: Some(TOKEN_REQUEST_SECONDS),
                bound_object_ref: Some(BoundObjectReference {
                    kind: Some("Pod".into()),
                    api_version: Some("v1".into()),
                    name: Some(pod.name.clone()),
                    uid: Some(pod.uid.clone()),
                }),
            }),
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(kube.clone(), &pod.namespace);
        let failed = |message: String| AuthError::TokenRequest {
            pod: format!("{}/{}", pod.namespace, pod.name),
            message,
        };
        let answer = api
            .create_token_request(&pod.service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .map(Redacted::new)
            .ok_or_else(|| failed("the answer holds no token".into()))
    }

    async fn login(&self, client: &VaultClient, login: &Login) -> Result<VaultToken, AuthError> {
        let jwt = self.jwt(&login.jwt).await?;
        let body = serde_json::json!({"jwt": jwt.expose(), "role": login.role});
        let path = format!("/v1/auth/{}/login", login.mount);
        let answer = client
            .send(&Call {
                method: "POST",
                path: &path,
                token: None,
                body: Some(Redacted::new(body.to_string().into_bytes())),
            })
            .await
            .map_err(AuthError::Login)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            auth: Option<AuthPart>,
        }
        #[derive(serde::Deserialize)]
        struct AuthPart {
            #[serde(default)]
            client_token: String,
            #[serde(default)]
            lease_duration: u64,
        }
        let auth = serde_json::from_slice::<Answer>(&answer)
            .map_err(|_| AuthError::LoginResponse("not a Vault login response"))?
            .auth
            .filter(|a| !a.client_token.is_empty())
            .ok_or(AuthError::LoginResponse("no client token"))?;
        tracing::debug!(
            lease_seconds = auth.lease_duration,
            "vault login successful"
        );
        let expires_at = (auth.lease_duration > 0)
            .then(|| SystemTime::now() + Duration::from_secs(auth.lease_duration));
        Ok(VaultToken {
            token: Redacted::new(auth.client_token),
            expires_at,
        })
    }
}

/// The token of one mount: obtained on first use, replaced once on 403.
pub struct Session<'a> {
    auth: &'a Authenticator,
    client: &'a VaultClient,
    login: Login,
    key: CredentialKey,
    token: Option<VaultToken>,
}

impl<'a> Session<'a> {
    /// A session that logs in lazily.
    pub fn new(auth: &'a Authenticator, client: &'a VaultClient, login: Login) -> Self {
        let key = CredentialKey::of(&login);
        let token = auth.preset.as_ref().map(|t| VaultToken {
            token: t.clone(),
            expires_at: None,
        });
        Self {
            auth,
            client,
            login,
            key,
            token,
        }
    }

    /// The token, and whether this call logged in to get it.
    pub async fn token(&mut self) -> Result<(VaultToken, bool), AuthError> {
        if let Some(t) = &self.token {
            return Ok((t.clone(), false));
        }
        let fresh = AtomicBool::new(false);
        let token = match &self.auth.cache {
            None => {
                fresh.store(true, Ordering::Relaxed);
                self.auth.login(self.client, &self.login).await?
            }
            Some(cache) => {
                cache
                    .get_or_load(&self.key, &(), || async {
                        fresh.store(true, Ordering::Relaxed);
                        self.auth.login(self.client, &self.login).await
                    })
                    .await?
            }
        };
        self.token = Some(token.clone());
        Ok((token, fresh.load(Ordering::Relaxed)))
    }

    /// Drops `rejected` (from the cache too, unless another mount already
    /// replaced it) and logs in again.
    pub async fn replace(&mut self, rejected: &VaultToken) -> Result<VaultToken, AuthError> {
        if let Some(cache) = &self.auth.cache {
            let bad = rejected.token.expose();
            cache
                .invalidate_if(&self.key, &(), |t| t.token.expose() == bad)
                .await;
        }
        self.token = None;
        tracing::debug!("vault rejected the token; logging in again");
        self.token().await.map(|(t, _)| t)
    }
}
