//! KMS Secrets Manager `GetSecretValue` (2016-01-20): by name or ARN, by
//! version id and/or stage; binary secrets are answered base64-encoded.

use std::time::SystemTime;

use base64::Engine;
use serde_json::{Value, json};

use crate::state::State;
use crate::wire::{ApiErr, iso, param, request_id};

/// API version.
pub(crate) const VERSION: &str = "2016-01-20";

/// The secret name of a name or `acs:kms:<region>:<account>:secret/<name>`.
pub(crate) fn secret_name(target: &str) -> String {
    match target.strip_prefix("acs:kms:") {
        Some(rest) => rest
            .splitn(3, ':')
            .nth(2)
            .and_then(|r| r.strip_prefix("secret/"))
            .unwrap_or(rest)
            .to_string(),
        None => target.to_string(),
    }
}

fn not_found() -> ApiErr {
    ApiErr::new(404, "Forbidden.ResourceNotFound", "The resource not found.")
}

/// Answers `GetSecretValue` for secret `name`.
pub(crate) fn get_secret_value(
    st: &State,
    name: &str,
    params: &[(String, String)],
) -> Result<Value, ApiErr> {
    let versions = st.secrets.get(name).ok_or_else(not_found)?;
    let stage = param(params, "VersionStage");
    let vid = param(params, "VersionId");
    let v = versions
        .iter()
        .find(|v| match (&vid, &stage) {
            (Some(id), Some(stage)) => &v.id == id && v.stages.contains(stage),
            (Some(id), None) => &v.id == id,
            (None, Some(stage)) => v.stages.contains(stage),
            (None, None) => v.stages.iter().any(|s| s == "ACSCurrent"),
        })
        .ok_or_else(not_found)?;
    let data = if v.binary {
        base64::engine::general_purpose::STANDARD.encode(&v.data)
    } else {
        String::from_utf8_lossy(&v.data).into_owned()
    };
    Ok(json!({
        "RequestId": request_id(), "SecretName": name, "VersionId": v.id, "CreateTime": iso(SystemTime::now()),
        "SecretData": data, "SecretDataType": if v.binary { "binary" } else { "text" },
        "VersionStages": {"VersionStage": v.stages}, "SecretType": "Generic",
    }))
}
