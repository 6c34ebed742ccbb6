//! The pod's AWS credentials: IRSA (the pod's `sts.amazonaws.com` token
//! exchanged with STS `AssumeRoleWithWebIdentity` for the role in its
//! ServiceAccount's `eks.amazonaws.com/role-arn` annotation) or EKS Pod
//! Identity (the pod's `pods.eks.amazonaws.com` token presented to the
//! node's Pod Identity agent).
//!
//! Credentials are cached until five minutes before they expire, keyed by
//! the whole identity (token, role, region): a pod presenting another pod's
//! role with its own token never gets the other pod's session.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::config::SharedHttpClient;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::ops::cache::{
    CredentialKey, CredentialKeyBuilder, CredentialMaterial, Expiring, ExpiringCache,
};

use crate::error::{Error, clean};

/// Audience of the IRSA token.
pub const IRSA_AUDIENCE: &str = "sts.amazonaws.com";
/// Audience of the Pod Identity token.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The Pod Identity agent on IPv4.
pub const AGENT_IPV4: &str = "http://169.254.170.23/v1/credentials";
/// The Pod Identity agent on IPv6.
pub const AGENT_IPV6: &str = "http://[fd00:ec2::23]/v1/credentials";
/// Largest agent answer read.
const AGENT_BODY_LIMIT: usize = 64 * 1024;

/// Temporary AWS credentials. `Debug` redacts the secret parts.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Redacted<String>,
    /// Session token.
    pub session_token: Option<Redacted<String>>,
    /// Expiry.
    pub expires: Option<SystemTime>,
}

impl Expiring for AwsCredentials {
    fn expires_at(&self) -> Option<SystemTime> {
        self.expires
    }
}

impl CredentialMaterial for AwsCredentials {
    fn feed(&self, k: &mut CredentialKeyBuilder) {
        k.field("access_key_id", self.access_key_id.as_bytes())
            .field(
                "secret_access_key",
                self.secret_access_key.expose().as_bytes(),
            )
            .optional(
                "session_token",
                self.session_token.as_ref().map(|t| t.expose().as_bytes()),
            );
    }
}

impl AwsCredentials {
    /// The SDK's credentials type.
    pub fn to_sdk(&self) -> aws_sdk_secretsmanager::config::Credentials {
        aws_sdk_secretsmanager::config::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().clone(),
            self.session_token.as_ref().map(|t| t.expose().clone()),
            self.expires,
            "secrets-store-csi-driver-provider-aws",
        )
    }
}

/// Which agent address family to use (`preferredAddressType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    /// IPv4, then IPv6.
    Auto,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl AddressType {
    /// Upstream's reading: `ipv4`, `ipv6` (any case), anything else auto.
    pub fn parse(raw: &str) -> Self {
        match raw.to_ascii_lowercase().as_str() {
            "ipv4" => Self::Ipv4,
            "ipv6" => Self::Ipv6,
            _ => Self::Auto,
        }
    }
}

/// How the pod authenticates.
#[derive(Debug, Clone)]
pub enum Identity {
    /// IRSA: web identity token and role.
    Irsa {
        /// The `sts.amazonaws.com` token.
        token: Redacted<String>,
        /// The role to assume.
        role_arn: String,
    },
    /// EKS Pod Identity: the agent's token.
    PodIdentity {
        /// The `pods.eks.amazonaws.com` token.
        token: Redacted<String>,
        /// Agent address family.
        address: AddressType,
    },
}

impl CredentialMaterial for Identity {
    fn feed(&self, k: &mut CredentialKeyBuilder) {
        match self {
            Self::Irsa { token, role_arn } => k
                .field("kind", b"irsa")
                .field("token", token.expose().as_bytes())
                .field("role_arn", role_arn.as_bytes()),
            Self::PodIdentity { token, address } => k
                .field("kind", b"pod-identity")
                .field("token", token.expose().as_bytes())
                .field("address", format!("{address:?}").as_bytes()),
        };
    }
}

/// Where and how credentials are obtained.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// STS endpoint override (else the regional endpoint).
    pub sts_endpoint: Option<String>,
    /// Pod Identity agent URL override.
    pub agent_endpoint: Option<String>,
    /// Timeout of an agent call.
    pub agent_timeout: Duration,
    /// FIPS endpoints.
    pub use_fips: bool,
}

/// Obtains and caches credentials.
pub struct Authenticator {
    config: AuthConfig,
    http: SharedHttpClient,
    agent: HyperClient<HttpConnector, Empty<Bytes>>,
    cache: ExpiringCache<String, AwsCredentials>,
    backoff: Backoff,
}

