//! The two secret backends: KMS Secrets Manager `GetSecretValue`
//! (2016-01-20) and OOS `GetSecretParameter` (2019-06-01).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::{ApiError, Coded};
use crate::transport::HttpClient;

/// A fetched secret value and its version.
#[derive(Debug, Clone)]
pub struct SecretValue {
    /// File contents.
    pub data: secrets_store_provider_sdk::Redacted<Vec<u8>>,
    /// Version id (KMS `VersionId`, OOS `ParameterVersion`).
    pub version: String,
}

/// Backend fetch errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A binary secret is not valid base64. The decoder's own message is
    /// left out: it quotes a byte of the secret.
    #[error("decode binary data error: invalid base64, key: {name}")]
    Binary {
        /// The secret's name.
        name: String,
    },
    /// No rate-limit slot in time (not retried).
    #[error(transparent)]
    RateLimited(#[from] secrets_store_provider_sdk::ops::ratelimit::RateLimited),
}

impl FetchError {
    /// Worth another attempt.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Api(a) if a.is_transient())
    }
}

impl Coded for FetchError {
    fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::Api(a) => a.grpc_code(),
            Self::Binary { .. } => tonic::Code::DataLoss,
            Self::RateLimited(_) => tonic::Code::ResourceExhausted,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueResponse {
    secret_data: String,
    #[serde(default)]
    secret_data_type: String,
    #[serde(default)]
    version_id: String,
}

/// KMS `GetSecretValue` for `name`, optionally pinned to a version id or
/// stage.
pub async fn kms_get_secret_value(
    http: &HttpClient,
    endpoint: &Endpoint,
    credential: &Credential,
    name: &str,
    (version_id, version_stage): (Option<&str>, Option<&str>),
) -> Result<SecretValue, FetchError> {
    let mut params = BTreeMap::from([("SecretName".to_string(), name.to_string())]);
    if let Some(v) = version_id {
        params.insert("VersionId".into(), v.into());
    }
    if let Some(s) = version_stage {
        params.insert("VersionStage".into(), s.into());
    }
    let r: GetSecretValueResponse = http
        .call(
            endpoint,
            "GetSecretValue",
            "2016-01-20",
            &params,
            credential,
        )
        .await?;
    let data = if r.secret_data_type == "binary" {
        base64::engine::general_purpose::STANDARD
            .decode(r.secret_data.as_bytes())
            .map_err(|_| FetchError::Binary {
                name: name.to_string(),
            })?
    } else {
        r.secret_data.into_bytes()
    };
    Ok(SecretValue {
        data: secrets_store_provider_sdk::Redacted::new(data),
        version: r.version_id,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretParameterResponse {
    parameter: Parameter,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    value: String,
    #[serde(default)]
    parameter_version: serde_json::Value,
}

/// OOS `GetSecretParameter` for `name`, decrypted.
pub async fn oos_get_secret_parameter(
    http: &HttpClient,
    endpoint: &Endpoint,
    credential: &Credential,
    name: &str,
) -> Result<SecretValue, FetchError> {
    let params = BTreeMap::from([
        ("Name".to_string(), name.to_string()),
        ("WithDecryption".to_string(), "true".to_string()),
    ]);
    let r: GetSecretParameterResponse = http
        .call(
            endpoint,
            "GetSecretParameter",
            "2019-06-01",
            &params,
            credential,
        )
        .await?;
    let version = match r.parameter.parameter_version {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s,
        _ => String::new(),
    };
    Ok(SecretValue {
        data: secrets_store_provider_sdk::Redacted::new(r.parameter.value.into_bytes()),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_store_provider_sdk::ops::ratelimit::RateLimited;
    use std::time::Duration;

    #[test]
    fn classification_and_messages() {
        let limited = FetchError::from(RateLimited(Duration::from_secs(300)));
        assert!(
            !limited.is_transient(),
            "a rate-limit timeout is not retried"
        );
        assert_eq!(limited.grpc_code(), tonic::Code::ResourceExhausted);
        let binary = FetchError::Binary {
            name: "cert".into(),
        };
        assert_eq!(binary.grpc_code(), tonic::Code::DataLoss);
        assert_eq!(
            binary.to_string(),
            "decode binary data error: invalid base64, key: cert"
        );
        let throttled = FetchError::from(ApiError::service(400, "Throttling.User", "m", "r"));
        assert!(throttled.is_transient());
    }
}
