//! STS `AssumeRoleWithOIDC` (RRSA): the OIDC provider, the token's
//! audience, issuer, expiry and subject, and the role's trust.

use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::state::{Shared, lock};
use crate::wire::{ApiErr, param, request_id};

fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Answers `AssumeRoleWithOIDC` (unsigned; the token is the proof).
pub(crate) fn assume_role_with_oidc(
    s: &Shared,
    params: &[(String, String)],
) -> Result<Response, ApiErr> {
    let param = |k: &str| param(params, k);
    let missing = ApiErr::missing;
    let role = param("RoleArn").ok_or_else(|| missing("RoleArn"))?;
    let provider = param("OIDCProviderArn").ok_or_else(|| missing("OIDCProviderArn"))?;
    let token = param("OIDCToken").ok_or_else(|| missing("OIDCToken"))?;
    param("RoleSessionName").ok_or_else(|| missing("RoleSessionName"))?;
    let mut st = lock(s);
    let result = (|| {
        let issuer = st.oidc_providers.get(&provider).cloned().ok_or_else(|| {
            ApiErr::new(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            )
        })?;
        let r = st.roles.get(&role).cloned().ok_or_else(|| {
            ApiErr::new(
                404,
                "EntityNotExist.Role",
                "The specified Role not exists .",
            )
        })?;
        let claims = jwt_claims(&token).ok_or_else(|| {
            ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is invalid.",
            )
        })?;
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == "sts.aliyuncs.com",
            Value::Array(a) => a.iter().any(|x| x == "sts.aliyuncs.com"),
            _ => false,
        };
        if !aud_ok || claims["iss"].as_str() != Some(issuer.as_str()) {
            return Err(ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The audience or issuer of the OIDC token is invalid.",
            ));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
            return Err(ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Expired",
                "The OIDC token is expired.",
            ));
        }
        if r.oidc_provider.as_deref() != Some(provider.as_str())
            || r.oidc_subject
                .as_deref()
                .is_some_and(|sub| claims["sub"].as_str() != Some(sub))
        {
            return Err(ApiErr::new(
                403,
                "AuthenticationFail.NoPermission",
                "The role does not trust this OIDC identity.",
            ));
        }
        Ok(st.issue_session(&role, param("DurationSeconds").and_then(|d| d.parse().ok())))
    })();
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.status(),
    };
    st.record("AssumeRoleWithOIDC", &role, "", status);
    result.map(|creds| axum::Json(json!({"RequestId": request_id(), "AssumedRoleUser": {"Arn": format!("{role}/session")}, "OIDCTokenInfo": {}, "Credentials": creds})).into_response())
}
