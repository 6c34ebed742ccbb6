//! The mount flow: parameters → objects → credential → fetch each object
//! (rate-limited, retried on throttling, coalesced across identical
//! concurrent mounts) → files and versions.

use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use secrets_store_provider_sdk::jmes::JsonSecret;
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::ops::coalesce::Coalescer;
use secrets_store_provider_sdk::ops::ratelimit::RateLimiter;
use secrets_store_provider_sdk::path::PathTranslation;
use secrets_store_provider_sdk::{MountError, MountRequest, Mounted, Provider};

use crate::auth::{self, Auth, AuthEnv, MountAuth, Source};
use crate::backend::{self, FetchError, SecretValue};
use crate::client::{Credential, Endpoint, HttpClient};
use crate::config::{self, Flags};
use crate::objects::{self, Object, ObjectType};
use crate::region::RegionLookup;

/// Region when neither the SPC, the flag nor the node say.
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Longest wait for a rate-limit slot (upstream: 5 minutes).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);

/// Everything the provider is configured with.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `--region`.
    pub region: Option<String>,
    /// `--kms-endpoint`.
    pub kms_endpoint: Option<String>,
    /// `--oos-endpoint`.
    pub oos_endpoint: Option<String>,
    /// STS endpoint.
    pub sts_endpoint: Endpoint,
    /// ECS metadata endpoint.
    pub ecs_metadata_endpoint: Endpoint,
    /// KMS requests per second.
    pub kms_qps: u32,
    /// OOS requests per second.
    pub oos_qps: u32,
    /// Retries on throttling.
    pub backoff: Backoff,
    /// Credential settings from the environment.
    pub auth: AuthEnv,
    /// `NODE_NAME`, for the region lookup.
    pub node_name: Option<String>,
}

impl ProviderConfig {
    /// Builds the configuration from flags and an environment lookup.
    pub fn from_flags(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String> + Copy,
    ) -> Result<Self, crate::client::ApiError> {
        let sts = match &flags.sts_endpoint {
            Some(s) => Endpoint::parse(s)?,
            None => Endpoint::parse(&config::sts_host(env))?,
        };
        for e in [&flags.kms_endpoint, &flags.oos_endpoint]
            .into_iter()
            .flatten()
        {
            Endpoint::parse(e)?;
        }
        Ok(Self {
            region: flags.region.clone().filter(|r| !r.is_empty()),
            kms_endpoint: flags.kms_endpoint.clone(),
            oos_endpoint: flags.oos_endpoint.clone(),
            sts_endpoint: sts,
            ecs_metadata_endpoint: Endpoint::parse(&flags.ecs_metadata_endpoint)?,
            kms_qps: flags.max_concurrent_kms_secret_pulls,
            oos_qps: flags.max_concurrent_oos_secret_pulls,
            backoff: Backoff::default(),
            auth: AuthEnv::from_lookup(env),
            node_name: env("NODE_NAME").filter(|n| !n.is_empty()),
        })
    }
}

/// What identifies one backend fetch, for coalescing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FetchKey {
    identity: String,
    endpoint: String,
    kind: ObjectType,
    name: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

/// The `alibabacloud` provider.
pub struct AlibabaProvider {
    config: ProviderConfig,
    http: HttpClient,
    auth: Auth,
    kube: Option<kube::Client>,
    regions: RegionLookup,
    kms_limit: RateLimiter,
    oos_limit: RateLimiter,
    inflight: Coalescer<FetchKey, Result<SecretValue, FetchError>>,
}

fn invalid(e: impl std::fmt::Display) -> MountError {
    MountError::invalid(e.to_string())
}

impl AlibabaProvider {
    /// A provider with an optional Kubernetes client (region lookup, pod
    /// service-account annotations).
    pub fn new(config: ProviderConfig, kube: Option<kube::Client>) -> Self {
        let http = HttpClient::new(&format!(
            "{}/{}",
            crate::RUNTIME_NAME,
            env!("CARGO_PKG_VERSION")
        ));
        Self {
            auth: Auth::new(
                config.auth.clone(),
                http.clone(),
                config.sts_endpoint.clone(),
                config.ecs_metadata_endpoint.clone(),
            ),
            regions: RegionLookup::new(kube.clone(), config.node_name.clone()),
            kms_limit: RateLimiter::new(config.kms_qps),
            oos_limit: RateLimiter::new(config.oos_qps),
            inflight: Coalescer::new(),
            http,
            kube,
            config,
        }
    }

