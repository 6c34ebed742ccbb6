//! The mount flow: parameters → objects → region and endpoints (checked
//! before any request) → credential → fetch each object (rate-limited,
//! retried on throttling, coalesced across identical concurrent mounts with
//! the same credential) → files and versions.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use rustls::pki_types::CertificateDer;
use secrets_store_provider_sdk::jmes::JsonSecret;
use secrets_store_provider_sdk::objects::{Strictness, UnknownField};
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::ops::coalesce::Coalescer;
use secrets_store_provider_sdk::ops::ratelimit::RateLimiter;
use secrets_store_provider_sdk::path::PathTranslation;
use secrets_store_provider_sdk::{MountError, MountRequest, Mounted, Provider};

use crate::auth::{self, Auth, AuthEnv, MountAuth, Source};
use crate::backend::{self, FetchError, SecretValue};
use crate::config::{self, Flags};
use crate::credential::Credential;
use crate::endpoint::{self, Endpoint, EndpointError, EndpointPolicy};
use crate::error::mount_error;
use crate::objects::{self, Object, ObjectType};
use crate::region::RegionLookup;
use crate::transport::HttpClient;

/// Region when neither the SPC, the flag nor the node say.
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Longest wait for a rate-limit slot (upstream: 5 minutes).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);
/// Distinct `objects` texts remembered for the unknown-field warning.
const WARNED_CAP: usize = 4096;

/// Everything the provider is configured with.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `--region` (checked).
    pub region: Option<String>,
    /// `--kms-endpoint`: replaces the default KMS endpoint.
    pub kms_endpoint: Option<Endpoint>,
    /// `--oos-endpoint`: replaces the default OOS endpoint.
    pub oos_endpoint: Option<Endpoint>,
    /// STS endpoint.
    pub sts_endpoint: Endpoint,
    /// ECS metadata endpoint.
    pub ecs_metadata_endpoint: Endpoint,
    /// What an SPC `kmsEndpoint` may name.
    pub endpoint_policy: EndpointPolicy,
    /// Trusted besides the system roots (none in production).
    pub extra_roots: Vec<CertificateDer<'static>>,
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
    ) -> Result<Self, EndpointError> {
        let parse = |s: &Option<String>| s.as_deref().map(Endpoint::parse).transpose();
        let sts = match &flags.sts_endpoint {
            Some(s) => Endpoint::parse(s)?,
            None => Endpoint::parse(&config::sts_host(env))?,
        };
        let region = flags.region.clone().filter(|r| !r.is_empty());
        if let Some(r) = &region {
            endpoint::region(r)?;
        }
        Ok(Self {
            region,
            kms_endpoint: parse(&flags.kms_endpoint)?,
            oos_endpoint: parse(&flags.oos_endpoint)?,
            sts_endpoint: sts,
            ecs_metadata_endpoint: Endpoint::parse(&flags.ecs_metadata_endpoint)?,
            endpoint_policy: EndpointPolicy {
                allowed_suffixes: flags.allowed_endpoint_suffixes.clone(),
            },
            extra_roots: Vec::new(),
            kms_qps: flags.max_concurrent_kms_secret_pulls,
            oos_qps: flags.max_concurrent_oos_secret_pulls,
            backoff: Backoff::default(),
            auth: AuthEnv::from_lookup(env),
            node_name: env("NODE_NAME").filter(|n| !n.is_empty()),
        })
    }
}

/// What identifies one backend fetch (besides the credential), for
/// coalescing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FetchKey {
    endpoint: Endpoint,
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
    warned: Mutex<HashSet<u64>>,
}

fn invalid(e: impl std::fmt::Display) -> MountError {
    MountError::invalid(e.to_string())
}