impl Authenticator {
    /// An authenticator using `http` for STS.
    pub fn new(config: AuthConfig, http: SharedHttpClient, backoff: Backoff) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.agent_timeout));
        Self {
            config,
            http,
            agent: HyperClient::builder(TokioExecutor::new()).build(connector),
            cache: ExpiringCache::new(Duration::from_secs(300)),
            backoff,
        }
    }

    /// Credentials of `identity` for `region`.
    pub async fn credentials(
        &self,
        identity: &Identity,
        region: &str,
    ) -> Result<AwsCredentials, Error> {
        let key = CredentialKey::of(identity);
        self.cache
            .get_or_load(&key, &region.to_string(), || async move {
                match identity {
                    Identity::Irsa { token, role_arn } => {
                        self.assume_role(token, role_arn, region).await
                    }
                    Identity::PodIdentity { token, address } => {
                        self.pod_identity(token, *address, region).await
                    }
                }
            })
            .await
    }

    async fn assume_role(
        &self,
        token: &Redacted<String>,
        role_arn: &str,
        region: &str,
    ) -> Result<AwsCredentials, Error> {
        let mut conf = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .http_client(self.http.clone())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .use_fips(self.config.use_fips);
        if let Some(url) = &self.config.sts_endpoint {
            conf = conf.endpoint_url(url);
        }
        let client = &aws_sdk_sts::Client::from_conf(conf.build());
        let session = &SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_string();
        let out = self
            .backoff
            .retry(
                |e: &Error| e.retryable(),
                || async move {
                    client
                        .assume_role_with_web_identity()
                        .role_arn(role_arn)
                        .role_session_name(session)
                        .web_identity_token(token.expose())
                        .send()
                        .await
                        .map_err(|e| {
                            Error::from_sdk("STS", "AssumeRoleWithWebIdentity", &e)
                                .in_region(region)
                        })
                },
            )
            .await?;
        let c = out
            .credentials()
            .ok_or_else(|| Error::Credentials(format!("{region}: STS answered no credentials")))?;
        Ok(AwsCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: Redacted::new(c.secret_access_key().to_string()),
            session_token: Some(Redacted::new(c.session_token().to_string())),
            expires: SystemTime::try_from(*c.expiration()).ok(),
        })
    }

    fn agent_urls(&self, address: AddressType) -> Vec<&str> {
        if let Some(url) = &self.config.agent_endpoint {
            return vec![url];
        }
        match address {
            AddressType::Auto => vec![AGENT_IPV4, AGENT_IPV6],
            AddressType::Ipv4 => vec![AGENT_IPV4],
            AddressType::Ipv6 => vec![AGENT_IPV6],
        }
    }

    async fn pod_identity(
        &self,
        token: &Redacted<String>,
        address: AddressType,
        region: &str,
    ) -> Result<AwsCredentials, Error> {
        let mut last = None;
        for url in self.agent_urls(address) {
            match self.agent_call(url, token).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(endpoint = url, error = %e, "pod identity agent call failed");
                    last = Some(e);
                }
            }
        }
        Err(Error::Credentials(format!(
            "{region}: failed to get AWS config from pod identity agent: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    async fn agent_call(
        &self,
        url: &str,
        token: &Redacted<String>,
    ) -> Result<AwsCredentials, String> {
        let req = http::Request::get(url)
            .header(http::header::AUTHORIZATION, token.expose().as_str())
            .body(Empty::new())
            .map_err(|e| format!("bad agent request: {e}"))?;
        let call = async {
            let resp = self
                .agent
                .request(req)
                .await
                .map_err(|e| format!("request to {url} failed: {e}"))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), AGENT_BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| format!("reading the answer of {url}: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.config.agent_timeout, call)
            .await
            .map_err(|_| format!("request to {url} timed out"))??;
        if !status.is_success() {
            return Err(format!(
                "{url} answered {status}: {}",
                clean(&String::from_utf8_lossy(&body))
            ));
        }
        parse_agent(&body).map_err(|e| format!("{url} answered malformed credentials: {e}"))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentCredentials {
    access_key_id: String,
    secret_access_key: Redacted<String>,
    #[serde(default)]
    token: Option<Redacted<String>>,
    #[serde(default)]
    expiration: Option<String>,
}

/// The agent's JSON (`AccessKeyId`, `SecretAccessKey`, `Token`,
/// `Expiration` in RFC 3339). Errors name the position only.
fn parse_agent(body: &[u8]) -> Result<AwsCredentials, String> {
    let a: AgentCredentials = serde_json::from_slice(body)
        .map_err(|e| format!("JSON error at line {} column {}", e.line(), e.column()))?;
    let expires = match a.expiration.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| "Expiration is not RFC 3339".to_string())?
                .into(),
        ),
    };
    Ok(AwsCredentials {
        access_key_id: a.access_key_id,
        secret_access_key: a.secret_access_key,
        session_token: a.token,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_answer_parses_and_redacts() {
        let c = parse_agent(
            br#"{"AccessKeyId":"ASIA1","SecretAccessKey":"canary-secret","Token":"canary-token","AccountId":"1","Expiration":"2030-01-01T00:00:00Z"}"#,
        )
        .expect("parse");
        assert_eq!(c.access_key_id, "ASIA1");
        assert!(c.expires.is_some());
        assert!(!format!("{c:?}").contains("canary"));
        let e = parse_agent(br#"{"AccessKeyId":"canary"#).expect_err("bad");
        assert!(!e.contains("canary"), "{e}");
    }

    #[test]
    fn identity_keys_cover_token_and_role() {
        let irsa = |t: &str, r: &str| {
            CredentialKey::of(&Identity::Irsa {
                token: Redacted::new(t.into()),
                role_arn: r.into(),
            })
        };
        assert_eq!(irsa("t", "r"), irsa("t", "r"));
        assert_ne!(irsa("t", "r"), irsa("u", "r"));
        assert_ne!(irsa("t", "r"), irsa("t", "s"));
    }

    #[test]
    fn address_types() {
        assert_eq!(AddressType::parse("IPv6"), AddressType::Ipv6);
        assert_eq!(AddressType::parse("ipv4"), AddressType::Ipv4);
        assert_eq!(AddressType::parse("both"), AddressType::Auto);
    }
}