    async fn region(&self, req: &MountRequest) -> Result<String, MountError> {
        if let Some(r) = req.attribute("region").filter(|r| !r.is_empty()) {
            return Ok(r.to_string());
        }
        if let Some(r) = &self.config.region {
            return Ok(r.clone());
        }
        let pod = req.pod();
        match self.regions.region(&pod.namespace, &pod.name).await {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!(error = %e, default = DEFAULT_REGION, "using the default region");
                Ok(DEFAULT_REGION.into())
            }
        }
    }

    async fn pod_role(&self, namespace: &str, sa: &str) -> Option<String> {
        let client = self.kube.as_ref()?;
        match kube::Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .get(sa)
            .await
        {
            Ok(sa) => sa
                .metadata
                .annotations
                .and_then(|a| a.get(auth::ROLE_ANNOTATION).cloned())
                .filter(|r| !r.is_empty()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the pod's service account");
                None
            }
        }
    }

    fn endpoint(&self, object: &Object, region: &str) -> Result<Endpoint, MountError> {
        let raw = match object.kind {
            ObjectType::Kms => object
                .kms_endpoint
                .clone()
                .or_else(|| self.config.kms_endpoint.clone())
                .unwrap_or_else(|| format!("kms-vpc.{region}.aliyuncs.com")),
            ObjectType::Oos => self
                .config
                .oos_endpoint
                .clone()
                .unwrap_or_else(|| format!("oos-vpc.{region}.aliyuncs.com")),
        };
        Endpoint::parse(&raw).map_err(invalid)
    }

    async fn fetch(
        &self,
        identity: &str,
        credential: &Credential,
        endpoint: &Endpoint,
        object: &Object,
    ) -> Result<SecretValue, FetchError> {
        let key = FetchKey {
            identity: identity.to_string(),
            endpoint: endpoint.to_string(),
            kind: object.kind,
            name: object.name.clone(),
            version_id: object.version_id.clone(),
            version_stage: object.version_stage.clone(),
        };
        self.inflight
            .run(key, || {
                self.config.backoff.retry(
                    |e: &FetchError| matches!(e, FetchError::Api(a) if a.is_transient()),
                    || async {
                        let limiter = match object.kind {
                            ObjectType::Kms => &self.kms_limit,
                            ObjectType::Oos => &self.oos_limit,
                        };
                        limiter.acquire(RATE_LIMIT_WAIT).await.map_err(|e| {
                            FetchError::Api(crate::client::ApiError::Transport { endpoint: endpoint.to_string(), message: e.to_string() })
                        })?;
                        tracing::debug!(object = %object.name, kind = object.kind.as_str(), endpoint = %endpoint, "fetching");
                        match object.kind {
                            ObjectType::Kms => {
                                backend::kms_get_secret_value(&self.http, endpoint, credential, &object.name, object.version_id.as_deref(), object.version_stage.as_deref()).await
                            }
                            ObjectType::Oos => backend::oos_get_secret_parameter(&self.http, endpoint, credential, &object.name).await,
                        }
                    },
                )
            })
            .await
    }
}

impl Provider for AlibabaProvider {
    async fn mount(&self, req: MountRequest) -> Result<Mounted, MountError> {
        let translation =
            PathTranslation::parse(req.attribute("pathTranslation")).map_err(invalid)?;
        let objects = objects::parse(req.attribute("objects").unwrap_or_default(), translation)
            .map_err(invalid)?;
        let region = self.region(&req).await?;
        let pod = req.pod();
        let use_pod_token = req.attribute("usePodServiceAccountToken") == Some("true");
        let pod_role_arn = if use_pod_token {
            self.pod_role(&pod.namespace, &pod.service_account).await
        } else {
            None
        };
        let source = auth::select(
            self.auth.env(),
            MountAuth {
                use_pod_token,
                pod_role_arn,
                subject: format!("{}/{}", pod.namespace, pod.service_account),
                tokens: req.service_account_tokens().map_err(|e| e.to_string()),
                secrets: req.secrets.expose(),
            },
        )
        .map_err(|e| MountError::new(e.grpc_code(), e.to_string()))?;
        let identity = source.identity();
        tracing::debug!(method = source.method(), region = %region, objects = objects.len(), "authenticating");
        let base = self
            .auth
            .credential(&source)
            .await
            .map_err(|e| MountError::new(e.grpc_code(), e.to_string()))?;

        let mut fetched: Vec<(Object, SecretValue)> = Vec::with_capacity(objects.len());
        for object in objects {
            let endpoint = self.endpoint(&object, &region)?;
            let (id, cred) = match &object.cross_account_role_arn {
                None => (identity.clone(), base.clone()),
                Some(role) => {
                    let c = self
                        .auth
                        .cross_account(&identity, &base, role)
                        .await
                        .map_err(|e| MountError::new(e.grpc_code(), e.to_string()))?;
                    (format!("{identity}->{role}"), c)
                }
            };
            let value = self
                .fetch(&id, &cred, &endpoint, &object)
                .await
                .map_err(|e| {
                    if let FetchError::Api(a) = &e
                        && a.code().is_some_and(|c| {
                            c.starts_with("InvalidSecurityToken")
                                || c.starts_with("InvalidAccessKeyId")
                        })
                        && !matches!(source, Source::NodePublishSecret(_) | Source::Env(_))
                    {
                        self.auth.invalidate(&identity);
                    }
                    let code = match &e {
                        FetchError::Api(a) => a.grpc_code(),
                        FetchError::Binary(..) => tonic::Code::DataLoss,
                    };
                    MountError::new(code, format!("failed fetching secret {}: {e}", object.name))
                })?;
            fetched.push((object, value));
        }

        let mut mounted = Mounted::new();
        let mode = req.permission;
        for (object, value) in &fetched {
            let version = if value.version.is_empty() {
                "unknown"
            } else {
                value.version.as_str()
            };
            mounted
                .file(&object.file, mode, value.data.expose().clone())
                .map_err(invalid)?;
            mounted.version(&object.file, version);
            if object.jmes.is_empty() {
                continue;
            }
            let json = JsonSecret::parse(&object.name, value.data.expose()).map_err(invalid)?;
            for (path, file) in &object.jmes {
                let v = json.extract(path, file).map_err(invalid)?;
                mounted.file(file, mode, v.into_bytes()).map_err(invalid)?;
                mounted.version(file, version);
            }
        }
        Ok(mounted)
    }
}