impl AlibabaProvider {
    /// A provider with an optional Kubernetes client (region lookup, pod
    /// service-account annotations).
    pub fn new(config: ProviderConfig, kube: Option<kube::Client>) -> Self {
        let user_agent = format!("{}/{}", crate::RUNTIME_NAME, env!("CARGO_PKG_VERSION"));
        let http = HttpClient::new(&user_agent, &config.extra_roots);
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
            warned: Mutex::new(HashSet::new()),
            http,
            kube,
            config,
        }
    }

    /// The region: the SPC's, else `--region`, else the node's, else the
    /// default; always checked before it goes into a host name.
    async fn region(&self, req: &MountRequest) -> Result<String, MountError> {
        let region = if let Some(r) = req.attribute("region").filter(|r| !r.is_empty()) {
            r.to_string()
        } else if let Some(r) = &self.config.region {
            r.clone()
        } else {
            let pod = req.pod();
            match self.regions.region(&pod.namespace, &pod.name).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, default = DEFAULT_REGION, "using the default region");
                    DEFAULT_REGION.into()
                }
            }
        };
        endpoint::region(&region).map_err(invalid)?;
        Ok(region)
    }

    /// Where each object is fetched from, refusing what the policy does
    /// not allow.
    fn endpoint(&self, object: &Object, region: &str) -> Result<Endpoint, MountError> {
        match object.kind {
            ObjectType::Kms => match &object.kms_endpoint {
                Some(raw) => self.config.endpoint_policy.spc_kms(raw).map_err(invalid),
                None => Ok(self
                    .config
                    .kms_endpoint
                    .clone()
                    .unwrap_or_else(|| Endpoint::kms_vpc(region))),
            },
            ObjectType::Oos => Ok(self
                .config
                .oos_endpoint
                .clone()
                .unwrap_or_else(|| Endpoint::oos_vpc(region))),
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

    /// The credential chain's choice for this mount.
    async fn source(&self, req: &MountRequest) -> Result<Source, MountError> {
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
                tokens: req.service_account_tokens().map_err(|_| ()),
                secrets: req.secrets.expose(),
            },
        )?;
        Ok(source)
    }

    /// Logs the ignored `objects` fields once per distinct `objects` text.
    fn warn_unknown(&self, objects: &str, unknown: &[UnknownField]) {
        if unknown.is_empty() {
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        objects.hash(&mut h);
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.len() >= WARNED_CAP {
            warned.clear();
        }
        if warned.insert(h.finish()) {
            let fields = unknown
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(fields = %fields, "ignoring unknown fields in objects, as upstream does");
        }
    }

    async fn fetch(
        &self,
        credential: &Credential,
        endpoint: &Endpoint,
        object: &Object,
    ) -> Result<SecretValue, FetchError> {
        let key = FetchKey {
            endpoint: endpoint.clone(),
            kind: object.kind,
            name: object.name.clone(),
            version_id: object.version_id.clone(),
            version_stage: object.version_stage.clone(),
        };
        let attempt = || async {
            let limiter = match object.kind {
                ObjectType::Kms => &self.kms_limit,
                ObjectType::Oos => &self.oos_limit,
            };
            limiter.acquire(RATE_LIMIT_WAIT).await?;
            tracing::debug!(object = %object.name, kind = object.kind.as_str(), endpoint = %endpoint, "fetching");
            match object.kind {
                ObjectType::Kms => {
                    let version = (
                        object.version_id.as_deref(),
                        object.version_stage.as_deref(),
                    );
                    backend::kms_get_secret_value(
                        &self.http,
                        endpoint,
                        credential,
                        &object.name,
                        version,
                    )
                    .await
                }
                ObjectType::Oos => {
                    backend::oos_get_secret_parameter(
                        &self.http,
                        endpoint,
                        credential,
                        &object.name,
                    )
                    .await
                }
            }
        };
        self.inflight
            .run(&credential.key(), key, || {
                self.config.backoff.retry(FetchError::is_transient, attempt)
            })
            .await
    }

    /// Fetches one object with the base credential or its cross-account
    /// role; a session the backend rejects is forgotten.
    async fn fetch_object(
        &self,
        source: &Source,
        base: &Credential,
        endpoint: &Endpoint,
        object: &Object,
    ) -> Result<SecretValue, MountError> {
        let credential = match &object.cross_account_role_arn {
            None => base.clone(),
            Some(role) => self.auth.cross_account(base, role).await.map_err(|e| {
                let context = format!(
                    "failed to assume cross account role {role} for object {}",
                    object.name
                );
                mount_error(&e, Some(&context))
            })?,
        };
        self.fetch(&credential, endpoint, object)
            .await
            .map_err(|e| {
                if let FetchError::Api(a) = &e
                    && a.is_rejected_credential()
                {
                    self.auth.invalidate(&source.key());
                    self.auth.invalidate(&base.key());
                }
                mount_error(&e, Some(&format!("failed fetching secret {}", object.name)))
            })
    }
}

/// Files and versions of the fetched objects, with their jmesPath
/// extractions.
fn respond(fetched: &[(Object, SecretValue)], mode: u32) -> Result<Mounted, MountError> {
    let mut mounted = Mounted::new();
    for (object, value) in fetched {
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

impl Provider for AlibabaProvider {
    async fn mount(&self, req: MountRequest) -> Result<Mounted, MountError> {
        let translation =
            PathTranslation::parse(req.attribute("pathTranslation")).map_err(invalid)?;
        let text = req.attribute("objects").unwrap_or_default();
        let parsed = objects::parse(text, translation, Strictness::Lenient).map_err(invalid)?;
        self.warn_unknown(text, &parsed.unknown);
        let region = self.region(&req).await?;
        let endpoints = parsed
            .objects
            .iter()
            .map(|o| self.endpoint(o, &region))
            .collect::<Result<Vec<_>, _>>()?;
        let source = self.source(&req).await?;
        tracing::debug!(method = source.method(), region = %region, objects = parsed.objects.len(), "authenticating");
        let base = self.auth.credential(&source).await?;
        let mut fetched = Vec::with_capacity(parsed.objects.len());
        for (object, endpoint) in parsed.objects.into_iter().zip(&endpoints) {
            let value = self.fetch_object(&source, &base, endpoint, &object).await?;
            fetched.push((object, value));
        }
        respond(&fetched, req.permission)
    }
}
