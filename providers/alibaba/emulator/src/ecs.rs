//! The ECS instance metadata service: session tokens (IMDSv2), the
//! attached RAM role's name and its rotating STS credentials.

use std::time::SystemTime;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{Shared, lock};
use crate::wire::{ApiErr, header, iso, random_token};

/// Answers an instance metadata request.
pub(crate) fn metadata(
    s: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiErr> {
    let mut st = lock(s);
    if path == "/latest/api/token" && method == Method::PUT {
        if st.ecs_token_api_down {
            return Ok((StatusCode::FORBIDDEN, "token API unavailable").into_response());
        }
        if header(headers, "x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u32>().ok())
            .is_none()
        {
            return Ok((StatusCode::BAD_REQUEST, "missing ttl").into_response());
        }
        let t = random_token(40);
        st.ecs_tokens.insert(t.clone());
        return Ok(t.into_response());
    }
    if let Some(t) = header(headers, "x-aliyun-ecs-metadata-token")
        && !st.ecs_tokens.contains(t)
    {
        return Ok((StatusCode::UNAUTHORIZED, "invalid metadata token").into_response());
    }
    let Some(rest) = path.strip_prefix("/latest/meta-data/ram/security-credentials/") else {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let Some(role_arn) = st.ecs_role.clone() else {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_string();
    if rest.is_empty() {
        return Ok(role_name.into_response());
    }
    if rest != role_name {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    }
    let mut creds = st.issue_session(&role_arn, None);
    creds["Code"] = json!("Success");
    creds["LastUpdated"] = json!(iso(SystemTime::now()));
    st.record("EcsCredentials", &role_arn, "", 200);
    Ok(axum::Json(creds).into_response())
}
