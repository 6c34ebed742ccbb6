//! OOS `GetSecretParameter` (2019-06-01): decrypted with
//! `WithDecryption=true`, else an opaque ciphertext.

use base64::Engine;
use serde_json::{Value, json};

use crate::state::State;
use crate::wire::{ApiErr, param, request_id};

/// API version.
pub(crate) const VERSION: &str = "2019-06-01";

/// Answers `GetSecretParameter` for parameter `name`.
pub(crate) fn get_secret_parameter(
    st: &State,
    name: &str,
    params: &[(String, String)],
) -> Result<Value, ApiErr> {
    let (value, version) = st.parameters.get(name).cloned().ok_or_else(|| {
        ApiErr::new(
            404,
            "EntityNotExists.Parameter",
            format!("Parameter {name} not exists."),
        )
    })?;
    let value = if param(params, "WithDecryption").as_deref() == Some("true") {
        value
    } else {
        base64::engine::general_purpose::STANDARD.encode(format!("encrypted:{value}"))
    };
    Ok(
        json!({"RequestId": request_id(), "Parameter": {"Name": name, "Value": value, "ParameterVersion": version, "Type": "Secret", "Id": format!("p-{name}"), "KeyId": "key-1"}}),
    )
}
