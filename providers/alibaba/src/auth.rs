//! The credential chain, in upstream's order: pod service-account token
//! (RRSA) → provider RRSA → AK/SK + role → nodePublishSecretRef AK/SK → env
//! AK/SK → ECS instance RAM role. A step that applies but fails stops the
//! chain. Sessions are cached under the keyed hash of the whole source
//! credential (see `secrets_store_provider_sdk::ops::cache`) and refreshed
//! before expiry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::cache::{
    CredentialKey, CredentialKeyBuilder, CredentialMaterial, ExpiringCache,
};
use secrets_store_provider_sdk::request::ServiceAccountToken;

use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::{ApiError, Coded};
use crate::sts::{self, EcsMetadata, RoleSession};
use crate::transport::HttpClient;

/// Audience of RRSA tokens.
pub const STS_AUDIENCE: &str = "sts.aliyuncs.com";
/// ServiceAccount annotation naming the pod's RAM role.
pub const ROLE_ANNOTATION: &str = "ack.alibabacloud.com/role-arn";
/// Token file the chart projects for provider RRSA.
pub const DEFAULT_TOKEN_FILE: &str =
    "/var/run/secrets/tokens/csi-secrets-store-provider-alibabacloud";
/// Default session name.
pub const DEFAULT_SESSION_NAME: &str = "csi-secrets-store-provider-alibaba";
/// Session name for cross-account roles.
pub const CROSS_ACCOUNT_SESSION_NAME: &str = "csi-secrets-store-cross-account";
/// Sessions are refreshed when less than this is left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(180);

