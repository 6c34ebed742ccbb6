//! Credential sources: STS `AssumeRoleWithOIDC` (RRSA) and `AssumeRole`
//! (2015-04-01), and the ECS instance metadata RAM role.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hyper::body::Bytes;
use secrets_store_provider_sdk::Redacted;
use serde::Deserialize;

use crate::credential::{Credential, SessionCredentials};
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::sign;
use crate::transport::{self, HttpClient};

/// STS API version.
pub const STS_VERSION: &str = "2015-04-01";
/// Where the ECS metadata service lists RAM role credentials.
const ECS_CREDENTIALS: &str = "/latest/meta-data/ram/security-credentials/";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    credentials: SessionCredentials,
}

/// A role session request.
#[derive(Debug, Clone, Copy)]
pub struct RoleSession<'a> {
    /// Role to assume.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// `DurationSeconds`.
    pub duration_seconds: u32,
}

/// `AssumeRoleWithOIDC`: exchanges a service-account token for a session.
/// The call is not signed; the token is the proof.
pub async fn assume_role_with_oidc(
    http: &HttpClient,
    sts: &Endpoint,
    session: RoleSession<'_>,
    oidc_provider_arn: &str,
    token: &Redacted<String>,
) -> Result<Credential, ApiError> {
    let query = [
        ("Version", STS_VERSION.to_string()),
        ("Action", "AssumeRoleWithOIDC".to_string()),
        ("Format", "JSON".to_string()),
        ("Timestamp", transport::timestamp(SystemTime::now())),
    ];
    let form = [
        ("RoleArn", session.role_arn.to_string()),
        ("OIDCProviderArn", oidc_provider_arn.to_string()),
        ("OIDCToken", token.expose().clone()),
        ("RoleSessionName", session.session_name.to_string()),
        ("DurationSeconds", session.duration_seconds.to_string()),
    ];
    let req = http::Request::post(sts.url(&format!("/?{}", sign::query(&query))))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-encoding", "identity");
    let (status, body) = http.send(sts, req, Bytes::from(sign::query(&form))).await?;
    let r: AssumeRoleResponse = transport::decode(sts, status, &body)?;
    Ok(r.credentials.into_credential()?)
}

/// `AssumeRole`: a session for the role, signed with `source`.
pub async fn assume_role(
    http: &HttpClient,
    sts: &Endpoint,
    source: &Credential,
    session: RoleSession<'_>,
) -> Result<Credential, ApiError> {
    let params = BTreeMap::from([
        ("RoleArn".to_string(), session.role_arn.to_string()),
        (
            "RoleSessionName".to_string(),
            session.session_name.to_string(),
        ),
        (
            "DurationSeconds".to_string(),
            session.duration_seconds.to_string(),
        ),
    ]);
    let r: AssumeRoleResponse = http
        .call(sts, "AssumeRole", STS_VERSION, &params, source)
        .await?;
    Ok(r.credentials.into_credential()?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials {
    code: String,
    #[serde(flatten)]
    credentials: SessionCredentials,
}

/// How to reach the ECS metadata service.
#[derive(Debug, Clone)]
pub struct EcsMetadata {
    /// Its endpoint (`http://100.100.100.200`).
    pub endpoint: Endpoint,
    /// The role name, skipping the lookup (`ALIBABA_CLOUD_ECS_METADATA`).
    pub role: Option<String>,
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED=true`: a session token is required
    /// (no fallback to token-less IMDSv1 requests).
    pub imdsv1_disabled: bool,
}

async fn metadata_token(http: &HttpClient, ecs: &EcsMetadata) -> Result<Option<String>, ApiError> {
    let req = http::Request::put(ecs.endpoint.url("/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600");
    let answer = http.send(&ecs.endpoint, req, Bytes::new()).await;
    match answer {
        Ok((200, body)) => Ok(Some(String::from_utf8_lossy(&body).trim().to_string())),
        _ if !ecs.imdsv1_disabled => Ok(None),
        Ok((status, _)) => Err(ApiError::Metadata {
            what: "session token (IMDSv1 is disabled)",
            status,
        }),
        Err(e) => Err(e),
    }
}

async fn metadata_get(
    http: &HttpClient,
    ecs: &EcsMetadata,
    token: Option<&str>,
    path: &str,
    what: &'static str,
) -> Result<Bytes, ApiError> {
    let mut req = http::Request::get(ecs.endpoint.url(path));
    if let Some(t) = token {
        req = req.header("X-aliyun-ecs-metadata-token", t);
    }
    match http.send(&ecs.endpoint, req, Bytes::new()).await? {
        (200, body) => Ok(body),
        (status, _) => Err(ApiError::Metadata { what, status }),
    }
}

/// The ECS instance's RAM role session from the metadata service: token
/// (tolerated to fail unless IMDSv1 is disabled), role name (unless given),
/// then the credentials.
pub async fn ecs_ram_role(http: &HttpClient, ecs: &EcsMetadata) -> Result<Credential, ApiError> {
    let token = metadata_token(http, ecs).await?;
    let token = token.as_deref();
    let role = match &ecs.role {
        Some(r) => r.clone(),
        None => {
            let body = metadata_get(http, ecs, token, ECS_CREDENTIALS, "RAM role").await?;
            String::from_utf8_lossy(&body).trim().to_string()
        }
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-_.@".contains(&b);
    if role.is_empty() || role.len() > 128 || !role.bytes().all(valid) {
        return Err(ApiError::Metadata {
            what: "a valid RAM role name",
            status: 200,
        });
    }
    let path = format!("{ECS_CREDENTIALS}{role}");
    let body = metadata_get(http, ecs, token, &path, "RAM role credentials").await?;
    let c: EcsCredentials = serde_json::from_slice(&body)
        .map_err(|e| ApiError::decode(&ecs.endpoint.to_string(), body.len(), &e))?;
    if c.code != "Success" {
        return Err(ApiError::Metadata {
            what: "RAM role credentials (Code is not Success)",
            status: 200,
        });
    }
    Ok(c.credentials.into_credential()?)
}
