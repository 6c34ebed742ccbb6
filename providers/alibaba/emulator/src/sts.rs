//! STS `AssumeRole` (2015-04-01), signed: the caller's principal must be
//! trusted by the role.

use serde_json::{Value, json};

use crate::state::State;
use crate::wire::{ApiErr, param, random_token, request_id};

/// API version.
pub(crate) const VERSION: &str = "2015-04-01";

/// Answers `AssumeRole` for `principal`.
pub(crate) fn assume_role(
    st: &mut State,
    params: &[(String, String)],
    principal: &str,
) -> Result<Value, ApiErr> {
    let role = param(params, "RoleArn").ok_or_else(|| {
        ApiErr::new(
            400,
            "MissingRoleArn",
            "RoleArn is mandatory for this action.",
        )
    })?;
    let status = match st.roles.get(&role) {
        None => 404,
        Some(r) if !r.trusted_principals.contains(principal) => 403,
        Some(_) => 200,
    };
    st.record("AssumeRole", &role, principal, status);
    match status {
        404 => Err(ApiErr::new(
            404,
            "EntityNotExist.Role",
            "The specified Role not exists .",
        )),
        403 => Err(ApiErr::new(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        )),
        _ => {
            let duration = param(params, "DurationSeconds").and_then(|d| d.parse().ok());
            let creds = st.issue_session(&role, duration);
            Ok(
                json!({"RequestId": request_id(), "AssumedRoleUser": {"Arn": format!("{role}/session"), "AssumedRoleId": random_token(12)}, "Credentials": creds}),
            )
        }
    }
}