/// Authentication settings read from the environment at start.
#[derive(Debug, Clone, Default)]
pub struct AuthEnv {
    /// `ALICLOUD_ROLE_ARN`.
    pub role_arn: Option<String>,
    /// `ALICLOUD_OIDC_PROVIDER_ARN`, or derived from account and cluster id.
    pub oidc_provider_arn: Option<String>,
    /// `ALICLOUD_OIDC_TOKEN_FILE`, else [`DEFAULT_TOKEN_FILE`].
    pub oidc_token_file: PathBuf,
    /// `ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Redacted<String>>,
    /// `ALICLOUD_ROLE_SESSION_NAME`.
    pub session_name: String,
    /// `ALICLOUD_ROLE_SESSION_EXPIRATION` (seconds, min 900, default 3600).
    pub session_duration: u32,
    /// `ALIBABA_CLOUD_ECS_METADATA`: role name, skipping the lookup.
    pub ecs_role: Option<String>,
    /// `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`.
    pub ecs_disabled: bool,
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED=true`: the metadata session token is
    /// required.
    pub imdsv1_disabled: bool,
}

impl AuthEnv {
    /// Reads the settings through `get` (the process environment in
    /// production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let oidc_provider_arn = get("ALICLOUD_OIDC_PROVIDER_ARN").or_else(|| {
            Some(format!(
                "acs:ram::{}:oidc-provider/ack-rrsa-{}",
                get("ALICLOUD_ACCOUNT_ID")?,
                get("ALICLOUD_CLUSTER_ID")?
            ))
        });
        Self {
            role_arn: get("ALICLOUD_ROLE_ARN"),
            oidc_provider_arn,
            oidc_token_file: get("ALICLOUD_OIDC_TOKEN_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| DEFAULT_TOKEN_FILE.into()),
            access_key_id: get("ACCESS_KEY_ID"),
            secret_access_key: get("SECRET_ACCESS_KEY").map(Redacted::new),
            session_name: get("ALICLOUD_ROLE_SESSION_NAME")
                .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
            session_duration: get("ALICLOUD_ROLE_SESSION_EXPIRATION")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3600)
                .max(900),
            ecs_role: get("ALIBABA_CLOUD_ECS_METADATA"),
            ecs_disabled: get("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            imdsv1_disabled: get("ALIBABA_CLOUD_IMDSV1_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }
}

/// Where a mount's base credential comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The pod's own token exchanged for its SA's role.
    PodRrsa {
        /// Role from the SA annotation.
        role_arn: String,
        /// OIDC provider ARN.
        provider_arn: String,
        /// The pod's `sts.aliyuncs.com` token.
        token: Redacted<String>,
        /// `namespace/serviceaccount`.
        subject: String,
    },
    /// The provider's projected token exchanged for `ALICLOUD_ROLE_ARN`.
    ProviderRrsa {
        /// Role.
        role_arn: String,
        /// OIDC provider ARN.
        provider_arn: String,
        /// Token file, re-read on each refresh.
        token_file: PathBuf,
    },
    /// `AssumeRole` signed with the env AK.
    RamRole {
        /// Source key.
        credential: Credential,
        /// Role.
        role_arn: String,
    },
    /// A static key from nodePublishSecretRef.
    NodePublishSecret(Credential),
    /// A static key from the environment.
    Env(Credential),
    /// The ECS instance RAM role.
    Ecs,
}

impl Source {
    /// The method name, for logs.
    pub fn method(&self) -> &'static str {
        match self {
            Self::PodRrsa { .. } => "pod-rrsa",
            Self::ProviderRrsa { .. } => "provider-rrsa",
            Self::RamRole { .. } => "ram-role",
            Self::NodePublishSecret(_) => "node-publish-secret",
            Self::Env(_) => "env-ak",
            Self::Ecs => "ecs-ram-role",
        }
    }

    /// The cache key of this whole source credential.
    pub fn key(&self) -> CredentialKey {
        CredentialKey::of(self)
    }
}

impl CredentialMaterial for Source {
    fn feed(&self, k: &mut CredentialKeyBuilder) {
        k.field("method", self.method().as_bytes());
        match self {
            Self::PodRrsa {
                role_arn,
                provider_arn,
                token,
                subject,
            } => {
                k.field("role_arn", role_arn.as_bytes())
                    .field("provider_arn", provider_arn.as_bytes())
                    .field("token", token.expose().as_bytes())
                    .field("subject", subject.as_bytes());
            }
            Self::ProviderRrsa {
                role_arn,
                provider_arn,
                token_file,
            } => {
                k.field("role_arn", role_arn.as_bytes())
                    .field("provider_arn", provider_arn.as_bytes())
                    .field("token_file", token_file.as_os_str().as_encoded_bytes());
            }
            Self::RamRole {
                credential,
                role_arn,
            } => {
                k.nested("source", credential)
                    .field("role_arn", role_arn.as_bytes());
            }
            Self::NodePublishSecret(c) | Self::Env(c) => {
                k.nested("key", c);
            }
            Self::Ecs => {}
        }
    }
}

/// Why no credential could be chosen or obtained.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// Pod RRSA is on but the driver sent no token for the STS audience.
    #[error(
        "pod service account token for audience {STS_AUDIENCE} not found; configure the CSIDriver tokenRequests"
    )]
    NoPodToken,
    /// The tokens attribute is malformed (its text is not repeated).
    #[error("failed to unmarshal service account tokens")]
    Tokens,
    /// RRSA needs an OIDC provider ARN.
    #[error(
        "RRSA needs ALICLOUD_OIDC_PROVIDER_ARN (or ALICLOUD_ACCOUNT_ID and ALICLOUD_CLUSTER_ID)"
    )]
    NoOidcProvider,
    /// The provider token file is unreadable.
    #[error("read OIDC token file {}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The ECS method is disabled and nothing else applies.
    #[error(
        "no credentials: set nodePublishSecretRef, ACCESS_KEY_ID/SECRET_ACCESS_KEY or RRSA (ECS metadata is disabled)"
    )]
    Nothing,
    /// STS or the metadata service refused.
    #[error("get {method} credential")]
    Api {
        /// Method.
        method: &'static str,
        /// Cause.
        source: ApiError,
    },
}

impl Coded for AuthError {
    fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::Api { source, .. } => source.grpc_code(),
            Self::TokenFile { .. } => tonic::Code::Internal,
            _ => tonic::Code::InvalidArgument,
        }
    }
}

impl From<AuthError> for secrets_store_provider_sdk::MountError {
    fn from(e: AuthError) -> Self {
        crate::error::mount_error(&e, None)
    }
}

/// What a mount contributes to choosing the credential.
pub struct MountAuth<'a> {
    /// `usePodServiceAccountToken == "true"`.
    pub use_pod_token: bool,
    /// The role annotation of the pod's ServiceAccount, if read.
    pub pod_role_arn: Option<String>,
    /// `namespace/serviceaccount`.
    pub subject: String,
    /// The pod's tokens by audience (`Err` when malformed).
    pub tokens: Result<BTreeMap<String, ServiceAccountToken>, ()>,
    /// nodePublishSecretRef data.
    pub secrets: &'a BTreeMap<String, String>,
}

fn lookup_ci<'a>(m: &'a BTreeMap<String, String>, key: &str) -> Option<&'a String> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Picks the first applicable method of the chain.
pub fn select(env: &AuthEnv, mount: MountAuth<'_>) -> Result<Source, AuthError> {
    if mount.use_pod_token
        && let Some(role_arn) = mount.pod_role_arn
    {
        let tokens = mount.tokens.map_err(|()| AuthError::Tokens)?;
        let token = tokens.get(STS_AUDIENCE).ok_or(AuthError::NoPodToken)?;
        let provider_arn = env
            .oidc_provider_arn
            .clone()
            .ok_or(AuthError::NoOidcProvider)?;
        return Ok(Source::PodRrsa {
            role_arn,
            provider_arn,
            token: token.token.clone(),
            subject: mount.subject,
        });
    }
    if let (Some(role_arn), Some(provider_arn)) = (&env.role_arn, &env.oidc_provider_arn) {
        return Ok(Source::ProviderRrsa {
            role_arn: role_arn.clone(),
            provider_arn: provider_arn.clone(),
            token_file: env.oidc_token_file.clone(),
        });
    }
    let env_key = match (&env.access_key_id, &env.secret_access_key) {
        (Some(id), Some(secret)) => Some(Credential::static_key(id, secret.expose())),
        _ => None,
    };
    if let (Some(credential), Some(role_arn)) = (&env_key, &env.role_arn) {
        return Ok(Source::RamRole {
            credential: credential.clone(),
            role_arn: role_arn.clone(),
        });
    }
    if let (Some(id), Some(secret)) = (
        lookup_ci(mount.secrets, "access_key"),
        lookup_ci(mount.secrets, "access_secret"),
    ) {
        return Ok(Source::NodePublishSecret(Credential::static_key(
            id, secret,
        )));
    }
    if let Some(c) = env_key {
        return Ok(Source::Env(c));
    }
    if env.ecs_disabled {
        return Err(AuthError::Nothing);
    }
    Ok(Source::Ecs)
}

/// What a cached session was derived for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Derived {
    /// The source's own session.
    Base,
    /// A cross-account role assumed from the base credential.
    Role(String),
}

/// Obtains and caches credentials.
pub struct Auth {
    env: AuthEnv,
    http: HttpClient,
    sts: Endpoint,
    ecs: EcsMetadata,
    cache: ExpiringCache<Derived, Credential>,
}

impl Auth {
    /// A credential service talking to `sts` and the ECS `metadata` service.
    pub fn new(env: AuthEnv, http: HttpClient, sts: Endpoint, metadata: Endpoint) -> Self {
        let ecs = EcsMetadata {
            endpoint: metadata,
            role: env.ecs_role.clone(),
            imdsv1_disabled: env.imdsv1_disabled,
        };
        Self {
            env,
            http,
            sts,
            ecs,
            cache: ExpiringCache::new(REFRESH_MARGIN),
        }
    }

    /// The environment settings.
    pub fn env(&self) -> &AuthEnv {
        &self.env
    }

    fn session<'a>(&'a self, role_arn: &'a str, session_name: &'a str) -> RoleSession<'a> {
        RoleSession {
            role_arn,
            session_name,
            duration_seconds: self.env.session_duration,
        }
    }

    /// The credential of `source`, from the cache while it is fresh.
    pub async fn credential(&self, source: &Source) -> Result<Credential, AuthError> {
        match source {
            Source::NodePublishSecret(c) | Source::Env(c) => Ok(c.clone()),
            _ => {
                self.cache
                    .get_or_load(&source.key(), &Derived::Base, || self.load(source))
                    .await
            }
        }
    }

    async fn load(&self, source: &Source) -> Result<Credential, AuthError> {
        let method = source.method();
        tracing::debug!(method, "requesting session credentials");
        let session_name = &self.env.session_name;
        let result = match source {
            Source::PodRrsa {
                role_arn,
                provider_arn,
                token,
                ..
            } => {
                let session = self.session(role_arn, session_name);
                sts::assume_role_with_oidc(&self.http, &self.sts, session, provider_arn, token)
                    .await
            }
            Source::ProviderRrsa {
                role_arn,
                provider_arn,
                token_file,
            } => {
                let token = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    AuthError::TokenFile {
                        path: token_file.clone(),
                        source: Arc::new(e),
                    }
                })?;
                let token = Redacted::new(token.trim().to_string());
                let session = self.session(role_arn, session_name);
                sts::assume_role_with_oidc(&self.http, &self.sts, session, provider_arn, &token)
                    .await
            }
            Source::RamRole {
                credential,
                role_arn,
            } => {
                let session = self.session(role_arn, session_name);
                sts::assume_role(&self.http, &self.sts, credential, session).await
            }
            Source::Ecs => sts::ecs_ram_role(&self.http, &self.ecs).await,
            Source::NodePublishSecret(c) | Source::Env(c) => Ok(c.clone()),
        };
        result.map_err(|source| AuthError::Api { method, source })
    }

    /// A session for `role_arn` assumed from the `base` credential, cached
    /// under the whole base credential and the role.
    pub async fn cross_account(
        &self,
        base: &Credential,
        role_arn: &str,
    ) -> Result<Credential, AuthError> {
        let derived = Derived::Role(role_arn.to_string());
        self.cache
            .get_or_load(&base.key(), &derived, || async {
                let session = self.session(role_arn, CROSS_ACCOUNT_SESSION_NAME);
                sts::assume_role(&self.http, &self.sts, base, session)
                    .await
                    .map_err(|source| AuthError::Api {
                        method: "cross-account",
                        source,
                    })
            })
            .await
    }

    /// Drops every session cached under a credential the backend rejected.
    pub fn invalidate(&self, key: &CredentialKey) {
        self.cache.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> AuthEnv {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthEnv::from_lookup(|k| m.get(k).cloned())
    }

    fn token() -> BTreeMap<String, ServiceAccountToken> {
        serde_json::from_str(r#"{"sts.aliyuncs.com":{"token":"t","expirationTimestamp":""}}"#)
            .expect("json")
    }

    fn mount<'a>(
        pod: bool,
        role: Option<&str>,
        tokens: BTreeMap<String, ServiceAccountToken>,
        secrets: &'a BTreeMap<String, String>,
    ) -> MountAuth<'a> {
        MountAuth {
            use_pod_token: pod,
            pod_role_arn: role.map(str::to_string),
            subject: "ns/sa".into(),
            tokens: Ok(tokens),
            secrets,
        }
    }

    #[test]
    fn chain_order() {
        let none = BTreeMap::new();
        let nps: BTreeMap<String, String> = [
            ("Access_Key".to_string(), "NPS".to_string()),
            ("access_secret".to_string(), "s".to_string()),
        ]
        .into();
        let full = env(&[
            ("ALICLOUD_ROLE_ARN", "acs:ram::1:role/p"),
            ("ALICLOUD_OIDC_PROVIDER_ARN", "oidc"),
            ("ACCESS_KEY_ID", "ENV"),
            ("SECRET_ACCESS_KEY", "s"),
        ]);
        assert_eq!(
            select(
                &full,
                mount(true, Some("acs:ram::1:role/pod"), token(), &nps)
            )
            .expect("pod")
            .method(),
            "pod-rrsa"
        );
        // The flag without the annotation moves on.
        assert_eq!(
            select(&full, mount(true, None, token(), &nps))
                .expect("prov")
                .method(),
            "provider-rrsa"
        );
        let ram = env(&[
            ("ALICLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            ("ACCESS_KEY_ID", "ENV"),
            ("SECRET_ACCESS_KEY", "s"),
        ]);
        assert_eq!(
            select(&ram, mount(false, None, token(), &nps))
                .expect("ram")
                .method(),
            "ram-role"
        );
        let ak = env(&[("ACCESS_KEY_ID", "ENV"), ("SECRET_ACCESS_KEY", "s")]);
        assert_eq!(
            select(&ak, mount(false, None, token(), &nps))
                .expect("nps")
                .key(),
            Source::NodePublishSecret(Credential::static_key("NPS", "s")).key()
        );
        assert_eq!(
            select(&ak, mount(false, None, token(), &none))
                .expect("env")
                .key(),
            Source::Env(Credential::static_key("ENV", "s")).key()
        );
        assert_eq!(
            select(&env(&[]), mount(false, None, token(), &none))
                .expect("ecs")
                .method(),
            "ecs-ram-role"
        );
        assert!(matches!(
            select(
                &env(&[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")]),
                mount(false, None, token(), &none)
            ),
            Err(AuthError::Nothing)
        ));
    }

    #[test]
    fn pod_rrsa_failures_stop_the_chain() {
        let none = BTreeMap::new();
        let e = env(&[
            ("ALICLOUD_ACCOUNT_ID", "1"),
            ("ALICLOUD_CLUSTER_ID", "c"),
            ("ACCESS_KEY_ID", "ENV"),
            ("SECRET_ACCESS_KEY", "s"),
        ]);
        assert_eq!(
            e.oidc_provider_arn.as_deref(),
            Some("acs:ram::1:oidc-provider/ack-rrsa-c")
        );
        let err = select(&e, mount(true, Some("r"), BTreeMap::new(), &none)).expect_err("no token");
        assert!(matches!(err, AuthError::NoPodToken));
        assert!(matches!(
            select(&env(&[]), mount(true, Some("r"), token(), &none)),
            Err(AuthError::NoOidcProvider)
        ));
        assert_eq!(
            env(&[("ALICLOUD_ROLE_SESSION_EXPIRATION", "60")]).session_duration,
            900
        );
    }
}
