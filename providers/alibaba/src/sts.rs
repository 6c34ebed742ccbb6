//! Credential sources: STS `AssumeRoleWithOIDC` (RRSA) and `AssumeRole`
//! (2015-04-01), and the ECS instance metadata RAM role.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;

use crate::client::{self, ApiError, Credential, Endpoint, HttpClient, SessionCredentials};
use secrets_store_provider_sdk::Redacted;

/// STS API version.
pub const STS_VERSION: &str = "2015-04-01";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    credentials: SessionCredentials,
}

/// `AssumeRoleWithOIDC`: exchanges a service-account token for a session.
/// The call is not signed; the token is the proof.
pub async fn assume_role_with_oidc(
    http: &HttpClient,
    sts: &Endpoint,
    role_arn: &str,
    oidc_provider_arn: &str,
    token: &Redacted<String>,
    session_name: &str,
    duration_seconds: u32,
) -> Result<Credential, ApiError> {
    let query = [
        ("Version", STS_VERSION.to_string()),
        ("Action", "AssumeRoleWithOIDC".to_string()),
        ("Format", "JSON".to_string()),
        ("Timestamp", client::timestamp(SystemTime::now())),
    ];
    let form = [
        ("RoleArn", role_arn.to_string()),
        ("OIDCProviderArn", oidc_provider_arn.to_string()),
        ("OIDCToken", token.expose().clone()),
        ("RoleSessionName", session_name.to_string()),
        ("DurationSeconds", duration_seconds.to_string()),
    ];
    let enc = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", crate::sign::encode(k), crate::sign::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let req = http::Request::post(format!("{sts}/?{}", enc(&query)))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-encoding", "identity")
        .body(Full::new(Bytes::from(enc(&form))))
        .map_err(|e| ApiError::Endpoint(format!("{sts}: {e}")))?;
    let (status, body) = http.send(req).await?;
    let r: AssumeRoleResponse = client::decode(status, &body)?;
    r.credentials.into_credential()
}

/// `AssumeRole`: a session for `role_arn` signed with `source`.
pub async fn assume_role(
    http: &HttpClient,
    sts: &Endpoint,
    source: &Credential,
    role_arn: &str,
    session_name: &str,
    duration_seconds: u32,
) -> Result<Credential, ApiError> {
    let params = BTreeMap::from([
        ("RoleArn".to_string(), role_arn.to_string()),
        ("RoleSessionName".to_string(), session_name.to_string()),
        ("DurationSeconds".to_string(), duration_seconds.to_string()),
    ]);
    let r: AssumeRoleResponse = http
        .call(sts, "AssumeRole", STS_VERSION, &params, source)
        .await?;
    r.credentials.into_credential()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials {
    code: String,
    #[serde(flatten)]
    credentials: SessionCredentials,
}

/// The ECS instance's RAM role session from the metadata service: token
/// (tolerated to fail), role name (unless given), then the credentials.
pub async fn ecs_ram_role(
    http: &HttpClient,
    metadata: &Endpoint,
    role: Option<&str>,
) -> Result<Credential, ApiError> {
    let token = {
        let req = http::Request::put(format!("{metadata}/latest/api/token"))
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ApiError::Endpoint(e.to_string()))?;
        match http.send(req).await {
            Ok((200, body)) => Some(String::from_utf8_lossy(&body).into_owned()),
            _ => None,
        }
    };
    let get = |path: String| {
        let mut req = http::Request::get(format!("{metadata}{path}"));
        if let Some(t) = &token {
            req = req.header("X-aliyun-ecs-metadata-token", t.as_str());
        }
        req.body(Full::new(Bytes::new()))
            .map_err(|e| ApiError::Endpoint(e.to_string()))
    };
    const BASE: &str = "/latest/meta-data/ram/security-credentials/";
    let role = match role {
        Some(r) => r.to_string(),
        None => {
            let (status, body) = http.send(get(BASE.to_string())?).await?;
            if status != 200 {
                return Err(ApiError::Service {
                    status,
                    code: "EcsMetadata".into(),
                    message: "no RAM role attached to the instance".into(),
                    request_id: String::new(),
                });
            }
            String::from_utf8_lossy(&body).trim().to_string()
        }
    };
    let (status, body) = http.send(get(format!("{BASE}{role}"))?).await?;
    if status != 200 {
        return Err(ApiError::Service {
            status,
            code: "EcsMetadata".into(),
            message: format!("credentials of role {role} unavailable"),
            request_id: String::new(),
        });
    }
    let c: EcsCredentials =
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))?;
    if c.code != "Success" {
        return Err(ApiError::Decode(format!(
            "metadata credentials code {:?}",
            c.code
        )));
    }
    c.credentials.into_credential()
}
